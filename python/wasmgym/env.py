"""`wasmgym.make`: a wasmgym environment as a `gymnasium.Env`."""

from __future__ import annotations

import copy
import json
from typing import Any, Literal, SupportsFloat

import gymnasium
import numpy as np

from . import _core
from ._core import IllegalActionError, InvalidCallError, Snapshot
from .spaces import to_gymnasium


class WasmgymEnv(gymnasium.Env[Any, Any]):
    """A wasmgym environment (a WebAssembly instance) behind Gymnasium's API, forkable in microseconds.

    * ``reset(seed=, options=)``: ``seed`` seeds the environment's only randomness; without one, a
      seed is drawn from ``self.np_random`` (Gymnasium's rule: random on the first reset, the same
      sequence after a seeded one). ``options`` is passed to the environment as JSON.
    * ``step(action)`` returns ``(obs, reward, terminated, truncated, info)``. ``reward`` is the
      reward of the player who acted; ``info`` has ``rewards`` (every player's),
      ``current_player`` (None at the end), ``legal_actions`` and, for Discrete action spaces,
      ``action_mask`` (int8), plus whatever the environment reports.
    * An illegal action (outside the space or not legal now) changes nothing in the environment.
      With ``illegal_action="terminate"`` (the default, so that random agents and
      ``gymnasium.utils.env_checker.check_env`` run) it ends the episode: ``terminated=True``,
      ``reward = illegal_reward`` (default: the lowest reward a step can give), and
      ``info["illegal_action"]`` says why; a further ``step`` raises ``InvalidCallError`` until
      ``reset``. With ``illegal_action="raise"`` it raises ``IllegalActionError``.
    * ``fork()``, ``snapshot()``, ``restore()``, ``state_hash()``; ``copy.deepcopy(env)`` forks.
    """

    metadata = {"render_modes": ["ansi"], "render_fps": 4}

    def __init__(
        self,
        source: str,
        *,
        render_mode: str | None = None,
        illegal_action: Literal["terminate", "raise"] = "terminate",
        illegal_reward: float | None = None,
        fuel_per_call: int | None = None,
        deadline_s: float | None = None,
        memory_mib: int | None = None,
    ) -> None:
        if illegal_action not in ("terminate", "raise"):
            raise ValueError(f"illegal_action={illegal_action!r}: use 'terminate' or 'raise'")
        if render_mode not in (None, "ansi"):
            raise ValueError(f"render_mode={render_mode!r}: wasmgym environments render text, use 'ansi' or None")
        self.native = _core.Env(source, fuel_per_call=fuel_per_call, deadline_s=deadline_s, memory_mib=memory_mib)
        self.wasm_spec: dict[str, Any] = json.loads(self.native.spec_json)
        self.observation_space = to_gymnasium(self.wasm_spec["observation_space"])
        self.action_space = to_gymnasium(self.wasm_spec["action_space"])
        low, high = (float(x) for x in self.wasm_spec["reward_range"])  # "inf" and "-inf" included
        self.reward_range = (low, high)
        self.render_mode = render_mode
        self.illegal_action = illegal_action
        self.illegal_reward = low if illegal_reward is None else float(illegal_reward)
        self._n = int(self.wasm_spec["action_space"].get("n", 0))
        # Discrete spaces of at most 65,536 actions get an action mask in info.
        self._discrete = self.wasm_spec["action_space"]["type"] == "discrete" and self._n <= 1 << 16
        self._players = int(self.wasm_spec["players"])
        self._over = False
        self._last_obs: Any = None
        self._rng_shared: _SharedRng | None = None  # np_random shared with forks until first used

    # Gymnasium's API.

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[Any, dict[str, Any]]:
        if seed is not None:
            self._release_rng()
        super().reset(seed=seed)
        if seed is None:
            seed = int(self.np_random.integers(0, 2**63 - 1))
        obs, info = self.native.reset_full(seed, None if options is None else json.dumps(options))
        self._over = False
        self._last_obs = obs
        return obs, info

    def step(self, action: Any) -> tuple[Any, SupportsFloat, bool, bool, dict[str, Any]]:
        if self._over:
            raise InvalidCallError("the episode ended with an illegal action: call reset() first")
        try:
            out = self.native.step_full(action)
        except IllegalActionError as e:
            if self.illegal_action == "raise":
                raise
            self._over = True
            info: dict[str, Any] = {"current_player": None, "rewards": [0.0] * self._players, "legal_actions": []}
            if self._discrete:
                info["action_mask"] = np.zeros(self._n, dtype=np.int8)
            info["illegal_action"] = str(e)
            if self._last_obs is None:
                self._last_obs = self.native.observe()
            return _copy(self._last_obs), self.illegal_reward, True, False, info
        self._last_obs = out[0]
        return out  # type: ignore[no-any-return]

    def render(self) -> str | None:  # type: ignore[override]
        if self.render_mode is None:
            gymnasium.logger.warn("render() needs render_mode='ansi' (wasmgym environments render text)")
            return None
        return self.native.render()

    def close(self) -> None:
        pass

    # Branching.

    def fork(self) -> WasmgymEnv:
        """An independent copy of this environment in its current state (a new instance). The spec,
        spaces and settings are shared (they never change); ``np_random`` is shared copy-on-use: the
        first of the envs to use it after the fork takes its own copy."""
        if self._rng_shared is None and self._np_random is not None:
            self._rng_shared, self._np_random = _SharedRng(self._np_random), None
        if self._rng_shared is not None:
            self._rng_shared.users += 1
        child = object.__new__(WasmgymEnv)
        child.__dict__.update(self.__dict__)
        child.native = self.native.fork()
        return child

    @property
    def np_random(self) -> np.random.Generator:
        """Gymnasium's generator of this env (seeds for ``reset()`` without a seed)."""
        shared = self._rng_shared
        if shared is not None:
            self._rng_shared = None
            shared.users -= 1
            self._np_random = copy.deepcopy(shared.generator) if shared.users > 0 else shared.generator
        return gymnasium.Env.np_random.fget(self)  # type: ignore[attr-defined,no-any-return]

    @np_random.setter
    def np_random(self, value: np.random.Generator) -> None:
        self._release_rng()
        gymnasium.Env.np_random.fset(self, value)  # type: ignore[attr-defined]

    def _release_rng(self) -> None:
        if self._rng_shared is not None:
            self._rng_shared.users -= 1
            self._rng_shared = None

    def __deepcopy__(self, memo: dict[int, Any]) -> WasmgymEnv:
        return self.fork()

    def snapshot(self) -> Snapshot:
        """The complete state of the instance (picklable; restore it into any instance of the module)."""
        return self.native.snapshot()

    def restore(self, snapshot: Snapshot) -> None:
        """Returns the environment to ``snapshot``'s state exactly."""
        self.native.restore(snapshot)
        self._over = False
        self._last_obs = None  # read on demand: a query now would change the machine state's hash

    def snapshot_to_bytes(self, snapshot: Snapshot) -> bytes:
        """``snapshot``'s bytes written against this module's initial memory: only the pages that
        differ from a fresh instance's, several times smaller than ``Snapshot.to_bytes`` (which
        pickling uses). Read them back with ``snapshot_from_bytes`` on an env of the same module."""
        return self.native.snapshot_to_bytes(snapshot)

    def snapshot_from_bytes(self, data: bytes) -> Snapshot:
        """A snapshot of this env's module from ``snapshot_to_bytes`` or ``Snapshot.to_bytes`` output;
        corrupt bytes or another module's raise ``BadSnapshotError``."""
        return self.native.snapshot_from_bytes(data)

    def state_hash(self) -> bytes:
        """BLAKE3 of the complete machine state: equal states hash equal."""
        return self.native.state_hash()

    # OpenSpiel's vocabulary.

    def legal_actions(self) -> list[Any]:
        """The actions legal now (ints, or the valid commands of a text environment)."""
        return self.native.actions()

    @property
    def current_player(self) -> int | None:
        """Whose turn it is (None once the episode is over)."""
        return self.native.current_player


class _SharedRng:
    """A generator shared by an env and its forks: whoever uses it first copies it (the last user
    keeps it)."""

    __slots__ = ("generator", "users")

    def __init__(self, generator: np.random.Generator) -> None:
        self.generator = generator
        self.users = 1


def _copy(obs: Any) -> Any:
    return obs.copy() if isinstance(obs, np.ndarray) else obs


def make(source: str, **kwargs: Any) -> WasmgymEnv:
    """A built-in environment by name (``wasmgym.builtin_envs()``) or any ``.wasm``/``.wat`` by path, as a
    ``gymnasium.Env``. Keywords: ``render_mode`` ("ansi"), ``illegal_action`` ("terminate" or
    "raise"), ``illegal_reward``, and limits ``fuel_per_call``, ``deadline_s`` (0: none) and
    ``memory_mib``."""
    return WasmgymEnv(str(source), **kwargs)
