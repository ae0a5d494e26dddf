"""Multi-turn text environments for TRL's ``environment_factory``: a class whose ``reset(**kwargs)``
returns the first observation, whose public method ``act(action)`` is the tool the model calls, and
whose ``get_reward()`` gives the episode's reward.

    from wasmgym.trl import environment_factory
    trainer = GRPOTrainer(..., environment_factory=environment_factory("text_adventure"))
"""

from __future__ import annotations

from typing import Any, Callable

from ._core import IllegalActionError
from .env import WasmgymEnv, make


class TextEnvironment:
    """One episode of a wasmgym text environment at a time, driven by text actions."""

    def __init__(self, source: str = "text_adventure", *, show_actions: bool = True, **limits: Any) -> None:
        self._env: WasmgymEnv = make(source, illegal_action="raise", **limits)
        self._show_actions = show_actions
        self._reward = 0.0
        self._done = True

    def reset(self, **kwargs: Any) -> str:
        """Starts an episode (``seed`` and ``options`` from the data set's columns, when given) and
        returns the first observation."""
        seed = kwargs.get("seed")
        options = kwargs.get("options")
        obs, _info = self._env.reset(seed=None if seed is None else int(seed), options=options)
        self._reward = 0.0
        self._done = False
        return self._describe(str(obs))

    def act(self, action: str) -> str:
        """Take one action in the environment, such as a command in a text game.

        Args:
            action: The action as text, for example "north" or "take lamp".

        Returns:
            What the environment shows after the action, or why the action was refused.
        """
        if self._done:
            return "The episode is over."
        try:
            obs, reward, terminated, truncated, _info = self._env.step(action)
        except IllegalActionError as e:
            return f"That action is not possible here ({e}).{self._actions_hint()}"
        self._reward += float(reward)
        if terminated or truncated:
            self._done = True
            return f"{obs}\n[The episode is over.]"
        return self._describe(str(obs))

    def get_reward(self) -> float:
        """The sum of the rewards of this episode so far."""
        return self._reward

    def _describe(self, obs: str) -> str:
        return obs + self._actions_hint()

    def _actions_hint(self) -> str:
        if not self._show_actions:
            return ""
        actions = self._env.legal_actions()
        if not actions or not all(isinstance(a, str) for a in actions):
            return ""
        return "\nValid actions: " + ", ".join(actions)


def environment_factory(source: str = "text_adventure", **kwargs: Any) -> Callable[[], TextEnvironment]:
    """A zero-argument factory of ``TextEnvironment``s over ``source`` (TRL calls it once per rollout)."""

    def factory() -> TextEnvironment:
        return TextEnvironment(source, **kwargs)

    factory.__name__ = f"wasmgym_{source}_factory"
    return factory
