import pytest

import wasmgym

MULTIPLAYER = ["tic_tac_toe", "connect_four"]


@pytest.fixture(params=wasmgym.builtin_envs())
def builtin(request: pytest.FixtureRequest) -> str:
    return request.param

import os
from pathlib import Path


@pytest.fixture(scope="session")
def chaos_wasm() -> str:
    """The test guest whose actions misbehave on purpose (tests/guests/chaos), as the Rust build left it."""
    target = Path(os.environ.get("CARGO_TARGET_DIR") or Path(__file__).resolve().parents[2] / "target")
    path = target / "guests" / "wasm32-wasip1" / "release" / "chaos.wasm"
    assert path.is_file(), f"{path} is missing: run `cargo test --release --workspace` first (it builds the guests)"
    return str(path)
