"""`wasmgym.pettingzoo.env`: a multi-player wasmgym environment as a PettingZoo AEC environment."""

from __future__ import annotations

import copy
import json
from typing import Any

import numpy as np
from gymnasium import spaces
from pettingzoo import AECEnv

from . import _core
from ._core import IllegalActionError, Snapshot
from .spaces import to_gymnasium


class WasmgymAECEnv(AECEnv[str, dict[str, Any], int]):
    """Agents ``player_0 .. player_{n-1}`` take turns as the environment's ``current_player`` says.

    Observations are ``{"observation": ..., "action_mask": int8 array}`` as in PettingZoo's classic
    games; the mask is the legal moves for the agent to move and zeros for the others. Rewards
    are the environment's per-player rewards. An illegal move (with ``illegal_action="terminate"``,
    the default) ends the game with ``illegal_reward`` (default: the lowest reward a step can
    give) for the agent that made it and ``infos[agent]["illegal_action"]``; with ``"raise"`` it
    raises ``IllegalActionError`` and changes nothing.
    """

    metadata = {"render_modes": ["ansi"], "name": "wasmgym_v0", "is_parallelizable": False}

    def __init__(
        self,
        source: str,
        *,
        render_mode: str | None = None,
        illegal_action: str = "terminate",
        illegal_reward: float | None = None,
        fuel_per_call: int | None = None,
        deadline_s: float | None = None,
        memory_mib: int | None = None,
    ) -> None:
        super().__init__()
        if illegal_action not in ("terminate", "raise"):
            raise ValueError(f"illegal_action={illegal_action!r}: use 'terminate' or 'raise'")
        self.native = _core.Env(source, fuel_per_call=fuel_per_call, deadline_s=deadline_s, memory_mib=memory_mib)
        spec = json.loads(self.native.spec_json)
        if spec["action_space"]["type"] != "discrete":
            raise ValueError(f"{source}: PettingZoo environments here need a Discrete action space")
        self.wasm_spec = spec
        self.metadata = dict(self.metadata, name=f"wasmgym_{spec['name']}_v0")
        self.render_mode = render_mode
        self.illegal_action = illegal_action
        self.illegal_reward = float(spec["reward_range"][0]) if illegal_reward is None else float(illegal_reward)
        self._n = int(spec["action_space"]["n"])
        self.possible_agents = [f"player_{i}" for i in range(int(spec["players"]))]
        obs_space = to_gymnasium(spec["observation_space"])
        mask_space = spaces.Box(low=0, high=1, shape=(self._n,), dtype=np.int8)
        self.observation_spaces = {
            a: spaces.Dict({"observation": obs_space, "action_mask": mask_space}) for a in self.possible_agents
        }
        self.action_spaces = {a: spaces.Discrete(self._n) for a in self.possible_agents}
        self._rng = np.random.default_rng()
        self._obs: Any = None
        self._legal: list[int] = []

    def observation_space(self, agent: str) -> spaces.Space[Any]:
        return self.observation_spaces[agent]

    def action_space(self, agent: str) -> spaces.Space[Any]:
        return self.action_spaces[agent]

    def reset(self, seed: int | None = None, options: dict[str, Any] | None = None) -> None:
        if seed is not None:
            self._rng = np.random.default_rng(seed)
        else:
            seed = int(self._rng.integers(0, 2**63 - 1))
        obs, _, _, _, _, player = self.native.reset(seed, None if options is None else json.dumps(options))
        self.agents = self.possible_agents[:]
        self.rewards = {a: 0.0 for a in self.agents}
        self._cumulative_rewards = {a: 0.0 for a in self.agents}
        self.terminations = {a: False for a in self.agents}
        self.truncations = {a: False for a in self.agents}
        self.infos: dict[str, dict[str, Any]] = {a: {} for a in self.agents}
        self._obs = obs
        self._legal = self.native.legal_actions()
        self.agent_selection = self.possible_agents[player or 0]

    def observe(self, agent: str) -> dict[str, Any]:
        mask = np.zeros(self._n, dtype=np.int8)
        if agent == self.agent_selection and self.native.current_player is not None:
            mask[np.asarray(self._legal, dtype=np.int64)] = 1
        obs = self._obs.copy() if isinstance(self._obs, np.ndarray) else self._obs
        return {"observation": obs, "action_mask": mask}

    def step(self, action: int | None) -> None:
        agent = self.agent_selection
        if self.terminations[agent] or self.truncations[agent]:
            self._was_dead_step(action)
            return
        self._cumulative_rewards[agent] = 0.0
        if action is None:
            raise ValueError(f"{agent} is to move: step(None) is only for agents whose game is over")
        try:
            # One call into the guest for the step and the legal actions after it.
            obs, _, terminated, truncated, info = self.native.step_full(action)
        except IllegalActionError as e:
            if self.illegal_action == "raise":
                raise
            self.rewards = {a: (self.illegal_reward if a == agent else 0.0) for a in self.agents}
            self.terminations = {a: True for a in self.agents}
            self.infos[agent] = {"illegal_action": str(e)}
            self._next_agent(agent)
            self._accumulate_rewards()
            return
        self._obs = obs
        rewards, player, legal = info.pop("rewards"), info.pop("current_player"), info.pop("legal_actions")
        info.pop("action_mask", None)
        self.rewards = {a: float(rewards[i]) if i < len(rewards) else 0.0 for i, a in enumerate(self.agents)}
        self.infos = {a: dict(info) for a in self.agents}
        if terminated or truncated:
            self.terminations = {a: bool(terminated) for a in self.agents}
            self.truncations = {a: bool(truncated) for a in self.agents}
            self._legal = []
            self._next_agent(agent)
        else:
            self._legal = legal
            self.agent_selection = self.possible_agents[player or 0]
        self._accumulate_rewards()

    def _next_agent(self, agent: str) -> None:
        i = self.agents.index(agent)
        self.agent_selection = self.agents[(i + 1) % len(self.agents)]

    def render(self) -> str | None:
        if self.render_mode is None:
            return None
        return self.native.render()

    def close(self) -> None:
        pass

    # Branching.

    def fork(self) -> WasmgymAECEnv:
        """An independent copy of this game in its current state (a new instance)."""
        child = copy.copy(self)
        child.native = self.native.fork()
        for name in ("agents", "rewards", "_cumulative_rewards", "terminations", "truncations", "infos", "_legal"):
            setattr(child, name, copy.deepcopy(getattr(self, name)))
        child._rng = copy.deepcopy(self._rng)
        return child

    def __deepcopy__(self, memo: dict[int, Any]) -> WasmgymAECEnv:
        return self.fork()

    def snapshot(self) -> Snapshot:
        """The complete state of the environment instance (the agents' bookkeeping is Python's)."""
        return self.native.snapshot()


def env(source: str, **kwargs: Any) -> WasmgymAECEnv:
    """A built-in multi-player environment (``"tic_tac_toe"``, ``"connect_four"``) or any ``.wasm`` with a
    Discrete action space, as a PettingZoo AEC environment. Keywords as ``WasmgymAECEnv``."""
    return WasmgymAECEnv(str(source), **kwargs)
