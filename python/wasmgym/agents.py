"""Agent environments: composite episodes that fork as one, tool calls, pass^k, sequential suites.

A composite episode is several sandboxed modules stepping together: an environment (with tools),
a simulated user, and a reward checker that scores the end. The agent's action is a tool call
(``{"tool": NAME, "args": {...}}``, or a dict) or a message to the user (any other text); what it
sees are the replies, each a :class:`Message`. The whole conversation snapshots, restores and
forks exactly, so a trainer can branch a dialogue mid-way, and ``pass^k`` runs each task k times.

>>> import wasmgym.agents as agents
>>> desk = agents.Composite("support_desk")
>>> step = desk.reset(seed=0, options={"task": 3})
>>> [m.sender for m in step.messages]
['env', 'user']
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Callable, Optional, Protocol, Sequence, Union

from . import _core

__all__ = [
    "Message",
    "Step",
    "Composite",
    "CompositeSnapshot",
    "Agent",
    "evaluate",
    "evaluate_scripted",
    "pass_hat",
]

CompositeSnapshot = _core.CompositeSnapshot


@dataclass(frozen=True)
class Message:
    """One message: who said it (a part's name, ``"agent"`` or ``"host"``), to whom, and what."""

    sender: str
    to: str
    text: str

    @staticmethod
    def _from_json(m: dict) -> "Message":
        return Message(sender=m["from"], to=m["to"], text=m["text"])


@dataclass(frozen=True)
class Step:
    """What a reset or step gives the agent."""

    messages: list[Message]
    """The replies and notes addressed to the agent, in order."""
    observation: str
    """The messages as text, one ``from: text`` line each."""
    reward: float
    terminated: bool
    truncated: bool
    score: Optional[dict]
    """At the end of an episode with a checker: ``{"score", "message"}``."""

    @property
    def done(self) -> bool:
        return self.terminated or self.truncated

    @staticmethod
    def _from_json(text: str) -> "Step":
        d = json.loads(text)
        return Step(
            messages=[Message._from_json(m) for m in d["messages"]],
            observation=d["observation"],
            reward=d["reward"],
            terminated=d["terminated"],
            truncated=d["truncated"],
            score=d["score"],
        )


UserFn = Callable[[dict], Union[str, "tuple[str, bool]"]]


class Composite:
    """One live composite episode.

    ``target`` is a built-in composite (``"support_desk"``, ``"workshop"``), a wiring ``.json`` file,
    wiring JSON text, or an environment on its own. ``user`` answers for a part the wiring gives no
    module (``"module": null``): it is called with ``{"part", "seed", "options", "transcript"}`` and
    returns the user's text, or ``(text, done)``. It must be a function of what it is given, so
    forks replay exactly (its replies are recorded; a turn is never asked twice).
    """

    def __init__(
        self,
        target: str,
        *,
        user: Optional[UserFn] = None,
        fuel_per_call: Optional[int] = None,
        deadline_s: Optional[float] = None,
        memory_mib: Optional[int] = None,
        _core_composite: Any = None,
    ) -> None:
        if _core_composite is not None:
            self._c = _core_composite
            return
        callback = None
        if user is not None:

            def callback(turn_json: str) -> "tuple[str, bool]":
                reply = user(json.loads(turn_json))
                if isinstance(reply, str):
                    return reply, False
                text, done = reply
                return str(text), bool(done)

        self._c = _core.Composite(
            target, user=callback, fuel_per_call=fuel_per_call, deadline_s=deadline_s, memory_mib=memory_mib
        )

    def reset(self, seed: int = 0, options: Union[dict, str, None] = None) -> Step:
        """Starts an episode (``options`` is the task, e.g. ``{"task": 3}``, given to every part)."""
        if isinstance(options, dict):
            options = json.dumps(options)
        return Step._from_json(self._c.reset(seed, options))

    def step(self, action: Union[str, dict]) -> Step:
        """Takes the agent's action: a tool call (``{"tool": NAME, "args": {...}}``) or a message."""
        if isinstance(action, dict):
            action = json.dumps(action)
        return Step._from_json(self._c.step(action))

    def fork(self) -> "Composite":
        """An independent composite in the same state (every part forked)."""
        return Composite("", _core_composite=self._c.fork())

    def __deepcopy__(self, memo: dict) -> "Composite":
        return self.fork()

    def snapshot(self) -> CompositeSnapshot:
        """The complete state; pickles as its checksummed bytes."""
        return self._c.snapshot()

    def restore(self, snapshot: CompositeSnapshot) -> None:
        """Returns every part and the conversation to ``snapshot``."""
        self._c.restore(snapshot)

    def state_hash(self) -> bytes:
        """A hash of the complete state: equal hashes, equal futures."""
        return self._c.state_hash()

    @property
    def tools(self) -> list[dict]:
        """The tools, ``{"name", "description", "parameters"}`` each."""
        return json.loads(self._c.tools_json)

    @property
    def function_specs(self) -> list[dict]:
        """The tools in OpenAI's function-calling shape (``{"type": "function", "function": ...}``)."""
        return [{"type": "function", "function": t} for t in self.tools]

    @property
    def transcript(self) -> list[Message]:
        """The conversation so far, the agent's actions and the host's notes included."""
        return [Message._from_json(m) for m in json.loads(self._c.transcript_json)]

    @property
    def wiring(self) -> dict:
        return json.loads(self._c.wiring_json)

    @property
    def turns(self) -> int:
        return self._c.turns

    @property
    def running(self) -> bool:
        return self._c.running

    @property
    def total_reward(self) -> float:
        return self._c.total_reward


class Agent(Protocol):
    """An agent: ``act`` gets the messages addressed to it since its last action and returns its
    next action (a tool call as a dict or JSON text, or a message). ``start`` (optional) is
    called before each episode with the tools. A plain callable ``f(messages) -> action`` works too."""

    def act(self, messages: Sequence[Message]) -> Union[str, dict]: ...


def pass_hat(successes: Sequence["tuple[int, int]"], k: int) -> list[float]:
    """tau-bench's pass^j for j = 1..k from ``(trials, successes)`` per task."""
    return list(_core.pass_hat(list(successes), k))


def evaluate(
    target: str,
    agent: Callable[[], Any],
    *,
    tasks: Union[int, Sequence[int]] = 10,
    k: int = 4,
    seed: int = 0,
    **limits: Any,
) -> dict:
    """Runs ``agent()`` (a fresh agent per trial) on each task ``k`` times (trial ``j`` with seed
    ``seed + j``) and reports ``{"tasks": [[trial, ...], ...], "pass_hat": [...], "pass_k",
    "mean_reward"}``, each trial ``{"task", "seed", "reward", "success", "turns", "error"}``.
    A trial succeeds when its reward reaches 1."""
    if k < 1:
        raise ValueError("k must be at least 1")
    task_ids = list(range(tasks)) if isinstance(tasks, int) else list(tasks)
    composite = Composite(target, **limits)
    results: list[list[dict]] = []
    for task in task_ids:
        trials = []
        for j in range(k):
            trials.append(_episode(composite, agent(), task, seed + j))
        results.append(trials)
    hats = pass_hat([(len(t), sum(x["success"] for x in t)) for t in results], k)
    rewards = [x["reward"] for t in results for x in t]
    return {
        "tasks": results,
        "pass_hat": hats,
        "pass_k": hats[-1],
        "mean_reward": sum(rewards) / len(rewards) if rewards else 0.0,
    }


def _episode(composite: Composite, agent: Any, task: int, seed: int) -> dict:
    trial: dict = {"task": task, "seed": seed, "reward": 0.0, "success": False, "turns": 0, "error": None}
    act = agent.act if hasattr(agent, "act") else agent
    try:
        step = composite.reset(seed, {"task": task})
        if hasattr(agent, "start"):
            agent.start(composite.tools)
        while True:
            trial["reward"] += step.reward
            if step.done:
                break
            step = composite.step(act(step.messages))
    except _core.WasmgymError as e:
        trial["error"] = str(e)
    trial["turns"] = composite.turns
    trial["success"] = trial["error"] is None and trial["reward"] >= 1.0 - 1e-9
    return trial


def evaluate_scripted(
    target: str, *, tasks: int = 10, k: int = 4, seed: int = 0, sequential: bool = False, jobs: Optional[int] = None
) -> dict:
    """The built-in scripted agent on a built-in composite, in Rust threads: the report of
    ``wasmgym eval`` (``--sequential``: success by position, sequential beside i.i.d.)."""
    return json.loads(_core.eval_scripted(target, tasks=tasks, k=k, seed=seed, sequential=sequential, jobs=jobs))
