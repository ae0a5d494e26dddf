"""Search from Python: MCTS, PUCT with a Python evaluator called on batches, beam, BFS, solve."""

import numpy as np
import pytest

import wasmgym
import wasmgym.search as search


def connect_four(moves=(3, 3, 2)):
    env = wasmgym.make("connect_four")
    env.reset(seed=0)
    for m in moves:
        env.step(m)
    return env


def test_mcts_is_a_function_of_its_seed_and_leaves_the_env_alone() -> None:
    env = connect_four()
    before = env.state_hash()
    a = search.mcts(env, simulations=300, seed=4)
    b = search.mcts(env, simulations=300, seed=4, threads=2)
    assert env.state_hash() == before
    assert a["children"] == b["children"] and a["action"] == b["action"]
    assert sum(c["visits"] for c in a["children"]) == 300
    trees = search.mcts(env, simulations=300, seed=4, trees=2, threads=2)
    assert sum(c["visits"] for c in trees["children"]) == 300


def test_mcts_finds_the_winning_move() -> None:
    env = wasmgym.make("tic_tac_toe")
    env.reset(seed=0)
    for m in (0, 3, 1, 4):  # x to play 2 and win
        env.step(m)
    assert search.mcts(env, simulations=400, seed=0)["action"] == 2


def test_puct_calls_the_evaluator_on_batches_and_uses_its_priors() -> None:
    env = connect_four()
    batches = []

    def evaluate(leaves):
        batches.append(len(leaves))
        out = []
        for leaf in leaves:
            assert leaf["observation"].shape == (3, 6, 7)
            priors = [10.0 if a == 6 else 1.0 for a in leaf["actions"]]
            out.append((priors, 0.0))
        return out

    result = search.puct(env, evaluate, simulations=64, batch_size=8, seed=0)
    assert max(batches) == 8 and sum(batches) >= 64 // 8
    visits = {c["action"]: c["visits"] for c in result["children"]}
    assert visits[6] == max(visits.values())
    prior = {c["action"]: c["prior"] for c in result["children"]}
    assert prior[6] == pytest.approx(10 / 16)


def test_puct_evaluator_errors_reach_python() -> None:
    env = connect_four()

    def boom(leaves):
        raise RuntimeError("the network is down")

    with pytest.raises(RuntimeError, match="the network is down"):
        search.puct(env, boom, simulations=10)
    with pytest.raises(wasmgym.SearchError, match="evaluations for"):
        search.puct(env, lambda leaves: [], simulations=10)
    with pytest.raises(wasmgym.SearchError, match="prior"):
        search.puct(env, lambda leaves: [([-1.0] * len(l["actions"]), 0.0) for l in leaves], simulations=10)


def test_bfs_solves_game_of_24_and_beam_uses_the_python_value() -> None:
    env = wasmgym.make("game_of_24")
    env.reset(seed=3)
    found = search.bfs(env, depth=3)
    best = found["trajectories"][0]
    assert best["terminal"] and best["return"] == 1.0
    replay = wasmgym.make("game_of_24")
    replay.reset(seed=3)
    for action in best["actions"]:
        _, reward, terminated, _, _ = replay.step(action)
    assert terminated and reward == 1.0

    seen = []

    def value(states):
        seen.append(len(states))
        return [float(s["return"]) - 0.01 * len(str(s["observation"])) for s in states]

    def propose(state):
        return [a for a in state["actions"] if "+" in a or "*" in a]

    result = search.beam(env, width=3, depth=3, evaluate=value, propose=propose)
    assert seen and all(
        all(("+" in a or "*" in a) for a in t["actions"]) for t in result["trajectories"]
    )


def test_solve_tic_tac_toe_is_a_draw() -> None:
    env = wasmgym.make("tic_tac_toe")
    env.reset(seed=0)
    solved = search.solve(env)
    assert solved["values"] == [0.0, 0.0] and solved["distinct_states"] == 5478


def test_search_refuses_a_finished_episode() -> None:
    env = wasmgym.make("tic_tac_toe")
    with pytest.raises(wasmgym.SearchError, match="reset"):
        search.mcts(env, simulations=10)
    with pytest.raises(ValueError):
        search.mcts(connect_four(), simulations=0)
    with pytest.raises(TypeError):
        search.mcts("connect_four")


def test_beam_callback_errors_reach_python_as_raised() -> None:
    env = wasmgym.make("game_of_24")
    env.reset(seed=3)

    def propose(state):
        raise LookupError("the proposer failed")

    with pytest.raises(LookupError, match="the proposer failed"):
        search.beam(env, width=2, depth=2, propose=propose)
    with pytest.raises(ZeroDivisionError):
        search.beam(env, width=2, depth=2, evaluate=lambda states: [1 / 0 for _ in states])
    assert search.bfs(env, depth=1)["nodes"] > 0  # the env is usable after


def test_selfplay_data_replays_and_is_a_function_of_the_seed() -> None:
    data = search.selfplay("tic_tac_toe", games=3, simulations=50, temperature_moves=2, seed=9)
    again = search.selfplay("tic_tac_toe", games=3, simulations=50, temperature_moves=2, seed=9)
    n = len(data["action"])
    assert data["observation"].shape == (n, 3, 3, 3) and data["policy"].shape == (n, 9)
    assert all(np.array_equal(data[k], again[k]) for k in data)
    assert np.allclose(data["policy"].sum(axis=1), 1.0)
    assert not (data["policy"] * ~data["legal_mask"]).any()
    for game in range(3):
        rows = np.flatnonzero(data["game"] == game)
        env = wasmgym.make("tic_tac_toe")
        env.reset(seed=int(data["seed"][rows[0]]))
        for r in rows:
            assert np.array_equal(env.native.observe(), data["observation"][r])
            _, reward, terminated, _, info = env.step(int(data["action"][r]))
        assert terminated
        final = info["rewards"]
        for r in rows:  # tic-tac-toe pays only at the end: the outcome is the final reward
            assert data["outcome"][r] == final[data["player"][r]]
