"""``python -m wasmgym.bench``: wasmgym against its peers, side by side, in one run on this machine.

Three groups, each measured in several interleaved rounds (the peers of a group take turns, in a
rotating order, so that a ratio compares figures taken under the same machine load); every figure
is the median over the rounds of one round's time per operation:

* **fork**: ``WasmgymEnv.fork()`` and the native ``env.native.fork()`` of a CartPole mid-episode,
  ``snapshot()`` + ``restore()``, against ``copy.deepcopy`` of Gymnasium's ``CartPole-v1`` and
  OpenSpiel's ``state.clone()`` (tic-tac-toe and connect-four, mid-game; skipped without pyspiel).
* **step**: one CartPole step through the Gymnasium wrapper (``env.step``), the native core
  (``env.native.step``) and ``gymnasium.make("wasmgym/cart_pole-v0")``, against Gymnasium's
  ``CartPole-v1`` unwrapped and through ``gymnasium.make``'s wrappers. Episodes that end are reset;
  resets are timed apart and left out of the step figure (reported as ``reset_ns``).
* **vector**: steps per second of ``num_envs`` CartPoles: ``wasmgym.vector.make`` on 1 and on
  ``threads`` threads, against Gymnasium's ``SyncVectorEnv`` and ``AsyncVectorEnv`` (one process
  per env: with ``num_envs`` envs and with ``2 * threads`` envs) and EnvPool (when installed) on 1
  and ``threads`` threads. Actions are drawn beforehand from a seeded numpy generator.

``--json`` prints one JSON document (every figure, each round's figure, the machine, the load
average before and after each group, the versions); ``--quick`` runs a short smoke test (3 short
rounds, and 32 envs unless ``--num-envs`` is given): its figures are noisy, do not quote them.
The garbage collector stays on, as in a training loop.
"""

from __future__ import annotations

import argparse
import copy
import importlib.metadata
import json
import os
import platform
import statistics
import sys
import time
import warnings
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

#: The issue's goals: per-op ceilings in nanoseconds, and steps/s ratios the vector env must reach.
GOAL_FORK_NS = 3_000
GOAL_STEP_NS = 2_000
GOAL_VS_SYNC = 10.0
GOAL_VS_ASYNC = 5.0
GOAL_VS_ENVPOOL = 1.0

perf = time.perf_counter_ns

# A measurement: run(n) performs n operations and returns (ns to count, extra figures).
Run = Callable[[int], "tuple[int, dict[str, float]]"]


@dataclass
class Peer:
    name: str
    group: str
    label: str
    run: Run
    batch: int = 1  # env steps per operation (vector peers)
    n: int = 0  # operations per round, from calibration
    rounds_ns: list[float] = field(default_factory=list)  # ns per operation, per round
    extras: dict[str, list[float]] = field(default_factory=dict)

    def result(self) -> dict[str, Any]:
        med = statistics.median(self.rounds_ns)
        out: dict[str, Any] = {
            "group": self.group,
            "label": self.label,
            "median_ns": med,
            "min_ns": min(self.rounds_ns),
            "max_ns": max(self.rounds_ns),
            "rounds_ns": self.rounds_ns,
            "ops_per_round": self.n,
            "ops_per_s": 1e9 / med,
        }
        if self.batch > 1:
            out["num_envs"] = self.batch
            out["steps_per_s"] = self.batch * 1e9 / med
        for key, values in self.extras.items():
            values = [v for v in values if v == v]  # drop NaN (a round without resets)
            if values:
                out[key] = statistics.median(values)
        return out


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def loadavg() -> list[float]:
    try:
        with open("/proc/loadavg") as f:
            return [float(x) for x in f.read().split()[:3]]
    except OSError:
        return [float(x) for x in os.getloadavg()]


def machine() -> dict[str, Any]:
    model = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:
        usable = os.cpu_count() or 1
    return {
        "cpu_model": model,
        "cores": os.cpu_count(),
        "usable_cores": usable,
        "platform": platform.platform(),
    }


def versions() -> dict[str, str | None]:
    import wasmgym

    out: dict[str, str | None] = {"python": platform.python_version(), "wasmgym": wasmgym.__version__}
    for key, dist in (("numpy", "numpy"), ("gymnasium", "gymnasium"), ("pyspiel", "open_spiel"), ("envpool", "envpool")):
        try:
            out[key] = importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            out[key] = None
    return out


def calibrate(peer: Peer, target_ns: int) -> None:
    """Warms the peer up and picks how many operations make one round last about ``target_ns``."""
    k = 1
    while True:
        ns, _ = peer.run(k)
        if ns >= target_ns // 8 or k >= 1 << 22:
            break
        k *= 4 if ns < target_ns // 64 else 2
    peer.n = max(1, round(target_ns * k / max(ns, 1)))


def measure(peers: list[Peer], rounds: int, target_ns: int) -> None:
    """Interleaved rounds: each round runs every peer once, in an order rotated round to round."""
    import gc

    for p in peers:
        calibrate(p, target_ns)
    for r in range(rounds):
        for i in range(len(peers)):
            p = peers[(i + r) % len(peers)]
            gc.collect()
            ns, extra = p.run(p.n)
            p.rounds_ns.append(ns / p.n)
            for key, value in extra.items():
                p.extras.setdefault(key, []).append(value)


# ---------------------------------------------------------------------------------------------
# Peers.


def fork_peers(notes: list[str]) -> list[Peer]:
    import gymnasium

    import wasmgym

    env = wasmgym.make("cart_pole")
    env.reset(seed=0)
    for a in (0, 1, 0, 1, 1, 0, 0, 1, 0, 1):
        env.step(a)
    native = env.native
    snap = native.snapshot()

    def wg_fork(n: int) -> tuple[int, dict[str, float]]:
        fork = env.fork
        t = perf()
        for _ in range(n):
            fork()
        return perf() - t, {}

    def wg_native_fork(n: int) -> tuple[int, dict[str, float]]:
        fork = native.fork
        t = perf()
        for _ in range(n):
            fork()
        return perf() - t, {}

    def wg_snap_restore(n: int) -> tuple[int, dict[str, float]]:
        snapshot, restore = env.snapshot, env.restore
        t = perf()
        for _ in range(n):
            restore(snapshot())
        return perf() - t, {}

    def wg_native_snap_restore(n: int) -> tuple[int, dict[str, float]]:
        snapshot, restore = native.snapshot, native.restore
        t = perf()
        for _ in range(n):
            restore(snapshot())
        return perf() - t, {}

    def wg_native_snapshot(n: int) -> tuple[int, dict[str, float]]:
        snapshot = native.snapshot
        t = perf()
        for _ in range(n):
            snapshot()
        return perf() - t, {}

    def wg_native_restore(n: int) -> tuple[int, dict[str, float]]:
        restore = native.restore
        t = perf()
        for _ in range(n):
            restore(snap)
        return perf() - t, {}

    genv = gymnasium.make("CartPole-v1")
    genv.reset(seed=0)
    for a in (0, 1, 0, 1, 1, 0, 0, 1, 0, 1):
        genv.step(a)
    deepcopy = copy.deepcopy

    def gym_deepcopy(n: int) -> tuple[int, dict[str, float]]:
        t = perf()
        for _ in range(n):
            deepcopy(genv)
        return perf() - t, {}

    gun = genv.unwrapped

    def gym_deepcopy_unwrapped(n: int) -> tuple[int, dict[str, float]]:
        t = perf()
        for _ in range(n):
            deepcopy(gun)
        return perf() - t, {}

    peers = [
        Peer("wasmgym_fork", "fork", "wasmgym env.fork() (Gymnasium wrapper)", wg_fork),
        Peer("wasmgym_native_fork", "fork", "wasmgym env.native.fork()", wg_native_fork),
        Peer("wasmgym_snapshot_restore", "fork", "wasmgym env.restore(env.snapshot())", wg_snap_restore),
        Peer("wasmgym_native_snapshot_restore", "fork", "wasmgym native restore(snapshot())", wg_native_snap_restore),
        Peer("wasmgym_native_snapshot", "fork", "wasmgym native snapshot()", wg_native_snapshot),
        Peer("wasmgym_native_restore", "fork", "wasmgym native restore(snap)", wg_native_restore),
        Peer("gym_deepcopy", "fork", "Gymnasium deepcopy(make('CartPole-v1'))", gym_deepcopy),
        Peer("gym_deepcopy_unwrapped", "fork", "Gymnasium deepcopy(CartPole unwrapped)", gym_deepcopy_unwrapped),
    ]
    try:
        import pyspiel
    except ImportError as e:
        notes.append(f"pyspiel skipped: {e}")
        return peers
    for game, moves in (("tic_tac_toe", (4, 0, 8, 2)), ("connect_four", (3, 3, 2, 4, 3, 2))):
        state = pyspiel.load_game(game).new_initial_state()
        for m in moves:
            state.apply_action(m)

        def spiel_clone(n: int, state: Any = state) -> tuple[int, dict[str, float]]:
            clone = state.clone
            t = perf()
            for _ in range(n):
                clone()
            return perf() - t, {}

        peers.append(Peer(f"pyspiel_clone_{game}", "fork", f"OpenSpiel {game} state.clone()", spiel_clone))
    return peers


def step_peers(actions: list[int]) -> list[Peer]:
    import gymnasium

    import wasmgym

    mask = len(actions) - 1
    assert len(actions) & mask == 0

    def gym_style(step: Callable[[Any], Any], reset: Callable[[], Any]) -> Run:
        # step(a) returns Gymnasium's 5-tuple (or wasmgym's native 6-tuple: terminated and
        # truncated are at the same places).
        def run(n: int) -> tuple[int, dict[str, float]]:
            excluded = resets = 0
            t = perf()
            for i in range(n):
                out = step(actions[i & mask])
                if out[2] or out[3]:
                    r = perf()
                    reset()
                    excluded += perf() - r
                    resets += 1
            total = perf() - t
            return total - excluded, {"reset_ns": excluded / resets if resets else float("nan"), "resets": resets}

        return run

    wg = wasmgym.make("cart_pole")
    wg.reset(seed=0)
    wn = wasmgym.make("cart_pole").native
    seeds = iter(range(1, 1 << 62))
    wn.reset(0)
    wgm = gymnasium.make("wasmgym/cart_pole-v0")
    wgm.reset(seed=0)
    gm = gymnasium.make("CartPole-v1")
    gm.reset(seed=0)
    gu = gymnasium.make("CartPole-v1").unwrapped
    gu.reset(seed=0)

    return [
        Peer("wasmgym_step", "step", "wasmgym env.step(a) (Gymnasium wrapper)", gym_style(wg.step, wg.reset)),
        Peer("wasmgym_native_step", "step", "wasmgym env.native.step(a)", gym_style(wn.step, lambda: wn.reset(next(seeds)))),
        Peer("wasmgym_gym_make_step", "step", "wasmgym via gymnasium.make (wrappers)", gym_style(wgm.step, wgm.reset)),
        Peer("gym_unwrapped_step", "step", "Gymnasium CartPole-v1 unwrapped.step(a)", gym_style(gu.step, gu.reset)),
        Peer("gym_make_step", "step", "Gymnasium CartPole-v1 via gymnasium.make", gym_style(gm.step, gm.reset)),
    ]


def make_async(num_envs: int, notes: list[str]) -> Any:
    import gymnasium

    t = time.perf_counter()
    try:
        env = gymnasium.make_vec("CartPole-v1", num_envs=num_envs, vectorization_mode="async")
        env.reset(seed=0)
    except Exception as e:  # noqa: BLE001 (too many processes, ...: recorded, not fatal)
        notes.append(f"AsyncVectorEnv with {num_envs} envs failed: {type(e).__name__}: {e}")
        return None
    notes.append(f"AsyncVectorEnv with {num_envs} envs ({num_envs} processes) made in {time.perf_counter() - t:.2f} s")
    return env


def vector_peers(num_envs: int, threads: int, asyncs: dict[int, Any], notes: list[str], skipped: dict[str, str]) -> list[Peer]:
    import gymnasium

    import wasmgym.vector

    rng = np.random.default_rng(12345)
    batches = 64
    acts = rng.integers(0, 2, size=(batches, num_envs), dtype=np.int64)

    def batched(step: Callable[[Any], Any], acts: np.ndarray) -> Run:
        rows = list(acts)

        def run(n: int) -> tuple[int, dict[str, float]]:
            t = perf()
            for i in range(n):
                step(rows[i % batches])
            return perf() - t, {}

        return run

    peers = []
    thread_counts = [1] if threads == 1 else [1, threads]
    for th in thread_counts:
        v = wasmgym.vector.make("cart_pole", num_envs, threads=th)
        v.reset(seed=0)
        peers.append(Peer(f"wasmgym_vector_t{th}", "vector", f"wasmgym.vector.make, {th} thread(s)", batched(v.step, acts), num_envs))
    native = v.native
    peers.append(
        Peer(
            f"wasmgym_vector_native_t{threads}",
            "vector",
            f"wasmgym VecEnv.native.step, {threads} thread(s)",
            batched(lambda a: native.step(a, False), acts),
            num_envs,
        )
    )
    sync = gymnasium.make_vec("CartPole-v1", num_envs=num_envs, vectorization_mode="sync")
    sync.reset(seed=0)
    peers.append(Peer("gym_sync", "vector", "Gymnasium SyncVectorEnv", batched(sync.step, acts), num_envs))
    for n_async, env in sorted(asyncs.items(), reverse=True):
        if env is None:
            continue
        a = rng.integers(0, 2, size=(batches, n_async), dtype=np.int64)
        name = "gym_async" if n_async == num_envs else f"gym_async_{n_async}"
        peers.append(Peer(name, "vector", f"Gymnasium AsyncVectorEnv, {n_async} envs/processes", batched(env.step, a), n_async))
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            import envpool
    except Exception as e:  # noqa: BLE001 (absent, or a wheel that does not load here)
        skipped["envpool"] = f"{type(e).__name__}: {e}"
        return peers
    acts32 = acts.astype(np.int32)
    for th in thread_counts:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                ep = envpool.make(
                    "CartPole-v1", env_type="gymnasium", num_envs=num_envs, batch_size=num_envs, num_threads=th, seed=0
                )
                ep.reset()
        except Exception as e:  # noqa: BLE001
            skipped[f"envpool_t{th}"] = f"{type(e).__name__}: {e}"
            continue
        peers.append(Peer(f"envpool_t{th}", "vector", f"EnvPool (sync), {th} thread(s)", batched(ep.step, acts32), num_envs))
    return peers


# ---------------------------------------------------------------------------------------------
# Report.


def ratios_and_goals(res: dict[str, dict[str, Any]], threads: int) -> tuple[dict[str, float], dict[str, dict[str, Any]]]:
    def ns(name: str) -> float | None:
        return res[name]["median_ns"] if name in res else None

    def sps(name: str) -> float | None:
        return res[name]["steps_per_s"] if name in res else None

    ratios: dict[str, float] = {}

    def ratio(key: str, num: float | None, den: float | None) -> None:
        if num is not None and den:
            ratios[key] = num / den

    ratio("gym_deepcopy / wasmgym_fork", ns("gym_deepcopy"), ns("wasmgym_fork"))
    ratio("gym_deepcopy / wasmgym_native_fork", ns("gym_deepcopy"), ns("wasmgym_native_fork"))
    ratio("wasmgym_fork / pyspiel_clone_tic_tac_toe", ns("wasmgym_fork"), ns("pyspiel_clone_tic_tac_toe"))
    ratio("wasmgym_native_fork / pyspiel_clone_tic_tac_toe", ns("wasmgym_native_fork"), ns("pyspiel_clone_tic_tac_toe"))
    ratio("wasmgym_native_fork / pyspiel_clone_connect_four", ns("wasmgym_native_fork"), ns("pyspiel_clone_connect_four"))
    ratio("wasmgym_fork / wasmgym_native_fork (wrapper overhead)", ns("wasmgym_fork"), ns("wasmgym_native_fork"))
    ratio("gym_make_step / wasmgym_step", ns("gym_make_step"), ns("wasmgym_step"))
    ratio("gym_unwrapped_step / wasmgym_native_step", ns("gym_unwrapped_step"), ns("wasmgym_native_step"))
    ratio("gym_make_step / wasmgym_gym_make_step", ns("gym_make_step"), ns("wasmgym_gym_make_step"))
    ratio("wasmgym_step / wasmgym_native_step (wrapper overhead)", ns("wasmgym_step"), ns("wasmgym_native_step"))
    best = f"wasmgym_vector_t{threads}"
    ratio(f"{best} / gym_sync", sps(best), sps("gym_sync"))
    asyncs = [k for k in res if k.startswith("gym_async")]
    for k in asyncs:
        ratio(f"{best} / {k}", sps(best), sps(k))
    for th in {1, threads}:
        ratio(f"wasmgym_vector_t{th} / envpool_t{th}", sps(f"wasmgym_vector_t{th}"), sps(f"envpool_t{th}"))
    if threads > 1:
        ratio(f"wasmgym_vector_t{threads} / wasmgym_vector_t1 (thread scaling)", sps(best), sps("wasmgym_vector_t1"))

    goals: dict[str, dict[str, Any]] = {}

    def ceiling(key: str, name: str, limit: float) -> None:
        if name in res:
            v = res[name]["median_ns"]
            goals[key] = {"peer": name, "value_ns": v, "goal_ns": limit, "met": v <= limit}

    ceiling("fork <= 3 us (wrapper env.fork())", "wasmgym_fork", GOAL_FORK_NS)
    ceiling("fork <= 3 us (native env.native.fork())", "wasmgym_native_fork", GOAL_FORK_NS)
    ceiling("step <= 2 us (wrapper env.step())", "wasmgym_step", GOAL_STEP_NS)
    ceiling("step <= 2 us (native env.native.step())", "wasmgym_native_step", GOAL_STEP_NS)

    def floor(key: str, rkey: str, limit: float) -> None:
        if rkey in ratios:
            goals[key] = {"ratio": rkey, "value": ratios[rkey], "goal": limit, "met": ratios[rkey] >= limit}

    floor("vector >= 10x SyncVectorEnv", f"{best} / gym_sync", GOAL_VS_SYNC)
    if asyncs:
        # Judged against the fastest AsyncVectorEnv configuration measured.
        fastest = max(asyncs, key=lambda k: res[k]["steps_per_s"])
        floor("vector >= 5x AsyncVectorEnv (its fastest config)", f"{best} / {fastest}", GOAL_VS_ASYNC)
    floor(f"vector >= EnvPool ({threads} threads)", f"{best} / envpool_t{threads}", GOAL_VS_ENVPOOL)
    return ratios, goals


def fmt_ns(v: float) -> str:
    if v >= 1e6:
        return f"{v / 1e6:8.2f} ms"
    if v >= 1e3:
        return f"{v / 1e3:8.2f} µs"
    return f"{v:8.0f} ns"


def table(doc: dict[str, Any]) -> str:
    lines = []
    m, v, c = doc["machine"], doc["versions"], doc["config"]
    lines.append(f"machine: {m['cpu_model']}, {m['cores']} cores ({m['usable_cores']} usable), {m['platform']}")
    lines.append("versions: " + ", ".join(f"{k} {val}" for k, val in v.items()))
    lines.append(
        f"config: num_envs={c['num_envs']} threads={c['threads']} rounds={c['rounds']} "
        f"round≈{c['round_ms']} ms{' (quick: noisy)' if c['quick'] else ''}"
    )
    lines.append("load average: " + "; ".join(f"{k} {' '.join(map(str, la))}" for k, la in doc["loadavg"].items()))
    group = None
    for name, r in doc["results"].items():
        if r["group"] != group:
            group = r["group"]
            lines.append("")
            head = "steps/s" if group == "vector" else "ops/s"
            lines.append(f"[{group}]".ljust(57) + f"{'median/op':>11} {'min–max/op':>23} {head:>12}")
        rate = r.get("steps_per_s", r["ops_per_s"])
        extra = f"  (reset {fmt_ns(r['reset_ns']).strip()})" if "reset_ns" in r else ""
        lines.append(
            f"  {r['label']:<55} {fmt_ns(r['median_ns'])} {fmt_ns(r['min_ns'])}–{fmt_ns(r['max_ns']).strip():<11} {rate:12,.0f}{extra}"
        )
    lines.append("")
    lines.append("ratios (same run):")
    for k, val in doc["ratios"].items():
        lines.append(f"  {k:<62} {val:9.2f}×")
    lines.append("")
    lines.append("goals:")
    for k, g in doc["goals"].items():
        val = fmt_ns(g["value_ns"]).strip() if "value_ns" in g else f"{g['value']:.2f}×"
        lines.append(f"  {k:<52} {val:>12}  {'MET' if g['met'] else 'NOT MET'}")
    for k, why in doc["skipped"].items():
        lines.append(f"skipped {k}: {why}")
    for note in doc["notes"]:
        lines.append(f"note: {note}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m wasmgym.bench", description=__doc__.split("\n")[0])
    ap.add_argument("--json", action="store_true", help="print one JSON document instead of the table")
    ap.add_argument("--quick", action="store_true", help="short rounds: a smoke test, not figures to quote")
    ap.add_argument("--num-envs", type=int, default=None, help="envs of the vector peers (default 256; 32 with --quick)")
    ap.add_argument("--threads", type=int, default=2, help="threads of the threaded vector peers (default 2)")
    ap.add_argument("--rounds", type=int, default=None, help="rounds per group (default 7; 3 with --quick)")
    args = ap.parse_args(argv)
    num_envs = args.num_envs or (32 if args.quick else 256)
    threads = max(1, args.threads)
    rounds = args.rounds or (3 if args.quick else 7)
    target_ns = 10_000_000 if args.quick else 200_000_000
    vector_target_ns = 20_000_000 if args.quick else 400_000_000

    notes: list[str] = []
    skipped: dict[str, str] = {}
    load: dict[str, list[float]] = {"start": loadavg()}
    t_start = time.perf_counter()

    # AsyncVectorEnv forks its workers: make them first, while this process holds no wasmgym
    # runtime (no threads) and little memory.
    log(f"making AsyncVectorEnvs ({num_envs} and {2 * threads} processes)...")
    asyncs = {num_envs: make_async(num_envs, notes)}
    if 2 * threads != num_envs:
        asyncs[2 * threads] = make_async(2 * threads, notes)

    results: dict[str, dict[str, Any]] = {}
    try:
        for group, make_peers, target in (
            ("fork", lambda: fork_peers(notes), target_ns),
            ("step", lambda: step_peers([int(a) for a in np.random.default_rng(7).integers(0, 2, size=4096)]), target_ns),
            ("vector", lambda: vector_peers(num_envs, threads, asyncs, notes, skipped), vector_target_ns),
        ):
            log(f"measuring {group}...")
            peers = make_peers()
            measure(peers, rounds, target)
            for p in peers:
                results[p.name] = p.result()
            load[f"after {group}"] = loadavg()
            del peers
    finally:
        for env in asyncs.values():
            if env is not None:
                env.close()

    ratios, goals = ratios_and_goals(results, threads)
    doc = {
        "machine": machine(),
        "versions": versions(),
        "config": {
            "num_envs": num_envs,
            "threads": threads,
            "rounds": rounds,
            "round_ms": target_ns // 1_000_000,
            "vector_round_ms": vector_target_ns // 1_000_000,
            "quick": args.quick,
            "async_num_envs": sorted(k for k, v in asyncs.items() if v is not None),
            "statistic": "median over rounds of the per-op time in a round; peers interleaved per round",
        },
        "loadavg": load,
        "results": results,
        "ratios": ratios,
        "goals": goals,
        "skipped": skipped,
        "notes": notes,
        "wall_s": round(time.perf_counter() - t_start, 1),
    }
    if args.json:
        print(json.dumps(doc, indent=2))
    else:
        print(table(doc))
        print(f"wall time {doc['wall_s']} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
