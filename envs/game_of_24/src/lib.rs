//! The Game of 24, the search task of Tree of Thoughts (Yao et al., 2023): combine four numbers
//! with `+ - * /` into 24.
//!
//! * State: the remaining numbers, as exact rationals (no floating point anywhere).
//! * Actions are text: `a op b`, with `a` and `b` two of the remaining numbers and `op` one of
//!   `+ - * /`, separated by spaces (extra spaces are fine), for example `4 * 6` or `8 / 1/3`.
//!   Numbers are written as the observation writes them: `7`, `1/3`, `-2`. The two numbers are
//!   replaced by the result. A malformed action, a number that is not among the remaining ones, a
//!   division by zero or an overflow of `i64` is refused as an illegal action and changes nothing.
//! * The observation is the remaining numbers in ascending order, separated by single spaces
//!   (`1 1 4 6`).
//! * Every episode takes exactly three steps. Rewards are 0 until the last one, which gives 1 if
//!   the number left is exactly 24 and 0 otherwise.
//! * Reset options: `{"numbers": [4, 6, 1, 1]}` (four integers in `1..=13`) sets the puzzle;
//!   without it the four numbers are drawn uniformly from `1..=13`.
//! * [`valid_text_actions`](Environment::valid_text_actions) lists every distinct action (`+` and
//!   `*` once per pair, `-` and `/` in both orders, no division by zero);
//!   [`state_key`](Environment::state_key) is the sorted multiset of remaining numbers.
//!
//! [`solve`] is a native brute-force solver in the same action syntax.

use std::cmp::Ordering;
use std::fmt;

use wasmgym_sdk::*;

/// The characters an action may use.
const ACTION_CHARSET: &str = "0123456789 +-*/";

/// What reset options are expected, for error messages.
const EXPECTED_OPTIONS: &str =
    r#"pass {"numbers": [a, b, c, d]} with four integers in 1..=13, or no options for a random puzzle"#;

/// An exact rational number: reduced, with a positive denominator.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
struct Rational {
    num: i64,
    den: i64,
}

impl Rational {
    fn int(n: i64) -> Self {
        Rational { num: n, den: 1 }
    }

    /// `num / den` reduced, or `None` if `den` is zero or the reduced value does not fit `i64`.
    fn new(num: i128, den: i128) -> Option<Self> {
        if den == 0 {
            return None;
        }
        let g = gcd(num.unsigned_abs(), den.unsigned_abs()) as i128; // >= 1 since den != 0
        let sign = if den < 0 { -1 } else { 1 };
        let (num, den) = (sign * num / g, sign * den / g);
        Some(Rational { num: i64::try_from(num).ok()?, den: i64::try_from(den).ok()? })
    }

    /// The result of `self op other`, or `None` on division by zero or overflow.
    fn apply(self, op: Op, other: Rational) -> Option<Rational> {
        let (a, b, c, d) = (self.num as i128, self.den as i128, other.num as i128, other.den as i128);
        match op {
            Op::Add => Rational::new(a * d + c * b, b * d),
            Op::Sub => Rational::new(a * d - c * b, b * d),
            Op::Mul => Rational::new(a * c, b * d),
            Op::Div => Rational::new(a * d, b * c),
        }
    }

    /// Parses `7`, `-2` or `1/3` exactly (any equal fraction such as `2/6` names the same value).
    fn parse(text: &str) -> Option<Rational> {
        let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
        let (sign, body) = match text.strip_prefix('-') {
            Some(rest) => (-1, rest),
            None => (1, text),
        };
        let (num, den) = body.split_once('/').unwrap_or((body, "1"));
        if !digits(num) || !digits(den) {
            return None;
        }
        Rational::new(sign * num.parse::<i128>().ok()?, den.parse::<i128>().ok()?)
    }
}

impl Ord for Rational {
    fn cmp(&self, other: &Self) -> Ordering {
        // Denominators are positive, so cross-multiplying keeps the order; i128 cannot overflow.
        (self.num as i128 * other.den as i128).cmp(&(other.num as i128 * self.den as i128))
    }
}

impl PartialOrd for Rational {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl fmt::Display for Rational {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.den == 1 { write!(f, "{}", self.num) } else { write!(f, "{}/{}", self.num, self.den) }
    }
}

fn gcd(mut a: u128, mut b: u128) -> u128 {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

/// An arithmetic operation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Op {
    Add,
    Sub,
    Mul,
    Div,
}

impl Op {
    fn parse(text: &str) -> Option<Op> {
        match text {
            "+" => Some(Op::Add),
            "-" => Some(Op::Sub),
            "*" => Some(Op::Mul),
            "/" => Some(Op::Div),
            _ => None,
        }
    }

    fn symbol(self) -> char {
        match self {
            Op::Add => '+',
            Op::Sub => '-',
            Op::Mul => '*',
            Op::Div => '/',
        }
    }
}

/// The numbers `numbers` without one copy each of `a` and `b`, or `None` if they are not there.
fn without(numbers: &[Rational], a: Rational, b: Rational) -> Option<Vec<Rational>> {
    let mut rest = numbers.to_vec();
    for x in [a, b] {
        let i = rest.iter().position(|&n| n == x)?;
        rest.remove(i);
    }
    Some(rest)
}

/// Every distinct action from `numbers` (sorted), with the sorted numbers it leaves.
fn successors(numbers: &[Rational]) -> Vec<(String, Vec<Rational>)> {
    let mut out: Vec<(String, Vec<Rational>)> = Vec::new();
    for i in 0..numbers.len() {
        for j in i + 1..numbers.len() {
            let (a, b) = (numbers[i], numbers[j]);
            let candidates =
                [(a, Op::Add, b), (a, Op::Mul, b), (a, Op::Sub, b), (b, Op::Sub, a), (a, Op::Div, b), (b, Op::Div, a)];
            for (x, op, y) in candidates {
                let action = format!("{x} {} {y}", op.symbol());
                let Some(result) = x.apply(op, y) else { continue };
                if out.iter().any(|(seen, _)| *seen == action) {
                    continue;
                }
                let mut rest = without(numbers, x, y).expect("x and y are taken from numbers");
                let at = rest.partition_point(|&n| n < result);
                rest.insert(at, result);
                out.push((action, rest));
            }
        }
    }
    out
}

/// Finds actions (in the environment's syntax) that turn `numbers` into exactly 24, or `None` if
/// no sequence does. Tries every pair and operation on exact rationals, so `[3, 3, 8, 8]` is solved
/// by `8 / 3`, `3 - 8/3`, `8 / 1/3`.
pub fn solve(numbers: &[i64]) -> Option<Vec<String>> {
    let mut start: Vec<Rational> = numbers.iter().map(|&n| Rational::int(n)).collect();
    start.sort();
    search(&start)
}

fn search(numbers: &[Rational]) -> Option<Vec<String>> {
    if numbers.len() == 1 {
        return (numbers[0] == Rational::int(24)).then(Vec::new);
    }
    successors(numbers).into_iter().find_map(|(action, rest)| {
        let mut plan = search(&rest)?;
        plan.insert(0, action);
        Some(plan)
    })
}

/// A Game of 24 puzzle: the numbers left, in ascending order.
#[derive(Clone, Debug)]
pub struct GameOf24 {
    numbers: Vec<Rational>,
}

impl GameOf24 {
    /// The numbers from the reset options, `None` if the options do not set them.
    fn numbers_from(options: &Options) -> Result<Option<Vec<i64>>, EnvError> {
        let map = match options {
            Options::Null => return Ok(None),
            Options::Object(map) => map,
            other => {
                return Err(EnvError::caller(format!(
                    "reset options must be a JSON object, got {other}: {EXPECTED_OPTIONS}"
                )));
            }
        };
        if let Some(key) = map.keys().find(|k| *k != "numbers") {
            return Err(EnvError::caller(format!("unknown reset option {key:?}: {EXPECTED_OPTIONS}")));
        }
        let Some(value) = map.get("numbers") else { return Ok(None) };
        let numbers = value
            .as_array()
            .filter(|a| a.len() == 4)
            .and_then(|a| a.iter().map(|v| v.as_i64().filter(|n| (1..=13).contains(n))).collect::<Option<Vec<_>>>());
        match numbers {
            Some(numbers) => Ok(Some(numbers)),
            None => Err(EnvError::caller(format!("reset option \"numbers\" is {value}: {EXPECTED_OPTIONS}"))),
        }
    }

    /// The remaining numbers as the observation writes them.
    fn text(&self) -> String {
        self.numbers.iter().map(|n| n.to_string()).collect::<Vec<_>>().join(" ")
    }

    /// The numbers left after `action`, or why the action is refused.
    fn after(&self, action: &str) -> Result<Vec<Rational>, EnvError> {
        let malformed = || {
            EnvError::caller(format!(
                "malformed action {action:?}: write `a op b` with spaces around the operator (+ - * /), \
                 the numbers as the observation writes them, e.g. `4 * 6` or `8 / 1/3`"
            ))
        };
        let [a, op, b] = action.split_whitespace().collect::<Vec<_>>()[..] else { return Err(malformed()) };
        let (Some(x), Some(op), Some(y)) = (Rational::parse(a), Op::parse(op), Rational::parse(b)) else {
            return Err(malformed());
        };
        let mut rest = without(&self.numbers, x, y).ok_or_else(|| {
            EnvError::caller(format!(
                "{action:?} uses a number that is not left (left: {}): combine two of the remaining numbers",
                self.text()
            ))
        })?;
        if op == Op::Div && y.num == 0 {
            return Err(EnvError::caller(format!("{action:?} divides by zero: divide by a nonzero number")));
        }
        let result = x.apply(op, y).ok_or_else(|| {
            EnvError::caller(format!("{action:?} overflows 64-bit integers: choose another operation"))
        })?;
        let at = rest.partition_point(|&n| n < result);
        rest.insert(at, result);
        Ok(rest)
    }
}

impl Environment for GameOf24 {
    fn spec() -> EnvSpec {
        EnvSpec {
            name: "game_of_24".into(),
            version: 1,
            players: 1,
            observation_space: Space::Text { max_length: 64, charset: Some("0123456789 -/".into()) },
            action_space: Space::Text { max_length: 32, charset: Some(ACTION_CHARSET.into()) },
            reward_range: (0.0, 1.0),
            // Every episode ends on its third step by the rules; a limit of 3 would also mark
            // that step truncated (Gymnasium's TimeLimit), which it is not.
            max_episode_steps: None,
            determinism: Determinism::Deterministic,
            tools: vec![],
        }
    }

    fn reset(rng: &mut Rng, options: &Options) -> Result<Self, EnvError> {
        let numbers = match Self::numbers_from(options)? {
            Some(numbers) => numbers,
            None => (0..4).map(|_| 1 + rng.below(13) as i64).collect(),
        };
        let mut numbers: Vec<Rational> = numbers.into_iter().map(Rational::int).collect();
        numbers.sort();
        Ok(GameOf24 { numbers })
    }

    fn observation(&self) -> Observation {
        Observation::Text(self.text())
    }

    fn step(&mut self, action: &Action, _rng: &mut Rng) -> Result<Transition, EnvError> {
        self.numbers = self.after(action.text())?;
        if let [last] = self.numbers[..] {
            let won = last == Rational::int(24);
            return Ok(Transition::reward(if won { 1.0 } else { 0.0 }).terminal());
        }
        Ok(Transition::reward(0.0))
    }

    fn render(&self) -> String {
        format!("left: {}", self.text())
    }

    fn valid_text_actions(&self) -> Vec<String> {
        successors(&self.numbers).into_iter().map(|(action, _)| action).collect()
    }

    /// Each remaining number as numerator and denominator (`i64`, little-endian), ascending.
    fn state_key(&self) -> Option<Vec<u8>> {
        Some(self.numbers.iter().flat_map(|n| [n.num.to_le_bytes(), n.den.to_le_bytes()]).flatten().collect())
    }
}

export_env!(GameOf24);

#[cfg(test)]
mod tests {
    use super::*;

    fn started(numbers: &str) -> Runner<GameOf24> {
        let mut runner = Runner::<GameOf24>::new();
        runner.reset(None, &format!(r#"{{"numbers": [{numbers}]}}"#)).unwrap();
        runner
    }

    /// A text observation (encoded as its UTF-8 bytes).
    fn text(t: &StepResult) -> String {
        String::from_utf8(t.observation.clone()).unwrap()
    }

    /// Plays `plan` and returns the final reward.
    fn play(numbers: &[i64], plan: &[String]) -> f64 {
        let list = numbers.iter().map(|n| n.to_string()).collect::<Vec<_>>().join(",");
        let mut runner = started(&list);
        let mut last = None;
        for action in plan {
            last = Some(runner.step(&Action::Text(action.clone())).unwrap());
        }
        let last = last.unwrap();
        assert!(last.terminated, "{plan:?} did not end the episode");
        last.rewards[0]
    }

    #[test]
    fn rationals_are_exact_and_canonical() {
        let third = Rational::parse("1/3").unwrap();
        assert_eq!(Rational::parse("2/6"), Some(third));
        assert_eq!(Rational::parse("-4/2"), Some(Rational::int(-2)));
        assert_eq!(third.apply(Op::Mul, Rational::int(3)), Some(Rational::int(1)));
        assert_eq!(Rational::int(1).apply(Op::Div, Rational::int(-3)).unwrap().to_string(), "-1/3");
        assert_eq!(Rational::int(1).apply(Op::Div, Rational::int(0)), None);
        assert_eq!(Rational::int(i64::MAX).apply(Op::Add, Rational::int(1)), None);
        for bad in ["", "-", "1/", "/3", "1/0", "1.5", "--1", "+1", "1/-3", "1/3/4"] {
            assert_eq!(Rational::parse(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn known_puzzles() {
        for (numbers, solvable) in [([1, 1, 4, 6], true), ([3, 3, 8, 8], true), ([1, 1, 1, 1], false)] {
            let plan = solve(&numbers);
            assert_eq!(plan.is_some(), solvable, "{numbers:?}");
            if let Some(plan) = plan {
                assert_eq!(play(&numbers, &plan), 1.0, "{numbers:?}: {plan:?}");
            }
        }
        // 3 3 8 8 needs a fraction: 8 / (3 - 8/3).
        let plan = solve(&[3, 3, 8, 8]).unwrap();
        assert!(plan.iter().any(|a| a.contains("/3")), "{plan:?}");
    }

    #[test]
    fn every_puzzle_of_1_to_13_is_solved_or_unsolvable() {
        // 1362 of the 1820 multisets of four numbers in 1..=13 reach 24 (4nums.com).
        let mut solvable = 0;
        for a in 1..=13 {
            for b in a..=13 {
                for c in b..=13 {
                    for d in c..=13 {
                        if let Some(plan) = solve(&[a, b, c, d]) {
                            solvable += 1;
                            assert_eq!(play(&[d, b, a, c], &plan), 1.0, "{a} {b} {c} {d}: {plan:?}");
                        }
                    }
                }
            }
        }
        assert_eq!(solvable, 1362);
    }

    #[test]
    fn observation_and_actions_fit_their_spaces() {
        // The longest numbers come from the largest inputs; every reachable state of these puzzles
        // must fit the observation space and list actions that fit the action space.
        let spec = GameOf24::spec();
        fn visit(numbers: &[Rational], spec: &EnvSpec) {
            let env = GameOf24 { numbers: numbers.to_vec() };
            env.observation().check_in(&spec.observation_space).unwrap();
            for (action, rest) in successors(numbers) {
                // An action must fit the action space as an observation fits its own.
                Observation::Text(action.clone()).check_in(&spec.action_space).unwrap();
                assert_eq!(env.after(&action).unwrap(), rest, "{action}");
                visit(&rest, spec);
            }
        }
        for numbers in [[13, 13, 13, 13], [11, 12, 13, 13], [7, 11, 12, 13], [1, 11, 12, 13]] {
            visit(&numbers.map(Rational::int), &spec);
        }
    }

    #[test]
    fn valid_actions_are_distinct_and_deterministic() {
        let runner = started("1,1,4,6");
        let env = runner.env().unwrap();
        let actions = env.valid_text_actions();
        assert_eq!(&actions[..6], ["1 + 1", "1 * 1", "1 - 1", "1 / 1", "1 + 4", "1 * 4"]);
        let mut distinct = actions.clone();
        distinct.sort();
        distinct.dedup();
        assert_eq!(distinct.len(), actions.len());
        // Three distinct pairs with zero-free values: (1,1) gives 4 strings, (1,4) and (1,6) and
        // (4,6) give 6 each.
        assert_eq!(actions.len(), 4 + 6 * 3);
        assert_eq!(actions, started("6,4,1,1").env().unwrap().valid_text_actions());
        // No division by zero once a 0 exists.
        let mut runner = started("1,1,4,6");
        runner.step(&Action::Text("1 - 1".into())).unwrap();
        let actions = runner.env().unwrap().valid_text_actions();
        assert!(!actions.contains(&"4 / 0".to_string()) && actions.contains(&"0 / 4".to_string()));
    }

    #[test]
    fn steps_observations_and_state_keys() {
        let mut runner = started("4,6,1,1");
        assert_eq!(runner.render().unwrap(), "left: 1 1 4 6");
        let key = runner.env().unwrap().state_key();
        let t = runner.step(&Action::Text("  1   +  1 ".into())).unwrap();
        assert_eq!((text(&t), t.rewards.clone(), t.terminated), ("2 4 6".into(), vec![0.0], false));
        let t = runner.step(&Action::Text("6 / 4".into())).unwrap();
        assert_eq!(text(&t), "3/2 2");
        assert_ne!(runner.env().unwrap().state_key(), key);
        let t = runner.step(&Action::Text("3/2 * 2".into())).unwrap();
        assert_eq!((text(&t), t.rewards.clone(), t.terminated), ("3".into(), vec![0.0], true));
        assert!(runner.env().unwrap().valid_text_actions().is_empty());
    }

    #[test]
    fn equal_multisets_have_equal_keys() {
        let mut a = started("1,2,3,4");
        a.step(&Action::Text("1 + 2".into())).unwrap(); // 3 3 4
        let mut b = started("1,3,3,4");
        b.step(&Action::Text("1 * 3".into())).unwrap(); // 3 3 4
        assert_eq!(a.env().unwrap().state_key(), b.env().unwrap().state_key());
        assert_eq!(a.env().unwrap().valid_text_actions(), b.env().unwrap().valid_text_actions());
    }

    #[test]
    fn refused_actions_leave_the_state_unchanged() {
        let mut runner = started("1,1,4,6");
        runner.step(&Action::Text("1 - 1".into())).unwrap(); // 0 4 6
        let before = runner.render().unwrap();
        let refused = [
            ("4 / 0", "divides by zero"),
            ("5 + 6", "not left"),
            ("4 + 4", "not left"),
            ("4 +", "malformed"),
            ("4+6", "malformed"),
            ("4 + 6 + 0", "malformed"),
            ("", "malformed"),
            ("4 ^ 6", "charset"),
            ("4 + 66666666666666666666666666666", "more than the maximum"),
        ];
        for (action, why) in refused {
            let err = runner.step(&Action::Text(action.into())).unwrap_err();
            assert_eq!(format!("{:?}", err.status), "IllegalAction", "{action:?}: {err:?}");
            assert!(err.message.contains(why), "{action:?}: {err:?}");
            assert_eq!(runner.render().unwrap(), before);
        }
        assert_eq!(text(&runner.step(&Action::Text("0 + 4".into())).unwrap()), "4 6");
    }

    #[test]
    fn seeded_resets_are_deterministic() {
        let first = |seed| text(&Runner::<GameOf24>::new().reset(Some(seed), "").unwrap());
        assert_eq!(first(7), first(7));
        let puzzles: std::collections::BTreeSet<String> = (0..20).map(first).collect();
        assert!(puzzles.len() > 10, "{puzzles:?}");
        for puzzle in &puzzles {
            let numbers: Vec<i64> = puzzle.split(' ').map(|n| n.parse().unwrap()).collect();
            assert!(numbers.len() == 4 && numbers.iter().all(|n| (1..=13).contains(n)), "{puzzle}");
        }
    }

    #[test]
    fn bad_options_are_refused() {
        for options in [
            r#"{"numbers": [1, 2, 3]}"#,
            r#"{"numbers": [0, 1, 2, 3]}"#,
            r#"{"numbers": [1, 2, 3, 14]}"#,
            r#"{"numbers": [1.5, 2, 3, 4]}"#,
            r#"{"numbers": "1 2 3 4"}"#,
            r#"{"number": [1, 2, 3, 4]}"#,
            r#"[1, 2, 3, 4]"#,
        ] {
            let err = Runner::<GameOf24>::new().reset(None, options).unwrap_err();
            assert_eq!(format!("{:?}", err.status), "BadRequest", "{options}: {err:?}");
            assert!(err.message.contains("four integers in 1..=13"), "{options}: {err:?}");
        }
        let t = Runner::<GameOf24>::new().reset(Some(3), "{}").unwrap();
        assert_eq!(text(&t).split(' ').count(), 4);
    }
}
