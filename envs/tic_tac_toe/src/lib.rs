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

/// The eight lines of three cells that win the game, as bit masks over the cells.
const LINES: [u16; 8] = [0o007, 0o070, 0o700, 0o111, 0o222, 0o444, 0o421, 0o124];

/// Every cell.
const FULL: u16 = 0o777;

/// Which of the 512 sets of cells complete a line: bit `marks % 64` of word `marks / 64`.
const WINNING: [u64; 8] = {
    let mut table = [0u64; 8];
    let mut marks = 0;
    while marks < 512 {
        let mut line = 0;
        while line < LINES.len() {
            if marks & LINES[line] as usize == LINES[line] as usize {
                table[marks / 64] |= 1 << (marks % 64);
            }
            line += 1;
        }
        marks += 1;
    }
    table
};

/// Whether the cells of `marks` complete a line (one table look-up).
fn has_line(marks: u16) -> bool {
    let marks = (marks & FULL) as usize;
    WINNING[marks / 64] >> (marks % 64) & 1 == 1
}

/// A game of tic-tac-toe: the board, each player's cells as a bit mask (for fast rules), whose
/// turn it is and whether the game is over.
#[derive(Clone, Debug)]
pub struct TicTacToe {
    board: [Cell; 9],
    marks: [u16; 2],
    player: u32,
    over: bool,
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
            tools: vec![],
        }
    }

    fn reset(_rng: &mut Rng, _options: &Options) -> Result<Self, EnvError> {
        Ok(TicTacToe { board: [Cell::Empty; 9], marks: [0; 2], player: 0, over: false })
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
        let cell = action.discrete() as usize;
        let mover = self.player as usize;
        self.board[cell] = Cell::of(self.player);
        self.marks[mover] |= 1 << cell;
        self.player = 1 - self.player;
        if has_line(self.marks[mover]) {
            self.over = true;
            let won = if mover == 0 { [1.0, -1.0] } else { [-1.0, 1.0] };
            Ok(Transition::rewards(won).terminal())
        } else {
            self.over = self.marks[0] | self.marks[1] == FULL;
            Ok(Transition::rewards([0.0, 0.0]).terminated_if(self.over))
        }
    }

    fn legal_actions(&self) -> Vec<i64> {
        let mut legal = Vec::with_capacity(9);
        self.legal_actions_into(&mut legal);
        legal
    }

    fn legal_actions_into(&self, out: &mut Vec<i64>) {
        out.clear();
        if !self.over {
            let mut free = !(self.marks[0] | self.marks[1]) & FULL;
            out.reserve(free.count_ones() as usize);
            while free != 0 {
                out.push(i64::from(free.trailing_zeros()));
                free &= free - 1;
            }
        }
    }

    fn state_key(&self) -> Option<Vec<u8>> {
        let mut key: Vec<u8> = self.board.iter().map(|&c| c as u8).collect();
        key.push(self.player as u8);
        Some(key)
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
    fn the_line_table_agrees_with_the_lines() {
        for marks in 0..512u16 {
            let direct = LINES.iter().filter(|&&line| marks & line == line).count() > 0;
            assert_eq!(has_line(marks), direct, "{marks:#o}");
        }
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
