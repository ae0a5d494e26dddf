"""Every built-in env as a gymnasium.Env: check_env, spaces, seeding, registration, illegal actions."""

import warnings

import gymnasium
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

import wasmgym


def test_check_env_passes_on_every_builtin(builtin: str) -> None:
    env = gymnasium.make(f"wasmgym/{builtin}-v0", render_mode="ansi")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        check_env(env.unwrapped, skip_render_check=False)
    # The only warnings allowed: Gymnasium's advice about infinite Box bounds (cart-pole's
    # velocities are unbounded, as in Gymnasium's own CartPole spec of the state).
    others = [str(w.message) for w in caught if "infinity" not in str(w.message)]
    assert others == []


def test_registered_ids_and_make_by_path_agree(builtin: str, tmp_path) -> None:
    by_id = gymnasium.make(f"wasmgym/{builtin}-v0").unwrapped
    by_name = wasmgym.make(builtin)
    assert isinstance(by_id, wasmgym.WasmgymEnv)
    assert by_id.observation_space == by_name.observation_space
    assert by_id.action_space == by_name.action_space


def test_spaces_map_one_to_one() -> None:
    c4 = wasmgym.make("connect_four")
    assert c4.observation_space == gymnasium.spaces.Box(0.0, 1.0, (3, 6, 7), np.float32)
    assert c4.action_space == gymnasium.spaces.Discrete(7)
    cp = wasmgym.make("cart_pole")
    assert cp.wasm_spec["observation_space"]["dtype"] == "f64"
    assert cp.observation_space.dtype == np.float64 and cp.observation_space.shape == (4,)
    g24 = wasmgym.make("game_of_24")
    assert isinstance(g24.action_space, gymnasium.spaces.Text)
    assert set(g24.action_space.character_set) == set(wasmgym.make("game_of_24").wasm_spec["action_space"]["charset"])


def test_same_seed_same_episode_and_info_carries_the_mask() -> None:
    a, b = wasmgym.make("connect_four"), wasmgym.make("connect_four")
    oa, ia = a.reset(seed=7)
    ob, ib = b.reset(seed=7)
    assert np.array_equal(oa, ob)
    rng = np.random.default_rng(0)
    done = False
    while not done:
        legal = np.flatnonzero(ia["action_mask"])
        assert list(legal) == ia["legal_actions"]
        action = int(rng.choice(legal))
        oa, ra, ta, tra, ia = a.step(action)
        ob, rb, tb, trb, ib = b.step(action)
        assert np.array_equal(oa, ob) and ra == rb and ta == tb
        assert a.state_hash() == b.state_hash()
        done = ta or tra
    assert ia["current_player"] is None and ia["legal_actions"] == []
    assert sum(ia["rewards"]) == 0.0  # zero-sum: the winner's +1 is the loser's -1, or a draw


def test_reset_without_seed_follows_np_random() -> None:
    env = wasmgym.make("cart_pole")
    first, _ = env.reset(seed=123)
    second, _ = env.reset()
    again, _ = env.reset(seed=123)
    second_again, _ = env.reset()
    assert np.array_equal(first, again) and np.array_equal(second, second_again)
    assert not np.array_equal(first, second)


def test_illegal_action_terminates_by_default_and_raises_on_request() -> None:
    env = wasmgym.make("tic_tac_toe")
    env.reset(seed=0)
    env.step(4)
    before = env.native.state_key()
    obs, reward, terminated, truncated, info = env.step(4)  # taken square
    assert terminated and not truncated
    assert reward == env.reward_range[0] == -1.0
    assert "illegal action 4" in info["illegal_action"]
    assert env.native.state_key() == before  # the refused action changed nothing
    with pytest.raises(wasmgym.InvalidCallError, match="reset"):
        env.step(0)
    strict = wasmgym.make("tic_tac_toe", illegal_action="raise")
    strict.reset(seed=0)
    strict.step(4)
    with pytest.raises(wasmgym.IllegalActionError) as e:
        strict.step(4)
    assert e.value.kind == "illegal_action" and not e.value.poisons
    assert strict.step(0)[1] == 0.0  # still usable


def test_render_is_the_environments_text() -> None:
    env = wasmgym.make("tic_tac_toe", render_mode="ansi")
    env.reset(seed=0)
    env.step(0)
    picture = env.render()
    assert isinstance(picture, str) and "x" in picture.lower()


def test_text_env_takes_text_actions() -> None:
    env = wasmgym.make("text_adventure")
    obs, info = env.reset(seed=1, options={"key_room": "library"})
    assert isinstance(obs, str) and "take lamp" in info["legal_actions"]
    obs, reward, terminated, _, info = env.step("north")
    assert "Library" in obs and reward == 0.0
    obs, reward, terminated, _, info = env.step("take key")
    assert reward == 0.1 and not terminated


def test_options_reach_the_environment() -> None:
    env = wasmgym.make("text_adventure")
    env.reset(seed=1, options={"key_room": "library"})
    env.step("north")
    assert env.step("take key")[1] == 0.1
    with pytest.raises(wasmgym.InvalidCallError, match="key_room"):
        env.reset(seed=1, options={"key_room": "no such room"})


def test_fork_shares_nothing_mutable_and_copies_np_random() -> None:
    env = wasmgym.make("cart_pole")
    env.reset(seed=3)
    env.step(0)
    child = env.fork()
    assert child.observation_space is env.observation_space  # shared: spaces never change
    parent_next, _ = env.reset()  # draws a seed from the parent's np_random
    child_next, _ = child.reset()  # the child's copy draws the same one
    assert np.array_equal(parent_next, child_next)
    twice, _ = env.reset()  # the parent moved on; the child's generator did not move with it
    assert np.array_equal(child.reset()[0], twice)
    assert not np.array_equal(parent_next, twice)


def test_forks_of_forks_each_draw_the_generator_state_at_their_fork() -> None:
    root = wasmgym.make("cart_pole")
    root.reset(seed=11)
    a = root.fork()
    b = a.fork()
    expected = [wasmgym.make("cart_pole") for _ in range(3)]
    for e in expected:
        e.reset(seed=11)
    want = [e.reset()[0] for e in expected]  # the first unseeded reset after reset(seed=11)
    assert np.array_equal(b.reset()[0], want[0])
    assert np.array_equal(root.reset()[0], want[1])
    assert np.array_equal(a.reset()[0], want[2])
    root.reset(seed=12)  # reseeding one does not touch the others
    assert np.array_equal(a.reset()[0], expected[2].reset()[0])
