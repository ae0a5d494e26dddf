"""`wasmgym serve` driven by the real clients from PyPI: OpenEnv's GenericEnvClient (openenv-core
0.3), `openenv validate --url`, and the sandbox-fusion client; trajectories and verdicts are
compared with the in-process package and the `wasmgym grade` CLI."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
from pathlib import Path
from typing import Iterator

import numpy as np
import pytest

from wasmgym import _core

TOKEN = "tok-3f9c2a"


def binary() -> str:
    """The `wasmgym` CLI the Rust build left (`cargo test --release --workspace` builds it)."""
    target = Path(os.environ.get("CARGO_TARGET_DIR") or Path(__file__).resolve().parents[2] / "target")
    path = target / "release" / "wasmgym"
    assert path.is_file(), f"{path} is missing: run `cargo test --release --workspace` first (it builds the CLI)"
    return str(path)


def serve(*args: str) -> tuple[subprocess.Popen[str], str]:
    """Starts `wasmgym serve --port 0 --json ARGS`; the process and its base URL."""
    process = subprocess.Popen(
        [binary(), "serve", "--port", "0", "--json", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env={**os.environ, "WASMGYM_LOG": "warn"},
    )
    assert process.stdout is not None
    line = process.stdout.readline()
    assert line, f"wasmgym serve exited with {process.wait()}"
    return process, json.loads(line)["listening"]


def stop(process: subprocess.Popen[str]) -> int:
    """SIGTERM, then the exit status (0 after a graceful shutdown)."""
    process.send_signal(signal.SIGTERM)
    return process.wait(timeout=30)


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    process, url = serve("--env", "connect_four", "--env", "cart_pole", "--env", "text_adventure")
    yield url
    assert stop(process) == 0, "the server did not shut down gracefully on SIGTERM"


@pytest.fixture(scope="module")
def single() -> Iterator[str]:
    """One environment behind a token, so its root is the OpenEnv base URL."""
    process, url = serve("--env", "tic_tac_toe", "--token", TOKEN)
    yield url
    assert stop(process) == 0


def client(url: str):  # type: ignore[no-untyped-def]
    from openenv.core.generic_client import GenericEnvClient

    return GenericEnvClient(base_url=url).sync()


@pytest.mark.parametrize("name", ["connect_four", "cart_pole", "text_adventure"])
def test_openenv_client_plays_the_in_process_trajectory(server: str, name: str) -> None:
    local = _core.Env(name)
    rng = random.Random(5)
    with client(f"{server}/envs/{name}") as env:
        for seed in (1, 2):
            result = env.reset(seed=seed, episode_id=f"ep{seed}")
            obs, _, term, trunc, _, player = local.reset(seed)
            assert result.reward is None and result.done is False
            steps = 0
            while True:
                got = result.observation
                if isinstance(obs, np.ndarray):
                    np.testing.assert_array_equal(np.asarray(got["observation"], dtype=obs.dtype), obs)
                else:
                    assert got["observation"] == obs
                assert got["current_player"] == player
                actions = local.actions()
                assert got["legal_actions"] == ([] if term or trunc else actions)
                if name == "text_adventure":
                    assert got["text"] == local.render()
                if term or trunc or steps == 40:
                    break
                action = rng.choice(actions)
                mover = player or 0
                result = env.step({"action": action})
                obs, rewards, term, trunc, _, player = local.step(action)
                assert result.reward == rewards[mover] and result.done == (term or trunc)
                steps += 1
            state = env.state()
            assert state["episode_id"] == f"ep{seed}" and state["step_count"] == steps


OPENENV_010_SCRIPT = """
import json, sys
import openenv
from openenv.core.generic_client import GenericEnvClient
assert openenv.__file__.startswith(sys.argv[2]), openenv.__file__
out = []
with GenericEnvClient(base_url=sys.argv[1]).sync() as env:
    r = env.reset(seed=4)
    out.append([r.observation["observation"], r.reward, r.done])
    for a in [0, 1, 1, 0, 1, 0, 0, 1]:
        r = env.step({"action": a})
        out.append([r.observation["observation"], r.reward, r.done])
    try:
        env.step({"action": 5})
    except RuntimeError as e:
        out.append(str(e))
print(json.dumps(out))
"""


def test_openenv_010_client_plays_the_in_process_trajectory(server: str) -> None:
    """openenv 0.10 (its own distribution of the `openenv` package, installed apart by
    scripts/test-python.sh) speaks the same protocol."""
    site = os.environ.get("WASMGYM_OPENENV010")
    assert site, "WASMGYM_OPENENV010 is unset: run the tests with scripts/test-python.sh, which installs openenv 0.10"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([site, os.environ.get("PYTHONPATH", "")])}
    run = subprocess.run(
        [sys.executable, "-c", OPENENV_010_SCRIPT, f"{server}/envs/cart_pole", site],
        capture_output=True, text=True, timeout=300, env=env,
    )
    assert run.returncode == 0, run.stderr[-2000:]
    replies = json.loads(run.stdout.strip().splitlines()[-1])
    local = _core.Env("cart_pole")
    obs, *_ = local.reset(4)
    expected = [[obs.tolist(), None, False]]
    for a in [0, 1, 1, 0, 1, 0, 0, 1]:
        obs, rewards, term, trunc, *_ = local.step(a)
        expected.append([obs.tolist(), rewards[0], term or trunc])
    got = [[np.asarray(o, dtype=obs.dtype).tolist(), r, d] for o, r, d in replies[:-1]]
    assert got == expected
    assert "VALIDATION_ERROR" in replies[-1]


def test_openenv_client_sees_errors_and_the_session_survives(server: str) -> None:
    with client(f"{server}/envs/connect_four") as env:
        env.reset(seed=0)
        with pytest.raises(RuntimeError, match="VALIDATION_ERROR"):
            env.step({"action": 7})
        with pytest.raises(RuntimeError, match="integer actions"):
            env.step({"action": "left"})
        assert env.step({"action": 3}).observation["current_player"] == 1


def test_a_token_in_the_path_serves_the_unchanged_client(single: str) -> None:
    with client(f"{single}/{TOKEN}") as env:
        assert env.reset().observation["legal_actions"] == list(range(9))
    with pytest.raises(Exception):
        with client(single) as env:
            env.reset()


def test_openenv_validate_passes(single: str) -> None:
    openenv = Path(sys.executable).parent / "openenv"
    run = subprocess.run(
        [str(openenv), "validate", "--url", f"{single}/{TOKEN}"], capture_output=True, text=True, timeout=120
    )
    report = json.loads(run.stdout)
    assert run.returncode == 0 and report["passed"], report["summary"]
    assert report["summary"]["passed_count"] == report["summary"]["total_count"] >= 6


# One program per verdict, with the test it is run on.
PROGRAMS = {
    "accepted": ("a, b = map(int, input().split())\nprint(a + b)", "2 3", "5"),
    "wrong_answer": ("a, b = map(int, input().split())\nprint(a - b)", "2 3", "5"),
    "runtime_error": ("print(int('x'))", "", "5"),
    "time_limit_exceeded": ("while True:\n    pass", "", "5"),
}


def cli_verdict(code: str, stdin: str, expected: str, tmp_path: Path) -> str:
    """What `wasmgym grade --json` says of the program on one test."""
    program = tmp_path / "solution.py"
    program.write_text(code)
    tests = tmp_path / "tests.jsonl"
    tests.write_text(json.dumps({"name": "t", "stdin": stdin, "expected_stdout": expected}) + "\n")
    run = subprocess.run(
        [binary(), "grade", str(program), "--tests", str(tests), "--json", "--time-limit-ms", "2000",
         "--fuel", "8000000000"],
        capture_output=True, text=True, timeout=300,
    )
    return str(json.loads(run.stdout)["tests"][0]["verdict"])


def fusion_verdict(result, expected: str) -> str:  # type: ignore[no-untyped-def]
    """The verdict a SandboxFusion user (verl) reads from a /run_code result."""
    run = result.run_result
    if result.status.value == "Success":
        return "accepted" if run.stdout.rstrip("\n") == expected.rstrip("\n") else "wrong_answer"
    if run is not None and run.status.value == "TimeLimitExceeded":
        return "time_limit_exceeded"
    return "runtime_error"


@pytest.mark.parametrize("verdict", list(PROGRAMS))
def test_sandbox_fusion_client_gets_the_verdicts_the_cli_gives(server: str, verdict: str, tmp_path: Path) -> None:
    import sandbox_fusion as sf

    code, stdin, expected = PROGRAMS[verdict]
    request = sf.RunCodeRequest(code=code, language="python", stdin=stdin, run_timeout=2)
    result = sf.run_code(request, endpoint=server, max_attempts=1)
    assert result.message == "" and result.compile_result is None
    assert fusion_verdict(result, expected) == verdict == cli_verdict(code, stdin, expected, tmp_path)
    if verdict == "runtime_error":
        assert result.run_result.return_code == 1 and "ValueError" in result.run_result.stderr
    if verdict == "time_limit_exceeded":
        assert result.run_result.return_code is None


def test_sandbox_fusion_client_runs_cpp(server: str) -> None:
    import sandbox_fusion as sf

    code = "#include <bits/stdc++.h>\nint main(){long a,b;std::cin>>a>>b;std::cout<<a+b<<'\\n';}"
    result = sf.run_code(sf.RunCodeRequest(code=code, language="cpp", stdin="40 2"), endpoint=server, max_attempts=1)
    assert result.status.value == "Success", result
    assert result.compile_result.status.value == "Finished" and result.run_result.stdout == "42\n"
    broken = sf.run_code(sf.RunCodeRequest(code="int main( {", language="cpp"), endpoint=server, max_attempts=1)
    assert broken.status.value == "Failed" and broken.run_result is None
    assert broken.compile_result.return_code != 0 and "error" in broken.compile_result.stderr


def test_sandbox_fusion_summary_reads_every_result(server: str) -> None:
    import sandbox_fusion as sf

    from sandbox_fusion.models import SummaryMapping

    mapping = SummaryMapping(RunFailed="run_failed", RunTimeout="run_timeout")
    summaries = []
    for code in ("print(1)", "import sys; sys.exit(4)", "while True: pass"):
        result = sf.run_code(sf.RunCodeRequest(code=code, language="python", run_timeout=1), endpoint=server)
        summaries.append(sf.summary_run_code_result(result, mapping))  # raises on a stage without a return code
    assert summaries == ["Success", "run_failed", "run_timeout"]


def test_the_load_test_runs_clean_and_stops_by_itself() -> None:
    """scripts/load-test.py, short: WebSocket sessions and /run_code at once, zero errors, a flat
    session count (every phase gets its sessions) and a graceful shutdown."""
    script = Path(__file__).resolve().parents[2] / "scripts" / "load-test.py"
    run = subprocess.run(
        [sys.executable, str(script), "--bin", binary(), "--duration", "2", "--sessions", "8", "--clients", "2",
         "--json"],
        capture_output=True, text=True, timeout=120,
    )
    report = json.loads(run.stdout)
    assert run.returncode == 0 and report["ok"], report
    for phase in ("A", "B", "C"):
        for load in report["phases"][phase]["loads"]:
            assert load["count"] > 0 and load["errors"] == 0, load
