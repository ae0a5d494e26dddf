import pytest

import wasmgym

MULTIPLAYER = ["tic_tac_toe", "connect_four"]


@pytest.fixture(params=wasmgym.builtin_envs())
def builtin(request: pytest.FixtureRequest) -> str:
    return request.param

import os
import subprocess
import sys
from pathlib import Path


@pytest.fixture(scope="session")
def chaos_wasm() -> str:
    """The test guest whose actions misbehave on purpose (tests/guests/chaos), as the Rust build left it."""
    target = Path(os.environ.get("CARGO_TARGET_DIR") or Path(__file__).resolve().parents[2] / "target")
    path = target / "guests" / "wasm32-wasip1" / "release" / "chaos.wasm"
    assert path.is_file(), f"{path} is missing: run `cargo test --release --workspace` first (it builds the guests)"
    return str(path)


@pytest.fixture
def keyed_process():
    """Runs Python `code` with `args` in a process of its own whose ``WASMGYM_SNAPSHOT_KEY`` is `key`
    (each process reads it when it makes its runtime); returns what it printed."""

    def run(code: str, key: str, *args: str) -> str:
        env = {**os.environ, "WASMGYM_SNAPSHOT_KEY": key}
        return subprocess.run(
            [sys.executable, "-c", code, *args], capture_output=True, text=True, check=True, env=env
        ).stdout

    return run


@pytest.fixture
def signed_across_processes(keyed_process):
    """Runs `code` (which takes a path and ``write`` or ``read``) in processes with snapshot keys:
    what a keyed process writes restores in one with the same key (the same state hash), and is
    refused with another key and without one. Returns the runner, ``run(key, mode)``."""

    def check(code: str, path: Path):
        def run(key: str, mode: str) -> str:
            return keyed_process(code, key, str(path), mode)

        written = run("ab" * 32, "write")
        assert run("ab" * 32, "read") == written
        assert "authentication failed" in run("cd" * 32, "read")
        assert "signed with a snapshot key" in run("", "read")
        return run

    return check
