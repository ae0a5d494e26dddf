"""The multi-player built-ins as PettingZoo AEC environments."""

import numpy as np
import pytest
from pettingzoo.test import api_test

import wasmgym
import wasmgym.pettingzoo

from conftest import MULTIPLAYER


@pytest.mark.parametrize("name", MULTIPLAYER)
def test_api_test_passes(name: str) -> None:
    api_test(wasmgym.pettingzoo.env(name), num_cycles=200)


@pytest.mark.parametrize("name", MULTIPLAYER)
def test_a_game_matches_the_gymnasium_env(name: str) -> None:
    aec = wasmgym.pettingzoo.env(name)
    aec.reset(seed=3)
    gym = wasmgym.make(name)
    gym.reset(seed=3)
    rng = np.random.default_rng(1)
    totals = {a: 0.0 for a in aec.possible_agents}
    for agent in aec.agent_iter(max_iter=200):
        obs, reward, terminated, truncated, info = aec.last()
        totals[agent] += reward
        if terminated or truncated:
            aec.step(None)
            continue
        assert aec.agent_selection == f"player_{gym.current_player}"
        action = int(rng.choice(np.flatnonzero(obs["action_mask"])))
        aec.step(action)
        gym.step(action)
        assert aec.native.state_hash() == gym.state_hash()
    assert sorted(totals.values()) in ([-1.0, 1.0], [0.0, 0.0])


def test_illegal_move_ends_the_game_for_the_mover() -> None:
    env = wasmgym.pettingzoo.env("tic_tac_toe")
    env.reset(seed=0)
    env.step(4)
    mover = env.agent_selection
    env.step(4)
    assert all(env.terminations.values())
    assert env._cumulative_rewards[mover] == -1.0
    assert "illegal" in env.infos[mover]["illegal_action"]


def test_fork_is_independent() -> None:
    env = wasmgym.pettingzoo.env("connect_four")
    env.reset(seed=0)
    env.step(3)
    child = env.fork()
    child.step(2)
    assert env.native.state_hash() != child.native.state_hash()
    env.step(2)
    assert env.native.state_hash() == child.native.state_hash()
