"""Tree search on forks from Python: MCTS (UCT), PUCT with a batched Python policy/value, beam
and breadth-first search with Python proposers and value functions, and exhaustive ``solve``.

Every search starts at the environment's current state and leaves it there, and is a function
of its ``seed``: the same call gives the same result in any process. Results are dicts (their
JSON form, as ``wasmgym search --json`` prints)."""

from __future__ import annotations

from typing import Any, Callable, Sequence

from . import _core

Leaf = dict[str, Any]
"""What PUCT's ``evaluate`` gets per leaf: ``observation``, ``actions`` (legal here), ``player``."""


def _native(env: Any) -> _core.Env:
    native = getattr(env, "native", env)
    if not isinstance(native, _core.Env):
        raise TypeError(f"search needs a wasmgym env (wasmgym.make(...) or wasmgym._core.Env), not {type(env).__name__}")
    return native


def _branch(env: Any) -> Any:
    """What beam and breadth-first search run on: an env, or a composite agent episode."""
    composite = getattr(env, "_c", None)
    if isinstance(composite, _core.Composite):
        return composite
    return _native(env)


def mcts(
    env: Any,
    *,
    simulations: int = 1000,
    exploration: float = 2**0.5,
    max_rollout_steps: int = 1000,
    seed: int = 0,
    temperature: float = 0.0,
    trees: int = 1,
    threads: int = 1,
    transpositions: bool = False,
) -> dict[str, Any]:
    """UCT with random rollouts played inside the guest. ``trees`` independent trees (root
    parallelism) are spread over ``threads`` threads; the result depends on ``trees``, never on
    ``threads``. Returns ``{"action", "value", "children": [{"action", "visits", "mean_value",
    "prior"}], "simulations", "nodes", "states", "snapshots", "seconds"}``."""
    return _core.mcts(
        _native(env),
        simulations=simulations,
        exploration=exploration,
        max_rollout_steps=max_rollout_steps,
        seed=seed,
        temperature=temperature,
        trees=trees,
        threads=threads,
        transpositions=transpositions,
    )


def puct(
    env: Any,
    evaluate: Callable[[list[Leaf]], Sequence[Any]],
    *,
    simulations: int = 800,
    exploration: float = 1.25,
    batch_size: int = 8,
    max_rollout_steps: int = 1000,
    seed: int = 0,
    temperature: float = 0.0,
    trees: int = 1,
    dirichlet_alpha: float | None = None,
    dirichlet_fraction: float = 0.25,
) -> dict[str, Any]:
    """PUCT (AlphaZero's selection). ``evaluate(leaves)`` is called with up to ``batch_size`` leaves
    at once (collected with a virtual loss) and returns one evaluation per leaf: ``(priors,
    value)``, a dict with those keys, a bare value, or None. ``priors`` weight the leaf's
    ``actions`` (None: uniform); ``value`` is for the player to move there, in the rewards' scale
    (None: a random rollout decides). An exception in ``evaluate`` stops the search and is raised."""
    return _core.puct(
        _native(env),
        evaluate,
        simulations=simulations,
        exploration=exploration,
        batch_size=batch_size,
        max_rollout_steps=max_rollout_steps,
        seed=seed,
        temperature=temperature,
        trees=trees,
        dirichlet_alpha=dirichlet_alpha,
        dirichlet_fraction=dirichlet_fraction,
    )


def beam(
    env: Any,
    *,
    width: int = 5,
    depth: int = 10,
    propose: Callable[[dict[str, Any]], Sequence[Any]] | None = None,
    evaluate: Callable[[list[dict[str, Any]]], Sequence[float]] | None = None,
    key: str = "env",
    max_nodes: int = 200_000,
    results: int = 5,
) -> dict[str, Any]:
    """Beam search (Tree-of-Thoughts): at each depth every proposed action of the kept states, then
    the ``width`` best by ``evaluate`` (default: the return so far). ``propose(state)`` gets
    ``{"observation", "actions"}`` and returns the actions to try (an LLM proposing steps);
    ``evaluate(states)`` gets a depth's states (``{"actions", "return", "terminal",
    "observation"}``) and returns one value each (a value model, an LLM judge, process rewards).
    Transpositions are merged by ``key``: "env" (the environment's state key), "observation" or
    "machine". Returns ``{"trajectories": [{"actions", "return", "score", "terminal"}], "nodes",
    "distinct_states", "merged", "refused", "complete", "seconds"}``."""
    return _core.tree_search(
        _branch(env), width=width, depth=depth, propose=propose, evaluate=evaluate, key=key,
        max_nodes=max_nodes, results=results,
    )


def bfs(
    env: Any,
    *,
    depth: int = 10,
    propose: Callable[[dict[str, Any]], Sequence[Any]] | None = None,
    evaluate: Callable[[list[dict[str, Any]]], Sequence[float]] | None = None,
    key: str = "env",
    max_nodes: int = 200_000,
    results: int = 5,
) -> dict[str, Any]:
    """Breadth-first search of every proposed action of every state to ``depth``, transpositions
    merged (``complete`` says whether it finished within ``max_nodes``). As ``beam`` otherwise.
    Both also run on a ``wasmgym.agents.Composite`` (the whole conversation is the state)."""
    return _core.tree_search(
        _branch(env), width=None, depth=depth, propose=propose, evaluate=evaluate, key=key,
        max_nodes=max_nodes, results=results,
    )


def solve(env: Any, *, key: str = "env", max_nodes: int = 5_000_000) -> dict[str, Any]:
    """Every state reachable from here, each distinct state solved once: ``{"values"`` (each
    player's return under perfect play), ``"action"`` (a best move), ``"distinct_states"``,
    ``"nodes"``, ``"seconds"}``."""
    return _core.solve(_native(env), key=key, max_nodes=max_nodes)


def selfplay(
    source: str,
    *,
    games: int = 10,
    simulations: int = 200,
    exploration: float = 2**0.5,
    temperature_moves: int = 0,
    seed: int = 0,
    max_moves: int = 10_000,
    trees: int = 1,
    threads: int = 1,
) -> dict[str, Any]:
    """AlphaZero-style self-play data: ``games`` games of a built-in (by name) or ``.wasm`` environment
    against itself, every move chosen by UCT MCTS (the first ``temperature_moves`` of each game drawn
    in proportion to visits). Returns arrays with one row per move: ``observation``, ``legal_mask``
    (bool), ``policy`` (the visit distribution over the action space), ``action``, ``player``,
    ``outcome`` (that player's return from the move to the end), ``game``, ``move_index`` and ``seed``
    (``reset(seed)`` and the actions replay the game). A function of ``seed``."""
    import numpy as np

    rows = _core.selfplay(
        source, games=games, simulations=simulations, exploration=exploration,
        temperature_moves=temperature_moves, seed=seed, max_moves=max_moves, trees=trees, threads=threads,
    )
    names = ("game", "move_index", "seed", "observation", "legal_mask", "policy", "action", "player", "outcome")
    dtypes = {"legal_mask": np.bool_, "policy": np.float64, "outcome": np.float64, "seed": np.uint64}
    columns = list(zip(*rows)) if rows else [()] * len(names)
    out: dict[str, Any] = {}
    for name, column in zip(names, columns):
        if name == "observation" and column and isinstance(column[0], str):
            out[name] = list(column)
        else:
            out[name] = np.asarray(column, dtype=dtypes.get(name, np.int64 if name != "observation" else None))
    return out
