#!/usr/bin/env python3
"""Load test for `wasmgym serve`: WebSocket environments and /run_code, alone and mixed.

Starts its own server (cart_pole + connect_four), then measures for --duration seconds each:
  A  --sessions WebSocket sessions (half cart_pole, half connect_four) stepping random legal actions;
  B  --clients HTTP clients posting a small Python program to /run_code and checking its stdout;
  C  A and B at once;
  baseline: the same program as a `python3 -c` subprocess per request, from --clients threads.
Reports messages or requests per second, p50/p99 latency, errors and 429s ("busy") per phase, the
server's RSS (start / peak / end, from /proc) and CPU use per phase, and whether SIGTERM shuts the
server down gracefully (exit 0). Exit status 0 if no phase had an error and shutdown was graceful.

Run with:  python3 scripts/load-test.py [--duration 15] [--sessions 64] [--clients 8] [--json]
(needs the built binary, target/release/wasmgym, and the `websockets` and `aiohttp` packages)
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import random
import select
import signal
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import websockets

REPO = Path(__file__).resolve().parent.parent
ENVS = ("cart_pole", "connect_four")
PROGRAM = "a, b = map(int, input().split())\nprint(a + b)\n"
REPLY_TIMEOUT = 15.0  # seconds: a reply slower than this counts as a hang (an error)


@dataclass
class Stats:
    """Latencies and failures of one kind of load in one phase."""

    name: str
    latencies: list[float] = field(default_factory=list)
    errors: int = 0
    busy: int = 0
    elapsed: float = 0.0
    examples: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def error(self, what: str) -> None:
        """Count an error, keeping the first few descriptions for the report."""
        with self.lock:
            self.errors += 1
            if len(self.examples) < 5:
                self.examples.append(what[:300])

    def summary(self) -> dict[str, Any]:
        """Count, rate, p50/p99 (ms), errors and busy as a JSON-ready dict."""
        lat = sorted(self.latencies)
        return {"name": self.name, "count": len(lat), "rate": round(len(lat) / self.elapsed, 1) if self.elapsed else 0,
                "p50_ms": percentile_ms(lat, 0.50), "p99_ms": percentile_ms(lat, 0.99), "errors": self.errors,
                "busy": self.busy, "error_examples": self.examples}


def percentile_ms(ordered: list[float], q: float) -> float | None:
    """The q-quantile (nearest rank) of sorted seconds, in milliseconds."""
    return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000, 2) if ordered else None


class Server:
    """The `wasmgym serve` process, its address and its /proc figures."""

    def __init__(self, binary: Path, jobs: int | None, queue: int | None) -> None:
        self.cmd = [str(binary), "serve", *[a for e in ENVS for a in ("--env", e)], "--port", "0", "--json"]
        self.cmd += [*(["--jobs", str(jobs)] if jobs else []), *(["--queue", str(queue)] if queue is not None else [])]
        self.log = tempfile.NamedTemporaryFile(prefix="wasmgym-serve-", suffix=".log", delete=False)
        env = {**os.environ, "WASMGYM_LOG": os.environ.get("WASMGYM_LOG", "warn")}
        self.proc = subprocess.Popen(self.cmd, stdout=subprocess.PIPE, stderr=self.log, env=env, text=True)
        self.url = ""

    def wait_ready(self, timeout: float = 30.0) -> None:
        """Read the JSON line announcing the address; raise if it does not come."""
        ready, _, _ = select.select([self.proc.stdout], [], [], timeout)
        line = self.proc.stdout.readline() if ready else ""
        if not line:
            raise RuntimeError(f"server gave no address (exit {self.proc.poll()}); log: {self.log.name}")
        self.url = json.loads(line)["listening"]

    def status(self) -> dict[str, int]:
        """VmRSS and VmHWM in KiB, from /proc/<pid>/status (empty once the process is gone)."""
        try:
            lines = Path(f"/proc/{self.proc.pid}/status").read_text().splitlines()
        except OSError:
            return {}
        return {k: int(v.split()[0]) for k, _, v in (l.partition(":") for l in lines) if k in ("VmRSS", "VmHWM")}

    def cpu_seconds(self) -> float:
        """User + system CPU time the server has used so far."""
        try:
            fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            return 0.0
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def stop(self) -> dict[str, Any]:
        """SIGTERM, then wait; graceful means it exited 0 on its own within 15 s."""
        early = self.proc.poll()
        if early is None:
            self.proc.send_signal(signal.SIGTERM)
        t0 = time.monotonic()
        try:
            code = self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            code = self.proc.wait()
            return {"exit": code, "graceful": False, "seconds": None, "note": "no exit 15 s after SIGTERM: killed"}
        note = f"had already exited (code {early}) before SIGTERM" if early is not None else ""
        return {"exit": code, "graceful": code == 0 and early is None,
                "seconds": round(time.monotonic() - t0, 2), "note": note}

    def log_tail(self, lines: int = 15) -> list[str]:
        """The last lines the server wrote to stderr."""
        return Path(self.log.name).read_text(errors="replace").splitlines()[-lines:]


async def ws_session(url: str, env: str, seed: int, deadline: float, stats: Stats) -> None:
    """One session: reset, step random legal actions until done, reset again, until the deadline."""
    rng, episode = random.Random(seed), 0

    async def exchange(ws: Any, message: dict[str, Any]) -> dict[str, Any] | None:
        """Send one message and time its reply: the reply's data, or None (counted) for an error reply."""
        t0 = time.monotonic()
        try:
            await ws.send(json.dumps(message))
        except websockets.ConnectionClosed as closed:  # the server may have said why just before closing
            pending = await asyncio.wait_for(ws.recv(), 1)  # raises ConnectionClosed if it said nothing
            raise RuntimeError(f"server closed the socket ({closed}) after sending {pending}") from None
        reply = json.loads(await asyncio.wait_for(ws.recv(), REPLY_TIMEOUT))
        stats.latencies.append(time.monotonic() - t0)
        if reply.get("type") != "observation":
            stats.error(f"{env} {message} -> {reply}")
            return None
        return reply["data"]

    while time.monotonic() < deadline:
        try:
            async with websockets.connect(url, max_size=None, open_timeout=REPLY_TIMEOUT) as ws:
                data = None
                while time.monotonic() < deadline:
                    if data is None or data["done"]:
                        episode += 1
                        data = await exchange(ws, {"type": "reset", "data": {"seed": seed * 10_000 + episode}})
                        continue
                    legal = data["observation"]["legal_actions"]
                    if not legal:
                        stats.error(f"{env}: not done but no legal actions: {data}")
                        data = None
                        continue
                    data = await exchange(ws, {"type": "step", "data": {"action": rng.choice(legal)}})
        except Exception as exc:  # error reply handled above; this is closes, hangs, bad JSON
            stats.error(f"{env} session {seed}: {type(exc).__name__}: {exc}")
            await asyncio.sleep(0.1)


async def ws_load(server: Server, sessions: int, duration: float, seed_base: int) -> Stats:
    """`sessions` concurrent sessions, alternating environments, for `duration` seconds."""
    stats, base = Stats(f"ws ({sessions} sessions)"), server.url.replace("http", "ws", 1)
    t0 = time.monotonic()
    await asyncio.gather(*(ws_session(f"{base}/envs/{ENVS[i % 2]}/ws", ENVS[i % 2], seed_base + i, t0 + duration, stats)
                           for i in range(sessions)))
    stats.elapsed = time.monotonic() - t0
    return stats


async def run_code_client(http: aiohttp.ClientSession, url: str, seed: int, deadline: float, stats: Stats) -> None:
    """Post the sum program with varying stdin until the deadline; a wrong sum is an error."""
    rng = random.Random(seed)
    while time.monotonic() < deadline:
        a, b = rng.randint(-10**9, 10**9), rng.randint(-10**9, 10**9)
        payload = {"code": PROGRAM, "language": "python", "stdin": f"{a} {b}\n", "run_timeout": 10}
        t0 = time.monotonic()
        try:
            async with http.post(url, json=payload) as resp:
                status, body = resp.status, await resp.text()
        except Exception as exc:
            stats.error(f"stdin {a} {b}: {type(exc).__name__}: {exc}")
            await asyncio.sleep(0.05)
            continue
        if status == 429:
            stats.busy += 1
            await asyncio.sleep(0.05)
            continue
        stats.latencies.append(time.monotonic() - t0)
        try:
            out = json.loads(body)
            good = status == 200 and out["status"] == "Success" and out["run_result"]["stdout"].strip() == str(a + b)
        except (ValueError, KeyError, TypeError, AttributeError):
            good = False
        if not good:
            stats.error(f"stdin {a} {b} -> HTTP {status}: {body}")


async def run_code_load(server: Server, clients: int, duration: float, seed_base: int) -> Stats:
    """`clients` concurrent /run_code clients for `duration` seconds."""
    stats = Stats(f"run_code ({clients} clients)")
    timeout = aiohttp.ClientTimeout(total=REPLY_TIMEOUT + 10)
    async with aiohttp.ClientSession(timeout=timeout, connector=aiohttp.TCPConnector(limit=clients)) as http:
        t0 = time.monotonic()
        await asyncio.gather(*(run_code_client(http, f"{server.url}/run_code", seed_base + i, t0 + duration, stats)
                               for i in range(clients)))
        stats.elapsed = time.monotonic() - t0
    return stats


def baseline(clients: int, duration: float) -> Stats:
    """The same program as one `python3 -c` subprocess per request, from `clients` threads."""
    stats, python = Stats(f"python3 -c ({clients} threads)"), sys.executable or "python3"
    deadline = time.monotonic() + duration

    def worker(seed: int) -> None:
        rng = random.Random(seed)
        while time.monotonic() < deadline:
            a, b = rng.randint(-10**9, 10**9), rng.randint(-10**9, 10**9)
            t0 = time.monotonic()
            try:
                done = subprocess.run([python, "-c", PROGRAM], input=f"{a} {b}\n", capture_output=True,
                                      text=True, timeout=10)
            except subprocess.TimeoutExpired:
                stats.error(f"stdin {a} {b}: timeout")
                continue
            stats.latencies.append(time.monotonic() - t0)
            if done.returncode != 0 or done.stdout.strip() != str(a + b):
                stats.error(f"stdin {a} {b} -> {done.returncode} {done.stdout!r} {done.stderr[-200:]!r}")

    t0 = time.monotonic()
    with ThreadPoolExecutor(clients) as pool:
        list(pool.map(worker, range(clients)))
    stats.elapsed = time.monotonic() - t0
    return stats


async def sample_memory(server: Server, samples: list[tuple[float, int]]) -> None:
    """Append (time, VmRSS KiB) every 0.5 s until cancelled."""
    while True:
        rss = server.status().get("VmRSS")
        if rss is not None:
            samples.append((time.monotonic(), rss))
        await asyncio.sleep(0.5)


async def measure(args: argparse.Namespace, server: Server, phases: dict[str, Any]) -> None:
    """Warm up, run phases A, B, C and the baseline into `phases`, with memory and CPU around each."""
    samples: list[tuple[float, int]] = []
    sampler = asyncio.create_task(sample_memory(server, samples))

    async def phase(name: str, *loads: Any) -> None:
        start, cpu0, own0, t0 = server.status(), server.cpu_seconds(), client_cpu(), time.monotonic()
        results = await asyncio.gather(*loads)
        end, cpu1, own1, t1 = server.status(), server.cpu_seconds(), client_cpu(), time.monotonic()
        rss = [kib for t, kib in samples if t0 <= t <= t1] + [d["VmRSS"] for d in (start, end) if d]
        phases[name] = {"loads": [s.summary() for s in results],
                        "server_cpu_pct": round(100 * (cpu1 - cpu0) / (t1 - t0)),
                        "client_cpu_pct": round(100 * (own1 - own0) / (t1 - t0)),
                        "rss_mib": {"start": mib(start.get("VmRSS")), "peak": mib(max(rss, default=None)),
                                    "end": mib(end.get("VmRSS")), "hwm": mib(end.get("VmHWM"))}}

    try:
        await phase("warmup", run_code_load(server, 1, 0.01, 0))  # the first Python run loads the interpreter
        dur, n, c = args.duration, args.sessions, args.clients
        await phase("A", ws_load(server, n, dur, 1_000))
        await phase("B", run_code_load(server, c, dur, 2_000))
        await phase("C", ws_load(server, n, dur, 3_000), run_code_load(server, c, dur, 4_000))
        await phase("baseline", asyncio.to_thread(baseline, c, dur))
    finally:
        sampler.cancel()


def client_cpu() -> float:
    """CPU seconds used by this process and its finished children (the baseline's interpreters)."""
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


def mib(kib: int | None) -> float | None:
    """KiB to MiB, one decimal."""
    return None if kib is None else round(kib / 1024, 1)


def machine() -> dict[str, Any]:
    """Cores, CPU model, Python and client library versions."""
    model = next((l.split(":", 1)[1].strip() for l in Path("/proc/cpuinfo").read_text().splitlines()
                  if l.startswith("model name")), platform.processor() or "?")
    return {"nproc": len(os.sched_getaffinity(0)), "cpu": model, "python": platform.python_version(),
            "websockets": websockets.__version__, "aiohttp": aiohttp.__version__}


def print_report(report: dict[str, Any]) -> None:
    """The human-readable tables."""
    m = report["machine"]
    print(f"machine: nproc {m['nproc']}, {m['cpu']}, Python {m['python']} "
          f"(websockets {m['websockets']}, aiohttp {m['aiohttp']})")
    print(f"server: {' '.join(report['server_cmd'])}   duration {report['duration']} s per phase\n")
    print(f"{'phase':<9}{'load':<26}{'count':>8}{'per s':>9}{'p50 ms':>9}{'p99 ms':>9}{'errors':>8}{'busy':>6}")
    for name, ph in report["phases"].items():
        for s in ph["loads"]:
            print(f"{name:<9}{s['name']:<26}{s['count']:>8}{s['rate']:>9}{s['p50_ms']!s:>9}{s['p99_ms']!s:>9}"
                  f"{s['errors']:>8}{s['busy']:>6}")
    print(f"\n{'phase':<9}{'RSS MiB: start':>15}{'peak':>8}{'end':>8}{'VmHWM':>8}{'CPU %: server':>15}{'client':>8}")
    for name, ph in report["phases"].items():
        r = ph["rss_mib"]
        print(f"{name:<9}{r['start']!s:>15}{r['peak']!s:>8}{r['end']!s:>8}{r['hwm']!s:>8}"
              f"{ph['server_cpu_pct']:>15}{ph['client_cpu_pct']:>8}")
    print()
    for line in report["notes"]:
        print(line)
    for name, ph in report["phases"].items():
        for s in ph["loads"]:
            for example in s["error_examples"]:
                print(f"error in {name} {s['name']}: {example}")
    if report.get("server_log_tail"):
        print("server log (tail):\n  " + "\n  ".join(report["server_log_tail"]))


def notes(phases: dict[str, Any], shutdown: dict[str, Any]) -> list[str]:
    """The ratio to the baseline, memory flatness and shutdown, as sentences."""
    out = []
    b, base = phases.get("B", {}).get("loads", [{}])[0], phases.get("baseline", {}).get("loads", [{}])[0]
    if b.get("rate") and base.get("rate"):
        out.append(f"run_code vs python3 subprocess: {b['rate'] / base['rate']:.1f}x throughput, "
                   f"p50 {b['p50_ms']} vs {base['p50_ms']} ms ({base['p50_ms'] / b['p50_ms']:.1f}x faster)")
    end = {name: ph["rss_mib"]["end"] for name, ph in phases.items() if ph["rss_mib"]["end"]}
    if {"A", "B", "C"} <= end.keys():
        out.append(f"memory: RSS at end of C {end['C']} MiB vs end of A {end['A']} MiB "
                   f"({100 * (end['C'] - end['A']) / end['A']:+.1f}%), vs end of B {end['B']} MiB "
                   f"({100 * (end['C'] - end['B']) / end['B']:+.1f}%)")
    verdict = "graceful" if shutdown["graceful"] else "NOT graceful"
    out.append(f"shutdown: SIGTERM -> exit {shutdown['exit']} in {shutdown['seconds']} s ({verdict})"
               + (f"; {shutdown['note']}" if shutdown["note"] else ""))
    return out


def main() -> int:
    """Parse arguments, run everything under a hard timeout, report, and return the exit status."""
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--bin", type=Path, default=REPO / "target/release/wasmgym", help="the wasmgym binary")
    p.add_argument("--duration", type=float, default=15, help="seconds per phase")
    p.add_argument("--sessions", type=int, default=64, help="concurrent WebSocket sessions")
    p.add_argument("--clients", type=int, default=8, help="concurrent /run_code clients (and baseline threads)")
    p.add_argument("--jobs", type=int, help="pass --jobs to the server (default: its own)")
    p.add_argument("--queue", type=int, help="pass --queue to the server (default: its own)")
    p.add_argument("--timeout", type=float, help="hard overall timeout, s (default: 4 x duration + 25)")
    p.add_argument("--json", action="store_true", help="print one JSON document instead of tables")
    args = p.parse_args()
    if not args.bin.is_file():
        print(f"no binary at {args.bin}", file=sys.stderr)
        return 1

    server = Server(args.bin, args.jobs, args.queue)

    def hard_stop() -> None:
        print(f"load-test: hard timeout reached; killing server (log: {server.log.name})", file=sys.stderr)
        server.proc.kill()
        os._exit(1)

    watchdog = threading.Timer(args.timeout or 4 * args.duration + 25, hard_stop)
    watchdog.daemon = True
    watchdog.start()
    phases: dict[str, Any] = {}
    failure = None
    try:
        server.wait_ready()
        asyncio.run(measure(args, server, phases))
    except Exception as exc:
        failure = f"{type(exc).__name__}: {exc}"
    finally:
        shutdown = server.stop()
        watchdog.cancel()

    errors = sum(s["errors"] for ph in phases.values() for s in ph["loads"])
    report: dict[str, Any] = {"machine": machine(), "server_cmd": server.cmd, "duration": args.duration,
                              "phases": phases, "shutdown": shutdown, "errors": errors,
                              "notes": notes(phases, shutdown) + ([f"load test failed: {failure}"] if failure else [])}
    ok = failure is None and errors == 0 and shutdown["graceful"]
    if not ok:
        report["server_log_tail"] = server.log_tail()
    report["ok"] = ok
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        print_report(report)
    os.unlink(server.log.name)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
