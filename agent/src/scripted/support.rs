//! [`SupportAgent`]: a rule-based support agent for the `support_desk` domain, a baseline in the
//! manner of tau-bench's.
//!
//! It reads the customer's messages for what they want (`cancel`, `refund` or an address change),
//! order ids (`#W1234`), an email, a cancellation reason and a new address. It identifies the
//! customer from the order id (`get_order`) or else from the email (`find_user_by_email`, then
//! `get_user`, picking the order whose item the customer named, preferring one whose status fits
//! the request), asking for what is missing. Then it applies the policy: a cancellation or an
//! address change needs a pending order, a refund a delivered one at most 30 days after delivery;
//! otherwise it declines ("I'm sorry, but I cannot ..."), changing nothing. If allowed, it asks
//! for the new address when it needs one, states the change with the order id and asks for
//! confirmation ("Shall I proceed (yes/no)?"); on "yes" it makes the change and tells the customer
//! it has been done; on anything else it drops that order and asks which one was meant.
//!
//! It is deliberately not perfect. When the customer wants a cancellation but never says why, it
//! does not ask: it assumes "no longer needed". The customer still confirms (the confirmation
//! names the order and the action, which is all the customer checks), so a customer who ordered
//! by mistake ends with the wrong reason in the database and the episode fails. Whether the
//! customer says why in the first message depends on the seed, so this agent passes some seeds
//! of those tasks and not others: pass^k falls below pass^1.
//!
//! Its state is reset by [`Agent::start`]; it is deterministic (no randomness, no clock).

use serde_json::{Value, json};

use crate::{Agent, Message, Tool};

/// The tools the agent calls.
const TOOLS: [&str; 7] = [
    "find_user_by_email",
    "get_user",
    "get_order",
    "cancel_order",
    "refund_order",
    "update_address",
    "transfer_to_human",
];

/// Actions after which the agent hands over to a human.
const MAX_ACTIONS: u32 = 40;

/// What the customer wants.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Intent {
    Cancel,
    Refund,
    Address,
}

/// The order as `get_order` showed it.
#[derive(Clone, Debug, PartialEq)]
struct Order {
    id: String,
    user_id: String,
    item: String,
    status: String,
    days: Option<u64>,
    price_cents: u64,
}

/// One order of the customer's as `get_user` listed it.
#[derive(Clone, Debug, PartialEq)]
struct Listed {
    id: String,
    item: String,
    status: String,
}

/// Where the agent is in the conversation.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
enum Phase {
    /// Finding the customer and the order, and deciding.
    #[default]
    Working,
    /// The change was put to the customer, awaiting "yes".
    Confirming,
    /// The customer said yes: make the change.
    Confirmed,
    /// The change tool was called: report its result.
    Changed,
    /// The change was reported or the request declined: nothing left to do.
    Finished,
}

/// A rule-based agent for the `support_desk` domain (see the module docs for its rules and its
/// known failure); deterministic, and started afresh at every episode.
#[derive(Clone, Debug, Default)]
pub struct SupportAgent {
    phase: Phase,
    intent: Option<Intent>,
    email: Option<String>,
    /// The order the customer means, as far as the agent knows.
    order_id: Option<String>,
    /// Orders the customer said were not the one.
    rejected: Vec<String>,
    /// The cancellation reason, one of the desk's two.
    reason: Option<&'static str>,
    /// The new shipping address.
    address: Option<String>,
    /// Everything the customer said, in lower case (to find the item they mean).
    heard: String,
    user_id: Option<String>,
    /// The email did not find an account.
    email_unknown: bool,
    /// The customer's orders, once `get_user` answered.
    orders: Option<Vec<Listed>>,
    /// The order, once `get_order` answered.
    order: Option<Order>,
    /// The tool whose result comes next.
    awaiting: Option<&'static str>,
    /// The last tool error, to explain a failed change.
    error: Option<String>,
    /// Actions taken.
    actions: u32,
    /// The customer must be asked for the order id.
    need_id: bool,
    /// The tools the desk offers lack one this agent calls.
    missing_tool: Option<&'static str>,
}

fn call(tool: &str, args: Value) -> String {
    json!({"tool": tool, "args": args}).to_string()
}

/// Order ids in `text`: `#W` followed by digits, as `#W1234`.
fn order_ids(text: &str) -> Vec<String> {
    let upper = text.to_ascii_uppercase();
    upper
        .match_indices("#W")
        .filter_map(|(at, _)| {
            let digits: String = upper[at + 2..].chars().take_while(|c| c.is_ascii_digit()).collect();
            (!digits.is_empty()).then(|| format!("#W{digits}"))
        })
        .collect()
}

/// Emails in `text`: words with an `@` and a dot after it.
fn emails(text: &str) -> Vec<String> {
    text.split_whitespace()
        .map(|w| w.trim_matches(|c: char| !(c.is_alphanumeric() || "@._+-".contains(c))).trim_end_matches('.'))
        .filter(|w| w.split_once('@').is_some_and(|(name, host)| !name.is_empty() && host.contains('.')))
        .map(|w| w.to_lowercase())
        .collect()
}

/// The new address in `text`: what follows "address is" or "ship it to", up to the end of the
/// line, without the final full stop.
fn new_address(text: &str) -> Option<String> {
    let lower = text.to_ascii_lowercase();
    let start =
        ["new address is", "address is", "ship it to"].iter().find_map(|k| lower.find(k).map(|at| at + k.len()))?;
    let rest = text[start..].lines().next().unwrap_or_default();
    let address = rest.trim().trim_start_matches(':').trim().trim_end_matches('.').trim();
    (!address.is_empty()).then(|| address.to_string())
}

fn dollars(cents: u64) -> String {
    format!("${}.{:02}", cents / 100, cents % 100)
}

impl SupportAgent {
    /// An agent about to start an episode.
    pub fn new() -> Self {
        Self::default()
    }

    /// Takes in a customer's message.
    fn hear(&mut self, text: &str) {
        let lower = text.to_lowercase();
        if self.intent.is_none() {
            let without_email = lower.replace("email address", "");
            self.intent = if lower.contains("refund") || lower.contains("return") {
                Some(Intent::Refund)
            } else if lower.contains("cancel") {
                Some(Intent::Cancel)
            } else if without_email.contains("address") || lower.contains("ship") {
                Some(Intent::Address)
            } else {
                None
            };
        }
        if let Some(email) = emails(text).pop() {
            if self.email.as_ref() != Some(&email) {
                self.user_id = None;
                self.orders = None;
                self.email_unknown = false;
            }
            self.email = Some(email);
        }
        if lower.contains("mistake") {
            self.reason = Some("ordered by mistake");
        } else if lower.contains("no longer need") {
            self.reason = Some("no longer needed");
        }
        if let Some(address) = new_address(text) {
            self.address = Some(address);
        }
        let named = order_ids(text).pop();
        if self.phase == Phase::Confirming {
            if lower.trim_start().starts_with("yes") {
                self.phase = Phase::Confirmed;
            } else {
                // Not a yes: that order is not the one (unless the customer names it again).
                self.phase = Phase::Working;
                if let Some(id) = self.order_id.take().filter(|id| named.as_ref() != Some(id)) {
                    self.rejected.push(id);
                }
                self.order = None;
                self.need_id = named.is_none();
            }
        }
        if let Some(id) = named.filter(|id| self.order_id.as_ref() != Some(id)) {
            self.order_id = Some(id);
            self.order = None;
            self.need_id = false;
        }
        self.heard.push_str(&lower);
        self.heard.push('\n');
    }

    /// Takes in the result of the tool called last.
    fn read(&mut self, tool: &'static str, text: &str) {
        let value: Value = serde_json::from_str(text).unwrap_or(Value::Null);
        let error = match value.get("error") {
            Some(e) => Some(e.as_str().unwrap_or("error").to_string()),
            None if !value.is_object() => Some(format!("unexpected result {text}")),
            None => None,
        };
        let str_of = |key: &str| value.get(key).and_then(Value::as_str).unwrap_or_default().to_string();
        match (tool, error) {
            ("find_user_by_email", None) => self.user_id = Some(str_of("user_id")),
            ("find_user_by_email", Some(_)) => self.email_unknown = true,
            ("get_user", None) => {
                let listed = value.get("orders").and_then(Value::as_array).cloned().unwrap_or_default();
                let text_of = |o: &Value, key: &str| o.get(key).and_then(Value::as_str).unwrap_or_default().to_string();
                self.orders = Some(
                    listed
                        .iter()
                        .map(|o| Listed {
                            id: text_of(o, "order_id"),
                            item: text_of(o, "item"),
                            status: text_of(o, "status"),
                        })
                        .collect(),
                );
            }
            ("get_user", Some(_)) => self.orders = Some(Vec::new()),
            ("get_order", None) => {
                self.order = Some(Order {
                    id: str_of("order_id"),
                    user_id: str_of("user_id"),
                    item: str_of("item"),
                    status: str_of("status"),
                    days: value.get("days_since_delivery").and_then(Value::as_u64),
                    price_cents: value.get("price_cents").and_then(Value::as_u64).unwrap_or_default(),
                })
            }
            ("get_order", Some(_)) => {
                // Not an order: ask again.
                if let Some(id) = self.order_id.take() {
                    self.rejected.push(id);
                }
                self.need_id = true;
            }
            (_, error) => self.error = error,
        }
    }

    /// The customer's order that matches the item they named, preferring one whose status fits
    /// the request; `None` if no item of theirs was named.
    fn pick(&self, orders: &[Listed]) -> Option<String> {
        let wanted = match self.intent {
            Some(Intent::Refund) => "delivered",
            _ => "pending",
        };
        let named: Vec<&Listed> = orders
            .iter()
            .filter(|o| !self.rejected.contains(&o.id) && !o.item.is_empty())
            .filter(|o| self.heard.contains(&o.item.to_lowercase()))
            .collect();
        named.iter().find(|o| o.status == wanted).or(named.first()).map(|o| o.id.clone())
    }

    fn tool(&mut self, tool: &'static str, args: Value) -> String {
        self.awaiting = Some(tool);
        call(tool, args)
    }

    fn decline(&mut self, why: String) -> String {
        self.phase = Phase::Finished;
        format!("I'm sorry, but I cannot {why}. I have not changed anything.")
    }

    /// The change, in words: "cancel order #W1 (Desk Lamp) with the reason ...".
    fn change(&self, order: &Order) -> String {
        match self.intent {
            Some(Intent::Cancel) => format!(
                "cancel order {} ({}) with the reason \"{}\"",
                order.id,
                order.item,
                self.reason.unwrap_or("no longer needed")
            ),
            Some(Intent::Refund) => {
                format!("refund order {} ({}, {})", order.id, order.item, dollars(order.price_cents))
            }
            _ => format!(
                "change the shipping address of order {} ({}) to {}",
                order.id,
                order.item,
                self.address.as_deref().unwrap_or_default()
            ),
        }
    }

    /// The change made, in words: "cancelled order #W1 (Desk Lamp)".
    fn changed(&self, order: &Order) -> String {
        match self.intent {
            Some(Intent::Cancel) => format!("cancelled order {} ({})", order.id, order.item),
            Some(Intent::Refund) => {
                format!(
                    "refunded order {} ({}): {} will be back on your card",
                    order.id,
                    order.item,
                    dollars(order.price_cents)
                )
            }
            _ => format!(
                "changed the shipping address of order {} to {}",
                order.id,
                self.address.as_deref().unwrap_or_default()
            ),
        }
    }

    /// The next action, from what the agent knows.
    fn decide(&mut self) -> String {
        if self.actions > MAX_ACTIONS {
            return self.tool("transfer_to_human", json!({"summary": "The conversation is going in circles."}));
        }
        let Some(intent) = self.intent else {
            return "How can I help you today: cancel an order, refund an order, or change a shipping address?".into();
        };
        match self.phase {
            Phase::Finished => return "Thank you for contacting us. Goodbye!".into(),
            Phase::Changed => {
                self.phase = Phase::Finished;
                let order = self.order.clone().expect("a change names a fetched order");
                return match self.error.take() {
                    Some(error) => format!("I'm sorry, but I cannot {}: {error}.", self.change(&order)),
                    None => format!("Done: I have {}. Thank you for contacting us.", self.changed(&order)),
                };
            }
            Phase::Confirmed => {
                let order = self.order.clone().expect("a confirmation names a fetched order");
                self.phase = Phase::Changed;
                self.error = None;
                return match intent {
                    Intent::Cancel => {
                        let reason = self.reason.unwrap_or("no longer needed");
                        self.tool("cancel_order", json!({"order_id": order.id, "reason": reason}))
                    }
                    Intent::Refund => self.tool("refund_order", json!({"order_id": order.id})),
                    Intent::Address => {
                        let address = self.address.clone().unwrap_or_default();
                        self.tool("update_address", json!({"order_id": order.id, "address": address}))
                    }
                };
            }
            Phase::Working | Phase::Confirming => {}
        }
        // Find the order.
        let Some(order) = self.order.clone() else {
            if self.need_id {
                self.need_id = false;
                return "Which order do you mean? Could you please give me the order id?".into();
            }
            if let Some(id) = self.order_id.clone() {
                return self.tool("get_order", json!({"order_id": id}));
            }
            let Some(email) = self.email.clone() else {
                return "I can help with that. Could you please tell me your email, or the order id?".into();
            };
            if self.email_unknown {
                self.email_unknown = false;
                self.email = None;
                return "I could not find an account with that email. Could you give me the order id?".into();
            }
            let Some(user_id) = self.user_id.clone() else {
                return self.tool("find_user_by_email", json!({"email": email}));
            };
            let Some(orders) = self.orders.clone() else {
                return self.tool("get_user", json!({"user_id": user_id}));
            };
            return match self.pick(&orders) {
                Some(id) => {
                    self.order_id = Some(id.clone());
                    self.tool("get_order", json!({"order_id": id}))
                }
                None => "Which order do you mean? Could you please give me the order id?".into(),
            };
        };
        // Identified by the email: the order must be theirs; else by the order id itself.
        match &self.user_id {
            Some(user) if *user != order.user_id => {
                return self.decline(format!("help with order {}: it is not on your account", order.id));
            }
            Some(_) => {}
            None => self.user_id = Some(order.user_id.clone()),
        }
        // The policy.
        let status = order.status.as_str();
        match intent {
            Intent::Cancel | Intent::Address if status != "pending" => {
                let what = if intent == Intent::Cancel {
                    format!("cancel order {}", order.id)
                } else {
                    format!("change the shipping address of order {}", order.id)
                };
                return self.decline(format!("{what}: it is {status}, and only pending orders can be changed"));
            }
            Intent::Refund if status != "delivered" => {
                return self.decline(format!(
                    "refund order {}: it is {status}, and only delivered orders can be refunded",
                    order.id
                ));
            }
            Intent::Refund if order.days.is_none_or(|d| d > 30) => {
                return self.decline(format!(
                    "refund order {}: it was delivered {} days ago, and only orders delivered within the last 30 \
                     days can be refunded",
                    order.id,
                    order.days.map_or("many".into(), |d| d.to_string())
                ));
            }
            Intent::Address if self.address.is_none() => {
                return format!("What is the new shipping address for order {}?", order.id);
            }
            _ => {}
        }
        self.phase = Phase::Confirming;
        format!("Please confirm: I will {}. Shall I proceed (yes/no)?", self.change(&order))
    }
}

impl Agent for SupportAgent {
    fn start(&mut self, tools: &[Tool]) {
        *self = SupportAgent::new();
        self.missing_tool = TOOLS.into_iter().find(|name| tools.iter().all(|t| t.name != *name));
    }

    fn act(&mut self, seen: &[Message]) -> Result<String, String> {
        if let Some(tool) = self.missing_tool {
            return Err(format!("the support agent needs the support_desk tools; {tool} is not offered"));
        }
        for message in seen {
            match message.from.as_str() {
                "user" => self.hear(&message.text),
                // A host note instead of a result: the call was refused.
                "host" => {
                    if let Some(tool) = self.awaiting.take() {
                        self.read(tool, &json!({"error": message.text}).to_string());
                    }
                }
                // The desk: a tool's result (or its opening, which answers no call).
                _ => {
                    if let Some(tool) = self.awaiting.take() {
                        self.read(tool, &message.text);
                    }
                }
            }
        }
        self.actions += 1;
        Ok(self.decide())
    }
}

#[cfg(test)]
mod tests {
    use support_desk::SupportDesk;
    use support_domain::{Db, GoalKind, expected_db, task};
    use support_user::SupportUser;
    use wasmgym_sdk::{Action, Environment, Runner};

    use super::*;

    /// How an episode ended.
    #[derive(Debug)]
    struct Outcome {
        /// The desk's final database is the expected one.
        passed: bool,
        /// The conversation.
        transcript: Vec<Message>,
    }

    fn text(observation: &[u8]) -> String {
        String::from_utf8(observation.to_vec()).unwrap()
    }

    /// Plays one episode of task `n` from the reset seed `seed`: tool calls go to the desk,
    /// messages to the customer, as a composite episode routes them; scored like the checker.
    fn episode(n: u64, seed: u64) -> Outcome {
        let options = format!(r#"{{"task": {n}}}"#);
        let mut desk = Runner::<SupportDesk>::new();
        let mut user = Runner::<SupportUser>::new();
        // A seed per part, drawn as a composite episode draws them.
        let mut seeds = wasmgym_abi::rng::Rng::seed_from_u64(seed);
        let opening = desk.reset(Some(seeds.next_u64()), &options).unwrap();
        let first = user.reset(Some(seeds.next_u64()), &options).unwrap();
        let mut agent = SupportAgent::new();
        agent.start(&SupportDesk::spec().tools);
        let message = |from: &str, to: &str, text: String| Message { from: from.into(), to: to.into(), text };
        let mut seen = vec![
            message("env", "agent", text(&opening.observation)),
            message("user", "agent", text(&first.observation)),
        ];
        let mut transcript = seen.clone();
        for _ in 0..64 {
            let action = agent.act(&seen).unwrap();
            let is_call = serde_json::from_str::<Value>(&action).is_ok_and(|v| v.get("tool").is_some());
            let (to, runner_step) = if is_call {
                ("env", desk.step(&Action::Text(action.clone())).unwrap())
            } else {
                ("user", user.step(&Action::Text(action.clone())).unwrap())
            };
            transcript.push(message("agent", to, action));
            seen = vec![message(to, "agent", text(&runner_step.observation))];
            transcript.extend(seen.clone());
            if runner_step.terminated || runner_step.truncated {
                break;
            }
        }
        let render: Value = serde_json::from_str(&desk.render().unwrap()).unwrap();
        let db: Db = serde_json::from_value(render["db"].clone()).unwrap();
        Outcome { passed: db == expected_db(&task(n)), transcript }
    }

    fn show(transcript: &[Message]) -> String {
        transcript.iter().map(|m| format!("{} -> {}: {}\n", m.from, m.to, m.text)).collect()
    }

    #[test]
    fn the_agent_is_a_decent_but_imperfect_baseline() {
        const TASKS: u64 = 20;
        const SEEDS: u64 = 5;
        let mut passed = 0;
        let mut all_seeds = 0;
        let mut failures = Vec::new();
        for n in 0..TASKS {
            let mut task_passed = 0;
            for seed in 0..SEEDS {
                let outcome = episode(n, seed);
                let t = task(n);
                if outcome.passed {
                    task_passed += 1;
                } else {
                    // The only failure is the documented one: a cancellation whose reason the
                    // customer did not give, assumed "no longer needed".
                    assert_eq!(
                        (&t.goal.kind, t.goal.reason.as_str()),
                        (&GoalKind::Cancel, "ordered by mistake"),
                        "task {n} seed {seed} failed:\n{}",
                        show(&outcome.transcript)
                    );
                    failures.push((n, seed));
                }
            }
            passed += task_passed;
            all_seeds += (task_passed == SEEDS) as u32;
        }
        let pass_1 = passed as f64 / (TASKS * SEEDS) as f64;
        let pass_k = all_seeds as f64 / TASKS as f64;
        println!(
            "support agent: pass^1 {pass_1:.2} ({passed}/{}), pass^{SEEDS} {pass_k:.2}; failed {failures:?}",
            TASKS * SEEDS
        );
        assert!(pass_1 >= 0.8, "pass^1 {pass_1}");
        assert!(pass_k < pass_1, "pass^{SEEDS} {pass_k} should be below pass^1 {pass_1}");
    }

    /// The same episodes on the sandboxed guests, scored by the sandboxed checker on a fork of
    /// the desk, agree with the native runs.
    #[test]
    fn sandboxed_guests_and_checker_agree_with_the_native_runs() {
        let runtime = wasmgym::Runtime::new().unwrap();
        let load = |name: &str| runtime.load(wasmgym_builtin::find(name).unwrap().bytes).unwrap();
        let (desk_module, user_module) = (load("support_desk"), load("support_user"));
        let checker_module =
            runtime.load_checker(wasmgym_builtin::find_program("support_checker").unwrap().bytes).unwrap();
        let mut checker = checker_module.instantiate(wasmgym::Limits::default()).unwrap();
        let text = |o: wasmgym::Observation| match o {
            wasmgym::Observation::Text(text) => text,
            other => panic!("a text observation, not {other:?}"),
        };
        let mut scores = Vec::new();
        for (n, seed) in [(0, 0), (2, 0), (2, 1), (5, 2), (7, 3), (11, 4)] {
            let options = format!(r#"{{"task": {n}}}"#);
            let (mut desk, mut user) = (desk_module.instantiate().unwrap(), user_module.instantiate().unwrap());
            let mut seeds = wasmgym_abi::rng::Rng::seed_from_u64(seed);
            let opening = text(desk.reset(Some(seeds.next_u64()), Some(&options)).unwrap().observation);
            let first = text(user.reset(Some(seeds.next_u64()), Some(&options)).unwrap().observation);
            let mut agent = SupportAgent::new();
            agent.start(&desk.spec().tools.clone());
            let message = |from: &str, text: String| Message { from: from.into(), to: "agent".into(), text };
            let mut seen = vec![message("env", opening), message("user", first)];
            for _ in 0..64 {
                let action = agent.act(&seen).unwrap();
                let is_call = action.starts_with('{');
                let (from, part) = if is_call { ("env", &mut desk) } else { ("user", &mut user) };
                let t = part.step(action.as_str()).unwrap();
                let done = t.terminated || t.truncated;
                seen = vec![message(from, text(t.observation))];
                if done {
                    break;
                }
            }
            let score = checker.reward(&mut desk, b"", b"").unwrap();
            assert_eq!(score.score == 1.0, episode(n, seed).passed, "task {n} seed {seed}: {}", score.message);
            scores.push(score);
        }
        assert!(scores.iter().any(|s| s.score == 0.0 && s.message.contains("cancel_reason")), "{scores:?}");
    }

    #[test]
    fn a_late_refund_is_declined_and_changes_nothing() {
        let n = (0..).find(|&n| {
            let t = task(n);
            t.goal.kind == GoalKind::Refund && !t.goal.allowed(&t.db)
        });
        let outcome = episode(n.unwrap(), 0);
        assert!(outcome.passed, "{}", show(&outcome.transcript));
        let said = show(&outcome.transcript);
        assert!(said.contains("I'm sorry, but I cannot refund order") && said.contains("###STOP###"), "{said}");
        assert!(!said.contains("\"refund_order\""), "{said}");
    }

    #[test]
    fn changes_are_confirmed_first() {
        for n in 0..20 {
            let outcome = episode(n, 1);
            let transcript = &outcome.transcript;
            for (i, m) in transcript.iter().enumerate() {
                let changes = ["cancel_order", "refund_order", "update_address"].iter().any(|t| m.text.contains(t));
                if m.from == "agent" && changes {
                    let before = &transcript[..i];
                    let yes = before.iter().rposition(|m| m.from == "user" && m.text.starts_with("Yes"));
                    let asked = before.iter().rposition(|m| m.from == "agent" && m.text.contains("(yes/no)"));
                    assert!(yes.is_some() && asked < yes, "task {n}: unconfirmed change:\n{}", show(transcript));
                }
            }
        }
    }

    #[test]
    fn start_forgets_the_last_episode_and_missing_tools_are_an_error() {
        let mut agent = SupportAgent::new();
        agent.start(&SupportDesk::spec().tools);
        let hello = Message {
            from: "user".into(),
            to: "agent".into(),
            text: "Cancel my order #W1234, my email is a@b.co".into(),
        };
        let first = agent.act(std::slice::from_ref(&hello)).unwrap();
        assert!(first.contains("get_order") && first.contains("#W1234"), "{first}");
        agent.start(&SupportDesk::spec().tools);
        let fresh = agent.act(&[]).unwrap();
        assert!(fresh.starts_with("How can I help you today"), "{fresh}");
        agent.start(&[]);
        assert!(agent.act(&[hello]).unwrap_err().contains("find_user_by_email"));
    }

    #[test]
    fn a_no_drops_the_order_and_asks_which_one() {
        let mut agent = SupportAgent::new();
        agent.start(&SupportDesk::spec().tools);
        let mut say = |from: &str, text: &str| {
            agent.act(&[Message { from: from.into(), to: "agent".into(), text: text.into() }]).unwrap()
        };
        let order = |id: &str| {
            json!({"order_id": id, "user_id": "u1", "item": "Desk Lamp", "status": "pending", "price_cents": 3499,
                   "days_since_delivery": null, "address": "1 Oak Street"})
            .to_string()
        };
        assert!(say("user", "Hi! I want to cancel the Desk Lamp I ordered. My email is a@b.co.").contains("a@b.co"));
        assert!(say("env", r#"{"user_id": "u1", "name": "A B", "email": "a@b.co"}"#).contains("get_user"));
        let listed = json!({"user_id": "u1", "orders": [
            {"order_id": "#W1", "item": "Desk Lamp", "status": "delivered"},
            {"order_id": "#W2", "item": "Desk Lamp", "status": "pending"},
            {"order_id": "#W3", "item": "Desk Lamp", "status": "pending"},
            {"order_id": "#W4", "item": "Yoga Mat", "status": "pending"}]});
        // A pending lamp first: the request is a cancellation.
        assert!(say("env", &listed.to_string()).contains("#W2"));
        assert!(say("env", &order("#W2")).contains("cancel order #W2"));
        let no = "No, that is not what I want: I want to cancel the Desk Lamp I ordered.";
        assert!(say("user", no).contains("Could you please give me the order id?"));
        assert!(say("user", "The order id is #W3.").contains(r##""order_id":"#W3""##));
        assert!(say("env", &order("#W3")).contains("cancel order #W3"));
        // Without an id, it tries the lamps left, then asks.
        assert!(say("user", "No.").contains("order id"));
        assert!(say("user", "I want to cancel the Desk Lamp I ordered.").contains(r##""order_id":"#W1""##));
        let delivered = order("#W1").replace("pending", "delivered");
        assert!(say("env", &delivered).starts_with("I'm sorry, but I cannot cancel order #W1"));
    }

    #[test]
    fn parsing_the_customer() {
        assert_eq!(order_ids("order #w1234, not #W99 or W5"), ["#W1234", "#W99"]);
        assert_eq!(emails("My email is Ava.Kim42@example.com."), ["ava.kim42@example.com"]);
        assert!(emails("at @ home, a@b").is_empty());
        assert_eq!(
            new_address("The new address is 12 Oak Street, Austin, TX 73301.").unwrap(),
            "12 Oak Street, Austin, TX 73301"
        );
        assert_eq!(
            new_address("Please ship it to 4 Elm Drive, Boise, ID 83701.").unwrap(),
            "4 Elm Drive, Boise, ID 83701"
        );
        assert_eq!(dollars(3499), "$34.99");
    }
}
