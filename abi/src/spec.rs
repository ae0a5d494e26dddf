//! The static description of an environment ([`EnvSpec`]) and of its spaces ([`Space`]).
//!
//! A spec crosses the ABI once per module as JSON (`wasmgym_spec`), so it is readable by hand and easy
//! to emit from any language. Infinite bounds are written as the strings `"inf"` and `"-inf"`.

use serde::{Deserialize, Serialize};

/// What an environment is: its name, players, spaces and episode bounds. Plain data.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EnvSpec {
    /// Short identifier, such as `"tic_tac_toe"`.
    pub name: String,
    /// Version of the environment's rules; bump it when trajectories change.
    pub version: u32,
    /// Number of players; single-agent environments have 1 (player 0).
    pub players: u32,
    /// The space observations lie in.
    pub observation_space: Space,
    /// The space actions are drawn from (`Discrete` or `Text`).
    pub action_space: Space,
    /// Lowest and highest reward a single step can give to one player.
    #[serde(with = "float_pair")]
    pub reward_range: (f64, f64),
    /// Steps after which an episode is truncated, if any.
    pub max_episode_steps: Option<u64>,
    /// Whether transitions draw randomness from the host RNG.
    pub determinism: Determinism,
    /// The tools a tool-use text environment offers, in the shape LLM function calling uses: a
    /// name, a description and a JSON schema of the arguments. An agent calls one with the text
    /// action `{"tool": NAME, "args": {...}}`. Empty for other environments (and omitted from the
    /// JSON, so specs written before tools existed still read).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tools: Vec<Tool>,
}

/// One tool of a tool-use environment ([`EnvSpec::tools`]), as LLM function calling declares it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Tool {
    /// The name a call gives: 1 to 64 ASCII letters, digits, `_` or `-`.
    pub name: String,
    /// What the tool does, for the agent to read.
    #[serde(default)]
    pub description: String,
    /// A JSON schema of the arguments object: `{"type": "object", "properties": {...}, "required": [...]}`.
    pub parameters: serde_json::Value,
}

/// The most tools an environment may declare.
pub const MAX_TOOLS: usize = 256;

impl Tool {
    /// A tool with these properties (`(name, JSON type, description)`), all of them required.
    pub fn new(name: &str, description: &str, params: &[(&str, &str, &str)]) -> Tool {
        let properties: serde_json::Map<String, serde_json::Value> = params
            .iter()
            .map(|(p, ty, doc)| (p.to_string(), serde_json::json!({"type": ty, "description": doc})))
            .collect();
        let required: Vec<&str> = params.iter().map(|p| p.0).collect();
        Tool {
            name: name.into(),
            description: description.into(),
            parameters: serde_json::json!({
                "type": "object", "properties": properties, "required": required, "additionalProperties": false
            }),
        }
    }

    /// Checks the name and that `parameters` is an object schema (`"type": "object"`, `properties`
    /// an object, `required` naming only properties).
    pub fn validate(&self) -> Result<(), String> {
        let name_ok = |c: char| c.is_ascii_alphanumeric() || c == '_' || c == '-';
        if self.name.is_empty() || self.name.len() > 64 || !self.name.chars().all(name_ok) {
            return Err(format!(
                "tool name {:?} must be 1 to 64 ASCII letters, digits, _ or -",
                self.name.chars().take(64).collect::<String>()
            ));
        }
        let schema = self.parameters.as_object().ok_or_else(|| {
            format!("tool {}: parameters must be a JSON schema object such as {{\"type\": \"object\"}}", self.name)
        })?;
        if schema.get("type").and_then(|t| t.as_str()) != Some("object") {
            return Err(format!(
                "tool {}: parameters must have \"type\": \"object\" (the arguments object)",
                self.name
            ));
        }
        let properties = match schema.get("properties") {
            None => serde_json::Map::new(),
            Some(serde_json::Value::Object(p)) => p.clone(),
            Some(_) => return Err(format!("tool {}: \"properties\" must be an object", self.name)),
        };
        if let Some(required) = schema.get("required") {
            let names = required
                .as_array()
                .ok_or_else(|| format!("tool {}: \"required\" must be an array of property names", self.name))?;
            for n in names {
                match n.as_str() {
                    Some(n) if properties.contains_key(n) => {}
                    _ => return Err(format!("tool {}: required {n} is not one of its properties", self.name)),
                }
            }
        }
        Ok(())
    }
}

/// Whether an environment's transitions are a function of state and action alone.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Determinism {
    /// `step` never draws from the RNG (reset may).
    Deterministic,
    /// `step` may draw from the host RNG; still exactly reproducible from the seed.
    Stochastic,
}

/// Element type of a [`Space::Box`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Dtype {
    /// 32-bit float.
    F32,
    /// 64-bit float.
    F64,
    /// 32-bit signed integer.
    I32,
}

impl Dtype {
    /// Bytes per element on the wire.
    pub fn size(self) -> usize {
        match self {
            Dtype::F32 | Dtype::I32 => 4,
            Dtype::F64 => 8,
        }
    }
}

/// A set of observations or actions, in Gymnasium's vocabulary.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "type")]
pub enum Space {
    /// Integers `0..n`.
    Discrete {
        /// Number of values.
        n: u64,
    },
    /// A tensor of `dtype` with `shape`, each element within `[low[i], high[i]]` (row-major).
    Box {
        /// Element type.
        dtype: Dtype,
        /// Dimensions; the element count is their product.
        shape: Vec<u32>,
        /// Lower bound per element.
        #[serde(with = "float_vec")]
        low: Vec<f64>,
        /// Upper bound per element.
        #[serde(with = "float_vec")]
        high: Vec<f64>,
    },
    /// A vector of integers, element `i` in `0..nvec[i]`.
    MultiDiscrete {
        /// Number of values per element.
        nvec: Vec<u64>,
    },
    /// A UTF-8 string of at most `max_length` characters, each from `charset` if one is given.
    Text {
        /// Maximum number of characters.
        max_length: u32,
        /// Allowed characters; `None` allows any.
        charset: Option<String>,
    },
}

impl Space {
    /// A `Box` whose every element shares the bounds `low..=high`.
    pub fn uniform_box(dtype: Dtype, shape: &[u32], low: f64, high: f64) -> Space {
        let n = shape.iter().map(|&d| d as usize).product();
        Space::Box { dtype, shape: shape.to_vec(), low: vec![low; n], high: vec![high; n] }
    }

    /// Number of elements of a `Box` (the product of its shape), or `None` if it overflows `usize`.
    pub fn box_elements(shape: &[u32]) -> Option<usize> {
        shape.iter().try_fold(1usize, |n, &d| n.checked_mul(d as usize))
    }

    /// Checks the space is well formed (bounds match the shape, `n` > 0, sizes within
    /// [`MAX_SPACE_ELEMENTS`], a charset that has characters), so later checks can rely on it.
    pub fn validate(&self) -> Result<(), String> {
        match self {
            Space::Discrete { n: 0 } => Err("Discrete space with n = 0 has no values".into()),
            Space::Discrete { n } if *n > i64::MAX as u64 => {
                Err(format!("Discrete space with n = {n} has values that are not i64 actions"))
            }
            Space::Discrete { .. } => Ok(()),
            Space::Box { shape, low, high, .. } => {
                let n = match Space::box_elements(shape) {
                    Some(n) if n <= MAX_SPACE_ELEMENTS => n,
                    _ => {
                        return Err(format!(
                            "Box of shape {shape:?} has more than {MAX_SPACE_ELEMENTS} elements (the product of the \
                             shape), which no observation can hold"
                        ));
                    }
                };
                if low.len() != n || high.len() != n {
                    return Err(format!(
                        "Box of shape {shape:?} has {n} elements but {} low and {} high bounds",
                        low.len(),
                        high.len()
                    ));
                }
                // Not `l > h`: a NaN bound must be refused too.
                #[allow(clippy::neg_cmp_op_on_partial_ord)]
                match low.iter().zip(high).position(|(l, h)| !(l <= h)) {
                    Some(i) => Err(format!("Box bound {i} has low {} > high {}", low[i], high[i])),
                    None => Ok(()),
                }
            }
            Space::MultiDiscrete { nvec } => {
                if nvec.len() > MAX_SPACE_ELEMENTS {
                    return Err(format!("MultiDiscrete has {} elements, more than {MAX_SPACE_ELEMENTS}", nvec.len()));
                }
                match nvec.iter().position(|&n| n == 0 || n > i64::MAX as u64) {
                    Some(i) => Err(format!("MultiDiscrete element {i} has {} values: it needs 1 to i64::MAX", nvec[i])),
                    None => Ok(()),
                }
            }
            Space::Text { charset: Some(set), .. } if set.is_empty() => {
                Err("Text space with an empty charset admits only the empty string: give it characters or use null \
                     for any"
                    .into())
            }
            Space::Text { .. } => Ok(()),
        }
    }
}

/// The most elements a `Box` or `MultiDiscrete` space may have (16 Mi): an observation of that many
/// `f64` is 128 MiB. Larger spaces are refused when the spec is read.
pub const MAX_SPACE_ELEMENTS: usize = 1 << 24;

/// The most players an environment may have. Hosts allocate per player (returns, rewards).
pub const MAX_PLAYERS: u32 = 1024;

/// The longest environment name, in bytes.
pub const MAX_NAME_BYTES: usize = 64;

impl EnvSpec {
    /// Checks everything a host relies on before trusting the spec: a printable name (letters,
    /// digits, `_ - . : /`, at most [`MAX_NAME_BYTES`]), 1 to [`MAX_PLAYERS`] players, well-formed
    /// spaces ([`Space::validate`]), a `Discrete` or `Text` action space, a reward range with
    /// low ≤ high (no NaN), and tools (only with a `Text` action space) with unique names and
    /// object schemas ([`Tool::validate`]). The message names the field and what to change.
    pub fn validate(&self) -> Result<(), String> {
        let name_ok = |c: char| c.is_ascii_alphanumeric() || "_-.:/".contains(c);
        if self.name.is_empty() || self.name.len() > MAX_NAME_BYTES || !self.name.chars().all(name_ok) {
            return Err(format!(
                "name {:?} must be 1 to {MAX_NAME_BYTES} characters of ASCII letters, digits and _ - . : /",
                self.name.chars().take(MAX_NAME_BYTES).collect::<String>()
            ));
        }
        if self.players == 0 || self.players > MAX_PLAYERS {
            return Err(format!("players is {}: it must be 1 to {MAX_PLAYERS}", self.players));
        }
        self.observation_space.validate().map_err(|m| format!("observation space: {m}"))?;
        self.action_space.validate().map_err(|m| format!("action space: {m}"))?;
        if !matches!(self.action_space, Space::Discrete { .. } | Space::Text { .. }) {
            return Err("the action space must be Discrete or Text".into());
        }
        let (low, high) = self.reward_range;
        #[allow(clippy::neg_cmp_op_on_partial_ord)]
        if !(low <= high) {
            return Err(format!("reward_range ({low}, {high}) must have low <= high"));
        }
        if !self.tools.is_empty() && !matches!(self.action_space, Space::Text { .. }) {
            return Err("tools need a Text action space (a call is the text {\"tool\": ..., \"args\": ...})".into());
        }
        if self.tools.len() > MAX_TOOLS {
            return Err(format!("{} tools: at most {MAX_TOOLS}", self.tools.len()));
        }
        for (i, tool) in self.tools.iter().enumerate() {
            tool.validate()?;
            if self.tools[..i].iter().any(|t| t.name == tool.name) {
                return Err(format!("tool {} is declared twice: tool names must be unique", tool.name));
            }
        }
        Ok(())
    }
}

/// serde for a `(f64, f64)` that may hold infinities.
mod float_pair {
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    use super::Float;

    pub fn serialize<S: Serializer>(v: &(f64, f64), s: S) -> Result<S::Ok, S::Error> {
        (Float(v.0), Float(v.1)).serialize(s)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<(f64, f64), D::Error> {
        let (a, b) = <(Float, Float)>::deserialize(d)?;
        Ok((a.0, b.0))
    }
}

/// serde for a `Vec<f64>` that may hold infinities.
mod float_vec {
    use serde::{Deserialize, Deserializer, Serializer};

    use super::Float;

    pub fn serialize<S: Serializer>(v: &[f64], s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(v.iter().map(|&x| Float(x)))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<f64>, D::Error> {
        Ok(Vec::<Float>::deserialize(d)?.into_iter().map(|f| f.0).collect())
    }
}

/// A float written as a JSON number, or as `"inf"` / `"-inf"` when infinite.
#[derive(Clone, Copy)]
struct Float(f64);

impl Serialize for Float {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self.0 {
            f64::INFINITY => s.serialize_str("inf"),
            f64::NEG_INFINITY => s.serialize_str("-inf"),
            x => s.serialize_f64(x),
        }
    }
}

impl<'de> Deserialize<'de> for Float {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Repr {
            Num(f64),
            Str(String),
        }
        match Repr::deserialize(d)? {
            Repr::Num(x) => Ok(Float(x)),
            Repr::Str(s) if s == "inf" => Ok(Float(f64::INFINITY)),
            Repr::Str(s) if s == "-inf" => Ok(Float(f64::NEG_INFINITY)),
            Repr::Str(s) => {
                Err(serde::de::Error::custom(format!("expected a number, \"inf\" or \"-inf\", found {s:?}")))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spec_round_trips_through_json_with_infinite_bounds() {
        let spec = EnvSpec {
            name: "cart_pole".into(),
            version: 1,
            players: 1,
            observation_space: Space::Box {
                dtype: Dtype::F64,
                shape: vec![2],
                low: vec![-4.8, f64::NEG_INFINITY],
                high: vec![4.8, f64::INFINITY],
            },
            action_space: Space::Discrete { n: 2 },
            reward_range: (0.0, 1.0),
            max_episode_steps: Some(500),
            determinism: Determinism::Deterministic,
            tools: vec![],
        };
        let json = serde_json::to_string(&spec).unwrap();
        assert!(json.contains("\"-inf\""), "{json}");
        let back: EnvSpec = serde_json::from_str(&json).unwrap();
        assert_eq!(back, spec);
    }

    #[test]
    fn validate_rejects_mismatched_bounds_and_empty_discrete() {
        let bad = Space::Box { dtype: Dtype::F32, shape: vec![2, 2], low: vec![0.0; 3], high: vec![1.0; 4] };
        assert!(bad.validate().unwrap_err().contains("4 elements"));
        assert!(Space::Discrete { n: 0 }.validate().is_err());
        assert!(Space::uniform_box(Dtype::I32, &[3, 3], 0.0, 1.0).validate().is_ok());
    }

    fn spec() -> EnvSpec {
        EnvSpec {
            name: "ok".into(),
            version: 1,
            players: 2,
            observation_space: Space::Discrete { n: 1 },
            action_space: Space::Discrete { n: 3 },
            reward_range: (-1.0, 1.0),
            max_episode_steps: None,
            determinism: Determinism::Deterministic,
            tools: vec![],
        }
    }

    // Issue 9, item 4: specs a host must not trust.
    #[test]
    fn absurd_specs_are_refused_with_the_field_named() {
        assert_eq!(spec().validate(), Ok(()));
        let refused = |f: &dyn Fn(&mut EnvSpec), word: &str| {
            let mut s = spec();
            f(&mut s);
            let message = s.validate().unwrap_err();
            assert!(message.contains(word), "{message:?} does not name {word:?}");
        };
        refused(&|s| s.players = u32::MAX, "players");
        refused(&|s| s.players = 0, "players");
        refused(&|s| s.name = "evil\u{1b}[2J".into(), "name");
        refused(&|s| s.name = String::new(), "name");
        refused(&|s| s.name = "x".repeat(65), "name");
        refused(&|s| s.reward_range = (1.0, -1.0), "reward_range");
        refused(&|s| s.reward_range = (f64::NAN, 1.0), "reward_range");
        refused(&|s| s.action_space = Space::Text { max_length: 4, charset: Some(String::new()) }, "charset");
        // 2^32 * 2^32 wraps to 0 in 64-bit arithmetic: it must not pass as an empty box.
        let huge = Space::Box { dtype: Dtype::F32, shape: vec![u32::MAX, u32::MAX, 2], low: vec![], high: vec![] };
        refused(&|s| s.observation_space = huge.clone(), "elements");
        refused(
            &|s| {
                s.observation_space =
                    Space::Box { dtype: Dtype::F32, shape: vec![65536, 65536], low: vec![], high: vec![] }
            },
            "elements",
        );
        refused(&|s| s.observation_space = Space::MultiDiscrete { nvec: vec![2, 0] }, "element 1");
        refused(&|s| s.action_space = Space::MultiDiscrete { nvec: vec![2] }, "Discrete or Text");
        refused(&|s| s.action_space = Space::Discrete { n: u64::MAX }, "i64");
        let tool = Tool::new("get_order", "Looks up an order.", &[("order_id", "string", "like #W1001")]);
        refused(&|s| s.tools = vec![tool.clone()], "Text action space");
        let text = |s: &mut EnvSpec| s.action_space = Space::Text { max_length: 64, charset: None };
        refused(&|s| (text(s), s.tools = vec![tool.clone(), tool.clone()]).1, "twice");
        refused(&|s| (text(s), s.tools = vec![Tool { name: "a b".into(), ..tool.clone() }]).1, "tool name");
        let no_object = Tool { parameters: serde_json::json!({"type": "string"}), ..tool.clone() };
        refused(&|s| (text(s), s.tools = vec![no_object.clone()]).1, "\"object\"");
        let bad_required =
            Tool { parameters: serde_json::json!({"type": "object", "required": ["x"]}), ..tool.clone() };
        refused(&|s| (text(s), s.tools = vec![bad_required.clone()]).1, "required");
        let mut ok = spec();
        text(&mut ok);
        ok.tools = vec![tool.clone()];
        assert_eq!(ok.validate(), Ok(()));
        let back: EnvSpec = serde_json::from_str(&serde_json::to_string(&ok).unwrap()).unwrap();
        assert_eq!(back, ok);
    }
}
