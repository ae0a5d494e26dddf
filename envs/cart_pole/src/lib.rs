//! CartPole-v1 with Gymnasium 1.4.0's dynamics, operation for operation.
//!
//! A pole is hinged on a cart that moves along a frictionless track; each step pushes the cart left
//! (action `0`) or right (action `1`) with a fixed force. The reward is `1.0` for every step,
//! including the one that ends the episode. The episode terminates when the cart leaves
//! `[-2.4, 2.4]` or the pole tilts more than 12° from upright, and the SDK truncates it after 500
//! steps.
//!
//! The observation is the state `[x, x_dot, theta, theta_dot]` as `f64` (Gymnasium's internal
//! state; its own observation is that state rounded to `f32`).
//!
//! # Exactness
//!
//! From the same state and actions, a trajectory is Gymnasium's bit for bit: every state, reward
//! and flag, and the step where the episode ends (the tests replay 100 Gymnasium episodes, 3135
//! steps, natively and in the sandbox).
//!
//! The physics is Gymnasium's `CartPoleEnv.step` with the Euler integrator, with every operation in
//! the same order as the Python source; given the same `sin` and `cos` of the angle, every state is
//! identical to Gymnasium's.
//!
//! Gymnasium takes `sin` and `cos` from the C library, whose last bit depends on the library and
//! even on the CPU: glibc 2.36 on x86-64 picks an FMA code path or an SSE2/AVX one when it loads,
//! and they disagree on about 0.1% of the angles a CartPole episode visits. The reference is
//! glibc's FMA path, the one any x86-64 CPU with FMA and AVX2 gets. [`trig`] reproduces it bit for
//! bit in portable Rust for `|theta| < 0.85546875` rad (four times the 12° at which an episode
//! terminates), computing its fused multiply-adds correctly rounded (`libm::fma` natively, relaxed
//! SIMD's deterministic `f64x2.relaxed_madd` in WebAssembly), so native and WebAssembly builds
//! agree with each other and with Gymnasium there. Only a reset to a larger angle takes
//! `sin`/`cos` outside that range; they then come from the `libm` crate (identical natively and in
//! WebAssembly, but possibly one ulp from glibc). The `libm` crate alone rounds differently from
//! glibc on 19 of the 6270 `sin`/`cos` values of the reference episodes, which made 4 of the 100
//! drift apart.
//!
//! # Reset options
//!
//! * none: each of the four state variables is drawn uniformly from `[-0.05, 0.05)` with the host's
//!   generator (so the starting states differ from Gymnasium's numpy stream for the same seed);
//! * `{"state": [x, x_dot, theta, theta_dot]}`: start from these four finite numbers;
//! * `{"state_bits": ["3fa99999999999a0", ...]}`: start from these four `f64` IEEE-754 bit patterns
//!   written as hexadecimal strings, for exact replays.

use wasmgym_sdk::*;

pub mod trig;

const GRAVITY: f64 = 9.8;
const MASSCART: f64 = 1.0;
const MASSPOLE: f64 = 0.1;
const TOTAL_MASS: f64 = MASSPOLE + MASSCART;
/// Half the pole's length.
const LENGTH: f64 = 0.5;
const POLEMASS_LENGTH: f64 = MASSPOLE * LENGTH;
const FORCE_MAG: f64 = 10.0;
/// Seconds between state updates.
const TAU: f64 = 0.02;
/// Pole angle beyond which the episode terminates: 12° (computed as Gymnasium does).
pub const THETA_THRESHOLD_RADIANS: f64 = 12.0 * 2.0 * std::f64::consts::PI / 360.0;
/// Cart position beyond which the episode terminates.
pub const X_THRESHOLD: f64 = 2.4;

/// The cart-pole system: cart position and velocity, pole angle and angular velocity.
#[derive(Clone, Debug, PartialEq)]
pub struct CartPole {
    /// `[x, x_dot, theta, theta_dot]`.
    pub state: [f64; 4],
}

impl CartPole {
    /// Advances the state by one Euler step of `TAU` seconds under `force`.
    fn advance(&mut self, force: f64) {
        let theta = self.state[2];
        self.advance_with(force, trig::sin(theta), trig::cos(theta));
    }

    /// Gymnasium's `CartPoleEnv.step` (Euler integrator) given the sine and cosine of the pole
    /// angle: every operation in the Python source's order (`np.square(v)` is `v * v`), nothing fused.
    fn advance_with(&mut self, force: f64, sintheta: f64, costheta: f64) {
        let [x, x_dot, theta, theta_dot] = self.state;
        let temp = (force + POLEMASS_LENGTH * (theta_dot * theta_dot) * sintheta) / TOTAL_MASS;
        let thetaacc = (GRAVITY * sintheta - costheta * temp)
            / (LENGTH * (4.0 / 3.0 - MASSPOLE * (costheta * costheta) / TOTAL_MASS));
        let xacc = temp - POLEMASS_LENGTH * thetaacc * costheta / TOTAL_MASS;
        self.state = [x + TAU * x_dot, x_dot + TAU * xacc, theta + TAU * theta_dot, theta_dot + TAU * thetaacc];
    }

    /// Gymnasium's termination test, written as it is there.
    #[allow(clippy::manual_range_contains)]
    fn is_terminal(&self) -> bool {
        let [x, _, theta, _] = self.state;
        x < -X_THRESHOLD || x > X_THRESHOLD || theta < -THETA_THRESHOLD_RADIANS || theta > THETA_THRESHOLD_RADIANS
    }
}

/// What `reset` accepts, for error messages.
const EXPECTED_OPTIONS: &str = "expected no options, {\"state\": [x, x_dot, theta, theta_dot]} with four finite numbers, \
     or {\"state_bits\": [four f64 bit patterns as hex strings such as \"3fa99999999999a0\"]}";

/// The starting state given in `options`, if any.
fn state_from_options(options: &Options) -> Result<Option<[f64; 4]>, EnvError> {
    let fields = match options {
        Options::Null => return Ok(None),
        Options::Object(fields) if fields.is_empty() => return Ok(None),
        Options::Object(fields) => fields,
        other => {
            return Err(EnvError::caller(format!(
                "cart_pole reset options {other} are not an object: {EXPECTED_OPTIONS}"
            )));
        }
    };
    if let Some(key) = fields.keys().find(|k| *k != "state" && *k != "state_bits") {
        return Err(EnvError::caller(format!("cart_pole reset option {key:?} is unknown: {EXPECTED_OPTIONS}")));
    }
    let values: Vec<f64> = match (fields.get("state"), fields.get("state_bits")) {
        (Some(_), Some(_)) => {
            return Err(EnvError::caller(format!(
                "cart_pole reset got both \"state\" and \"state_bits\": {EXPECTED_OPTIONS}"
            )));
        }
        (Some(state), None) => {
            let numbers = state.as_array().map(|a| a.iter().map(serde_json::Value::as_f64).collect::<Option<Vec<_>>>());
            match numbers {
                Some(Some(v)) => v,
                _ => {
                    return Err(EnvError::caller(format!(
                        "cart_pole reset option \"state\" is {state}: {EXPECTED_OPTIONS}"
                    )));
                }
            }
        }
        (None, Some(bits)) => {
            let parse = |v: &serde_json::Value| {
                let hex = v.as_str()?;
                let ok = !hex.is_empty() && hex.len() <= 16 && hex.bytes().all(|b| b.is_ascii_hexdigit());
                ok.then(|| u64::from_str_radix(hex, 16).ok().map(f64::from_bits)).flatten()
            };
            match bits.as_array().map(|a| a.iter().map(parse).collect::<Option<Vec<_>>>()) {
                Some(Some(v)) => v,
                _ => {
                    return Err(EnvError::caller(format!(
                        "cart_pole reset option \"state_bits\" is {bits}: {EXPECTED_OPTIONS}"
                    )));
                }
            }
        }
        (None, None) => unreachable!("the object has a key and every key is one of the two"),
    };
    match <[f64; 4]>::try_from(values) {
        Ok(state) if state.iter().all(|v| v.is_finite()) => Ok(Some(state)),
        Ok(state) => {
            Err(EnvError::caller(format!("cart_pole reset state {state:?} is not finite: {EXPECTED_OPTIONS}")))
        }
        Err(v) => {
            Err(EnvError::caller(format!("cart_pole reset state has {} values, not 4: {EXPECTED_OPTIONS}", v.len())))
        }
    }
}

impl Environment for CartPole {
    fn spec() -> EnvSpec {
        let high = [X_THRESHOLD * 2.0, f64::INFINITY, THETA_THRESHOLD_RADIANS * 2.0, f64::INFINITY];
        EnvSpec {
            name: "cart_pole".into(),
            version: 1,
            players: 1,
            observation_space: Space::Box {
                dtype: Dtype::F64,
                shape: vec![4],
                low: high.iter().map(|h| -h).collect(),
                high: high.to_vec(),
            },
            action_space: Space::Discrete { n: 2 },
            reward_range: (0.0, 1.0),
            max_episode_steps: Some(500),
            determinism: Determinism::Deterministic,
            tools: vec![],
        }
    }

    fn reset(rng: &mut Rng, options: &Options) -> Result<Self, EnvError> {
        let state = match state_from_options(options)? {
            Some(state) => state,
            None => std::array::from_fn(|_| rng.uniform(-0.05, 0.05)),
        };
        Ok(CartPole { state })
    }

    fn observation(&self) -> Observation {
        Observation::F64(self.state.to_vec())
    }

    fn step(&mut self, action: &Action, _rng: &mut Rng) -> Result<Transition, EnvError> {
        let force = if action.discrete() == 1 { FORCE_MAG } else { -FORCE_MAG };
        self.advance(force);
        Ok(Transition::reward(1.0).terminated_if(self.is_terminal()))
    }

    fn render(&self) -> String {
        let [x, x_dot, theta, theta_dot] = self.state;
        // A one-line track from -2.4 to 2.4 with the cart as `#` and the pole's lean as `/` or `\`.
        let width = 49;
        let pos = (((x + X_THRESHOLD) / (2.0 * X_THRESHOLD)) * (width - 1) as f64)
            .round()
            .clamp(0.0, (width - 1) as f64) as usize;
        let lean = if theta > 0.02 {
            '/'
        } else if theta < -0.02 {
            '\\'
        } else {
            '|'
        };
        let track: String = (0..width).map(|i| if i == pos { '#' } else { '-' }).collect();
        let pole: String = (0..width).map(|i| if i == pos { lean } else { ' ' }).collect();
        format!(
            "{}\n{}\nx={x:+.4} x_dot={x_dot:+.4} theta={theta:+.4} theta_dot={theta_dot:+.4}",
            pole.trim_end(),
            track
        )
    }
}

export_env!(CartPole);

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    fn bits(state: &[f64]) -> Vec<u64> {
        state.iter().map(|v| v.to_bits()).collect()
    }

    fn observation(runner: &Runner<CartPole>, bytes: &[u8]) -> Vec<f64> {
        match Observation::decode(&runner.spec().observation_space, bytes).unwrap() {
            Observation::F64(v) => v,
            other => panic!("unexpected observation {other:?}"),
        }
    }

    fn hex(v: &Value) -> Vec<u64> {
        v.as_array().unwrap().iter().map(|h| u64::from_str_radix(h.as_str().unwrap(), 16).unwrap()).collect()
    }

    fn bools(v: &Value) -> Vec<bool> {
        v.as_array().unwrap().iter().map(|b| b.as_bool().unwrap()).collect()
    }

    /// One Gymnasium episode of `tests/fixtures/cart_pole.jsonl` (see `scripts/make_fixtures.py`).
    struct Episode {
        initial: Vec<u64>,
        actions: Vec<i64>,
        states: Vec<Vec<u64>>,
        sin_cos: Vec<Vec<u64>>,
        rewards: Vec<f64>,
        terminated: Vec<bool>,
        truncated: Vec<bool>,
    }

    fn episodes() -> Vec<Episode> {
        let fixture = include_str!("../../../tests/fixtures/cart_pole.jsonl");
        let episodes: Vec<Episode> = fixture
            .lines()
            .map(|line| {
                let ep: Value = serde_json::from_str(line).unwrap();
                let list = |key: &str| ep[key].as_array().unwrap().clone();
                let episode = Episode {
                    initial: hex(&ep["initial_state_bits"]),
                    actions: list("actions").iter().map(|a| a.as_i64().unwrap()).collect(),
                    states: list("state_bits").iter().map(hex).collect(),
                    sin_cos: list("sin_cos_bits").iter().map(hex).collect(),
                    rewards: list("rewards").iter().map(|r| r.as_f64().unwrap()).collect(),
                    terminated: bools(&ep["terminated"]),
                    truncated: bools(&ep["truncated"]),
                };
                let n = episode.actions.len();
                assert!(
                    [&episode.states.len(), &episode.sin_cos.len(), &episode.rewards.len()].iter().all(|&&l| l == n)
                );
                assert!(episode.terminated.len() == n && episode.truncated.len() == n);
                episode
            })
            .collect();
        assert!(episodes.len() >= 100, "{} episodes", episodes.len());
        assert!(episodes.iter().filter(|e| e.truncated[e.truncated.len() - 1]).count() >= 2);
        episodes
    }

    /// Given the `sin`/`cos` values Gymnasium used, every state of every episode is identical to
    /// Gymnasium's bit for bit, and the episode terminates at the same step.
    #[test]
    fn dynamics_are_gymnasiums_bit_for_bit() {
        for (n, ep) in episodes().iter().enumerate() {
            let mut env = CartPole {
                state: ep.initial.iter().map(|&b| f64::from_bits(b)).collect::<Vec<_>>().try_into().unwrap(),
            };
            for (i, &a) in ep.actions.iter().enumerate() {
                let force = if a == 1 { FORCE_MAG } else { -FORCE_MAG };
                let (sin, cos) = (f64::from_bits(ep.sin_cos[i][0]), f64::from_bits(ep.sin_cos[i][1]));
                env.advance_with(force, sin, cos);
                assert_eq!(bits(&env.state), ep.states[i], "episode {n} step {i}: {:?}", env.state);
                assert_eq!(env.is_terminal(), ep.terminated[i], "episode {n} step {i}");
            }
            let last = ep.actions.len() - 1;
            assert_eq!(ep.truncated[last], !ep.terminated[last] && ep.actions.len() == 500, "episode {n}");
        }
    }

    /// [`trig`] gives the `sin` and `cos` that Gymnasium used at every step of every episode (which
    /// came from glibc's FMA path; see [`trig`]'s tests for the comparison with glibc itself).
    #[test]
    fn trig_gives_the_sin_and_cos_gymnasium_used() {
        let mut steps = 0;
        for (n, ep) in episodes().iter().enumerate() {
            let thetas = std::iter::once(&ep.initial).chain(&ep.states).map(|s| f64::from_bits(s[2]));
            for (i, (theta, want)) in thetas.zip(&ep.sin_cos).enumerate() {
                let got = [trig::sin(theta).to_bits(), trig::cos(theta).to_bits()];
                assert_eq!(got[..], want[..], "episode {n} step {i}: sin and cos of {theta:e}");
                steps += 1;
            }
        }
        assert!(steps > 3000, "{steps} steps");
    }

    /// Through the SDK runner, every episode is Gymnasium's bit for bit: every state, reward and
    /// flag, and the step where it ends.
    #[test]
    fn runner_replays_gymnasium_episodes_bit_for_bit() {
        let episodes = episodes();
        let mut steps = 0;
        for (n, ep) in episodes.iter().enumerate() {
            let mut runner = Runner::<CartPole>::new();
            let options =
                serde_json::json!({ "state_bits": ep.initial.iter().map(|b| format!("{b:016x}")).collect::<Vec<_>>() });
            let t = runner.reset(None, &options.to_string()).unwrap();
            assert_eq!(bits(&observation(&runner, &t.observation)), ep.initial, "episode {n}");
            for (i, &a) in ep.actions.iter().enumerate() {
                let t = runner.step(&Action::Discrete(a)).unwrap();
                let obs = observation(&runner, &t.observation);
                assert_eq!(bits(&obs), ep.states[i], "episode {n} step {i}: state {obs:?}");
                assert_eq!(t.rewards, vec![ep.rewards[i]], "episode {n} step {i}");
                assert_eq!((t.terminated, t.truncated), (ep.terminated[i], ep.truncated[i]), "episode {n} step {i}");
                assert_eq!(t.current_player.is_none(), i + 1 == ep.actions.len(), "episode {n} step {i}");
                steps += 1;
            }
            assert!(runner.legal_actions().is_empty(), "episode {n}: Gymnasium's episode ended, ours did not");
        }
        assert!(steps > 3000, "{steps} steps");
    }

    /// `{"state": [...]}` with floats written in their shortest form round-trips exactly.
    #[test]
    fn decimal_state_option_is_exact() {
        let fixture = include_str!("../../../tests/fixtures/cart_pole.jsonl");
        for line in fixture.lines().take(20) {
            let ep: Value = serde_json::from_str(line).unwrap();
            let want = hex(&ep["initial_state_bits"]);
            let state: Vec<f64> = want.iter().map(|&b| f64::from_bits(b)).collect();
            let options = format!("{{\"state\": [{:?}, {:?}, {:?}, {:?}]}}", state[0], state[1], state[2], state[3]);
            let mut runner = Runner::<CartPole>::new();
            let t = runner.reset(None, &options).unwrap();
            assert_eq!(bits(&observation(&runner, &t.observation)), want, "{options}");
        }
    }

    #[test]
    fn seeded_reset_is_deterministic_and_within_bounds() {
        let start = |seed| {
            let mut runner = Runner::<CartPole>::new();
            let t = runner.reset(Some(seed), "").unwrap();
            observation(&runner, &t.observation)
        };
        assert_eq!(bits(&start(7)), bits(&start(7)));
        assert_ne!(bits(&start(7)), bits(&start(8)));
        for seed in 0..100 {
            assert!(start(seed).iter().all(|v| (-0.05..0.05).contains(v)), "seed {seed}");
        }
        // Without a new seed the stream continues, so consecutive episodes start differently.
        let mut runner = Runner::<CartPole>::new();
        let a = runner.reset(Some(3), "").unwrap().observation;
        let b = runner.reset(None, "").unwrap().observation;
        assert_ne!(a, b);
        assert_eq!(runner.reset(Some(3), "").unwrap().observation, a);
    }

    #[test]
    fn malformed_state_options_are_rejected_with_what_is_expected() {
        for bad in [
            r#"{"state": [0.0, 0.0, 0.0]}"#,
            r#"{"state": [0.0, 0.0, 0.0, "x"]}"#,
            r#"{"state": 1.0}"#,
            r#"{"state_bits": ["0", "0", "0", "zz"]}"#,
            r#"{"state_bits": ["7ff0000000000000", "0", "0", "0"]}"#,
            r#"{"state_bits": ["0", "0", "0", "00000000000000000"]}"#,
            r#"{"state": [0, 0, 0, 0], "state_bits": ["0", "0", "0", "0"]}"#,
            r#"{"stat": [0, 0, 0, 0]}"#,
            r#"[0, 0, 0, 0]"#,
        ] {
            let mut runner = Runner::<CartPole>::new();
            let err = runner.reset(None, bad).unwrap_err();
            assert_eq!(err.status, Status::BadRequest, "{bad}: the caller's mistake, not the environment's: {err:?}");
            assert!(err.message.contains("expected") && err.message.contains("state_bits"), "{bad}: {}", err.message);
        }
        let mut runner = Runner::<CartPole>::new();
        let t = runner.reset(None, r#"{"state": [0.5, -1, 0.1, 2e-3]}"#).unwrap();
        assert_eq!(observation(&runner, &t.observation), vec![0.5, -1.0, 0.1, 0.002]);
        let t = runner.reset(None, "{}").unwrap();
        assert!(observation(&runner, &t.observation).iter().all(|v| v.abs() < 0.05));
    }

    #[test]
    fn illegal_action_is_refused_and_state_is_unchanged() {
        let mut runner = Runner::<CartPole>::new();
        runner.reset(Some(1), "").unwrap();
        runner.step(&Action::Discrete(1)).unwrap();
        let before = runner.env().unwrap().clone();
        for bad in [2, -1] {
            let err = runner.step(&Action::Discrete(bad)).unwrap_err();
            assert_eq!(format!("{:?}", err.status), "IllegalAction", "{err:?}");
        }
        assert_eq!(runner.env().unwrap(), &before);
        assert_eq!(runner.legal_actions(), vec![0, 1]);
    }

    #[test]
    fn terminates_when_the_pole_falls_and_refuses_further_steps() {
        let mut runner = Runner::<CartPole>::new();
        runner.reset(None, r#"{"state": [0, 0, 0.2, 0]}"#).unwrap();
        let mut n = 0;
        loop {
            n += 1;
            // Pushing the cart left makes a pole leaning right fall faster.
            let t = runner.step(&Action::Discrete(0)).unwrap();
            assert_eq!(t.rewards, vec![1.0]);
            if t.terminated {
                assert!(!t.truncated);
                break;
            }
        }
        assert!(n < 10, "{n} steps");
        assert!(runner.env().unwrap().state[2] > THETA_THRESHOLD_RADIANS);
        assert!(runner.legal_actions().is_empty());
        let err = runner.step(&Action::Discrete(0)).unwrap_err();
        assert_eq!(format!("{:?}", err.status), "BadRequest", "{err:?}");
    }

    #[test]
    fn spec_bounds_and_render() {
        let spec = CartPole::spec();
        let Space::Box { low, high, .. } = &spec.observation_space else { panic!() };
        assert_eq!(high, &vec![4.8, f64::INFINITY, 0.41887902047863906, f64::INFINITY]);
        assert_eq!(low, &vec![-4.8, f64::NEG_INFINITY, -0.41887902047863906, f64::NEG_INFINITY]);
        assert!(spec.observation_space.validate().is_ok());
        let env = CartPole { state: [0.0, 0.1, -0.05, 0.0] };
        let text = env.render();
        assert!(text.contains("x=+0.0000 x_dot=+0.1000 theta=-0.0500"), "{text}");
        assert_eq!(text.lines().nth(1).unwrap().find('#'), Some(24), "{text}");
    }
}
