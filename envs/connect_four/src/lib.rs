//! Connect Four with OpenSpiel's rules, action numbering, observation tensor and rendering.
//!
//! * The board has 6 rows and 7 columns; action `c` in `0..7` drops a disc into column `c`, and the
//!   legal actions are the columns that are not full.
//! * Player 0 moves first and plays `x`; player 1 plays `o`.
//! * Four of one's discs in a row, horizontally, vertically or diagonally, win; a full board without
//!   a line is a draw.
//! * The observation is OpenSpiel's `observation_tensor()` (as of open_spiel 2.0.2): three 6×7
//!   planes of `f32`, one-hot per cell, in the order *x* (player 0), *o* (player 1), *empty*. Rows
//!   run bottom to top (row 0 is where a disc dropped into an empty column lands). It is the same
//!   for both players.
//! * Rewards are `[0, 0]` until the terminal step, which gives OpenSpiel's returns: `[1, -1]` when
//!   `x` wins, `[-1, 1]` when `o` wins, `[0, 0]` for a draw.
//! * [`render`](Environment::render) matches OpenSpiel's `str(state)`: six lines of `.`, `x`, `o`,
//!   top row first, each ending in a newline.

use wasmgym_sdk::*;

/// Number of rows.
pub const ROWS: usize = 6;
/// Number of columns, which is also the number of actions.
pub const COLS: usize = 7;

/// What a cell holds; the discriminant is the observation plane.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Cell {
    Cross = 0,
    Nought = 1,
    Empty = 2,
}

impl Cell {
    fn symbol(self) -> char {
        match self {
            Cell::Empty => '.',
            Cell::Nought => 'o',
            Cell::Cross => 'x',
        }
    }
}

/// Bits per column in a bitboard: the six rows and one always-empty guard bit, so lines never
/// wrap from one column into the next.
const H: usize = ROWS + 1;

/// A game of Connect Four as two bitboards (bit `col * 7 + row`, row 0 at the bottom), one per
/// player, the height of every column and whose turn it is. Lines are found with shifts (the
/// classic bitboard method), so a step costs a few instructions; the observation, rendering and
/// rules are OpenSpiel's.
#[derive(Clone, Debug)]
pub struct ConnectFour {
    discs: [u64; 2],
    heights: [u8; COLS],
    player: u32,
    over: bool,
}

impl ConnectFour {
    /// Whether `board` holds four in a row in any direction.
    fn has_four(board: u64) -> bool {
        [1, H, H - 1, H + 1].iter().any(|&d| {
            let pairs = board & (board >> d);
            pairs & (pairs >> (2 * d)) != 0
        })
    }

    fn cell(&self, row: usize, col: usize) -> Cell {
        let bit = 1u64 << (col * H + row);
        if self.discs[0] & bit != 0 {
            Cell::Cross
        } else if self.discs[1] & bit != 0 {
            Cell::Nought
        } else {
            Cell::Empty
        }
    }

    fn column_is_full(&self, col: usize) -> bool {
        self.heights[col] as usize == ROWS
    }
}

impl Environment for ConnectFour {
    fn spec() -> EnvSpec {
        EnvSpec {
            name: "connect_four".into(),
            version: 1,
            players: 2,
            observation_space: Space::uniform_box(Dtype::F32, &[3, ROWS as u32, COLS as u32], 0.0, 1.0),
            action_space: Space::Discrete { n: COLS as u64 },
            reward_range: (-1.0, 1.0),
            max_episode_steps: None,
            determinism: Determinism::Deterministic,
            tools: vec![],
        }
    }

    fn reset(_rng: &mut Rng, _options: &Options) -> Result<Self, EnvError> {
        Ok(ConnectFour { discs: [0; 2], heights: [0; COLS], player: 0, over: false })
    }

    fn observation(&self) -> Observation {
        let mut planes = vec![0.0f32; 3 * ROWS * COLS];
        for row in 0..ROWS {
            for col in 0..COLS {
                planes[self.cell(row, col) as usize * ROWS * COLS + row * COLS + col] = 1.0;
            }
        }
        Observation::F32(planes)
    }

    fn step(&mut self, action: &Action, _rng: &mut Rng) -> Result<Transition, EnvError> {
        // The SDK has checked the action is one of `legal_actions`, so the column has room.
        let col = action.discrete() as usize;
        let mover = self.player as usize;
        self.discs[mover] |= 1u64 << (col * H + self.heights[col] as usize);
        self.heights[col] += 1;
        self.player = 1 - self.player;
        if Self::has_four(self.discs[mover]) {
            self.over = true;
            let won = if mover == 0 { [1.0, -1.0] } else { [-1.0, 1.0] };
            return Ok(Transition::rewards(won).terminal());
        }
        self.over = self.heights.iter().all(|&h| h as usize == ROWS);
        Ok(Transition::rewards([0.0, 0.0]).terminated_if(self.over))
    }

    fn legal_actions(&self) -> Vec<i64> {
        let mut legal = Vec::with_capacity(COLS);
        self.legal_actions_into(&mut legal);
        legal
    }

    fn legal_actions_into(&self, out: &mut Vec<i64>) {
        out.clear();
        if !self.over {
            out.reserve(COLS);
            for col in 0..COLS {
                if !self.column_is_full(col) {
                    out.push(col as i64);
                }
            }
        }
    }

    fn state_key(&self) -> Option<Vec<u8>> {
        let mut key = Vec::with_capacity(17);
        key.extend_from_slice(&self.discs[0].to_le_bytes());
        key.extend_from_slice(&self.discs[1].to_le_bytes());
        key.push(self.player as u8);
        Some(key)
    }

    fn current_player(&self) -> u32 {
        self.player
    }

    fn render(&self) -> String {
        let mut out = String::with_capacity(ROWS * (COLS + 1));
        for row in (0..ROWS).rev() {
            out.extend((0..COLS).map(|col| self.cell(row, col).symbol()));
            out.push('\n');
        }
        out
    }
}

export_env!(ConnectFour);

#[cfg(test)]
mod tests {
    use super::*;

    fn render(runner: &Runner<ConnectFour>) -> String {
        runner.env().unwrap().render()
    }

    #[test]
    fn full_column_is_illegal_and_state_is_unchanged() {
        let mut runner = Runner::<ConnectFour>::new();
        runner.reset(None, "").unwrap();
        for _ in 0..ROWS {
            runner.step(&Action::Discrete(3)).unwrap();
        }
        assert_eq!(runner.legal_actions(), vec![0, 1, 2, 4, 5, 6]);
        let before = render(&runner);
        for bad in [3, 7, -1] {
            let err = runner.step(&Action::Discrete(bad)).unwrap_err();
            assert_eq!(format!("{:?}", err.status), "IllegalAction", "{err:?}");
        }
        assert_eq!(render(&runner), before);
        assert_eq!(before, "...o...\n...x...\n...o...\n...x...\n...o...\n...x...\n");
        assert_eq!(runner.step(&Action::Discrete(0)).unwrap().current_player, Some(1));
    }

    #[test]
    fn diagonal_win_and_step_after_terminal() {
        let mut runner = Runner::<ConnectFour>::new();
        runner.reset(None, "").unwrap();
        // x builds the rising diagonal (0,0) (1,1) (2,2) (3,3).
        let moves = [0, 1, 1, 2, 2, 3, 2, 3, 3, 6, 3];
        let mut last = None;
        for (i, a) in moves.iter().enumerate() {
            let t = runner.step(&Action::Discrete(*a)).unwrap();
            assert_eq!(t.terminated, i == moves.len() - 1, "move {i}");
            last = Some(t);
        }
        assert_eq!(last.unwrap().rewards, vec![1.0, -1.0]);
        assert_eq!(render(&runner), ".......\n.......\n...x...\n..xx...\n.xxo...\nxooo..o\n");
        assert!(runner.legal_actions().is_empty());
        let err = runner.step(&Action::Discrete(4)).unwrap_err();
        assert_eq!(format!("{:?}", err.status), "BadRequest", "{err:?}");
    }

    #[test]
    fn vertical_win_for_player_one() {
        let mut runner = Runner::<ConnectFour>::new();
        runner.reset(None, "").unwrap();
        let moves = [0, 1, 0, 1, 0, 1, 2, 1];
        let mut last = None;
        for a in moves {
            last = Some(runner.step(&Action::Discrete(a)).unwrap());
        }
        let t = last.unwrap();
        assert!(t.terminated);
        assert_eq!(t.rewards, vec![-1.0, 1.0]);
        assert_eq!(render(&runner), ".......\n.......\n.o.....\nxo.....\nxo.....\nxox....\n");
    }

    #[test]
    fn full_board_without_line_is_a_draw() {
        // Columns filled in pairs so that no four line up: the classic "stripes" pattern.
        let mut runner = Runner::<ConnectFour>::new();
        runner.reset(None, "").unwrap();
        let order = [
            0, 1, 0, 1, 0, 1, 1, 0, 1, 0, 1, 0, 2, 3, 2, 3, 2, 3, 3, 2, 3, 2, 3, 2, 4, 5, 4, 5, 4, 5, 5, 4, 5, 4, 5, 4,
            6, 6, 6, 6, 6, 6,
        ];
        let mut last = None;
        for (i, a) in order.iter().enumerate() {
            let t = runner.step(&Action::Discrete(*a)).unwrap();
            assert_eq!(t.terminated, i == order.len() - 1, "move {i}\n{}", render(&runner));
            last = Some(t);
        }
        assert_eq!(last.unwrap().rewards, vec![0.0, 0.0]);
        assert_eq!(render(&runner), "oxoxoxo\noxoxoxx\noxoxoxo\nxoxoxox\nxoxoxoo\nxoxoxox\n");
    }
}
