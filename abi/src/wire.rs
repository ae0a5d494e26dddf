//! Byte encodings of the messages that cross the ABI. All numbers are little-endian.
//!
//! ```text
//! output            = status:u8 payload            (payload is a UTF-8 message unless status = Ok)
//! ResetRequest      = has_seed:u8 seed:u64 options_len:u32 options:[u8]   (options: UTF-8 JSON or empty)
//! Action            = 0:u8 value:i64                                      (discrete)
//!                   | 1:u8 len:u32 text:[u8]                              (text, UTF-8)
//! Transition        = current_player:i32 (-1 once the episode is over)
//!                     terminated:u8 truncated:u8
//!                     n:u32 rewards:[f64; n]       (one per player; none after reset)
//!                     obs_len:u32 observation:[u8] (see Observation)
//!                     info_len:u32 info:[u8]       (UTF-8 JSON object, or empty for {})
//! LegalActions      = n:u32 actions:[i64; n]
//! Observation bytes = Box: elements of its dtype, row-major | Discrete: i64
//!                   | MultiDiscrete: [i64] | Text: UTF-8
//! ```

use std::fmt;

use crate::spec::{Dtype, Space};

/// First byte of every guest output.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum Status {
    /// The call succeeded; the payload follows.
    Ok = 0,
    /// The action was not legal in this state; the state is unchanged.
    IllegalAction = 1,
    /// The environment reported an error of its own.
    GuestError = 2,
    /// The call was not valid now (for example `step` before `reset`); the state is unchanged.
    BadRequest = 3,
}

impl Status {
    /// The status a byte stands for, if any.
    pub fn from_byte(b: u8) -> Option<Status> {
        Some(match b {
            0 => Status::Ok,
            1 => Status::IllegalAction,
            2 => Status::GuestError,
            3 => Status::BadRequest,
            _ => return None,
        })
    }
}

/// Why bytes could not be decoded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DecodeError(pub String);

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for DecodeError {}

type Result<T> = std::result::Result<T, DecodeError>;

/// Appends little-endian values to a byte buffer.
pub struct Writer<'a>(pub &'a mut Vec<u8>);

impl Writer<'_> {
    /// Appends one byte.
    pub fn u8(&mut self, v: u8) {
        self.0.push(v);
    }
    /// Appends a `u32`.
    pub fn u32(&mut self, v: u32) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }
    /// Appends an `i32`.
    pub fn i32(&mut self, v: i32) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }
    /// Appends a `u64`.
    pub fn u64(&mut self, v: u64) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }
    /// Appends an `i64`.
    pub fn i64(&mut self, v: i64) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }
    /// Appends an `f64`.
    pub fn f64(&mut self, v: f64) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }
    /// Appends a `u32` length, then the bytes.
    pub fn bytes(&mut self, v: &[u8]) {
        self.u32(v.len() as u32);
        self.0.extend_from_slice(v);
    }
}

/// Reads little-endian values from a byte slice, failing cleanly on truncation.
pub struct Reader<'a> {
    buf: &'a [u8],
    what: &'static str,
}

impl<'a> Reader<'a> {
    /// A reader over `buf`; `what` names the message in errors.
    pub fn new(buf: &'a [u8], what: &'static str) -> Self {
        Reader { buf, what }
    }

    /// Reads exactly `n` bytes.
    pub fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        if self.buf.len() < n {
            return Err(DecodeError(format!(
                "{} is truncated: needed {n} more bytes, {} left",
                self.what,
                self.buf.len()
            )));
        }
        let (head, tail) = self.buf.split_at(n);
        self.buf = tail;
        Ok(head)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N]> {
        Ok(self.take(N)?.try_into().expect("take returned N bytes"))
    }

    /// Reads one byte.
    pub fn u8(&mut self) -> Result<u8> {
        Ok(self.take(1)?[0])
    }
    /// Reads a `u32`.
    pub fn u32(&mut self) -> Result<u32> {
        self.array().map(u32::from_le_bytes)
    }
    /// Reads an `i32`.
    pub fn i32(&mut self) -> Result<i32> {
        self.array().map(i32::from_le_bytes)
    }
    /// Reads a `u64`.
    pub fn u64(&mut self) -> Result<u64> {
        self.array().map(u64::from_le_bytes)
    }
    /// Reads an `i64`.
    pub fn i64(&mut self) -> Result<i64> {
        self.array().map(i64::from_le_bytes)
    }
    /// Reads an `f64`.
    pub fn f64(&mut self) -> Result<f64> {
        self.array().map(f64::from_le_bytes)
    }
    /// Reads a `u32` length, then that many bytes.
    pub fn bytes(&mut self) -> Result<&'a [u8]> {
        let n = self.u32()? as usize;
        self.take(n)
    }
    /// Reads a length-prefixed UTF-8 string.
    pub fn str(&mut self) -> Result<&'a str> {
        let what = self.what;
        std::str::from_utf8(self.bytes()?).map_err(|e| DecodeError(format!("{what} holds invalid UTF-8: {e}")))
    }
    /// The bytes not read yet.
    pub fn rest(&mut self) -> &'a [u8] {
        std::mem::take(&mut self.buf)
    }
    /// Fails unless every byte was read.
    pub fn finish(self) -> Result<()> {
        match self.buf.len() {
            0 => Ok(()),
            n => Err(DecodeError(format!("{} has {n} unexpected trailing bytes", self.what))),
        }
    }
}

/// Arguments of `reset`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ResetRequest {
    /// Reseeds the RNG when given; otherwise the RNG stream continues.
    pub seed: Option<u64>,
    /// Environment-specific options as a JSON document, or empty.
    pub options: String,
}

impl ResetRequest {
    /// Appends the encoding to `out`.
    pub fn encode(&self, out: &mut Vec<u8>) {
        let mut w = Writer(out);
        w.u8(self.seed.is_some() as u8);
        w.u64(self.seed.unwrap_or(0));
        w.bytes(self.options.as_bytes());
    }

    /// Decodes a request.
    pub fn decode(buf: &[u8]) -> Result<Self> {
        let mut r = Reader::new(buf, "reset request");
        let has_seed = r.u8()? != 0;
        let seed = r.u64()?;
        let options = r.str()?.to_owned();
        r.finish()?;
        Ok(ResetRequest { seed: has_seed.then_some(seed), options })
    }
}

/// An action: an index for `Discrete` action spaces, a string for `Text` ones.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Action {
    /// A discrete action.
    Discrete(i64),
    /// A text action (for language agents).
    Text(String),
}

impl Action {
    /// Appends the encoding to `out`.
    pub fn encode(&self, out: &mut Vec<u8>) {
        let mut w = Writer(out);
        match self {
            Action::Discrete(a) => {
                w.u8(0);
                w.i64(*a);
            }
            Action::Text(s) => {
                w.u8(1);
                w.bytes(s.as_bytes());
            }
        }
    }

    /// Decodes an action.
    pub fn decode(buf: &[u8]) -> Result<Self> {
        let mut r = Reader::new(buf, "action");
        let action = match r.u8()? {
            0 => Action::Discrete(r.i64()?),
            1 => Action::Text(r.str()?.to_owned()),
            tag => return Err(DecodeError(format!("action has unknown kind {tag} (0 = discrete, 1 = text)"))),
        };
        r.finish()?;
        Ok(action)
    }
}

impl From<i64> for Action {
    fn from(a: i64) -> Self {
        Action::Discrete(a)
    }
}

impl From<&str> for Action {
    fn from(s: &str) -> Self {
        Action::Text(s.to_owned())
    }
}

impl From<String> for Action {
    fn from(s: String) -> Self {
        Action::Text(s)
    }
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Action::Discrete(a) => write!(f, "{a}"),
            Action::Text(s) => write!(f, "{s:?}"),
        }
    }
}

/// What `reset` and `step` return.
#[derive(Clone, Debug, PartialEq)]
pub struct Transition {
    /// Whose turn it is, or `None` once the episode is over.
    pub current_player: Option<u32>,
    /// The episode reached a terminal state.
    pub terminated: bool,
    /// The episode was cut short (for example by `max_episode_steps`).
    pub truncated: bool,
    /// Reward of this step for each player (empty after reset).
    pub rewards: Vec<f64>,
    /// The observation, encoded for the observation space.
    pub observation: Vec<u8>,
    /// Extra information as a JSON object, or empty.
    pub info: String,
}

impl Transition {
    /// Appends the encoding to `out`.
    pub fn encode(&self, out: &mut Vec<u8>) {
        encode_transition(
            out,
            self.current_player,
            self.terminated,
            self.truncated,
            &self.rewards,
            &self.observation,
            &self.info,
        );
    }

    /// Decodes a transition.
    pub fn decode(buf: &[u8]) -> Result<Self> {
        let mut r = Reader::new(buf, "transition");
        let player = r.i32()?;
        let terminated = r.u8()? != 0;
        let truncated = r.u8()? != 0;
        let n = r.u32()? as usize;
        if n > buf.len() / 8 {
            return Err(DecodeError(format!("transition claims {n} rewards in {} bytes", buf.len())));
        }
        let rewards = (0..n).map(|_| r.f64()).collect::<Result<Vec<_>>>()?;
        let observation = r.bytes()?.to_vec();
        let info = r.str()?.to_owned();
        r.finish()?;
        Ok(Transition { current_player: u32::try_from(player).ok(), terminated, truncated, rewards, observation, info })
    }
}

/// Encodes a transition from borrowed parts (what the SDK uses, to avoid copies).
pub fn encode_transition(
    out: &mut Vec<u8>,
    current_player: Option<u32>,
    terminated: bool,
    truncated: bool,
    rewards: &[f64],
    observation: &[u8],
    info: &str,
) {
    let mut w = Writer(out);
    w.i32(current_player.map_or(-1, |p| p as i32));
    w.u8(terminated as u8);
    w.u8(truncated as u8);
    w.u32(rewards.len() as u32);
    for &r in rewards {
        w.f64(r);
    }
    w.bytes(observation);
    w.bytes(info.as_bytes());
}

/// Encodes a list of legal actions.
pub fn encode_legal_actions(out: &mut Vec<u8>, actions: &[i64]) {
    let mut w = Writer(out);
    w.u32(actions.len() as u32);
    for &a in actions {
        w.i64(a);
    }
}

/// Appends the legal actions after a transition in the output of `wasmgym_step_actions`: each
/// action as i64 LE, then their count as u32 LE in the last four bytes.
pub fn encode_step_actions(out: &mut Vec<u8>, actions: &[i64]) {
    let mut w = Writer(out);
    for &a in actions {
        w.i64(a);
    }
    w.u32(actions.len() as u32);
}

/// Splits the output of `wasmgym_step_actions` into the transition's bytes and the legal actions
/// (see [`encode_step_actions`]).
pub fn decode_step_actions(buf: &[u8]) -> Result<(&[u8], Vec<i64>)> {
    let short = || DecodeError(format!("step_actions output of {} bytes is too short for its action count", buf.len()));
    let (rest, count) = buf.split_last_chunk::<4>().ok_or_else(short)?;
    let n = u32::from_le_bytes(*count) as usize;
    let split = n
        .checked_mul(8)
        .and_then(|bytes| rest.len().checked_sub(bytes))
        .ok_or_else(|| DecodeError(format!("step_actions output claims {n} legal actions in {} bytes", buf.len())))?;
    let (transition, actions) = rest.split_at(split);
    let actions = actions.chunks_exact(8).map(|a| i64::from_le_bytes(a.try_into().expect("8 bytes"))).collect();
    Ok((transition, actions))
}

/// Decodes a list of legal actions.
pub fn decode_legal_actions(buf: &[u8]) -> Result<Vec<i64>> {
    let mut r = Reader::new(buf, "legal actions");
    let n = r.u32()? as usize;
    if n > buf.len() / 8 {
        return Err(DecodeError(format!("legal actions claim {n} entries in {} bytes", buf.len())));
    }
    let actions = (0..n).map(|_| r.i64()).collect::<Result<Vec<_>>>()?;
    r.finish()?;
    Ok(actions)
}

/// A decoded observation.
#[derive(Clone, Debug, PartialEq)]
pub enum Observation {
    /// Elements of a `Box` of `f32`.
    F32(Vec<f32>),
    /// Elements of a `Box` of `f64`.
    F64(Vec<f64>),
    /// Elements of a `Box` of `i32`.
    I32(Vec<i32>),
    /// A `Discrete` value.
    Discrete(i64),
    /// A `MultiDiscrete` vector.
    MultiDiscrete(Vec<i64>),
    /// A `Text` value.
    Text(String),
}

impl Observation {
    /// Appends the wire encoding (no length prefix) to `out`.
    pub fn encode(&self, out: &mut Vec<u8>) {
        match self {
            Observation::F32(v) => v.iter().for_each(|x| out.extend_from_slice(&x.to_le_bytes())),
            Observation::F64(v) => v.iter().for_each(|x| out.extend_from_slice(&x.to_le_bytes())),
            Observation::I32(v) => v.iter().for_each(|x| out.extend_from_slice(&x.to_le_bytes())),
            Observation::Discrete(x) => out.extend_from_slice(&x.to_le_bytes()),
            Observation::MultiDiscrete(v) => v.iter().for_each(|x| out.extend_from_slice(&x.to_le_bytes())),
            Observation::Text(s) => out.extend_from_slice(s.as_bytes()),
        }
    }

    /// Decodes observation bytes for `space`, checking the length.
    pub fn decode(space: &Space, buf: &[u8]) -> Result<Self> {
        fn elements<const N: usize, T>(buf: &[u8], count: usize, f: fn([u8; N]) -> T) -> Result<Vec<T>> {
            if count.checked_mul(N) != Some(buf.len()) {
                return Err(DecodeError(format!(
                    "observation has {} bytes, expected {count} elements of {N} bytes",
                    buf.len()
                )));
            }
            Ok(buf.chunks_exact(N).map(|c| f(c.try_into().expect("chunk of N bytes"))).collect())
        }
        Ok(match space {
            Space::Box { dtype, shape, .. } => {
                let count = Space::box_elements(shape).unwrap_or(usize::MAX);
                match dtype {
                    Dtype::F32 => Observation::F32(elements(buf, count, f32::from_le_bytes)?),
                    Dtype::F64 => Observation::F64(elements(buf, count, f64::from_le_bytes)?),
                    Dtype::I32 => Observation::I32(elements(buf, count, i32::from_le_bytes)?),
                }
            }
            Space::Discrete { .. } => Observation::Discrete(elements(buf, 1, i64::from_le_bytes)?[0]),
            Space::MultiDiscrete { nvec } => Observation::MultiDiscrete(elements(buf, nvec.len(), i64::from_le_bytes)?),
            Space::Text { .. } => Observation::Text(
                String::from_utf8(buf.to_vec())
                    .map_err(|e| DecodeError(format!("text observation is not UTF-8: {e}")))?,
            ),
        })
    }

    /// Checks the observation lies in `space`; the error says which element is out of bounds.
    pub fn check_in(&self, space: &Space) -> std::result::Result<(), String> {
        fn bounded(values: impl Iterator<Item = f64>, low: &[f64], high: &[f64]) -> std::result::Result<(), String> {
            for (i, x) in values.enumerate() {
                if !(low[i] <= x && x <= high[i]) {
                    return Err(format!("element {i} = {x} is outside [{}, {}]", low[i], high[i]));
                }
            }
            Ok(())
        }
        match (self, space) {
            (Observation::F32(v), Space::Box { dtype: Dtype::F32, low, high, .. }) if v.len() == low.len() => {
                bounded(v.iter().map(|&x| x as f64), low, high)
            }
            (Observation::F64(v), Space::Box { dtype: Dtype::F64, low, high, .. }) if v.len() == low.len() => {
                bounded(v.iter().copied(), low, high)
            }
            (Observation::I32(v), Space::Box { dtype: Dtype::I32, low, high, .. }) if v.len() == low.len() => {
                bounded(v.iter().map(|&x| x as f64), low, high)
            }
            (Observation::Discrete(x), Space::Discrete { n }) => match u64::try_from(*x) {
                Ok(x) if x < *n => Ok(()),
                _ => Err(format!("{x} is outside Discrete({n})")),
            },
            (Observation::MultiDiscrete(v), Space::MultiDiscrete { nvec }) if v.len() == nvec.len() => {
                match v.iter().zip(nvec).position(|(&x, &n)| u64::try_from(x).map_or(true, |x| x >= n)) {
                    Some(i) => Err(format!("element {i} = {} is outside 0..{}", v[i], nvec[i])),
                    None => Ok(()),
                }
            }
            (Observation::Text(s), Space::Text { max_length, charset }) => {
                check_text(s, *max_length, charset.as_deref())
            }
            _ => Err(format!("observation {self:?} does not have the shape or type of {space:?}")),
        }
    }
}

/// Checks a string against a `Text` space's length and charset.
pub fn check_text(s: &str, max_length: u32, charset: Option<&str>) -> std::result::Result<(), String> {
    let chars = s.chars().count();
    if chars > max_length as usize {
        return Err(format!("text has {chars} characters, more than the maximum {max_length}"));
    }
    if let Some(set) = charset
        && let Some(c) = s.chars().find(|c| !set.contains(*c))
    {
        return Err(format!("character {c:?} is not in the allowed charset"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_round_trip() {
        let req = ResetRequest { seed: Some(42), options: "{\"a\":1}".into() };
        let mut buf = Vec::new();
        req.encode(&mut buf);
        assert_eq!(ResetRequest::decode(&buf).unwrap(), req);

        for action in [Action::Discrete(-3), Action::Text("héllo".into())] {
            let mut buf = Vec::new();
            action.encode(&mut buf);
            assert_eq!(Action::decode(&buf).unwrap(), action);
        }

        let t = Transition {
            current_player: Some(1),
            terminated: false,
            truncated: true,
            rewards: vec![1.0, -1.0],
            observation: vec![1, 2, 3],
            info: "{}".into(),
        };
        let mut buf = Vec::new();
        t.encode(&mut buf);
        assert_eq!(Transition::decode(&buf).unwrap(), t);

        let transition_bytes = buf.len();
        encode_step_actions(&mut buf, &[0, 3, 6]);
        let (head, actions) = decode_step_actions(&buf).unwrap();
        assert_eq!((Transition::decode(head).unwrap(), actions), (t, vec![0, 3, 6]));
        assert_eq!(head.len(), transition_bytes);
    }

    #[test]
    fn playouts_round_trip_and_refuse_what_they_cannot_hold() {
        let request = PlayoutRequest {
            prefix: vec![4, 0, 8],
            legal_actions: true,
            state_key: false,
            first: Some(2),
            listed: true,
            seed: u64::MAX,
            max_steps: 9,
        };
        let mut buf = Vec::new();
        request.encode(&mut buf);
        assert_eq!(PlayoutRequest::decode(&buf).unwrap(), request);
        let plain = PlayoutRequest { first: None, prefix: vec![], ..request.clone() };
        buf.clear();
        plain.encode(&mut buf);
        assert_eq!(PlayoutRequest::decode(&buf).unwrap(), plain);
        buf[12] = 16; // an undefined flag
        assert!(PlayoutRequest::decode(&buf).unwrap_err().0.contains("flags"));
        buf.clear();
        request.encode(&mut buf);
        buf[21..25].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(PlayoutRequest::decode(&buf).unwrap_err().0.contains("claims"));
        buf.clear();
        request.encode(&mut buf);
        buf.push(0);
        assert!(PlayoutRequest::decode(&buf).unwrap_err().0.contains("trailing"));

        let rollout = Rollout {
            steps: 3,
            after_first: Some(1),
            current_player: None,
            terminated: true,
            returns: vec![1.0, -1.0],
            ..Default::default()
        };
        for (legal_actions, state_key, first) in [
            (Some(vec![1, 5]), Some(Some(vec![7, 7])), Some(5)),
            (None, Some(None), None),
            (Some(vec![]), None, Some(0)),
        ] {
            let playout = Playout {
                player: Some(0),
                prefix_rewards: vec![0.5, -0.5],
                legal_actions,
                state_key,
                first,
                rollout: rollout.clone(),
            };
            let mut buf = Vec::new();
            playout.encode(&mut buf);
            assert_eq!(Playout::decode(&buf).unwrap(), playout);
            for cut in 0..buf.len() {
                assert!(Playout::decode(&buf[..cut]).is_err(), "{cut} bytes of {}", buf.len());
            }
        }
        let mut buf = Vec::new();
        Playout { rollout, ..Default::default() }.encode(&mut buf);
        buf[4..8].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(Playout::decode(&buf).unwrap_err().0.contains("claims"));
    }

    #[test]
    fn step_actions_that_claim_more_than_they_hold_are_errors() {
        let mut buf = vec![7; 10];
        encode_step_actions(&mut buf, &[1, 2]);
        let n = buf.len();
        assert_eq!(decode_step_actions(&buf).unwrap().0, &[7; 10][..]);
        buf[n - 4..].copy_from_slice(&4u32.to_le_bytes()); // 32 bytes of actions in 26
        assert!(decode_step_actions(&buf).unwrap_err().0.contains("claims 4 legal actions"));
        buf[n - 4..].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(decode_step_actions(&buf).is_err());
        assert!(decode_step_actions(&[1, 2, 3]).is_err());
        assert_eq!(decode_step_actions(&[0, 0, 0, 0]).unwrap(), (&[][..], vec![]));
    }

    #[test]
    fn truncated_or_padded_bytes_are_errors_not_panics() {
        let t = Transition {
            current_player: None,
            terminated: true,
            truncated: false,
            rewards: vec![0.5],
            observation: vec![9; 16],
            info: String::new(),
        };
        let mut buf = Vec::new();
        t.encode(&mut buf);
        for cut in 0..buf.len() {
            assert!(Transition::decode(&buf[..cut]).is_err(), "prefix of {cut} bytes decoded");
        }
        buf.push(0);
        assert!(Transition::decode(&buf).unwrap_err().0.contains("trailing"));
        assert!(Action::decode(&[7]).unwrap_err().0.contains("unknown kind 7"));
        // A huge claimed count must not allocate or panic.
        assert!(decode_legal_actions(&[0xff, 0xff, 0xff, 0xff]).is_err());
    }

    #[test]
    fn observations_decode_for_their_space_and_check_bounds() {
        let space = Space::uniform_box(Dtype::F32, &[2], 0.0, 1.0);
        let mut buf = Vec::new();
        Observation::F32(vec![0.5, 2.0]).encode(&mut buf);
        let obs = Observation::decode(&space, &buf).unwrap();
        assert_eq!(obs, Observation::F32(vec![0.5, 2.0]));
        assert!(obs.check_in(&space).unwrap_err().contains("element 1"));
        assert!(Observation::decode(&space, &buf[..7]).is_err());
        assert!(Observation::F64(vec![f64::NAN]).check_in(&Space::uniform_box(Dtype::F64, &[1], 0.0, 1.0)).is_err());
        let multi = Space::MultiDiscrete { nvec: vec![2, 5] };
        let mut buf = Vec::new();
        Observation::MultiDiscrete(vec![1, 4]).encode(&mut buf);
        let obs = Observation::decode(&multi, &buf).unwrap();
        assert_eq!(obs, Observation::MultiDiscrete(vec![1, 4]));
        assert!(obs.check_in(&multi).is_ok());
        assert!(Observation::MultiDiscrete(vec![2, 0]).check_in(&multi).unwrap_err().contains("element 0"));
        assert!(Observation::MultiDiscrete(vec![-1, 0]).check_in(&multi).is_err());
        assert!(Observation::decode(&multi, &buf[..8]).is_err());
        assert!(Observation::Discrete(3).check_in(&Space::Discrete { n: 3 }).is_err());
        let text = Space::Text { max_length: 3, charset: Some("ab".into()) };
        assert!(Observation::Text("abc".into()).check_in(&text).unwrap_err().contains("'c'"));
        assert!(Observation::Text("abab".into()).check_in(&text).is_err());
    }
}

/// What a rollout does: the arguments of the optional `wasmgym_rollout` export, which are passed
/// as plain numbers (`seed: i64, max_steps: i32, has_first: i32, first: i64`) so a rollout is one
/// crossing into the guest with no request buffer. A text `first` action is applied by the host
/// with a `step` before the export is called.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RolloutRequest {
    /// An action to apply first (the step that expands a search tree), refused like a `step`.
    pub first: Option<Action>,
    /// Seed of the playout's own generator ([`crate::rng::Rng`]), which picks the actions; the
    /// environment's own randomness still comes from the host's generator.
    pub seed: u64,
    /// Steps the playout may take after `first`.
    pub max_steps: u32,
}

/// The action a uniformly random playout picks among `n` candidates: `rng.next_u64() % n`. Guests
/// (the SDK's `wasmgym_rollout`) and hosts (a search's fallback for guests without the export)
/// pick the same way, so the same seed plays the same game either way.
pub fn rollout_pick(rng: &mut crate::rng::Rng, n: usize) -> usize {
    (rng.next_u64() % n.max(1) as u64) as usize
}

/// What a `wasmgym_rollout` did.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Rollout {
    /// Steps taken, `first` included.
    pub steps: u32,
    /// Who moves after `first` (or at the start, without one); `None` if the episode ended there.
    pub after_first: Option<u32>,
    /// Who moves at the end; `None` if the episode ended.
    pub current_player: Option<u32>,
    /// The last step terminated the episode.
    pub terminated: bool,
    /// The last step truncated it (`max_episode_steps`).
    pub truncated: bool,
    /// Each player's sum of rewards over the steps taken.
    pub returns: Vec<f64>,
}

/// A [`Rollout`] with its returns borrowed: what a guest that adds them up in place encodes.
#[derive(Clone, Copy, Debug, Default)]
pub struct RolloutRef<'a> {
    /// See [`Rollout::steps`].
    pub steps: u32,
    /// See [`Rollout::after_first`].
    pub after_first: Option<u32>,
    /// See [`Rollout::current_player`].
    pub current_player: Option<u32>,
    /// See [`Rollout::terminated`].
    pub terminated: bool,
    /// See [`Rollout::truncated`].
    pub truncated: bool,
    /// See [`Rollout::returns`].
    pub returns: &'a [f64],
}

impl RolloutRef<'_> {
    /// Appends the encoding to `out`: `steps:u32 after_first:i32 current_player:i32 terminated:u8
    /// truncated:u8 n:u32 returns:[f64; n]` (players as `-1` once the episode is over).
    pub fn encode(&self, out: &mut Vec<u8>) {
        let mut w = Writer(out);
        w.u32(self.steps);
        w.i32(self.after_first.map_or(-1, |p| p as i32));
        w.i32(self.current_player.map_or(-1, |p| p as i32));
        w.u8(self.terminated as u8);
        w.u8(self.truncated as u8);
        w.u32(self.returns.len() as u32);
        for &r in self.returns {
            w.f64(r);
        }
    }
}

impl Rollout {
    /// Appends the encoding (see [`RolloutRef::encode`]).
    pub fn encode(&self, out: &mut Vec<u8>) {
        self.borrowed().encode(out);
    }

    /// The same rollout with its returns borrowed.
    pub fn borrowed(&self) -> RolloutRef<'_> {
        RolloutRef {
            steps: self.steps,
            after_first: self.after_first,
            current_player: self.current_player,
            terminated: self.terminated,
            truncated: self.truncated,
            returns: &self.returns,
        }
    }

    /// Decodes a rollout.
    pub fn decode(buf: &[u8]) -> Result<Self> {
        let mut rollout = Rollout::default();
        rollout.decode_from(buf)?;
        Ok(rollout)
    }

    /// Decodes a rollout into this one, reusing its `returns` buffer. On error, `self` is left
    /// unspecified.
    pub fn decode_from(&mut self, buf: &[u8]) -> Result<()> {
        let mut r = Reader::new(buf, "rollout");
        self.steps = r.u32()?;
        self.after_first = u32::try_from(r.i32()?).ok();
        self.current_player = u32::try_from(r.i32()?).ok();
        self.terminated = r.u8()? != 0;
        self.truncated = r.u8()? != 0;
        let n = r.u32()? as usize;
        if n > buf.len() / 8 {
            return Err(DecodeError(format!("rollout claims {n} returns in {} bytes", buf.len())));
        }
        self.returns.clear();
        for _ in 0..n {
            self.returns.push(r.f64()?);
        }
        r.finish()
    }
}

/// What a playout does: the request of the optional `wasmgym_playout` export. It applies
/// `prefix` (each action checked like a `step`), reports what was asked about the state reached,
/// then plays a rollout from there as `wasmgym_rollout` does (`first`, then random steps). A tree
/// search restores its root and replays the path to a leaf and the leaf's rollout in this one
/// call, so it keeps no snapshot per node.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PlayoutRequest {
    /// Actions applied first, in order (discrete action spaces only).
    pub prefix: Vec<i64>,
    /// Report the legal actions after the prefix.
    pub legal_actions: bool,
    /// Report the state key after the prefix (`wasmgym_state_key`).
    pub state_key: bool,
    /// The rollout's first action, chosen by the caller; `None`: the first is picked at random too.
    pub first: Option<i64>,
    /// The prefix and `first` are actions the environment listed as legal on the same path (a
    /// search replaying its tree on a deterministic environment): the guest checks them against
    /// the action space only, not against a new legal-action list.
    pub listed: bool,
    /// Seed of the rollout's own generator, as in [`RolloutRequest::seed`].
    pub seed: u64,
    /// Steps the rollout may take, `first` included.
    pub max_steps: u32,
}

impl PlayoutRequest {
    /// Appends the encoding: `seed:u64 max_steps:u32 flags:u8 first:i64 n:u32 prefix:[i64; n]`,
    /// flags 1 = legal actions, 2 = state key, 4 = `first` is given, 8 = `listed`.
    pub fn encode(&self, out: &mut Vec<u8>) {
        let mut w = Writer(out);
        w.i64(self.seed as i64);
        w.u32(self.max_steps);
        w.u8(u8::from(self.legal_actions)
            | u8::from(self.state_key) << 1
            | u8::from(self.first.is_some()) << 2
            | u8::from(self.listed) << 3);
        w.i64(self.first.unwrap_or(0));
        w.u32(self.prefix.len() as u32);
        self.prefix.iter().for_each(|&a| w.i64(a));
    }

    /// Decodes a request.
    pub fn decode(buf: &[u8]) -> Result<Self> {
        let mut request = PlayoutRequest::default();
        request.decode_from(buf)?;
        Ok(request)
    }

    /// Decodes a request into this one, reusing its `prefix` buffer (a guest decodes every
    /// playout without allocating). On error, `self` is left unspecified.
    pub fn decode_from(&mut self, buf: &[u8]) -> Result<()> {
        let mut r = Reader::new(buf, "playout request");
        let seed = r.i64()? as u64;
        let max_steps = r.u32()?;
        let flags = r.u8()?;
        if flags > 15 {
            return Err(DecodeError(format!("playout request flags {flags:#x}: only bits 1, 2, 4 and 8 are defined")));
        }
        let first = r.i64()?;
        let n = r.u32()? as usize;
        if n > buf.len() / 8 {
            return Err(DecodeError(format!("playout request claims {n} prefix actions in {} bytes", buf.len())));
        }
        self.prefix.clear();
        for _ in 0..n {
            self.prefix.push(r.i64()?);
        }
        r.finish()?;
        self.legal_actions = flags & 1 != 0;
        self.state_key = flags & 2 != 0;
        self.first = (flags & 4 != 0).then_some(first);
        self.listed = flags & 8 != 0;
        self.seed = seed;
        self.max_steps = max_steps;
        Ok(())
    }
}

/// What a `wasmgym_playout` did.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Playout {
    /// Who moves after the prefix; `None` if its last action ended the episode.
    pub player: Option<u32>,
    /// Each player's reward for the prefix's last step (zeros for an empty prefix).
    pub prefix_rewards: Vec<f64>,
    /// The legal actions after the prefix, if asked (none once the episode is over).
    pub legal_actions: Option<Vec<i64>>,
    /// The state key after the prefix, if asked: `Some(None)` when the environment gives none.
    pub state_key: Option<Option<Vec<u8>>>,
    /// The rollout's first action (given or picked); `None` if it took no step.
    pub first: Option<i64>,
    /// The rollout from the state after the prefix: `steps` and `returns` count `first`;
    /// `after_first` is who moves after `first` (or after the prefix, when no step was taken).
    pub rollout: Rollout,
}

impl Playout {
    /// Appends the encoding (see [`PlayoutRef::encode`]).
    pub fn encode(&self, out: &mut Vec<u8>) {
        self.borrowed().encode(out);
    }

    /// The same answer with its parts borrowed.
    pub fn borrowed(&self) -> PlayoutRef<'_> {
        PlayoutRef {
            player: self.player,
            prefix_rewards: &self.prefix_rewards,
            legal_actions: self.legal_actions.as_deref(),
            state_key: self.state_key.as_ref().map(|key| key.as_deref()),
            first: self.first,
            rollout: self.rollout.borrowed(),
        }
    }
}

/// A [`Playout`] with its parts borrowed: what a guest encodes from its own buffers.
#[derive(Clone, Copy, Debug, Default)]
pub struct PlayoutRef<'a> {
    /// See [`Playout::player`].
    pub player: Option<u32>,
    /// See [`Playout::prefix_rewards`].
    pub prefix_rewards: &'a [f64],
    /// See [`Playout::legal_actions`].
    pub legal_actions: Option<&'a [i64]>,
    /// See [`Playout::state_key`].
    pub state_key: Option<Option<&'a [u8]>>,
    /// See [`Playout::first`].
    pub first: Option<i64>,
    /// See [`Playout::rollout`].
    pub rollout: RolloutRef<'a>,
}

impl PlayoutRef<'_> {
    /// Appends the encoding: `player:i32 n:u32 prefix_rewards:[f64; n]`, then `has_legal:u8`
    /// (`1`: `count:u32 [i64; count]` follows), `key:u8` (`0` not asked, `1` none, `2`: `len:u32
    /// bytes` follows), `has_first:u8 first:i64`, and the [`Rollout`].
    pub fn encode(&self, out: &mut Vec<u8>) {
        let mut w = Writer(out);
        w.i32(self.player.map_or(-1, |p| p as i32));
        w.u32(self.prefix_rewards.len() as u32);
        self.prefix_rewards.iter().for_each(|&r| w.f64(r));
        w.u8(u8::from(self.legal_actions.is_some()));
        if let Some(legal) = self.legal_actions {
            w.u32(legal.len() as u32);
            legal.iter().for_each(|&a| w.i64(a));
        }
        match self.state_key {
            None => w.u8(0),
            Some(None) => w.u8(1),
            Some(Some(key)) => {
                w.u8(2);
                w.bytes(key);
            }
        }
        w.u8(u8::from(self.first.is_some()));
        w.i64(self.first.unwrap_or(0));
        self.rollout.encode(out);
    }
}

impl Playout {
    /// Decodes a playout.
    pub fn decode(buf: &[u8]) -> Result<Self> {
        let mut playout = Playout::default();
        playout.decode_from(buf)?;
        Ok(playout)
    }

    /// Decodes a playout into this one, reusing its buffers (a search decodes one per
    /// simulation). On error, `self` is left unspecified.
    pub fn decode_from(&mut self, buf: &[u8]) -> Result<()> {
        let mut r = Reader::new(buf, "playout");
        self.player = u32::try_from(r.i32()?).ok();
        let count = |r: &mut Reader, what: &str| -> Result<usize> {
            let n = r.u32()? as usize;
            match n > buf.len() / 8 {
                true => Err(DecodeError(format!("playout claims {n} {what} in {} bytes", buf.len()))),
                false => Ok(n),
            }
        };
        let n = count(&mut r, "rewards")?;
        self.prefix_rewards.clear();
        for _ in 0..n {
            self.prefix_rewards.push(r.f64()?);
        }
        match r.u8()? {
            0 => self.legal_actions = None,
            1 => {
                let n = count(&mut r, "legal actions")?;
                let legal = self.legal_actions.get_or_insert_default();
                legal.clear();
                for _ in 0..n {
                    legal.push(r.i64()?);
                }
            }
            other => return Err(DecodeError(format!("playout has_legal is {other}, not 0 or 1"))),
        }
        self.state_key = match r.u8()? {
            0 => None,
            1 => Some(None),
            2 => Some(Some(r.bytes()?.to_vec())),
            other => return Err(DecodeError(format!("playout key tag is {other}, not 0, 1 or 2"))),
        };
        let has_first = r.u8()?;
        let first = r.i64()?;
        self.first = match has_first {
            0 => None,
            1 => Some(first),
            other => return Err(DecodeError(format!("playout has_first is {other}, not 0 or 1"))),
        };
        self.rollout.decode_from(r.rest())
    }
}

/// Encodes the optional `wasmgym_text_actions` answer: `n:u32 (len:u32 text:[u8])*`.
pub fn encode_text_actions(out: &mut Vec<u8>, actions: &[String]) {
    let mut w = Writer(out);
    w.u32(actions.len() as u32);
    for a in actions {
        w.bytes(a.as_bytes());
    }
}

/// Decodes a list of text actions.
pub fn decode_text_actions(buf: &[u8]) -> Result<Vec<String>> {
    let mut r = Reader::new(buf, "text actions");
    let n = r.u32()? as usize;
    if n > buf.len() / 4 {
        return Err(DecodeError(format!("text actions claim {n} entries in {} bytes", buf.len())));
    }
    let actions = (0..n).map(|_| r.str().map(str::to_owned)).collect::<Result<Vec<_>>>()?;
    r.finish()?;
    Ok(actions)
}

/// Encodes the optional `wasmgym_state_key` answer: `has_key:u8 key:[u8]` (the rest).
pub fn encode_state_key(out: &mut Vec<u8>, key: Option<&[u8]>) {
    out.push(key.is_some() as u8);
    out.extend_from_slice(key.unwrap_or_default());
}

/// Decodes a state key answer.
pub fn decode_state_key(buf: &[u8]) -> Result<Option<Vec<u8>>> {
    match buf.split_first() {
        Some((0, [])) => Ok(None),
        Some((1, key)) => Ok(Some(key.to_vec())),
        _ => Err(DecodeError("a state key answer is has_key:u8 (0 or 1) then the key; 0 has no key bytes".into())),
    }
}

/// JSON form: a number for a discrete action, a string for a text one.
impl serde::Serialize for Action {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        match self {
            Action::Discrete(a) => s.serialize_i64(*a),
            Action::Text(t) => s.serialize_str(t),
        }
    }
}

/// JSON form: the elements of a box (or of a multi-discrete vector) as an array, a discrete
/// value as a number, text as a string.
impl serde::Serialize for Observation {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        match self {
            Observation::F32(v) => v.serialize(s),
            Observation::F64(v) => v.serialize(s),
            Observation::I32(v) => v.serialize(s),
            Observation::Discrete(v) => s.serialize_i64(*v),
            Observation::MultiDiscrete(v) => v.serialize(s),
            Observation::Text(t) => s.serialize_str(t),
        }
    }
}
