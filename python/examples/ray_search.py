"""Distributed rollouts and root-parallel MCTS over Ray actors, with snapshots as Ray objects.

    python python/examples/ray_search.py [--actors 3] [--simulations 2000] [--seed 0]

The driver plays a short connect_four opening, snapshots it and puts the `wasmgym.Snapshot` in
Ray's object store (it pickles as its checksummed bytes). Then, on several actors that each hold
their own wasmgym env:

  (a) distributed rollouts: every actor restores the snapshot and plays random games inside the
      guest with the seeds it is given, returning the returns and the final state hashes;
  (b) root-parallel MCTS: every actor runs `wasmgym.search.mcts` from the snapshot with its own
      seeds; the driver sums the root visit counts per action and picks the move;
  (c) a relay game: actor A restores a snapshot, picks a move by MCTS, steps and snapshots; the
      snapshot goes straight to actor B (an ObjectRef, never through the driver), which restores
      it and continues, and so on round the actors.

Every result is then recomputed in the driver process, sequentially, with the same seeds and
compared bit for bit (visit counts, values, returns, state hashes). `run()` returns the results
and the comparisons; the script exits non-zero on any mismatch.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from typing import Any

import ray

import wasmgym
import wasmgym.search

ENV = "connect_four"
OPENING = (3, 3, 2, 4)  # the driver's first moves, before the snapshot
RESET_SEED = 7
MAX_ROLLOUT_STEPS = 1000


# The computations, shared by the actors and the driver's single-process reference.


def restore(env: wasmgym.WasmgymEnv, snapshot: wasmgym.Snapshot) -> None:
    """Restores `snapshot` into `env` exactly (`state_hash()` equals the snapshotted env's).

    Careful: queries that return guest output (`observe()`, `render()`, `native.state_key()`)
    rewrite guest memory, so after one of them the state hash differs from an env that did not
    make the query, although the game state is the same. This example makes none."""
    env.restore(snapshot)


def opening(moves: tuple[int, ...] = OPENING, seed: int = RESET_SEED) -> wasmgym.WasmgymEnv:
    """A new env after `reset(seed)` and `moves`."""
    env = wasmgym.make(ENV)
    env.reset(seed=seed)
    for action in moves:
        _obs, _reward, terminated, truncated, _info = env.step(action)
        assert not (terminated or truncated), "the opening ended the game"
    return env


def rollouts(env: wasmgym.WasmgymEnv, snapshot: wasmgym.Snapshot, seeds: list[int]) -> list[dict[str, Any]]:
    """One random game (inside the guest) per seed, each from `snapshot`."""
    out = []
    for seed in seeds:
        restore(env, snapshot)
        steps, returns, terminated, truncated = env.native.rollout(seed, MAX_ROLLOUT_STEPS)
        out.append(
            dict(seed=seed, steps=steps, returns=list(returns), terminated=terminated, truncated=truncated,
                 state_hash=env.state_hash().hex())
        )
    return out


def searches(env: wasmgym.WasmgymEnv, snapshot: wasmgym.Snapshot, seeds: list[int], simulations: int) -> list[dict[str, Any]]:
    """One MCTS per seed from `snapshot` (its timing, `seconds`, dropped: the rest is a function of the seed)."""
    out = []
    for seed in seeds:
        restore(env, snapshot)
        result = wasmgym.search.mcts(env, simulations=simulations, seed=seed)
        result.pop("seconds", None)
        result["seed"] = seed
        out.append(result)
    return out


def total_visits(results: list[dict[str, Any]]) -> dict[int, int]:
    """Root visit counts summed per action over independent trees (root parallelism)."""
    visits: dict[int, int] = {}
    for result in results:
        for child in result["children"]:
            visits[child["action"]] = visits.get(child["action"], 0) + child["visits"]
    return dict(sorted(visits.items()))


def best_action(visits: dict[int, int]) -> int:
    """The most visited action (ties: the lowest action)."""
    return min(visits, key=lambda a: (-visits[a], a))


def play_turn(env: wasmgym.WasmgymEnv, seed: int, simulations: int) -> dict[str, Any]:
    """From `env`'s current state: choose a move by MCTS and take it (nothing once the game is over)."""
    record: dict[str, Any] = dict(seed=seed, before_hash=env.state_hash().hex(), action=None, value=None, reward=0.0)
    if env.current_player is not None:
        result = wasmgym.search.mcts(env, simulations=simulations, seed=seed)
        _obs, reward, terminated, truncated, _info = env.step(result["action"])
        record.update(action=result["action"], value=result["value"], reward=float(reward))
    record.update(over=env.current_player is None, state_hash=env.state_hash().hex(), steps=env.native.steps)
    return record


def relay_turn(env: wasmgym.WasmgymEnv, snapshot: wasmgym.Snapshot, seed: int, simulations: int) -> tuple[dict[str, Any], wasmgym.Snapshot]:
    """One turn of the relay: restore the previous actor's snapshot, play a turn, snapshot."""
    restore(env, snapshot)
    record = play_turn(env, seed, simulations)
    return record, env.snapshot()


# Ray actors: each holds its own env (a wasmtime instance in its own worker process).


@ray.remote
class SearchActor:
    def __init__(self, name: str = ENV) -> None:
        self.env = wasmgym.make(name)

    def where(self) -> dict[str, Any]:
        """Which process and which wasmgym this actor runs."""
        return dict(pid=os.getpid(), python=sys.executable, wasmgym=wasmgym.__file__)

    def state_hash_of(self, snapshot: wasmgym.Snapshot) -> str:
        restore(self.env, snapshot)
        return self.env.state_hash().hex()

    def snapshot_of(self, snapshot: wasmgym.Snapshot) -> wasmgym.Snapshot:
        """Restores `snapshot` and snapshots again (a Snapshot travelling back to the driver)."""
        restore(self.env, snapshot)
        return self.env.snapshot()

    def restore_bytes(self, data: bytes) -> str:
        """Restores from raw `to_bytes()` output (raises BadSnapshotError if corrupt)."""
        restore(self.env, wasmgym.Snapshot.from_bytes(data))
        return self.env.state_hash().hex()

    def rollouts(self, snapshot: wasmgym.Snapshot, seeds: list[int]) -> list[dict[str, Any]]:
        return rollouts(self.env, snapshot, seeds)

    def searches(self, snapshot: wasmgym.Snapshot, seeds: list[int], simulations: int) -> list[dict[str, Any]]:
        return searches(self.env, snapshot, seeds, simulations)

    @ray.method(num_returns=2)
    def relay_turn(self, snapshot: wasmgym.Snapshot, seed: int, simulations: int) -> tuple[dict[str, Any], wasmgym.Snapshot]:
        return relay_turn(self.env, snapshot, seed, simulations)


def _picklable_by_value() -> None:
    """Ray pickles `SearchActor` by reference to this module unless it is `__main__`; when a test
    imports this file by path, workers cannot import it by name, so ship it by value."""
    module = sys.modules.get(__name__)
    if __name__ != "__main__" and module is not None:
        ray.cloudpickle.register_pickle_by_value(module)


def make_actors(num_actors: int) -> list[Any]:
    _picklable_by_value()
    return [SearchActor.remote(ENV) for _ in range(num_actors)]


def seeds_for(seed: int, actor: int, count: int) -> list[int]:
    """Distinct seeds per actor, a function of (seed, actor) only."""
    return [seed * 1_000_003 + actor * 1000 + j for j in range(count)]


# The distributed run and its single-process reference.


def run(
    num_actors: int = 3,
    simulations: int = 2000,
    seed: int = 0,
    rollouts_per_actor: int = 8,
    searches_per_actor: int = 2,
    relay_turns: int = 6,
    actors: list[Any] | None = None,
) -> dict[str, Any]:
    """Runs (a), (b), (c) on `num_actors` actors (or the `actors` given) and in this process.

    Needs `ray.init()` to have been called. Returns a dict with the distributed results
    (`rollouts`, `searches`, `visits`, `action`, `relay`), the driver's (`local_*`), `checks`
    (name → bool) and `ok` (all checks pass)."""
    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    actors = actors if actors is not None else make_actors(num_actors)
    num_actors = len(actors)
    where = ray.get([a.where.remote() for a in actors])
    timings["actors"] = time.perf_counter() - t0

    env = opening()
    root = env.snapshot()
    root_hash = env.state_hash().hex()
    root_ref = ray.put(root)  # one copy in the object store, shared by every actor

    # (a) Distributed rollouts.
    t = time.perf_counter()
    rollout_seeds = [seeds_for(seed, i, rollouts_per_actor) for i in range(num_actors)]
    dist_rollouts = ray.get([a.rollouts.remote(root_ref, s) for a, s in zip(actors, rollout_seeds)])
    timings["rollouts"] = time.perf_counter() - t

    # (b) Root-parallel MCTS: independent trees on the actors, visit counts summed at the root.
    t = time.perf_counter()
    search_seeds = [seeds_for(seed + 1, i, searches_per_actor) for i in range(num_actors)]
    dist_searches = ray.get([a.searches.remote(root_ref, s, simulations) for a, s in zip(actors, search_seeds)])
    visits = total_visits([r for per_actor in dist_searches for r in per_actor])
    action = best_action(visits)
    timings["mcts"] = time.perf_counter() - t

    # (c) The relay: each turn's snapshot goes from one actor to the next as an ObjectRef.
    t = time.perf_counter()
    relay_seeds = seeds_for(seed + 2, 0, relay_turns)
    records = []
    snap_ref = root_ref
    for turn, turn_seed in enumerate(relay_seeds):
        record_ref, snap_ref = actors[turn % num_actors].relay_turn.remote(snap_ref, turn_seed, simulations)
        records.append(record_ref)
    dist_relay = ray.get(records)
    final_snapshot = ray.get(snap_ref)  # the last actor's snapshot, back in the driver
    timings["relay"] = time.perf_counter() - t

    # Snapshots through Ray: the actor's restore of the put snapshot, and a snapshot coming back.
    put_hashes = ray.get([a.state_hash_of.remote(root_ref) for a in actors])
    returned = ray.get(actors[0].snapshot_of.remote(root_ref))
    check_env = wasmgym.make(ENV)
    restore(check_env, returned)
    returned_hash = check_env.state_hash().hex()
    restore(check_env, final_snapshot)
    final_hash = check_env.state_hash().hex()

    # The same computations in this process, sequentially, with the same seeds.
    t = time.perf_counter()
    local = wasmgym.make(ENV)
    local_rollouts = [rollouts(local, root, s) for s in rollout_seeds]
    local_searches = [searches(local, root, s, simulations) for s in search_seeds]
    local_visits = total_visits([r for per_actor in local_searches for r in per_actor])
    # The relay on one env that never restores: continuous play must match the hand-offs exactly.
    continuous = opening()
    local_relay = [play_turn(continuous, turn_seed, simulations) for turn_seed in relay_seeds]
    timings["local"] = time.perf_counter() - t

    checks = {
        "workers import wasmgym from the driver's tree": all(w["wasmgym"] == wasmgym.__file__ for w in where),
        "actors are separate processes": len({w["pid"] for w in where}) == num_actors and os.getpid() not in {w["pid"] for w in where},
        "put snapshot restores to the driver's state hash": put_hashes == [root_hash] * num_actors,
        "snapshot returned by an actor restores to the same hash": returned_hash == root_hash,
        "snapshot bytes survive the round trip": returned.to_bytes() == root.to_bytes(),
        "rollouts equal": dist_rollouts == local_rollouts,
        "searches equal": dist_searches == local_searches,
        "summed visits equal": visits == local_visits and sum(visits.values()) == num_actors * searches_per_actor * simulations,
        "relay equals continuous play": dist_relay == local_relay,
        "relay's final snapshot restores to the final state": final_hash == local_relay[-1]["state_hash"]
        and final_snapshot.steps == local_relay[-1]["steps"],
    }
    timings["total"] = time.perf_counter() - t0
    return dict(
        ok=all(checks.values()), checks=checks, where=where, root_hash=root_hash,
        rollouts=dist_rollouts, searches=dist_searches, visits=visits, action=action, relay=dist_relay,
        local_rollouts=local_rollouts, local_searches=local_searches, local_visits=local_visits,
        local_relay=local_relay, timings=timings,
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--actors", type=int, default=3)
    parser.add_argument("--simulations", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    t = time.perf_counter()
    if not ray.is_initialized():
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    init_s = time.perf_counter() - t
    result = run(num_actors=args.actors, simulations=args.simulations, seed=args.seed)
    timings = result["timings"]

    wins = [r["returns"][0] for per_actor in result["rollouts"] for r in per_actor]
    print(f"ray.init {init_s:.1f} s; {args.actors} actors up in {timings['actors']:.1f} s")
    print(f"(a) {len(wins)} rollouts from the snapshot, player 0's mean return {sum(wins) / len(wins):+.3f} "
          f"({timings['rollouts'] * 1e3:.0f} ms)")
    print(f"(b) root-parallel MCTS, {sum(result['visits'].values())} simulations: visits {result['visits']} "
          f"-> action {result['action']} ({timings['mcts'] * 1e3:.0f} ms)")
    moves = [r["action"] for r in result["relay"]]
    print(f"(c) relay over {args.actors} actors, moves {moves}, final hash {result['relay'][-1]['state_hash'][:16]} "
          f"({timings['relay'] * 1e3:.0f} ms)")
    for name, passed in result["checks"].items():
        print(f"  {'ok  ' if passed else 'FAIL'} {name}")
    print(f"driver reference {timings['local'] * 1e3:.0f} ms; total {timings['total']:.1f} s")
    print("all distributed results equal the single-process run" if result["ok"] else "MISMATCH")
    return 0 if result["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
