//! The simulated customer of the `support_desk` domain, as an ordinary environment: its action is
//! the support agent's message (text), its observation the customer's reply. A composite episode
//! routes the agent's plain messages here and its tool calls to `envs/support_desk`; both are
//! reset with the same options `{"task": N}` (no options mean task 0), and the customer wants the
//! goal of [`support_domain::task`]`(N)`.
//!
//! The seed (mixed with the task number) only picks the phrasing, at reset: whether the opening message gives the order id or
//! only the item and the email, whether it says why (for a cancellation, the reason the database
//! records; for an address change, also the new address), and the wording. Steps are
//! deterministic.
//!
//! Replies follow keyword rules on the agent's message (case-insensitive; the first rule that
//! applies wins):
//!
//! 0. A statement (no `?`, no `yes/no`) that reports the change done or declines it (rule 3's
//!    words) ends the conversation as rule 3 does, even if it says `proceed` ("I cannot proceed
//!    with the refund.").
//! 1. A confirmation request (`confirm`, `yes/no`, `yes or no`, `shall i`, `should i` or
//!    `proceed`) about an action (it names an order `#W...` or says `cancel`, `refund`,
//!    `address`, `update` or `change`): "Yes" if it names the goal's order id and the goal's action
//!    (`cancel`, `refund` or `address`); otherwise "No, that is not what I want: I want to ..."
//!    restating the goal.
//! 2. Questions, answered together: `email` or `e-mail` → the email; `order id`, `order number`,
//!    `which order` or `id of` → the order id; `address` (other than in "email address") or
//!    `where` → the new address (for an address change); `reason` or `why` → the reason; `name`
//!    → the name.
//! 3. The change is reported done (`done`, `has been`, `processed`, `completed`) or the request
//!    declined (`cannot`, `can't`, `can not`, `unable`, `not eligible`, `not allowed`): a goodbye
//!    ending in `###STOP###` (tau-bench's stop token), and the episode terminates.
//! 4. Anything else: the customer restates the goal.
//!
//! After 12 replies without an end, the customer gives up (`###STOP###`, terminated). No reward:
//! `programs/support_checker` scores the desk's database.

use serde_json::json;
use support_domain::{Goal, GoalKind, task, task_from_options};
use wasmgym_sdk::*;

/// The reply after which the customer gives up.
pub const MAX_TURNS: u32 = 12;

/// tau-bench's token for the end of the customer's side of the conversation.
pub const STOP: &str = "###STOP###";

/// How this customer phrases things, picked at reset.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Phrasing {
    /// The opening message gives the order id (else the item and the email).
    upfront_id: bool,
    /// The opening message says why (and, for an address change, the new address).
    says_why: bool,
    /// Wording of greetings and answers, 0 to 2.
    style: u8,
}

/// The customer: the goal, how they phrase it, and the conversation so far.
#[derive(Clone, Debug)]
pub struct SupportUser {
    task: u64,
    goal: Goal,
    phrasing: Phrasing,
    /// Replies given so far.
    turns: u32,
    /// The customer has said the order id.
    gave_id: bool,
    /// The customer ended the conversation.
    stopped: bool,
    /// The last reply (the observation).
    reply: String,
}

const CONFIRMATION: [&str; 6] = ["confirm", "yes/no", "yes or no", "shall i", "should i", "proceed"];
const ACTIONS: [&str; 6] = ["#w", "cancel", "refund", "address", "update", "change"];
const DONE: [&str; 3] = ["has been", "processed", "completed"];
const DECLINED: [&str; 6] = ["cannot", "can't", "can not", "unable", "not eligible", "not allowed"];

/// splitmix64's finaliser: every bit of the result depends on every bit of `z`.
fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// `message` (lower case) names `id` (like `#W1234`): `W1234` with no digit after it.
fn names_order(message: &str, id: &str) -> bool {
    let id = id.trim_start_matches('#').to_lowercase();
    message.match_indices(&id).any(|(at, _)| {
        let before = message[..at].chars().next_back();
        let after = message[at + id.len()..].chars().next();
        !before.is_some_and(|c| c.is_alphanumeric()) && !after.is_some_and(|c| c.is_ascii_digit())
    })
}

/// `message` has `word` as a whole word.
fn has_word(message: &str, word: &str) -> bool {
    message.split(|c: char| !c.is_alphanumeric()).any(|w| w == word)
}

impl SupportUser {
    fn reference(&self) -> String {
        match self.gave_id {
            true => format!("my order {} (the {})", self.goal.order_id, self.goal.item),
            false => format!("the {} I ordered", self.goal.item),
        }
    }

    fn new_address(&self) -> Option<&str> {
        match &self.goal.kind {
            GoalKind::UpdateAddress { address } => Some(address),
            _ => None,
        }
    }

    /// Why, in the customer's words.
    fn why(&self) -> String {
        match self.goal.reason.as_str() {
            "no longer needed" => "I no longer need it.".into(),
            "ordered by mistake" => "I ordered it by mistake.".into(),
            reason => reason.into(),
        }
    }

    fn goal_sentence(&self) -> String {
        format!("I want to {} {}.", self.goal.kind.verb(), self.reference())
    }

    fn opening(&self) -> String {
        let hello = ["Hi!", "Hello,", "Good morning."][self.phrasing.style as usize];
        let mut text = format!("{hello} {}", self.goal_sentence());
        if !self.phrasing.upfront_id {
            text += &format!(" My email is {}.", self.goal.email);
        }
        if self.phrasing.says_why {
            text += &format!(" {}", self.why());
            if let Some(address) = self.new_address() {
                text += &format!(" The new address is {address}.");
            }
        }
        text
    }

    /// The last words: thanks if the change was `done`, else regret.
    fn goodbye(&self, done: bool) -> (String, bool) {
        match done {
            true => (format!("Great, thank you for your help! {STOP}"), true),
            false => (format!("I see. That's a pity, but thank you anyway. {STOP}"), true),
        }
    }

    /// The reply to one message of the agent, and whether the customer is done.
    fn respond(&mut self, message: &str) -> (String, bool) {
        let m = message.to_lowercase().replace('\u{2019}', "'");
        let goal_action = match self.goal.kind {
            GoalKind::Cancel => "cancel",
            GoalKind::Refund => "refund",
            GoalKind::UpdateAddress { .. } => "address",
        };
        let done = has_word(&m, "done") || DONE.iter().any(|k| m.contains(k));
        let declined = DECLINED.iter().any(|k| m.contains(k));
        let asks = m.contains('?') || m.contains("yes/no") || m.contains("yes or no");
        // 0. A statement that ends the conversation, and 1. a confirmation request.
        if !asks && (done || declined) {
            return self.goodbye(done);
        }
        if CONFIRMATION.iter().any(|k| m.contains(k)) && ACTIONS.iter().any(|k| m.contains(k)) {
            if names_order(&m, &self.goal.order_id) && m.contains(goal_action) {
                let yes = ["Yes, please go ahead.", "Yes.", "Yes, that's right."][self.phrasing.style as usize];
                return (yes.into(), false);
            }
            return (format!("No, that is not what I want: {}", self.goal_sentence()), false);
        }
        // 2. Questions.
        let mut answers = Vec::new();
        if m.contains("email") || m.contains("e-mail") {
            answers.push(format!("My email is {}.", self.goal.email));
        }
        if ["order id", "order number", "which order", "id of"].iter().any(|k| m.contains(k)) {
            self.gave_id = true;
            answers.push(format!("The order id is {}.", self.goal.order_id));
        }
        let without_email = m.replace("email address", "").replace("e-mail address", "");
        if without_email.contains("address") || has_word(&m, "where") {
            answers.push(match self.new_address() {
                Some(address) if self.phrasing.style == 2 => format!("Please ship it to {address}."),
                Some(address) => format!("The new address is {address}."),
                None => "I don't need to change any address.".into(),
            });
        }
        if m.contains("reason") || has_word(&m, "why") {
            answers.push(format!("The reason: {}", self.why()));
        }
        if has_word(&m, "name") {
            answers.push(format!("My name is {}.", self.goal.name));
        }
        if !answers.is_empty() {
            return (answers.join(" "), false);
        }
        // 3. The end of the conversation.
        if done || declined {
            return self.goodbye(done);
        }
        // 4. The goal again.
        let ask = ["Can you help me with that?", "Could you do that, please?", "Is that possible?"];
        (format!("{} {}", self.goal_sentence(), ask[self.phrasing.style as usize]), false)
    }
}

impl Environment for SupportUser {
    fn spec() -> EnvSpec {
        EnvSpec {
            name: "support_user".into(),
            version: 1,
            players: 1,
            observation_space: Space::Text { max_length: 2048, charset: None },
            action_space: Space::Text { max_length: 4096, charset: None },
            reward_range: (0.0, 0.0),
            max_episode_steps: Some(32),
            determinism: Determinism::Deterministic,
            tools: vec![],
        }
    }

    fn reset(rng: &mut Rng, options: &Options) -> Result<Self, EnvError> {
        let n = task_from_options(options).map_err(EnvError::caller)?;
        // One draw, mixed with the task number so that one seed does not phrase every task alike.
        let bits = mix(rng.next_u64() ^ n.wrapping_mul(0x9E37_79B9_7F4A_7C15));
        let phrasing = Phrasing { upfront_id: bits & 1 == 1, says_why: bits & 2 == 2, style: (bits >> 2) as u8 % 3 };
        let mut user = SupportUser {
            task: n,
            goal: task(n).goal,
            phrasing,
            turns: 0,
            gave_id: phrasing.upfront_id,
            stopped: false,
            reply: String::new(),
        };
        user.reply = user.opening();
        Ok(user)
    }

    fn observation(&self) -> Observation {
        Observation::Text(self.reply.clone())
    }

    fn step(&mut self, action: &Action, _rng: &mut Rng) -> Result<Transition, EnvError> {
        self.turns += 1;
        let (mut reply, mut stop) = self.respond(action.text());
        if !stop && self.turns >= MAX_TURNS {
            (reply, stop) = (format!("This is taking too long; I will try again another time. {STOP}"), true);
        }
        self.reply = reply;
        self.stopped = stop;
        Ok(Transition::reward(0.0).terminated_if(stop))
    }

    /// The task, the goal, the phrasing and the conversation's progress, as JSON.
    fn render(&self) -> String {
        json!({
            "task": self.task,
            "goal": self.goal,
            "phrasing": {"upfront_id": self.phrasing.upfront_id, "says_why": self.phrasing.says_why,
                         "style": self.phrasing.style},
            "turns": self.turns,
            "gave_id": self.gave_id,
            "stopped": self.stopped,
        })
        .to_string()
    }

    fn info(&self) -> Options {
        json!({"task": self.task})
    }

    /// Messages an agent might send: questions, the confirmation the customer accepts, a report
    /// of the change and a refusal.
    fn valid_text_actions(&self) -> Vec<String> {
        let action = match self.goal.kind {
            GoalKind::Cancel => "cancel",
            GoalKind::Refund => "refund",
            GoalKind::UpdateAddress { .. } => "update the shipping address of",
        };
        vec![
            "How can I help you today?".into(),
            "Could you please tell me your email address?".into(),
            "Could you please give me the order id?".into(),
            "What is the reason for your request?".into(),
            "What is the new shipping address?".into(),
            format!("I will {action} order {}. Shall I proceed (yes/no)?", self.goal.order_id),
            "Your request has been processed.".into(),
            "I'm sorry, but I cannot do that under our policy.".into(),
        ]
    }

    /// Task, phrasing, replies given, whether the order id was said and whether the customer
    /// stopped.
    fn state_key(&self) -> Option<Vec<u8>> {
        let p = self.phrasing;
        let mut key = self.task.to_le_bytes().to_vec();
        key.extend([p.upfront_id as u8, p.says_why as u8, p.style, self.turns as u8, self.gave_id as u8]);
        key.push(self.stopped as u8);
        Some(key)
    }
}

export_env!(SupportUser);

#[cfg(test)]
mod tests {
    use super::*;

    fn started(n: u64, seed: u64) -> Runner<SupportUser> {
        let mut runner = Runner::<SupportUser>::new();
        runner.reset(Some(seed), &format!(r#"{{"task": {n}}}"#)).unwrap();
        runner
    }

    fn user(runner: &Runner<SupportUser>) -> &SupportUser {
        runner.env().unwrap()
    }

    fn say(runner: &mut Runner<SupportUser>, message: &str) -> (String, bool) {
        let t = runner.step(&Action::Text(message.into())).unwrap();
        (String::from_utf8(t.observation).unwrap(), t.terminated)
    }

    /// A task whose goal is of the kind `pred` accepts.
    fn task_where(pred: impl Fn(&GoalKind) -> bool) -> u64 {
        (0..).find(|&n| pred(&task(n).goal.kind)).unwrap()
    }

    #[test]
    fn the_opening_states_the_goal_in_a_phrasing_the_seed_picks() {
        let n = task_where(|k| matches!(k, GoalKind::UpdateAddress { .. }));
        let goal = task(n).goal;
        let mut seen = std::collections::HashSet::new();
        for seed in 0..40 {
            let runner = started(n, seed);
            let opening = user(&runner).reply.clone();
            let p = user(&runner).phrasing;
            assert!(opening.contains(&goal.item) && opening.contains("change the shipping address"), "{opening}");
            assert_eq!(opening.contains(&goal.order_id), p.upfront_id, "{opening}");
            assert_eq!(opening.contains(&goal.email), !p.upfront_id, "{opening}");
            let GoalKind::UpdateAddress { address } = &goal.kind else { unreachable!() };
            assert_eq!(opening.contains(address.as_str()), p.says_why, "{opening}");
            assert_eq!(started(n, seed).render().unwrap(), started(n, seed).render().unwrap());
            seen.insert(opening);
        }
        assert!(seen.len() >= 6, "{seen:?}");
    }

    #[test]
    fn questions_are_answered() {
        let n = task_where(|k| *k == GoalKind::Cancel);
        let goal = task(n).goal;
        let mut runner = started(n, 1);
        let (reply, stop) = say(&mut runner, "Could you give me your e-mail address and the order ID, please?");
        assert_eq!(reply, format!("My email is {}. The order id is {}.", goal.email, goal.order_id));
        assert!(!stop);
        let (reply, _) = say(&mut runner, "Why do you want to cancel it?");
        assert!(
            reply.starts_with("The reason: I ") && reply.contains(&goal.reason[goal.reason.len() - 6..]),
            "{reply}"
        );
        let (reply, _) = say(&mut runner, "And what is your name?");
        assert_eq!(reply, format!("My name is {}.", goal.name));
        let (reply, _) = say(&mut runner, "What is the new address?");
        assert_eq!(reply, "I don't need to change any address.");

        let n = task_where(|k| matches!(k, GoalKind::UpdateAddress { .. }));
        let GoalKind::UpdateAddress { address } = task(n).goal.kind else { unreachable!() };
        let (reply, _) = say(&mut started(n, 2), "Where should we ship it?");
        assert!(reply.contains(&address), "{reply}");
    }

    #[test]
    fn confirmation_needs_the_order_and_the_action() {
        let n = task_where(|k| *k == GoalKind::Refund);
        let goal = task(n).goal;
        let other = task(n).db.orders.iter().find(|o| o.order_id != goal.order_id).unwrap().order_id.clone();
        let id = &goal.order_id;
        for (message, yes) in [
            (format!("I will refund order {id}. Shall I proceed (yes/no)?"), true),
            (format!("Please CONFIRM: refund of {}?", id.trim_start_matches('#')), true),
            (format!("Should I cancel order {id}?"), false),
            (format!("I will refund order {other}. Do you confirm?"), false),
            (format!("I will refund order {id}1. Do you confirm?"), false),
            ("Can you confirm you want a refund?".to_string(), false),
        ] {
            let mut runner = started(n, 3);
            let (reply, stop) = say(&mut runner, &message);
            assert_eq!(reply.starts_with("Yes"), yes, "{message}: {reply}");
            assert!(!stop);
            if !yes {
                assert!(reply.starts_with("No, that is not what I want: I want to get a refund for"), "{reply}");
                assert!(reply.contains(&goal.item), "{reply}");
            }
        }
    }

    #[test]
    fn done_or_declined_ends_the_conversation() {
        for message in [
            "Your order has been cancelled.",
            "Done!",
            "The refund is processed.",
            "I'm sorry, but I cannot refund it: it was delivered 40 days ago.",
            "Sorry, I can\u{2019}t do that.",
            "This order is not eligible for a refund.",
            "I am unable to proceed with the refund of this order.",
            "Your order has been cancelled. Is there anything else I can help you with?",
        ] {
            let mut runner = started(5, 0);
            let (reply, stop) = say(&mut runner, message);
            assert!(stop && reply.ends_with(STOP), "{message}: {reply}");
            assert!(runner.step(&Action::Text("hello".into())).is_err(), "the episode is over");
        }
        // "done" only as a word.
        let (reply, stop) = say(&mut started(5, 0), "I abandoned the idea.");
        assert!(!stop && reply.starts_with("I want to"), "{reply}");
    }

    #[test]
    fn anything_else_restates_the_goal_and_the_customer_gives_up_after_12_replies() {
        let n = task_where(|k| *k == GoalKind::Cancel);
        let goal = task(n).goal;
        let mut runner = started(n, 4);
        for turn in 1..=MAX_TURNS {
            let (reply, stop) = say(&mut runner, "Hello, how can I help?");
            if turn < MAX_TURNS {
                assert!(!stop && reply.starts_with("I want to cancel") && reply.contains(&goal.item), "{reply}");
            } else {
                assert!(stop && reply.ends_with(STOP), "{reply}");
            }
        }
        // Once the order id is said, the customer names it.
        let mut runner = started(n, 4);
        say(&mut runner, "Which order is it?");
        assert!(say(&mut runner, "Hello?").0.contains(&goal.order_id));
    }

    #[test]
    fn valid_actions_include_the_accepted_confirmation() {
        let runner = started(9, 9);
        let before = user(&runner).clone();
        let mut yes = 0;
        for action in before.valid_text_actions() {
            let mut next = before.clone();
            let (reply, _) = next.respond(&action);
            yes += reply.starts_with("Yes") as u32;
            assert!(reply.len() < 2048);
        }
        assert_eq!(yes, 1);
    }

    #[test]
    fn bad_options_are_refused() {
        for bad in [r#"{"task": -3}"#, r#"{"task": true}"#, r#"{"user": 1}"#, "7"] {
            let err = Runner::<SupportUser>::new().reset(None, bad).unwrap_err();
            assert_eq!(err.status, Status::BadRequest, "{bad}");
            assert!(err.message.contains(r#"{"task": N}"#), "{bad}: {}", err.message);
        }
    }
}
