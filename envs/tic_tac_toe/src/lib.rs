//! Tic-tac-toe with OpenSpiel's rules, action numbering, observation tensor and rendering.
//!
//! * Actions `0..9` are the cells in row-major order (`0` top left, `8` bottom right).
//! * Player 0 moves first and plays `x`; player 1 plays `o`.
//! * The observation is OpenSpiel's `observation_tensor()`: three 3×3 planes of `f32`, one-hot per
//!   cell, in the order *empty*, *o* (player 1), *x* (player 0). It is the same for both players.
//! * Rewards are `[0, 0]` until the terminal step, which gives OpenSpiel's returns: `[1, -1]` when
//!   `x` wins, `[-1, 1]` when `o` wins, `[0, 0]` for a draw.
//! * [`render`](Environment::render) matches OpenSpiel's `str(state)`: three lines of `.`, `x`, `o`.

use wasmgym_sdk::*;

/// What a cell holds; the discriminant is the observation plane (OpenSpiel's `CellState`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Cell {
    Empty = 0,
    Nought = 1,
    Cross = 2,
}

impl Cell {
    /// The mark of `player`: player 0 plays crosses.
    fn of(player: u32) -> Cell {
        if player == 0 { Cell::Cross } else { Cell::Nought }
    }

    fn symbol(self) -> char {
        match self {
            Cell::Empty => '.',
            Cell::Nought => 'o',
            Cell::Cross => 'x',
        }
    }
}

/// The eight lines of three cells that win the game.
const LINES: [[usize; 3]; 8] = [[0, 1, 2], [3, 4, 5], [6, 7, 8], [0, 3, 6], [1, 4, 7], [2, 5, 8], [0, 4, 8], [2, 4, 6]];

/// A game of tic-tac-toe: the board and whose turn it is.
#[derive(Clone, Debug)]
pub struct TicTacToe {
    board: [Cell; 9],
    player: u32,
}

impl TicTacToe {
    fn has_line(&self, cell: Cell) -> bool {
        LINES.iter().any(|line| line.iter().all(|&i| self.board[i] == cell))
    }

    fn is_full(&self) -> bool {
        self.board.iter().all(|&c| c != Cell::Empty)
    }

    /// The game is won by either player or the board is full.
    fn is_over(&self) -> bool {
        self.has_line(Cell::Cross) || self.has_line(Cell::Nought) || self.is_full()
    }
}

impl Environment for TicTacToe {
    fn spec() -> EnvSpec {
        EnvSpec {
            name: "tic_tac_toe".into(),
            version: 1,
            players: 2,
            observation_space: Space::uniform_box(Dtype::F32, &[3, 3, 3], 0.0, 1.0),
            action_space: Space::Discrete { n: 9 },
            reward_range: (-1.0, 1.0),
            max_episode_steps: None,
            determinism: Determinism::Deterministic,
        }
    }

    fn reset(_rng: &mut Rng, _options: &Options) -> Result<Self, EnvError> {
        Ok(TicTacToe { board: [Cell::Empty; 9], player: 0 })
    }

    fn observation(&self) -> Observation {
        let mut planes = vec![0.0f32; 3 * 9];
        for (i, &cell) in self.board.iter().enumerate() {
            planes[cell as usize * 9 + i] = 1.0;
        }
        Observation::F32(planes)
    }

    fn step(&mut self, action: &Action, _rng: &mut Rng) -> Result<Transition, EnvError> {
        // The SDK has checked the action is one of `legal_actions`, so the cell is empty.
        let mark = Cell::of(self.player);
        self.board[action.discrete() as usize] = mark;
        let mover = self.player;
        self.player = 1 - self.player;
        if self.has_line(mark) {
            let won = if mover == 0 { vec![1.0, -1.0] } else { vec![-1.0, 1.0] };
            Ok(Transition::rewards(won).terminal())
        } else {
            Ok(Transition::rewards(vec![0.0, 0.0]).terminated_if(self.is_full()))
        }
    }

    fn legal_actions(&self) -> Vec<i64> {
        if self.is_over() {
            return Vec::new();
        }
        (0..9).filter(|&i| self.board[i] == Cell::Empty).map(|i| i as i64).collect()
    }

    fn current_player(&self) -> u32 {
        self.player
    }

    fn render(&self) -> String {
        self.board
            .chunks(3)
            .map(|row| row.iter().map(|c| c.symbol()).collect::<String>())
            .collect::<Vec<_>>()
            .join("\n")
    }
}

export_env!(TicTacToe);

#[cfg(test)]
mod tests {
    use super::*;

    fn render(runner: &Runner<TicTacToe>) -> String {
        runner.env().unwrap().render()
    }

    #[test]
    fn illegal_action_is_refused_and_state_is_unchanged() {
        let mut runner = Runner::<TicTacToe>::new();
        runner.reset(None, "").unwrap();
        runner.step(&Action::Discrete(4)).unwrap();
        let before = (render(&runner), runner.legal_actions());
        for bad in [4, 9, -1] {
            let err = runner.step(&Action::Discrete(bad)).unwrap_err();
            assert_eq!(format!("{:?}", err.status), "IllegalAction", "{err:?}");
        }
        assert_eq!((render(&runner), runner.legal_actions()), before);
        assert_eq!(runner.env().unwrap().current_player(), 1);
        // The game goes on normally afterwards.
        assert_eq!(runner.step(&Action::Discrete(0)).unwrap().current_player, Some(0));
    }

    #[test]
    fn win_render_and_step_after_terminal() {
        let mut runner = Runner::<TicTacToe>::new();
        runner.reset(None, "").unwrap();
        let mut t = None;
        for a in [0, 3, 1, 4, 2] {
            t = Some(runner.step(&Action::Discrete(a)).unwrap());
        }
        let t = t.unwrap();
        assert!(t.terminated);
        assert_eq!(t.rewards, vec![1.0, -1.0]);
        assert_eq!(render(&runner), "xxx\noo.\n...");
        assert!(runner.legal_actions().is_empty());
        let err = runner.step(&Action::Discrete(5)).unwrap_err();
        assert_eq!(format!("{:?}", err.status), "BadRequest", "{err:?}");
        assert!(err.message.contains("call reset"), "{err:?}");
        // A new episode starts from an empty board.
        runner.reset(None, "").unwrap();
        assert_eq!(render(&runner), "...\n...\n...");
    }

    #[test]
    fn draw_gives_zero_returns() {
        let mut runner = Runner::<TicTacToe>::new();
        runner.reset(None, "").unwrap();
        // x o x / x o o / o x x
        let moves = [0, 1, 2, 4, 3, 5, 7, 6, 8];
        for (i, a) in moves.iter().enumerate() {
            let t = runner.step(&Action::Discrete(*a)).unwrap();
            assert_eq!(t.terminated, i == moves.len() - 1);
            assert_eq!(t.rewards, vec![0.0, 0.0]);
        }
        assert_eq!(render(&runner), "xox\nxoo\noxx");
    }
}
