//! An agent's action: a tool call or a message, parsed and checked against the tools' schemas.

use serde_json::{Map, Value};
use wasmgym_abi::Tool;

/// What an agent's action text asks for.
#[derive(Clone, Debug, PartialEq)]
pub enum AgentAction {
    /// A call of a tool with its arguments.
    Call {
        /// The tool's name.
        tool: String,
        /// The arguments object.
        args: Map<String, Value>,
    },
    /// A message to the user.
    Message(String),
}

impl AgentAction {
    /// Reads an action: a JSON object with `"tool"` (and `"args"`), or OpenAI's `"name"` and
    /// `"arguments"` (an object or its JSON text), is a call; one with `"message"` is a message;
    /// any text that is not a JSON object is a message. Anything else is an error saying why.
    pub fn parse(text: &str) -> Result<AgentAction, String> {
        let trimmed = text.trim();
        if !trimmed.starts_with('{') {
            return Ok(AgentAction::Message(text.to_string()));
        }
        let Ok(Value::Object(object)) = serde_json::from_str::<Value>(trimmed) else {
            return Ok(AgentAction::Message(text.to_string()));
        };
        if let Some(message) = object.get("message") {
            return match message.as_str() {
                Some(m) if object.len() == 1 => Ok(AgentAction::Message(m.to_string())),
                _ => Err("a message is {\"message\": TEXT} and nothing else".into()),
            };
        }
        let (tool, args) = match (object.get("tool"), object.get("name")) {
            (Some(tool), _) => (tool, object.get("args").or_else(|| object.get("arguments"))),
            (None, Some(name)) => (name, object.get("arguments").or_else(|| object.get("args"))),
            (None, None) => {
                return Err(
                    "a JSON action needs \"tool\" (and \"args\") for a tool call, or \"message\" for the user".into()
                );
            }
        };
        let tool = tool.as_str().ok_or("\"tool\" must be the tool's name, a string")?.to_string();
        let args = match args {
            None | Some(Value::Null) => Map::new(),
            Some(Value::Object(args)) => args.clone(),
            // OpenAI's function calls carry the arguments as JSON text.
            Some(Value::String(json)) => match serde_json::from_str::<Value>(json) {
                Ok(Value::Object(args)) => args,
                _ => return Err(format!("the arguments of {tool} are not a JSON object: {json:?}")),
            },
            Some(other) => return Err(format!("the arguments of {tool} must be an object, not {other}")),
        };
        Ok(AgentAction::Call { tool, args })
    }

    /// The call as the owning module receives it: `{"tool": NAME, "args": {...}}`.
    pub fn call_text(tool: &str, args: &Map<String, Value>) -> String {
        serde_json::json!({"tool": tool, "args": args}).to_string()
    }
}

/// Checks `args` against the tool's parameter schema: required properties present, no others
/// when `additionalProperties` is false, and each value of its declared JSON type (and among its
/// `enum`, if any). The message names the argument and what it should be.
pub fn check_args(tool: &Tool, args: &Map<String, Value>) -> Result<(), String> {
    let schema = &tool.parameters;
    let empty = Map::new();
    let properties = schema.get("properties").and_then(Value::as_object).unwrap_or(&empty);
    let describe = |name: &str| {
        let ty = properties.get(name).and_then(|p| p.get("type")).and_then(Value::as_str).unwrap_or("any");
        format!("{name} ({ty})")
    };
    for required in schema.get("required").and_then(Value::as_array).into_iter().flatten() {
        let name = required.as_str().unwrap_or_default();
        if !args.contains_key(name) {
            return Err(format!("{}: missing argument {}", tool.name, describe(name)));
        }
    }
    let closed = schema.get("additionalProperties") == Some(&Value::Bool(false));
    for (name, value) in args {
        let Some(property) = properties.get(name) else {
            if closed {
                let known: Vec<String> = properties.keys().map(|k| describe(k)).collect();
                return Err(format!(
                    "{}: unknown argument {name:?}; its arguments are: {}",
                    tool.name,
                    if known.is_empty() { "none".to_string() } else { known.join(", ") }
                ));
            }
            continue;
        };
        if let Some(ty) = property.get("type").and_then(Value::as_str)
            && !has_type(value, ty)
        {
            return Err(format!("{}: argument {name} must be a {ty}, not {value}", tool.name));
        }
        if let Some(allowed) = property.get("enum").and_then(Value::as_array)
            && !allowed.contains(value)
        {
            let allowed: Vec<String> = allowed.iter().map(Value::to_string).collect();
            return Err(format!("{}: argument {name} must be one of {}, not {value}", tool.name, allowed.join(", ")));
        }
    }
    Ok(())
}

/// Whether `value` is of JSON-schema type `ty` (an unknown type name accepts anything).
fn has_type(value: &Value, ty: &str) -> bool {
    match ty {
        "string" => value.is_string(),
        "integer" => value.is_i64() || value.is_u64(),
        "number" => value.is_number(),
        "boolean" => value.is_boolean(),
        "object" => value.is_object(),
        "array" => value.is_array(),
        "null" => value.is_null(),
        _ => true,
    }
}

/// The tools in the shape OpenAI-style function calling takes:
/// `[{"type": "function", "function": {"name", "description", "parameters"}}]`.
pub fn function_specs(tools: &[Tool]) -> Value {
    Value::Array(
        tools
            .iter()
            .map(|t| {
                serde_json::json!({"type": "function", "function": {
                    "name": t.name, "description": t.description, "parameters": t.parameters}})
            })
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tool() -> Tool {
        Tool::new("get_order", "Looks up an order.", &[("order_id", "string", "like #W1001")])
    }

    #[test]
    fn actions_parse_as_calls_or_messages() {
        let call = |text: &str| match AgentAction::parse(text).unwrap() {
            AgentAction::Call { tool, args } => (tool, Value::Object(args)),
            other => panic!("{other:?}"),
        };
        assert_eq!(call(r##"{"tool": "get_order", "args": {"order_id": "#W1"}}"##).1["order_id"], "#W1");
        assert_eq!(call(r##"{"name": "get_order", "arguments": "{\"order_id\": \"#W2\"}"}"##).1["order_id"], "#W2");
        assert_eq!(call(r#"{"tool": "list_files"}"#), ("list_files".into(), serde_json::json!({})));
        assert_eq!(AgentAction::parse("hello {there}").unwrap(), AgentAction::Message("hello {there}".into()));
        assert_eq!(AgentAction::parse(r#"{"message": "hi"}"#).unwrap(), AgentAction::Message("hi".into()));
        assert_eq!(AgentAction::parse("{not json").unwrap(), AgentAction::Message("{not json".into()));
        for bad in
            [r#"{"x": 1}"#, r#"{"tool": 3}"#, r#"{"tool": "t", "args": [1]}"#, r#"{"name": "t", "arguments": "[1]"}"#]
        {
            assert!(AgentAction::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn arguments_are_checked_against_the_schema() {
        let args = |v: Value| v.as_object().unwrap().clone();
        assert_eq!(check_args(&tool(), &args(serde_json::json!({"order_id": "#W1"}))), Ok(()));
        let message = |v: Value| check_args(&tool(), &args(v)).unwrap_err();
        assert!(message(serde_json::json!({})).contains("missing argument order_id (string)"));
        assert!(message(serde_json::json!({"order_id": 7})).contains("must be a string"));
        assert!(message(serde_json::json!({"order_id": "#W1", "x": 1})).contains("unknown argument \"x\""));
        let specs = function_specs(&[tool()]);
        assert_eq!(specs[0]["function"]["name"], "get_order");
        assert_eq!(specs[0]["function"]["parameters"]["required"][0], "order_id");
    }
}
