"""The vector env: the same transitions as single envs, Gymnasium 1.x next-step autoreset, threads."""

import gymnasium
import numpy as np
import pytest
from gymnasium.vector import AutoresetMode

import wasmgym
import wasmgym.vector


@pytest.mark.parametrize("threads", [1, 2])
def test_vector_steps_equal_single_envs_with_next_step_autoreset(threads: int) -> None:
    n = 6
    vec = wasmgym.vector.make("cart_pole", n, threads=threads)
    assert vec.metadata["autoreset_mode"] == AutoresetMode.NEXT_STEP
    obs, infos = vec.reset(seed=10)
    singles = [wasmgym._core.Env("cart_pole") for _ in range(n)]
    for i, env in enumerate(singles):
        assert np.array_equal(obs[i], env.reset(10 + i)[0])
    assert obs.shape == (n, 4) and obs.dtype == vec.single_observation_space.dtype == np.float64
    rng = np.random.default_rng(0)
    pending_reset = [False] * n
    resets = 0
    for _ in range(300):
        actions = rng.integers(0, 2, size=n)
        obs, rewards, terminated, truncated, infos = vec.step(actions)
        for i, env in enumerate(singles):
            if pending_reset[i]:
                expected = env.reset(None)
                assert np.array_equal(obs[i], expected[0])
                assert rewards[i] == 0.0 and not terminated[i] and not truncated[i]
                pending_reset[i] = False
                resets += 1
                continue
            o, r, t, tr, _, _ = env.step(int(actions[i]))
            assert np.array_equal(obs[i], o) and rewards[i] == r[0]
            assert terminated[i] == t and truncated[i] == tr
            pending_reset[i] = t or tr
    assert resets > 0


def test_vector_env_is_a_gymnasium_vector_env_with_masks() -> None:
    vec = wasmgym.vector.make("tic_tac_toe", 4, threads=2, action_masks=True)
    assert isinstance(vec, gymnasium.vector.VectorEnv)
    assert vec.single_action_space == gymnasium.spaces.Discrete(9)
    obs, infos = vec.reset(seed=0)
    assert obs.shape == (4, 3, 3, 3)
    assert infos["action_mask"].shape == (4, 9) and infos["action_mask"].all()
    rng = np.random.default_rng(0)
    for _ in range(30):
        # A finished game's mask is empty: its next step resets it and ignores the action.
        actions = np.array([rng.choice(np.flatnonzero(m)) if m.any() else 0 for m in infos["action_mask"]])
        obs, rewards, terminated, truncated, infos = vec.step(actions)
        assert obs in vec.observation_space
        assert infos["rewards"].shape == (4, 2)


def test_vector_text_env() -> None:
    vec = wasmgym.vector.make("text_adventure", 3)
    obs, _ = vec.reset(seed=1, options={"key_room": "library"})
    assert isinstance(obs, tuple) and all(isinstance(o, str) for o in obs)
    obs, rewards, *_ = vec.step(["north", "south", "north"])
    assert "Library" in obs[0] and "Library" not in obs[1]
    obs, rewards, *_ = vec.step(["take key", "take key", "look"])
    assert list(rewards) == [0.1, 0.0, 0.0]


def test_vector_env_refuses_bad_input_naming_the_env() -> None:
    vec = wasmgym.vector.make("tic_tac_toe", 2)
    vec.reset(seed=0)
    with pytest.raises(ValueError, match="one action per environment"):
        vec.native.step(np.array([0, 1, 2], dtype=np.int64))
    vec.step(np.array([4, 4]))
    with pytest.raises(wasmgym.IllegalActionError, match="env 0 of the batch"):
        vec.step(np.array([4, 0]))
    with pytest.raises(ValueError, match="num_envs"):
        wasmgym.vector.make("cart_pole", 0)


def test_absurd_sizes_are_refused_before_anything_is_made() -> None:
    with pytest.raises(ValueError, match="num_envs"):
        wasmgym.vector.make("cart_pole", 1 << 21)
    with pytest.raises(ValueError, match="threads"):
        wasmgym.vector.make("cart_pole", 2, threads=0)
