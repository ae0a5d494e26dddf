"""`wasmgym.vector.make`: many instances stepped together on Rust threads, as a Gymnasium vector env."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
from gymnasium.vector import AutoresetMode, VectorEnv
from gymnasium.vector.utils import batch_space

from . import _core
from .spaces import to_gymnasium


class WasmgymVectorEnv(VectorEnv[Any, Any, Any]):
    """``num_envs`` instances of one environment, stepped in Rust on ``threads`` threads with the GIL
    released; observations come back in one numpy array (no Python object per env).

    Autoreset follows Gymnasium 1.x's default, ``AutoresetMode.NEXT_STEP``: the step after an
    episode ends resets that env (its action is ignored) and returns the first observation of the
    next episode with reward 0 and ``terminated = truncated = False``.

    ``infos`` holds ``current_player`` (-1 when over), ``rewards`` (every player's, ``(n, players)``)
    and, with ``action_masks=True`` and a Discrete action space, ``action_mask`` (``(n, actions)``
    int8). An illegal action raises ``IllegalActionError`` naming the env; use the masks.
    """

    metadata = {"autoreset_mode": AutoresetMode.NEXT_STEP, "render_modes": []}

    def __init__(
        self,
        source: str,
        num_envs: int,
        *,
        threads: int = 1,
        action_masks: bool = False,
        fuel_per_call: int | None = None,
        deadline_s: float | None = None,
        memory_mib: int | None = None,
    ) -> None:
        self.native = _core.VecEnv(
            str(source),
            num_envs,
            threads=threads,
            fuel_per_call=fuel_per_call,
            deadline_s=deadline_s,
            memory_mib=memory_mib,
        )
        spec = json.loads(self.native.spec_json)
        self.wasm_spec = spec
        self.num_envs = num_envs
        self.single_observation_space = to_gymnasium(spec["observation_space"])
        self.single_action_space = to_gymnasium(spec["action_space"])
        self.observation_space = batch_space(self.single_observation_space, num_envs)
        self.action_space = batch_space(self.single_action_space, num_envs)
        self.action_masks = action_masks and spec["action_space"]["type"] == "discrete"
        self._text_actions = spec["action_space"]["type"] == "text"

    def reset(
        self, *, seed: int | list[int | None] | None = None, options: dict[str, Any] | None = None
    ) -> tuple[Any, dict[str, Any]]:
        """Resets every env: ``seed`` an int (env ``i`` gets ``seed + i``), a list (one per env) or None
        (seeds drawn from ``self.np_random``)."""
        if isinstance(seed, int):
            self._np_random, self._np_random_seed = np.random.default_rng(seed), seed
            seeds: list[int | None] = [seed + i for i in range(self.num_envs)]
        elif seed is None:
            seeds = [int(s) for s in self.np_random.integers(0, 2**63 - 1, size=self.num_envs)]
        else:
            seeds = list(seed)
        out = self.native.reset(seeds, None if options is None else json.dumps(options), self.action_masks)
        return out[0], self._infos(out)

    def step(self, actions: Any) -> tuple[Any, np.ndarray, np.ndarray, np.ndarray, dict[str, Any]]:
        if self._text_actions:
            actions = [str(a) for a in actions]
        else:
            actions = np.ascontiguousarray(actions, dtype=np.int64).reshape(self.num_envs)
        out = self.native.step(actions, self.action_masks)
        obs, rewards, terminated, truncated = out[:4]
        return obs, rewards, terminated, truncated, self._infos(out)

    def _infos(self, out: tuple[Any, ...]) -> dict[str, Any]:
        infos: dict[str, Any] = {"current_player": out[4], "rewards": out[5]}
        if out[6] is not None:
            infos["action_mask"] = out[6]
        every = np.ones(self.num_envs, dtype=np.bool_)
        for key in list(infos):
            infos["_" + key] = every
        return infos

    def close_extras(self, **kwargs: Any) -> None:
        pass


def make(source: str, num_envs: int, *, threads: int = 1, **kwargs: Any) -> WasmgymVectorEnv:
    """``num_envs`` instances of a built-in environment (by name) or a ``.wasm``/``.wat`` file, stepped on
    ``threads`` Rust threads. Keywords: ``action_masks``, ``fuel_per_call``, ``deadline_s``,
    ``memory_mib``."""
    return WasmgymVectorEnv(source, num_envs, threads=threads, **kwargs)
