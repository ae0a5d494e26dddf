//! The support desk of a tau-bench-style customer-support domain: a database of customers and
//! orders behind seven tools. The agent's tool calls come here; its messages go to the simulated
//! customer (`envs/support_user`), and a reward checker (`programs/support_checker`) scores the
//! final database of a fork against the one a policy-following agent would leave
//! ([`support_domain::expected_db`]).
//!
//! * Reset options: `{"task": N}` picks the task (the database and the customer's goal are a pure
//!   function of N, see [`support_domain::task`]); no options mean task 0. The seed changes
//!   nothing here.
//! * The reset observation greets the agent and shows [`support_domain::POLICY`].
//! * An action is a tool call, the JSON text `{"tool": NAME, "args": {...}}`; the observation is
//!   the result as compact JSON, an `{"error": ...}` for a call that cannot be served. Every text
//!   is accepted: malformed calls (not JSON, unknown tool, missing, extra or mistyped arguments,
//!   unknown ids) are answered with an error that says what was wrong, and change nothing.
//! * Tools: `find_user_by_email(email)`, `get_user(user_id)` (with the user's orders),
//!   `get_order(order_id)`, `cancel_order(order_id, reason)` (pending orders; reason "no longer
//!   needed" or "ordered by mistake"), `refund_order(order_id)` (delivered orders),
//!   `update_address(order_id, address)` (pending orders) and `transfer_to_human(summary)`, which
//!   ends the episode. The tools check an order's status but not the refund window or who is
//!   asking: following the policy is the agent's job, and breaking it shows in the final database.
//! * No reward (the checker scores). Episodes are truncated after 64 calls.
//! * `render()` is `{"task": N, "db": DB}`, what the checker reads; `info` is `{"task": N}`;
//!   [`state_key`](Environment::state_key) is the task, the database and whether the episode was
//!   handed to a human; `valid_text_actions` lists lookups of every user and order and the
//!   changes the tools would accept.

use serde_json::{Map, Value, json};
use support_domain::{CANCEL_REASONS, Db, POLICY, Status, task, task_from_options};
use wasmgym_sdk::*;

/// Longest argument echoed back in an error message.
const ECHO_CHARS: usize = 64;

/// A tool as `(name, description, [(parameter, description)])`; every parameter is a string.
type Declaration = (&'static str, &'static str, &'static [(&'static str, &'static str)]);

/// The tools.
const TOOLS: [Declaration; 7] = [
    (
        "find_user_by_email",
        "Finds a customer's account by email. Returns the user_id, name and email.",
        &[("email", "The customer's email address.")],
    ),
    (
        "get_user",
        "Returns a customer's details and their orders (id, item, status).",
        &[("user_id", "The user id, such as ava_kim_4821.")],
    ),
    (
        "get_order",
        "Returns an order: its user, item, price in cents, status, days since delivery and shipping address.",
        &[("order_id", "The order id, such as #W1001.")],
    ),
    (
        "cancel_order",
        "Cancels a pending order.",
        &[("order_id", "The order id, such as #W1001."), ("reason", "\"no longer needed\" or \"ordered by mistake\".")],
    ),
    ("refund_order", "Refunds a delivered order.", &[("order_id", "The order id, such as #W1001.")]),
    (
        "update_address",
        "Changes the shipping address of a pending order.",
        &[("order_id", "The order id, such as #W1001."), ("address", "The new shipping address, in one line.")],
    ),
    (
        "transfer_to_human",
        "Hands the conversation to a human agent, which ends it. Only for requests the other tools cannot handle.",
        &[("summary", "A summary of the customer's request for the human agent.")],
    ),
];

/// The desk: the task number, its database as the tools left it, and the last tool result.
#[derive(Clone, Debug)]
pub struct SupportDesk {
    task: u64,
    db: Db,
    /// The conversation was handed to a human (the episode is over).
    transferred: bool,
    /// The last observation (not part of the game state).
    last: String,
}

/// A failed call: the message of its `{"error": ...}` result.
type Failure = String;

fn error(message: impl Into<String>) -> String {
    json!({ "error": message.into() }).to_string()
}

/// At most [`ECHO_CHARS`] characters of `text`, for error messages.
fn echo(text: &str) -> String {
    let mut short: String = text.chars().take(ECHO_CHARS).collect();
    if short.len() < text.len() {
        short.push_str("...");
    }
    short
}

fn tool_names() -> String {
    TOOLS.map(|t| t.0).join(", ")
}

/// A JSON value's kind, for error messages.
fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// A tool call checked against its declaration: the tool's name and its arguments, in the
/// declared order.
fn parse_call(text: &str) -> Result<(&'static str, Vec<String>), Failure> {
    const SHAPE: &str = r#"call a tool with {"tool": NAME, "args": {...}}"#;
    let value: Value = serde_json::from_str(text.trim())
        .map_err(|e| format!("the action is not JSON ({e}): {SHAPE}; tools: {}", tool_names()))?;
    let Value::Object(call) = value else {
        return Err(format!("the action is {}, not a JSON object: {SHAPE}", kind(&value)));
    };
    if let Some(key) = call.keys().find(|k| !matches!(k.as_str(), "tool" | "args")) {
        return Err(format!("unexpected key {:?} in the call: {SHAPE}", echo(key)));
    }
    let name = match call.get("tool") {
        Some(Value::String(name)) => name,
        Some(other) => return Err(format!("\"tool\" is {}, it must be a tool's name: {SHAPE}", kind(other))),
        None => return Err(format!("the call has no \"tool\": {SHAPE}")),
    };
    let Some((tool, _, params)) = TOOLS.iter().find(|t| t.0 == name) else {
        return Err(format!("unknown tool {:?}: the tools are {}", echo(name), tool_names()));
    };
    let empty = Map::new();
    let args = match call.get("args") {
        Some(Value::Object(args)) => args,
        None | Some(Value::Null) => &empty,
        Some(other) => return Err(format!("\"args\" is {}, it must be an object of arguments", kind(other))),
    };
    let declared = || params.iter().map(|p| p.0).collect::<Vec<_>>().join(", ");
    if let Some(extra) = args.keys().find(|k| params.iter().all(|p| p.0 != k.as_str())) {
        return Err(format!("{tool} has no argument {:?}: it takes {}", echo(extra), declared()));
    }
    params
        .iter()
        .map(|(param, doc)| match args.get(*param) {
            Some(Value::String(value)) => Ok(value.clone()),
            Some(other) => Err(format!("argument {param} of {tool} must be a string, got {}", kind(other))),
            None => Err(format!("{tool} needs the argument {param} ({doc}); it takes {}", declared())),
        })
        .collect::<Result<Vec<_>, _>>()
        .map(|args| (*tool, args))
}

/// An order id as the database writes it: `W1001` and ` #w1001 ` mean `#W1001`.
fn order_id(text: &str) -> String {
    let id = text.trim().trim_start_matches('#').to_uppercase();
    format!("#{id}")
}

impl SupportDesk {
    /// The order a tool names, or the error result.
    fn order(&self, text: &str) -> Result<&support_domain::Order, Failure> {
        self.db.order(&order_id(text)).ok_or_else(|| format!("no order {:?}", echo(text)))
    }

    fn order_json(&self, id: &str) -> String {
        self.db.order(id).map_or_else(|| error("no such order"), |o| json!(o).to_string())
    }

    /// Serves one call; `Err` is the message of an error result. Changes the database only when
    /// the call succeeds.
    fn serve(&mut self, text: &str) -> Result<String, Failure> {
        let (tool, args) = parse_call(text)?;
        match (tool, &args[..]) {
            ("find_user_by_email", [email]) => {
                let user =
                    self.db.user_by_email(email).ok_or_else(|| format!("no user with email {:?}", echo(email)))?;
                Ok(json!(user).to_string())
            }
            ("get_user", [user_id]) => {
                let user =
                    self.db.user(user_id.trim()).ok_or_else(|| format!("no user with id {:?}", echo(user_id)))?;
                let orders: Vec<Value> = self
                    .db
                    .orders_of(&user.user_id)
                    .map(|o| json!({"order_id": o.order_id, "item": o.item, "status": o.status}))
                    .collect();
                Ok(json!({"user_id": user.user_id, "name": user.name, "email": user.email, "orders": orders})
                    .to_string())
            }
            ("get_order", [id]) => Ok(json!(self.order(id)?).to_string()),
            ("cancel_order", [id, reason]) => {
                let order = self.order(id)?;
                if order.status != Status::Pending {
                    return Err(format!(
                        "order {} is {}: only pending orders can be cancelled",
                        order.order_id,
                        order.status.name()
                    ));
                }
                let reason = reason.trim().to_lowercase();
                if !CANCEL_REASONS.contains(&reason.as_str()) {
                    return Err(format!(
                        "reason {:?} is not accepted: it must be \"{}\" or \"{}\"",
                        echo(&reason),
                        CANCEL_REASONS[0],
                        CANCEL_REASONS[1]
                    ));
                }
                let id = order.order_id.clone();
                let order = self.db.order_mut(&id).expect("found above");
                order.status = Status::Cancelled;
                order.cancel_reason = Some(reason);
                Ok(self.order_json(&id))
            }
            ("refund_order", [id]) => {
                let order = self.order(id)?;
                if order.status != Status::Delivered {
                    return Err(format!(
                        "order {} is {}: only delivered orders can be refunded",
                        order.order_id,
                        order.status.name()
                    ));
                }
                let id = order.order_id.clone();
                self.db.order_mut(&id).expect("found above").status = Status::Refunded;
                Ok(self.order_json(&id))
            }
            ("update_address", [id, address]) => {
                let order = self.order(id)?;
                if order.status != Status::Pending {
                    return Err(format!(
                        "order {} is {}: only pending orders can have their address changed",
                        order.order_id,
                        order.status.name()
                    ));
                }
                let address = address.split_whitespace().collect::<Vec<_>>().join(" ");
                if address.is_empty() {
                    return Err("the new address is empty".into());
                }
                let id = order.order_id.clone();
                self.db.order_mut(&id).expect("found above").address = address;
                Ok(self.order_json(&id))
            }
            ("transfer_to_human", [_summary]) => {
                self.transferred = true;
                Ok(json!({"transferred": true, "message": "A human agent takes over the conversation."}).to_string())
            }
            _ => unreachable!("parse_call gives every tool its declared arguments"),
        }
    }
}

impl SupportDesk {
    /// Serves a call and shows its result: every text is accepted.
    fn advance(&mut self, text: &str) -> Transition {
        self.last = self.serve(text).unwrap_or_else(error);
        Transition::reward(0.0).terminated_if(self.transferred)
    }
}

impl Environment for SupportDesk {
    fn spec() -> EnvSpec {
        let tools = TOOLS
            .iter()
            .map(|(name, doc, params)| {
                let params: Vec<(&str, &str, &str)> = params.iter().map(|(p, d)| (*p, "string", *d)).collect();
                Tool::new(name, doc, &params)
            })
            .collect();
        EnvSpec {
            name: "support_desk".into(),
            version: 1,
            players: 1,
            observation_space: Space::Text { max_length: 16384, charset: None },
            action_space: Space::Text { max_length: 4096, charset: None },
            reward_range: (0.0, 0.0),
            max_episode_steps: Some(64),
            determinism: Determinism::Deterministic,
            tools,
        }
    }

    fn reset(_rng: &mut Rng, options: &Options) -> Result<Self, EnvError> {
        let n = task_from_options(options).map_err(EnvError::caller)?;
        let last = format!(
            "You are the support agent of an online shop. Help the customer with their request, using the tools \
             and following the policy.\n\n{POLICY}\n\nCall a tool with the JSON text {{\"tool\": NAME, \"args\": \
             {{...}}}}, for example {{\"tool\": \"get_order\", \"args\": {{\"order_id\": \"#W1001\"}}}}; its result \
             comes back as JSON. Tools: {}.",
            tool_names()
        );
        Ok(SupportDesk { task: n, db: task(n).db, transferred: false, last })
    }

    fn observation(&self) -> Observation {
        Observation::Text(self.last.clone())
    }

    fn step(&mut self, action: &Action, _rng: &mut Rng) -> Result<Transition, EnvError> {
        Ok(self.advance(action.text()))
    }

    /// `{"task": N, "db": DB}`: what the checker reads.
    fn render(&self) -> String {
        json!({"task": self.task, "db": self.db}).to_string()
    }

    fn info(&self) -> Options {
        json!({"task": self.task})
    }

    /// Lookups of every user and order, and the changes the tools would accept now (cancel with
    /// the first reason, refund, hand over).
    fn valid_text_actions(&self) -> Vec<String> {
        let call = |tool: &str, args: Value| json!({"tool": tool, "args": args}).to_string();
        let mut actions = Vec::new();
        for user in &self.db.users {
            actions.push(call("find_user_by_email", json!({"email": user.email})));
            actions.push(call("get_user", json!({"user_id": user.user_id})));
        }
        for order in &self.db.orders {
            actions.push(call("get_order", json!({"order_id": order.order_id})));
            match order.status {
                Status::Pending => {
                    actions.push(call("cancel_order", json!({"order_id": order.order_id, "reason": CANCEL_REASONS[0]})))
                }
                Status::Delivered => actions.push(call("refund_order", json!({"order_id": order.order_id}))),
                Status::Cancelled | Status::Refunded => {}
            }
        }
        actions.push(call("transfer_to_human", json!({"summary": "The customer needs help I cannot give."})));
        actions
    }

    /// The task number, whether a human took over, then the database as JSON.
    fn state_key(&self) -> Option<Vec<u8>> {
        let mut key = self.task.to_le_bytes().to_vec();
        key.push(self.transferred as u8);
        key.extend(serde_json::to_vec(&self.db).expect("a database always serialises"));
        Some(key)
    }
}

export_env!(SupportDesk);

#[cfg(test)]
mod tests {
    use super::*;
    use support_domain::{GoalKind, expected_db};

    fn started(n: u64) -> Runner<SupportDesk> {
        let mut runner = Runner::<SupportDesk>::new();
        runner.reset(Some(n + 7), &format!(r#"{{"task": {n}}}"#)).unwrap();
        runner
    }

    /// The observation text of a step.
    fn call(runner: &mut Runner<SupportDesk>, action: &str) -> (String, StepResult) {
        let t = runner.step(&Action::Text(action.into())).unwrap();
        (String::from_utf8(t.observation.clone()).unwrap(), t)
    }

    fn db(runner: &mut Runner<SupportDesk>) -> Db {
        let render: Value = serde_json::from_str(&runner.render().unwrap()).unwrap();
        serde_json::from_value(render["db"].clone()).unwrap()
    }

    #[test]
    fn the_spec_declares_the_tools() {
        let spec = SupportDesk::spec();
        spec.validate().unwrap();
        let names: Vec<&str> = spec.tools.iter().map(|t| t.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "find_user_by_email",
                "get_user",
                "get_order",
                "cancel_order",
                "refund_order",
                "update_address",
                "transfer_to_human"
            ]
        );
        assert_eq!(spec.tools[3].parameters["required"], json!(["order_id", "reason"]));
    }

    #[test]
    fn reset_shows_the_policy_and_the_task_is_the_options_not_the_seed() {
        let mut a = Runner::<SupportDesk>::new();
        let t = a.reset(Some(1), r#"{"task": 5}"#).unwrap();
        let text = String::from_utf8(t.observation).unwrap();
        assert!(text.contains(POLICY) && text.contains(r#"{"tool": NAME, "args": {...}}"#), "{text}");
        assert_eq!(t.info, r#"{"task":5}"#);
        let mut b = Runner::<SupportDesk>::new();
        b.reset(Some(99), r#"{"task": 5}"#).unwrap();
        assert_eq!(a.render().unwrap(), b.render().unwrap());
        assert_eq!(db(&mut a), task(5).db);
        let mut zero = Runner::<SupportDesk>::new();
        zero.reset(Some(3), "").unwrap();
        assert_eq!(db(&mut zero), task(0).db);
        for bad in [r#"{"task": -1}"#, r#"{"task": "1"}"#, r#"{"level": 1}"#, "[]"] {
            let err = Runner::<SupportDesk>::new().reset(None, bad).unwrap_err();
            assert_eq!(err.status, wasmgym_sdk::Status::BadRequest, "{bad}");
            assert!(err.message.contains(r#"{"task": N}"#), "{bad}: {}", err.message);
        }
    }

    #[test]
    fn lookups_find_users_and_orders() {
        let mut runner = started(2);
        let t = task(2);
        let user = t.db.user_by_email(&t.goal.email).unwrap().clone();
        let (text, _) = call(
            &mut runner,
            &format!(r#"{{"tool": "find_user_by_email", "args": {{"email": " {} "}}}}"#, user.email.to_uppercase()),
        );
        assert_eq!(serde_json::from_str::<Value>(&text).unwrap(), json!(user));
        let (text, _) = call(&mut runner, &format!(r#"{{"tool":"get_user","args":{{"user_id":"{}"}}}}"#, user.user_id));
        let details: Value = serde_json::from_str(&text).unwrap();
        let listed: Vec<&str> =
            details["orders"].as_array().unwrap().iter().map(|o| o["order_id"].as_str().unwrap()).collect();
        let theirs: Vec<&str> = t.db.orders_of(&user.user_id).map(|o| o.order_id.as_str()).collect();
        assert_eq!(listed, theirs);
        // Order ids are read leniently: without the '#', in lower case.
        let bare = t.goal.order_id.trim_start_matches('#').to_lowercase();
        let (text, _) = call(&mut runner, &format!(r#"{{"tool":"get_order","args":{{"order_id":"{bare}"}}}}"#));
        assert_eq!(serde_json::from_str::<Value>(&text).unwrap(), json!(t.db.order(&t.goal.order_id).unwrap()));
    }

    #[test]
    fn malformed_calls_are_answered_and_change_nothing() {
        let mut runner = started(4);
        let id = task(4).db.orders.iter().find(|o| o.status == Status::Pending).unwrap().order_id.clone();
        let before = runner.render().unwrap();
        for (action, said) in [
            ("hello there", "not JSON"),
            ("", "not JSON"),
            ("[1, 2]", "an array, not a JSON object"),
            (r#"{"args": {}}"#, "no \"tool\""),
            (r#"{"tool": 3}"#, "\"tool\" is a number"),
            (r#"{"tool": "delete_db", "args": {}}"#, "unknown tool \"delete_db\": the tools are find_user_by_email,"),
            (r#"{"tool": "get_order", "args": {}, "extra": 1}"#, "unexpected key \"extra\""),
            (r#"{"tool": "get_order", "args": [1]}"#, "\"args\" is an array"),
            (r#"{"tool": "get_order"}"#, "get_order needs the argument order_id"),
            (r#"{"tool": "get_order", "args": {"order_id": 1001}}"#, "must be a string, got a number"),
            (r##"{"tool": "get_order", "args": {"order_id": "#W1", "verbose": true}}"##, "has no argument \"verbose\""),
            (r##"{"tool": "get_order", "args": {"order_id": "#X0000"}}"##, "no order \"#X0000\""),
            (r#"{"tool": "get_user", "args": {"user_id": "nobody"}}"#, "no user with id"),
            (r#"{"tool": "find_user_by_email", "args": {"email": "x@y.z"}}"#, "no user with email"),
            (&format!(r#"{{"tool": "cancel_order", "args": {{"order_id": "{id}"}}}}"#), "needs the argument reason"),
            (
                &format!(r#"{{"tool": "update_address", "args": {{"order_id": "{id}", "address": "  "}}}}"#),
                "address is empty",
            ),
            (&format!(r#"{{"tool": "get_order", "args": {{"order_id": "{}"}}}}"#, "9".repeat(3000)), "...\""),
        ] {
            let (text, t) = call(&mut runner, action);
            let result: Value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{action}: {e}: {text}"));
            let message = result["error"].as_str().unwrap_or_else(|| panic!("{action}: {text}"));
            assert!(message.contains(said), "{action}: {message}");
            assert!(text.len() < 1000, "{action}: {text}");
            assert_eq!((t.rewards[0], t.terminated), (0.0, false), "{action}");
            assert_eq!(runner.render().unwrap(), before, "{action}");
        }
    }

    #[test]
    fn changes_follow_the_order_status() {
        for n in 0..40 {
            let t = task(n);
            let mut runner = started(n);
            let mut expected = t.db.clone();
            for order in &t.db.orders {
                let id = &order.order_id;
                let (text, _) = match order.status {
                    Status::Pending if n % 2 == 0 => call(
                        &mut runner,
                        &format!(
                            r#"{{"tool":"cancel_order","args":{{"order_id":"{id}","reason":"Ordered by mistake"}}}}"#
                        ),
                    ),
                    Status::Pending => call(
                        &mut runner,
                        &format!(r#"{{"tool":"update_address","args":{{"order_id":"{id}","address":"1 New  Road"}}}}"#),
                    ),
                    _ => call(&mut runner, &format!(r#"{{"tool":"refund_order","args":{{"order_id":"{id}"}}}}"#)),
                };
                let want = expected.order_mut(id).unwrap();
                match (order.status, n % 2) {
                    (Status::Pending, 0) => {
                        want.status = Status::Cancelled;
                        want.cancel_reason = Some("ordered by mistake".into());
                    }
                    (Status::Pending, _) => want.address = "1 New Road".into(),
                    // The refund tool does not check the 30-day window: that is the agent's job.
                    (Status::Delivered, _) => want.status = Status::Refunded,
                    (status, _) => assert!(text.contains(&format!("is {}: only", status.name())), "{text}"),
                }
                if !text.contains("error") {
                    assert_eq!(serde_json::from_str::<Value>(&text).unwrap(), json!(want));
                }
            }
            assert_eq!(db(&mut runner), expected, "task {n}");
            // Nothing is allowed twice.
            let Some(pending) = t.db.orders.iter().find(|o| o.status == Status::Pending && n % 2 == 0) else {
                continue;
            };
            let again = format!(
                r#"{{"tool":"cancel_order","args":{{"order_id":"{}","reason":"no longer needed"}}}}"#,
                pending.order_id
            );
            assert!(call(&mut runner, &again).0.contains("only pending orders can be cancelled"));
        }
    }

    #[test]
    fn bad_cancel_reasons_are_refused() {
        let t = task(1);
        let pending = t.db.orders.iter().find(|o| o.status == Status::Pending).unwrap();
        let mut runner = started(1);
        let action =
            format!(r#"{{"tool":"cancel_order","args":{{"order_id":"{}","reason":"too pricey"}}}}"#, pending.order_id);
        let (text, _) = call(&mut runner, &action);
        assert!(text.contains(r#"it must be \"no longer needed\" or \"ordered by mistake\""#), "{text}");
        assert_eq!(db(&mut runner), t.db);
    }

    #[test]
    fn a_policy_following_episode_reaches_the_expected_database() {
        for n in 0..30 {
            let t = task(n);
            let mut runner = started(n);
            if t.goal.allowed(&t.db) {
                let id = &t.goal.order_id;
                let action = match &t.goal.kind {
                    GoalKind::Cancel => {
                        json!({"tool": "cancel_order", "args": {"order_id": id, "reason": t.goal.reason}})
                    }
                    GoalKind::Refund => json!({"tool": "refund_order", "args": {"order_id": id}}),
                    GoalKind::UpdateAddress { address } => {
                        json!({"tool": "update_address", "args": {"order_id": id, "address": address}})
                    }
                };
                call(&mut runner, &action.to_string());
            }
            assert_eq!(db(&mut runner), expected_db(&t), "task {n}");
        }
    }

    #[test]
    fn transfer_to_human_ends_the_episode() {
        let mut runner = started(0);
        let (text, t) = call(&mut runner, r#"{"tool": "transfer_to_human", "args": {"summary": "help"}}"#);
        assert!(t.terminated && text.contains("\"transferred\":true"), "{text}");
        assert!(runner.step(&Action::Text("{}".into())).is_err());
    }

    #[test]
    fn valid_actions_are_accepted_and_the_key_is_the_database() {
        let mut runner = started(6);
        let desk = runner.env().unwrap().clone();
        let actions = desk.valid_text_actions();
        let t = task(6);
        assert!(actions.len() >= 2 * t.db.users.len() + t.db.orders.len(), "{actions:?}");
        for action in &actions {
            let mut next = desk.clone();
            next.advance(action);
            assert!(!next.last.contains("\"error\""), "{action}: {}", next.last);
            let changes = ["cancel_order", "refund_order", "transfer_to_human"].iter().any(|c| action.contains(c));
            assert_eq!(next.state_key() != desk.state_key(), changes, "{action}");
            assert_eq!(next.observation().check_in(&SupportDesk::spec().observation_space), Ok(()));
        }
        // Lookups leave the key alone but not the observation.
        let (text, _) = call(&mut runner, &actions[0]);
        assert!(text.contains("user_id"));
        assert_eq!(runner.env().unwrap().state_key(), desk.state_key());
    }
}
