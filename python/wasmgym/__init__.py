"""wasmgym: reinforcement-learning environments in WebAssembly that snapshot, restore and fork in
microseconds, exactly.

    import gymnasium, wasmgym
    env = gymnasium.make("wasmgym/connect_four-v0")     # or wasmgym.make("connect_four")
    obs, info = env.reset(seed=42)
    branch = env.unwrapped.fork()                      # an independent copy, in microseconds

Modules: ``wasmgym.vector`` (vectorised stepping on Rust threads), ``wasmgym.pettingzoo`` (AEC
environments), ``wasmgym.search`` (MCTS, PUCT, beam, BFS, solve), ``wasmgym.rewards`` (TRL and
verl reward functions), ``wasmgym.trl`` (multi-turn text environments for TRL),
``wasmgym.bench`` (``python -m wasmgym.bench``), ``wasmgym.agents`` (composite agent episodes:
environment, simulated user and checker forking as one; pass^k; sequential suites). Every error is
a ``WasmgymError``.
"""

from __future__ import annotations

import gymnasium

from . import _core
from ._core import (
    ABI_VERSION,
    SNAPSHOT_FORMAT,
    AbiMismatchError,
    AgentError,
    BadSnapshotError,
    Checker,
    DeadlineError,
    GradeError,
    GuestError,
    IllegalActionError,
    InvalidCallError,
    LimitError,
    MemoryCapError,
    MemoryLimitError,
    ModuleError,
    OutOfFuelError,
    PoisonedError,
    SearchError,
    Snapshot,
    TrapError,
    WasmgymError,
    builtin_envs,
)
from . import agents, search, vector
from .env import WasmgymEnv, make
from .grading import Report, Summary, TestResult, grade

__version__: str = _core.__version__

__all__ = [
    "ABI_VERSION",
    "SNAPSHOT_FORMAT",
    "AbiMismatchError",
    "AgentError",
    "BadSnapshotError",
    "Checker",
    "DeadlineError",
    "GradeError",
    "GuestError",
    "IllegalActionError",
    "InvalidCallError",
    "LimitError",
    "MemoryCapError",
    "MemoryLimitError",
    "ModuleError",
    "OutOfFuelError",
    "PoisonedError",
    "Report",
    "SearchError",
    "Snapshot",
    "Summary",
    "TestResult",
    "TrapError",
    "WasmgymEnv",
    "WasmgymError",
    "builtin_envs",
    "grade",
    "make",
    "agents",
    "search",
    "vector",
]


def __getattr__(name: str) -> object:
    """Submodules with optional dependencies (``pettingzoo``) or rarely needed, imported on first use."""
    if name in ("pettingzoo", "rewards", "trl", "bench"):
        import importlib

        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module 'wasmgym' has no attribute {name!r}")


def _register() -> None:
    """Registers ``wasmgym/<name>-v0`` with Gymnasium for every built-in environment."""
    for name in builtin_envs():
        env_id = f"wasmgym/{name}-v0"
        if env_id not in gymnasium.registry:
            gymnasium.register(id=env_id, entry_point="wasmgym.env:WasmgymEnv", kwargs={"source": name})


_register()
