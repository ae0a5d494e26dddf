//! An environment's spaces as JSON: observations and actions on the wire, and the JSON schemas
//! `/schema` serves.

use serde_json::{Value, json};
use wasmgym::{Action, Dtype, EnvSpec, Observation, Space};

/// An observation as JSON: a number or a string for `Discrete` and `Text`, an array for
/// `MultiDiscrete`, and nested arrays shaped like the `Box` (as numpy's `tolist()` gives them).
/// A float that is not finite (which JSON cannot hold) becomes `null`.
pub fn observation(space: &Space, observation: &Observation) -> Value {
    let flat: Vec<Value> = match observation {
        Observation::Discrete(x) => return json!(x),
        Observation::Text(s) => return json!(s),
        Observation::MultiDiscrete(v) => return json!(v),
        Observation::F32(v) => v.iter().map(|&x| json!(x)).collect(),
        Observation::F64(v) => v.iter().map(|&x| json!(x)).collect(),
        Observation::I32(v) => v.iter().map(|&x| json!(x)).collect(),
    };
    match space {
        Space::Box { shape, .. } if shape.len() > 1 => nest(&flat, shape),
        _ => Value::Array(flat),
    }
}

/// `flat` (row-major) as nested arrays of `shape`.
fn nest(flat: &[Value], shape: &[u32]) -> Value {
    match shape {
        [] | [_] => Value::Array(flat.to_vec()),
        [rows, inner @ ..] => {
            let step = flat.len() / (*rows as usize).max(1);
            Value::Array(flat.chunks(step.max(1)).map(|chunk| nest(chunk, inner)).collect())
        }
    }
}

/// An action as JSON: an integer or a string.
pub fn action(action: &Action) -> Value {
    match action {
        Action::Discrete(a) => json!(a),
        Action::Text(s) => json!(s),
    }
}

/// Reads an action for `space`: `{"action": 3}` or `{"action": "go north"}` (OpenEnv's shape; a
/// `metadata` field is ignored), or the bare value. The message names what is wrong and what is
/// expected.
pub fn parse_action(space: &Space, value: &Value) -> Result<Action, String> {
    let value = match value {
        Value::Object(fields) => {
            if let Some(other) = fields.keys().find(|k| *k != "action" && *k != "metadata") {
                return Err(format!("unknown field `{other}` in the action: send {}", example(space)));
            }
            fields.get("action").ok_or_else(|| format!("the action has no `action` field: send {}", example(space)))?
        }
        other => other,
    };
    match space {
        Space::Text { .. } => match value {
            Value::String(s) => Ok(Action::Text(s.clone())),
            other => Err(format!("this environment takes text actions, not {}: send {}", kind(other), example(space))),
        },
        _ => match value.as_i64() {
            Some(a) => Ok(Action::Discrete(a)),
            None => {
                Err(format!("this environment takes integer actions, not {}: send {}", kind(value), example(space)))
            }
        },
    }
}

fn example(space: &Space) -> &'static str {
    match space {
        Space::Text { .. } => r#"{"action": "some text"}"#,
        _ => r#"{"action": 3}"#,
    }
}

/// What a JSON value is, for messages: `a string ("…")`, `a number (2.5)`, `an object`.
pub fn kind(value: &Value) -> String {
    let shown = |s: String| if s.len() > 40 { format!("{}…", &s[..s.floor_char_boundary(40)]) } else { s };
    match value {
        Value::Null => "null".into(),
        Value::Bool(b) => format!("a boolean ({b})"),
        Value::Number(n) => format!("a number ({n})"),
        Value::String(s) => format!("a string ({})", shown(format!("{s:?}"))),
        Value::Array(_) => "an array".into(),
        Value::Object(_) => "an object".into(),
    }
}

/// The JSON schema of values of `space`.
pub fn schema(space: &Space) -> Value {
    match space {
        Space::Discrete { n } => json!({"type": "integer", "minimum": 0, "maximum": n.saturating_sub(1)}),
        Space::Text { max_length, charset } => {
            let mut s = json!({"type": "string", "maxLength": max_length});
            if let Some(charset) = charset {
                s["description"] = json!(format!("characters from {charset:?}"));
            }
            s
        }
        Space::MultiDiscrete { nvec } => json!({
            "type": "array", "items": {"type": "integer", "minimum": 0},
            "minItems": nvec.len(), "maxItems": nvec.len(),
            "description": format!("element i in 0..nvec[i], nvec = {nvec:?}"),
        }),
        Space::Box { dtype, shape, .. } => {
            let element = match dtype {
                Dtype::I32 => json!({"type": ["integer", "null"]}),
                _ => json!({"type": ["number", "null"], "description": "null for a value that is not finite"}),
            };
            shape
                .iter()
                .rev()
                .fold(element, |items, &n| json!({"type": "array", "items": items, "minItems": n, "maxItems": n}))
        }
    }
}

/// The schemas `/schema` serves: `action`, `observation` and `state`.
pub fn schemas(spec: &EnvSpec) -> Value {
    let title = |what: &str| format!("{}{what}", camel(&spec.name));
    let player = json!({"type": ["integer", "null"], "minimum": 0, "description": "the player to move; null once the episode is over"});
    let legal = match spec.action_space {
        Space::Text { .. } => json!({"type": "string"}),
        _ => json!({"type": "integer"}),
    };
    let mut observation_props = json!({
        "observation": schema(&spec.observation_space),
        "legal_actions": {"type": "array", "items": legal, "description": "the actions legal now (valid commands for text environments)"},
        "current_player": player,
        "rewards": {"type": "array", "items": {"type": ["number", "null"]}, "description": "this step's reward for every player"},
        "terminated": {"type": "boolean"},
        "truncated": {"type": "boolean"},
        "info": {"type": "object"},
        "done": {"type": "boolean"},
        "reward": {"type": ["number", "null"], "description": "the reward of the player who acted; null after reset"},
        "metadata": {"type": "object"},
    });
    if is_text(spec) {
        observation_props["text"] = json!({"type": "string", "description": "the environment rendered as text"});
    }
    json!({
        "action": {
            "title": title("Action"), "type": "object",
            "properties": {"action": schema(&spec.action_space), "metadata": {"type": "object"}},
            "required": ["action"], "additionalProperties": false,
        },
        "observation": {"title": title("Observation"), "type": "object", "properties": observation_props},
        "state": {
            "title": title("State"), "type": "object",
            "properties": {
                "episode_id": {"type": ["string", "null"]},
                "step_count": {"type": "integer", "minimum": 0},
                "current_player": player,
                "done": {"type": "boolean"},
                "state_hash": {"type": ["string", "null"], "description": "BLAKE3 of the instance's state (hex): equal hashes, identical futures"},
                "env": {"type": "string"},
            },
            "required": ["step_count"],
        },
    })
}

/// Whether observations carry the rendered text (text environments).
pub fn is_text(spec: &EnvSpec) -> bool {
    matches!(spec.action_space, Space::Text { .. }) || matches!(spec.observation_space, Space::Text { .. })
}

/// `tic_tac_toe` → `TicTacToe`.
fn camel(name: &str) -> String {
    name.split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(|w| w[..1].to_ascii_uppercase() + &w[1..])
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_box_nests_like_numpy_tolist() {
        let space = Space::uniform_box(Dtype::F32, &[2, 3], 0.0, 1.0);
        let obs = Observation::F32(vec![0.0, 1.0, 0.5, 0.25, 0.0, f32::NAN]);
        assert_eq!(observation(&space, &obs), json!([[0.0, 1.0, 0.5], [0.25, 0.0, null]]));
        let flat = Space::uniform_box(Dtype::I32, &[3], 0.0, 9.0);
        assert_eq!(observation(&flat, &Observation::I32(vec![1, 2, 3])), json!([1, 2, 3]));
    }

    #[test]
    fn actions_parse_from_openenv_objects_or_bare_values_and_bad_ones_say_what_to_send() {
        let discrete = Space::Discrete { n: 7 };
        let text = Space::Text { max_length: 64, charset: None };
        assert_eq!(parse_action(&discrete, &json!({"action": 3, "metadata": {}})), Ok(Action::Discrete(3)));
        assert_eq!(parse_action(&discrete, &json!(-1)), Ok(Action::Discrete(-1)));
        assert_eq!(parse_action(&text, &json!({"action": "go north"})), Ok(Action::Text("go north".into())));
        let e = parse_action(&discrete, &json!({"action": "3"})).unwrap_err();
        assert!(e.contains("integer actions, not a string") && e.contains(r#"{"action": 3}"#), "{e}");
        let e = parse_action(&discrete, &json!({"action": 2.5})).unwrap_err();
        assert!(e.contains("a number (2.5)"), "{e}");
        let e = parse_action(&discrete, &json!({"move": 3})).unwrap_err();
        assert!(e.contains("unknown field `move`"), "{e}");
        let e = parse_action(&text, &json!({})).unwrap_err();
        assert!(e.contains("no `action` field"), "{e}");
        let e = parse_action(&text, &json!({"action": 3})).unwrap_err();
        assert!(e.contains("text actions"), "{e}");
    }

    #[test]
    fn schemas_follow_the_spaces() {
        assert_eq!(schema(&Space::Discrete { n: 7 })["maximum"], 6);
        let board = schema(&Space::uniform_box(Dtype::F32, &[2, 6, 7], 0.0, 1.0));
        assert_eq!(board["minItems"], 2);
        assert_eq!(board["items"]["items"]["maxItems"], 7);
        assert_eq!(camel("connect_four"), "ConnectFour");
    }
}
