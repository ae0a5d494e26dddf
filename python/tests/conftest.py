import pytest

import wasmgym

MULTIPLAYER = ["tic_tac_toe", "connect_four"]


@pytest.fixture(params=wasmgym.builtin_envs())
def builtin(request: pytest.FixtureRequest) -> str:
    return request.param
