#!/usr/bin/env python3
"""OpenSpiel's C++ MCTS, timed from Python: the peer of `mcts/*/open_spiel` in benches/benches/search.rs.

    openspiel_mcts.py GAME SIMULATIONS SEARCHES SEED
    openspiel_mcts.py --serve GAME SIMULATIONS SEED

GAME is an OpenSpiel game name (tic_tac_toe, connect_four). Builds one `pyspiel.MCTSBot` (the C++
bot, not the Python `open_spiel.python.algorithms.mcts`) with a `RandomRolloutEvaluator` of 1
rollout, UCT c = 2, SIMULATIONS simulations per search, no solver, one thread, and runs SEARCHES
searches (`bot.step`, which searches from scratch each time) from the game's initial state. Only
those searches are timed (time.perf_counter around the loop: not the interpreter's start-up, the
import or the bot's construction). Prints one JSON line:
{"game", "simulations_per_search", "searches", "seconds", "simulations_per_second"}.

With --serve it reads a number of searches per line of stdin and answers each with that JSON line,
with the same bot (its RNG goes on), until stdin closes: the criterion bench keeps one process per
game, so that neither start-up nor a cold first search lands in a sample.

Needs open_spiel 2.0.2 (scripts/get-openspiel.sh makes a venv with it).
"""

import json
import sys
import time

import pyspiel

UCT_C = 2.0
ROLLOUTS = 1
# Far above what a search of a few thousand simulations needs (the bot prunes its tree only past it).
MAX_MEMORY_MB = 1000
SOLVE = False
VERBOSE = False


class Peer:
    def __init__(self, game_name, simulations, seed):
        self.game_name, self.simulations = game_name, simulations
        self.game = pyspiel.load_game(game_name)
        # open_spiel 2.0.2 (python/pybind11/bots.cc): MCTSBot(game, evaluator, uct_c, max_simulations,
        # max_memory_mb, solve, seed, verbose, child_selection_policy=UCT, max_wall_clock_time=-1.0);
        # RandomRolloutEvaluator(n_rollouts, seed).
        evaluator = pyspiel.RandomRolloutEvaluator(ROLLOUTS, seed)
        self.bot = pyspiel.MCTSBot(self.game, evaluator, UCT_C, simulations, MAX_MEMORY_MB, SOLVE, seed, VERBOSE)
        self.state = self.game.new_initial_state()

    def run(self, searches):
        step, state = self.bot.step, self.state
        start = time.perf_counter()
        for _ in range(searches):
            step(state)
        seconds = time.perf_counter() - start
        sims = self.simulations * searches
        return json.dumps({
            "game": self.game_name,
            "simulations_per_search": self.simulations,
            "searches": searches,
            "seconds": seconds,
            "simulations_per_second": sims / seconds if seconds > 0 else None,
        })


def main(argv):
    if len(argv) == 5 and argv[1] == "--serve":
        peer = Peer(argv[2], int(argv[3]), int(argv[4]))
        for line in sys.stdin:
            print(peer.run(int(line)), flush=True)
    elif len(argv) == 5:
        print(Peer(argv[1], int(argv[2]), int(argv[4])).run(int(argv[3])))
    else:
        sys.exit(f"usage: {argv[0]} GAME SIMULATIONS SEARCHES SEED\n       {argv[0]} --serve GAME SIMULATIONS SEED")


if __name__ == "__main__":
    main(sys.argv)
