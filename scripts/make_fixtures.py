#!/usr/bin/env python3
"""Writes the reference trajectories in tests/fixtures/ that the environments are checked against.

    python3 -m venv .venv && .venv/bin/pip install -r scripts/requirements.txt
    .venv/bin/python scripts/make_fixtures.py

* tic_tac_toe.jsonl, connect_four.jsonl: 1000 uniformly random games each, played by OpenSpiel.
  One JSON object per line:
    actions      the actions played
    legal_masks  bitmask of the legal actions before each action, then 0 for the end state
    players      the player to move before each action
    returns      OpenSpiel's returns at the end
    observations observation_tensor(0) before each action and at the end, as 0/1 integers
                 (first 20 games only; OpenSpiel's tensor is the same for both players)
* cart_pole.jsonl: 100 Gymnasium CartPole-v1 episodes. The start is env.reset(seed=i) and then
  env.unwrapped.state; every 40th episode follows a balancing controller (so it is truncated at 500
  steps), the others a uniformly random policy. Floats are IEEE-754 bit patterns as 16 hex digits.
    initial_state_bits  [x, x_dot, theta, theta_dot] after reset
    actions             the actions taken
    state_bits          the state after each step
    rewards, terminated, truncated   per step, as Gymnasium returned them
    sin_cos_bits        [np.sin(theta), np.cos(theta)] of the state before each step: the values
                        Gymnasium's step used. numpy takes them from the C library (glibc), whose
                        last bit depends on its version and on the CPU (glibc picks an FMA or an
                        SSE2 code path at load time), so they are recorded rather than recomputed.

The output is a pure function of the pinned package versions and SEED.
"""

import json
import pathlib
import random
import struct

import gymnasium as gym
import numpy as np
import pyspiel

SEED = 20250101
GAMES = 1000
GAMES_WITH_OBSERVATIONS = 20
CART_POLE_EPISODES = 100
BALANCED_EVERY = 40

FIXTURES = pathlib.Path(__file__).resolve().parent.parent / "tests" / "fixtures"


def write_jsonl(name, rows):
    path = FIXTURES / name
    with path.open("w") as f:
        for row in rows:
            f.write(json.dumps(row, separators=(",", ":")) + "\n")
    print(f"wrote {path} ({path.stat().st_size} bytes, {len(rows)} lines)")


def mask(actions):
    return sum(1 << a for a in actions)


def observation(state):
    # Observation tensors are one-hot; integers keep the file small and convert exactly.
    return [int(v) for v in state.observation_tensor(0)]


def board_games(name, rng):
    game = pyspiel.load_game(name)
    rows = []
    for g in range(GAMES):
        state = game.new_initial_state()
        actions, masks, players, observations = [], [], [], []
        while not state.is_terminal():
            legal = state.legal_actions()
            masks.append(mask(legal))
            players.append(state.current_player())
            observations.append(observation(state))
            action = rng.choice(legal)
            actions.append(action)
            state.apply_action(action)
        masks.append(mask(state.legal_actions()))
        observations.append(observation(state))
        row = {"actions": actions, "legal_masks": masks, "players": players, "returns": state.returns()}
        if g < GAMES_WITH_OBSERVATIONS:
            row["observations"] = observations
        rows.append(row)
    return rows


def bits(value):
    return struct.pack(">d", float(value)).hex()


def balance(state):
    """A linear controller that keeps the pole up (and the cart near the centre) for 500 steps."""
    x, x_dot, theta, theta_dot = state
    return int(theta + 0.5 * theta_dot + 0.05 * x + 0.1 * x_dot > 0)


def cart_pole(rng):
    env = gym.make("CartPole-v1")
    rows = []
    for i in range(CART_POLE_EPISODES):
        env.reset(seed=i)
        initial = env.unwrapped.state.copy()
        balanced = i % BALANCED_EVERY == BALANCED_EVERY - 1
        row = {"initial_state_bits": [bits(v) for v in initial], "actions": [], "state_bits": [], "rewards": [],
               "terminated": [], "truncated": []}
        row["sin_cos_bits"] = []
        while True:
            action = balance(env.unwrapped.state) if balanced else rng.randrange(2)
            theta = env.unwrapped.state[2]
            row["sin_cos_bits"].append([bits(np.sin(theta)), bits(np.cos(theta))])
            _, reward, terminated, truncated, _ = env.step(action)
            row["actions"].append(action)
            row["state_bits"].append([bits(v) for v in env.unwrapped.state])
            row["rewards"].append(float(reward))
            row["terminated"].append(bool(terminated))
            row["truncated"].append(bool(truncated))
            if terminated or truncated:
                break
        if balanced:
            assert row["truncated"][-1] and not row["terminated"][-1], f"episode {i}: the controller failed"
        rows.append(row)
    return rows


def main():
    FIXTURES.mkdir(parents=True, exist_ok=True)
    print(f"open_spiel {pyspiel.__version__ if hasattr(pyspiel, '__version__') else '?'}, "
          f"gymnasium {gym.__version__}, numpy {np.__version__}")
    write_jsonl("tic_tac_toe.jsonl", board_games("tic_tac_toe", random.Random(SEED)))
    write_jsonl("connect_four.jsonl", board_games("connect_four", random.Random(SEED + 1)))
    write_jsonl("cart_pole.jsonl", cart_pole(random.Random(SEED + 2)))


if __name__ == "__main__":
    main()
