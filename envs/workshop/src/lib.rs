//! `workshop`: your first weeks on a software team, as a suite of eight tool-use tasks that are not
//! independent: earlier briefings reveal facts that later tasks ask for.
//!
//! * The suite seed `S` (reset option `"suite"`, default 0) fixes everything: the facts' values,
//!   drawn from a SplitMix64 stream of `S` (not from the host RNG, so that every task of a suite
//!   agrees whatever seed each task gets), which four of the five kinds of [`Fact`] the suite uses
//!   and in which order, and the briefings. The host seed changes nothing.
//! * Positions 0, 1, 3 and 5 ([`REVEAL_AT`]) reveal a fact in their briefing ("FYI, the staging port
//!   is 8431.") and ask for it; positions 2, 4, 6 and 7 ([`NEED_AT`]) ask for the fact revealed at 0,
//!   1, 3 and 5 respectively, without restating it. A question always ends "Answer with the NAME.",
//!   NAME being the fact's fixed phrase ([`Fact::name`]); a fact is revealed as "the NAME is VALUE.",
//!   and no other sentence of a briefing has the word "is".
//! * Tools, called with the text action `{"tool": NAME, "args": {...}}`: `list_files()` (a JSON
//!   array of paths), `read_file(path)` (the text), `write_file(path, text)` (creates or
//!   overwrites) and `answer(text)`, which ends the episode with reward 1 if the text is the
//!   fact's value (trimmed, case-insensitive) and 0 otherwise. A malformed call (not JSON, not an
//!   object, an unknown tool, a missing, mistyped or unexpected argument, an unknown file, a write
//!   over the limits) is answered with an observation that starts `error:` and changes nothing.
//! * The workspace (the files) is what carries over: reset options
//!   `{"suite": S, "task": i, "carry": true}` start task `i` with the files the instance's previous
//!   episode left ([`Environment::continue_from`]); without `"carry"` the workspace starts empty. A
//!   carry into another suite is refused.
//! * Limits: at most [`MAX_FILES`] files of at most [`MAX_FILE_BYTES`] bytes, paths of 1 to
//!   [`MAX_PATH_CHARS`] characters from `A-Z a-z 0-9 . _ / -`. Episodes are truncated after 24 steps.
//! * [`valid_text_actions`](Environment::valid_text_actions) lists `list_files` and a `read_file`
//!   of every file; [`state_key`](Environment::state_key) is the suite, the task, whether it was
//!   answered, and the files.

use std::collections::BTreeMap;

use serde_json::{Map, Value, json};
use wasmgym_sdk::*;

/// Tasks in a suite: positions `0..TASKS`.
pub const TASKS: u32 = 8;
/// The positions whose briefing reveals a fact (and asks for it).
pub const REVEAL_AT: [u32; 4] = [0, 1, 3, 5];
/// The positions that ask for a fact revealed earlier: `NEED_AT[k]` asks for the fact revealed at
/// `REVEAL_AT[k]`.
pub const NEED_AT: [u32; 4] = [2, 4, 6, 7];
/// The most files a workspace holds.
pub const MAX_FILES: usize = 32;
/// The most bytes a file holds.
pub const MAX_FILE_BYTES: usize = 4096;
/// The longest path, in characters.
pub const MAX_PATH_CHARS: usize = 64;

/// The tool names, in the order of the spec.
const TOOL_NAMES: &str = "list_files, read_file, write_file, answer";

/// What reset options are expected, for error messages.
const EXPECTED_OPTIONS: &str = r#"pass {"suite": S, "task": I} with S a non-negative integer (default 0) and I in 0 to 7 (default 0), and "carry": true to keep the files of the previous task of the same suite"#;

/// A kind of fact a suite may reveal.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fact {
    /// A four-digit port, such as `8431`.
    StagingPort,
    /// A name such as `amber_ledger`.
    DatabaseName,
    /// A first name, such as `Priya`.
    OnCallEngineer,
    /// A branch such as `release/heron-42`.
    DeployBranch,
    /// A region such as `eu-west-1`.
    ApiRegion,
}

impl Fact {
    /// Every kind of fact.
    pub const ALL: [Fact; 5] =
        [Fact::StagingPort, Fact::DatabaseName, Fact::OnCallEngineer, Fact::DeployBranch, Fact::ApiRegion];

    /// The fixed phrase that names the fact in briefings ("the NAME is VALUE.") and questions
    /// ("Answer with the NAME."), without its article.
    pub fn name(self) -> &'static str {
        match self {
            Fact::StagingPort => "staging port",
            Fact::DatabaseName => "database name",
            Fact::OnCallEngineer => "on-call engineer",
            Fact::DeployBranch => "deploy branch",
            Fact::ApiRegion => "API region",
        }
    }

    /// The task of a briefing that reveals the fact.
    fn task_when_revealed(self) -> &'static str {
        match self {
            Fact::StagingPort => "Check that you can reach staging from your laptop.",
            Fact::DatabaseName => "Set up your local config for the reporting database.",
            Fact::OnCallEngineer => "Find out whom to page when staging breaks this week.",
            Fact::DeployBranch => "Make sure your first change lands on the right branch.",
            Fact::ApiRegion => "Configure your API client for our deployment.",
        }
    }

    /// The task of a later briefing that needs the fact.
    fn task_when_needed(self) -> &'static str {
        match self {
            Fact::StagingPort => "The hotfix got approved: deploy it to staging.",
            Fact::DatabaseName => "The nightly report failed: rerun it against our database.",
            Fact::OnCallEngineer => "Staging went down overnight: page the right person.",
            Fact::DeployBranch => "Your fix got approved: open the merge request against the right branch.",
            Fact::ApiRegion => "A customer reports slow responses: say where our API runs.",
        }
    }
}

const LEADS: [&str; 6] = ["Dana", "Marco", "Aiko", "Femi", "Lena", "Ravi"];
const ENGINEERS: [&str; 12] =
    ["Priya", "Mateo", "Ingrid", "Kwame", "Yuki", "Omar", "Sofia", "Tariq", "Elena", "Hiro", "Nadia", "Bruno"];
const ADJECTIVES: [&str; 10] =
    ["amber", "cobalt", "crimson", "ivory", "jade", "onyx", "saffron", "teal", "umber", "violet"];
const NOUNS: [&str; 8] = ["ledger", "harbor", "orchard", "beacon", "quarry", "lantern", "meadow", "summit"];
const BIRDS: [&str; 8] = ["heron", "falcon", "kestrel", "osprey", "wren", "magpie", "plover", "swift"];
const REGIONS: [&str; 8] = [
    "us-east-1",
    "us-west-2",
    "eu-west-1",
    "eu-central-1",
    "ap-southeast-2",
    "ap-northeast-1",
    "sa-east-1",
    "ca-central-1",
];
/// How the lead opens a revealing briefing, by reveal (0 to 3).
const OPENERS: [&str; 4] = [
    "Welcome aboard, glad to have you with us!",
    "Hope your first days went well.",
    "Quick update before the sprint starts.",
    "You have been doing great so far.",
];
/// One line of office life per briefing; none says "is".
const FLUFF: [&str; 8] = [
    "Lunch-and-learn on Thursday: pizza provided.",
    "Remember to fill in your timesheet by Friday.",
    "The team offsite got moved to next month.",
    "Ask in the team channel if you get stuck.",
    "Code freeze starts at the end of the month.",
    "Please skim the style guide when you have a minute.",
    "Standup moves to 9:45 from Monday on.",
    "Someone left a laptop charger in room B, with a blue sticker on it.",
];

/// SplitMix64: the suite's own deterministic stream, independent of the host RNG.
struct SplitMix(u64);

impl SplitMix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A value in `0..n` (the modulo bias is irrelevant here).
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.below(items.len())]
    }
}

/// A suite: the facts drawn from its seed and the eight tasks built on them. Plain data.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Suite {
    /// The suite seed.
    pub seed: u64,
    /// The facts revealed at [`REVEAL_AT`], in order.
    pub revealed: [Fact; 4],
    /// The value of every kind of fact, indexed like [`Fact::ALL`].
    values: [String; 5],
    lead: &'static str,
    fluff_offset: usize,
}

/// One task of a suite.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Task {
    /// Its position, `0..TASKS`.
    pub position: u32,
    /// The fact its briefing reveals, if any.
    pub reveals: Option<Fact>,
    /// The fact it asks for.
    pub asks: Fact,
    /// The right answer: the value of `asks`.
    pub answer: String,
    /// The briefing: the observation at reset.
    pub briefing: String,
}

impl Suite {
    /// The suite of seed `seed`.
    pub fn new(seed: u64) -> Suite {
        let mut rng = SplitMix(seed ^ 0x5745_4c43_4f4d_4521);
        let values = Fact::ALL.map(|fact| match fact {
            Fact::StagingPort => (1000 + rng.below(9000)).to_string(),
            Fact::DatabaseName => format!("{}_{}", rng.pick(&ADJECTIVES), rng.pick(&NOUNS)),
            Fact::OnCallEngineer => rng.pick(&ENGINEERS).to_string(),
            Fact::DeployBranch => format!("release/{}-{}", rng.pick(&BIRDS), 10 + rng.below(90)),
            Fact::ApiRegion => rng.pick(&REGIONS).to_string(),
        });
        let mut kinds = Fact::ALL;
        for i in (1..kinds.len()).rev() {
            kinds.swap(i, rng.below(i + 1));
        }
        let revealed = [kinds[0], kinds[1], kinds[2], kinds[3]];
        Suite { seed, revealed, values, lead: rng.pick(&LEADS), fluff_offset: rng.below(FLUFF.len()) }
    }

    /// The value of `fact` in this suite.
    pub fn value(&self, fact: Fact) -> &str {
        &self.values[Fact::ALL.iter().position(|&f| f == fact).expect("every fact is in ALL")]
    }

    /// The task at `position`, `None` beyond the suite.
    pub fn task(&self, position: u32) -> Option<Task> {
        let reveal = REVEAL_AT.iter().position(|&p| p == position);
        let need = NEED_AT.iter().position(|&p| p == position);
        let (reveals, asks) = match (reveal, need) {
            (Some(k), _) => (Some(self.revealed[k]), self.revealed[k]),
            (None, Some(k)) => (None, self.revealed[k]),
            (None, None) => return None,
        };
        let lead = self.lead;
        let fluff = FLUFF[(self.fluff_offset + position as usize) % FLUFF.len()];
        let name = asks.name();
        let mut briefing = format!("Task {} of {TASKS}, week {} on the team.\n", position + 1, position / 2 + 1);
        briefing += &match (reveal, reveals) {
            (Some(k), Some(fact)) => format!(
                "Briefing from {lead}, your lead: {} FYI, the {} is {}. {fluff}\nYour task: {} Answer with the {name}.\n",
                OPENERS[k],
                fact.name(),
                self.value(fact),
                fact.task_when_revealed()
            ),
            _ => format!(
                "Message from {lead}: {fluff}\nYour task: {} Answer with the {name}.\n",
                asks.task_when_needed()
            ),
        };
        briefing += "Tools: list_files(), read_file(path), write_file(path, text), answer(text); call one per step \
                     as {\"tool\": NAME, \"args\": {...}}. Files you write may still be in your workspace in later \
                     tasks.";
        Some(Task { position, reveals, asks, answer: self.value(asks).to_string(), briefing })
    }
}

/// One task of a suite in progress: the workspace and what the last call returned.
#[derive(Clone, Debug)]
pub struct Workshop {
    suite: u64,
    task: u32,
    /// The right answer (a function of `suite` and `task`).
    answer: String,
    files: BTreeMap<String, String>,
    answered: bool,
    /// The briefing, then the result of the last call (not part of the game state).
    message: String,
}

/// What the reset options ask for.
struct Start {
    suite: u64,
    task: u32,
}

impl Workshop {
    /// The suite seed.
    pub fn suite(&self) -> u64 {
        self.suite
    }

    /// The task's position in the suite.
    pub fn task(&self) -> u32 {
        self.task
    }

    /// The workspace: path to text.
    pub fn files(&self) -> &BTreeMap<String, String> {
        &self.files
    }

    fn start_from(options: &Options) -> Result<Start, EnvError> {
        let map = match options {
            Options::Null => return Ok(Start { suite: 0, task: 0 }),
            Options::Object(map) => map,
            other => {
                return Err(EnvError::caller(format!(
                    "reset options must be a JSON object, got {}: {EXPECTED_OPTIONS}",
                    clip(&other.to_string())
                )));
            }
        };
        if let Some(key) = map.keys().find(|k| !matches!(k.as_str(), "suite" | "task" | "carry")) {
            return Err(EnvError::caller(format!("unknown reset option {:?}: {EXPECTED_OPTIONS}", clip(key))));
        }
        if let Some(carry) = map.get("carry").filter(|c| !c.is_boolean()) {
            return Err(EnvError::caller(format!(
                "reset option \"carry\" is {}: it must be true or false",
                clip(&carry.to_string())
            )));
        }
        let suite = match map.get("suite") {
            None => 0,
            Some(v) => v.as_u64().ok_or_else(|| {
                EnvError::caller(format!("reset option \"suite\" is {}: {EXPECTED_OPTIONS}", clip(&v.to_string())))
            })?,
        };
        let task = match map.get("task") {
            None => 0,
            Some(v) => match v.as_u64() {
                Some(t) if t < u64::from(TASKS) => t as u32,
                _ => {
                    return Err(EnvError::caller(format!(
                        "reset option \"task\" is {}: tasks are numbered 0 to {}",
                        clip(&v.to_string()),
                        TASKS - 1
                    )));
                }
            },
        };
        Ok(Start { suite, task })
    }

    /// Task `start.task` of suite `start.suite` with the workspace `files`.
    fn begin(start: Start, files: BTreeMap<String, String>) -> Workshop {
        let task = Suite::new(start.suite).task(start.task).expect("the task was checked against TASKS");
        Workshop {
            suite: start.suite,
            task: start.task,
            answer: task.answer,
            files,
            answered: false,
            message: task.briefing,
        }
    }

    /// Carries out one call: the observation and, for `answer`, the reward.
    fn call(&mut self, text: &str) -> (String, Option<f64>) {
        match self.try_call(text) {
            Ok(outcome) => outcome,
            Err(message) => (format!("error: {message}"), None),
        }
    }

    fn try_call(&mut self, text: &str) -> Result<(String, Option<f64>), String> {
        const FORMAT: &str = r#"call a tool as {"tool": NAME, "args": {...}}"#;
        let value: Value = serde_json::from_str(text).map_err(|e| format!("the action is not JSON ({e}): {FORMAT}"))?;
        let Value::Object(call) = value else {
            return Err(format!("the action is {}, not a JSON object: {FORMAT}", kind(&value)));
        };
        if let Some(key) = call.keys().find(|k| !matches!(k.as_str(), "tool" | "args")) {
            return Err(format!("unexpected key {:?} in the call: {FORMAT}", clip(key)));
        }
        let tool = match call.get("tool") {
            Some(Value::String(tool)) => tool.as_str(),
            Some(other) => {
                return Err(format!("\"tool\" is {}, not a string: the tools are {TOOL_NAMES}", kind(other)));
            }
            None => return Err(format!("the call has no \"tool\": {FORMAT}; the tools are {TOOL_NAMES}")),
        };
        let empty = Map::new();
        let args = match call.get("args") {
            None | Some(Value::Null) => &empty,
            Some(Value::Object(args)) => args,
            Some(other) => return Err(format!("\"args\" is {}, not an object: {FORMAT}", kind(other))),
        };
        match tool {
            "list_files" => {
                expect_args(tool, args, &[])?;
                let paths: Vec<&String> = self.files.keys().collect();
                Ok((serde_json::to_string(&paths).expect("strings serialise"), None))
            }
            "read_file" => {
                expect_args(tool, args, &["path"])?;
                let path = string_arg(tool, args, "path")?;
                match self.files.get(path) {
                    Some(text) => Ok((text.clone(), None)),
                    None => Err(format!("no file {:?}: list_files shows the files", clip(path))),
                }
            }
            "write_file" => {
                expect_args(tool, args, &["path", "text"])?;
                let path = string_arg(tool, args, "path")?;
                let text = string_arg(tool, args, "text")?;
                check_path(path)?;
                if text.len() > MAX_FILE_BYTES {
                    return Err(format!("the text has {} bytes: a file holds at most {MAX_FILE_BYTES}", text.len()));
                }
                if !self.files.contains_key(path) && self.files.len() >= MAX_FILES {
                    return Err(format!(
                        "the workspace already holds {MAX_FILES} files, the most it can: overwrite one instead"
                    ));
                }
                self.files.insert(path.to_string(), text.to_string());
                Ok((format!("wrote {path} ({} bytes)", text.len()), None))
            }
            "answer" => {
                expect_args(tool, args, &["text"])?;
                let text = string_arg(tool, args, "text")?;
                self.answered = true;
                let right = text.trim().to_lowercase() == self.answer.to_lowercase();
                Ok(match right {
                    true => ("Correct, well done. This task is over.".into(), Some(1.0)),
                    false => ("Not right. This task is over.".into(), Some(0.0)),
                })
            }
            other => Err(format!("unknown tool {:?}: the tools are {TOOL_NAMES}", clip(other))),
        }
    }
}

/// At most 64 characters of `text`, for error messages that quote the caller.
fn clip(text: &str) -> String {
    match text.char_indices().nth(64) {
        Some((at, _)) => format!("{}...", &text[..at]),
        None => text.to_string(),
    }
}

/// What kind of JSON value `value` is, for error messages.
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

/// Refuses arguments the tool does not take (missing ones are refused by [`string_arg`]).
fn expect_args(tool: &str, args: &Map<String, Value>, names: &[&str]) -> Result<(), String> {
    match args.keys().find(|k| !names.contains(&k.as_str())) {
        None => Ok(()),
        Some(key) if names.is_empty() => Err(format!("{tool} takes no arguments, got {:?}", clip(key))),
        Some(key) => Err(format!("{tool} takes {}, not {:?}", names.join(" and "), clip(key))),
    }
}

fn string_arg<'a>(tool: &str, args: &'a Map<String, Value>, name: &str) -> Result<&'a str, String> {
    match args.get(name) {
        Some(Value::String(s)) => Ok(s),
        Some(other) => Err(format!("{tool}: argument {name:?} is {}, not a string", kind(other))),
        None => Err(format!("{tool}: missing argument {name:?}")),
    }
}

fn check_path(path: &str) -> Result<(), String> {
    let ok = |c: char| c.is_ascii_alphanumeric() || "._/-".contains(c);
    let n = path.chars().count();
    if n == 0 || n > MAX_PATH_CHARS || !path.chars().all(ok) {
        return Err(format!(
            "bad path {:?}: a path has 1 to {MAX_PATH_CHARS} characters from A-Z a-z 0-9 . _ / -",
            clip(path)
        ));
    }
    Ok(())
}

impl Environment for Workshop {
    fn spec() -> EnvSpec {
        EnvSpec {
            name: "workshop".into(),
            version: 1,
            players: 1,
            observation_space: Space::Text { max_length: 8192, charset: None },
            action_space: Space::Text { max_length: 4096, charset: None },
            reward_range: (0.0, 1.0),
            max_episode_steps: Some(24),
            determinism: Determinism::Deterministic,
            tools: vec![
                Tool::new("list_files", "Lists the files in your workspace, as a JSON array of paths.", &[]),
                Tool::new(
                    "read_file",
                    "Returns the text of a file in your workspace.",
                    &[("path", "string", "the file's path, as list_files shows it")],
                ),
                Tool::new(
                    "write_file",
                    "Creates or overwrites a file in your workspace (at most 32 files of 4 KiB each).",
                    &[
                        ("path", "string", "1 to 64 characters from A-Z a-z 0-9 . _ / -"),
                        ("text", "string", "the whole new content"),
                    ],
                ),
                Tool::new(
                    "answer",
                    "Submits your answer to the task's question and ends the task.",
                    &[("text", "string", "the answer alone, such as 8080")],
                ),
            ],
        }
    }

    fn reset(_rng: &mut Rng, options: &Options) -> Result<Self, EnvError> {
        Ok(Workshop::begin(Workshop::start_from(options)?, BTreeMap::new()))
    }

    fn continue_from(previous: &Self, _rng: &mut Rng, options: &Options) -> Result<Self, EnvError> {
        let start = Workshop::start_from(options)?;
        if start.suite != previous.suite {
            return Err(EnvError::caller(format!(
                "\"carry\": true continues suite {} but the options ask for suite {}: carry only within one \
                 suite, or leave \"carry\" out to start afresh",
                previous.suite, start.suite
            )));
        }
        Ok(Workshop::begin(start, previous.files.clone()))
    }

    fn observation(&self) -> Observation {
        Observation::Text(self.message.clone())
    }

    fn step(&mut self, action: &Action, _rng: &mut Rng) -> Result<Transition, EnvError> {
        let (message, reward) = self.call(action.text());
        self.message = message;
        Ok(match reward {
            Some(r) => Transition::reward(r).terminal(),
            None => Transition::reward(0.0),
        })
    }

    fn render(&self) -> String {
        json!({"suite": self.suite, "task": self.task, "files": self.files}).to_string()
    }

    fn info(&self) -> Options {
        json!({"suite": self.suite, "task": self.task})
    }

    fn valid_text_actions(&self) -> Vec<String> {
        let list = json!({"tool": "list_files", "args": {}}).to_string();
        let reads = self.files.keys().map(|path| json!({"tool": "read_file", "args": {"path": path}}).to_string());
        std::iter::once(list).chain(reads).collect()
    }

    /// Suite, task and answered flag, then every file as length-prefixed path and text.
    fn state_key(&self) -> Option<Vec<u8>> {
        let mut key = self.suite.to_le_bytes().to_vec();
        key.push(self.task as u8);
        key.push(u8::from(self.answered));
        for (path, text) in &self.files {
            for part in [path, text] {
                key.extend_from_slice(&(part.len() as u32).to_le_bytes());
                key.extend_from_slice(part.as_bytes());
            }
        }
        Some(key)
    }
}

export_env!(Workshop);

#[cfg(test)]
mod tests {
    use super::*;

    fn text(t: &StepResult) -> &str {
        std::str::from_utf8(&t.observation).unwrap()
    }

    fn started(options: &str) -> Runner<Workshop> {
        let mut runner = Runner::<Workshop>::new();
        runner.reset(Some(7), options).unwrap();
        runner
    }

    fn call(runner: &mut Runner<Workshop>, tool: &str, args: Value) -> StepResult {
        runner.step(&Action::Text(json!({"tool": tool, "args": args}).to_string())).unwrap()
    }

    fn write(runner: &mut Runner<Workshop>, path: &str, body: &str) -> StepResult {
        call(runner, "write_file", json!({"path": path, "text": body}))
    }

    #[test]
    fn continue_from_keeps_the_files_and_reset_forgets_them() {
        let mut runner = started(r#"{"suite": 3, "task": 0}"#);
        let t = write(&mut runner, "notes.md", "port 1234");
        assert_eq!(text(&t), "wrote notes.md (9 bytes)");
        let t = runner.reset(Some(1), r#"{"suite": 3, "task": 1, "carry": true}"#).unwrap();
        assert!(text(&t).starts_with("Task 2 of 8"), "{}", text(&t));
        assert_eq!(text(&call(&mut runner, "list_files", json!({}))), r#"["notes.md"]"#);
        assert_eq!(text(&call(&mut runner, "read_file", json!({"path": "notes.md"}))), "port 1234");
        assert_eq!(runner.render().unwrap(), r#"{"files":{"notes.md":"port 1234"},"suite":3,"task":1}"#);
        // Carrying from a finished episode works too.
        call(&mut runner, "answer", json!({"text": "no idea"}));
        runner.reset(None, r#"{"suite": 3, "task": 2, "carry": true}"#).unwrap();
        assert_eq!(runner.env().unwrap().files().len(), 1);
        // Without carry the workspace starts empty.
        runner.reset(None, r#"{"suite": 3, "task": 3}"#).unwrap();
        assert_eq!(text(&call(&mut runner, "list_files", json!(null))), "[]");
        assert!(runner.env().unwrap().files().is_empty());
    }

    #[test]
    fn carry_is_refused_across_suites_and_bad_options_are_refused() {
        let mut runner = started(r#"{"suite": 3, "task": 0}"#);
        write(&mut runner, "a", "b");
        let before = runner.render().unwrap();
        let err = runner.reset(None, r#"{"suite": 4, "task": 1, "carry": true}"#).unwrap_err();
        assert_eq!(format!("{:?}", err.status), "BadRequest", "{err:?}");
        assert!(err.message.contains("suite 3") && err.message.contains("suite 4"), "{err:?}");
        assert_eq!(runner.render().unwrap(), before);
        for (options, word) in [
            (r#"{"task": 8}"#, "0 to 7"),
            (r#"{"task": -1}"#, "0 to 7"),
            (r#"{"task": "2"}"#, "0 to 7"),
            (r#"{"suite": -5}"#, "non-negative"),
            (r#"{"suite": 1.5}"#, "non-negative"),
            (r#"{"carry": 1}"#, "true or false"),
            (r#"{"seed": 1}"#, "unknown reset option"),
            ("[1]", "JSON object"),
        ] {
            let err = Runner::<Workshop>::new().reset(None, options).unwrap_err();
            assert_eq!(format!("{:?}", err.status), "BadRequest", "{options}: {err:?}");
            assert!(err.message.contains(word), "{options}: {err:?}");
        }
        // A carry with no episode before starts afresh; defaults are suite 0, task 0.
        let mut runner = Runner::<Workshop>::new();
        runner.reset(None, r#"{"carry": true}"#).unwrap();
        assert_eq!((runner.env().unwrap().suite(), runner.env().unwrap().task()), (0, 0));
        assert_eq!(runner.reset(None, "").unwrap().info, r#"{"suite":0,"task":0}"#);
    }

    #[test]
    fn bad_calls_are_observations_that_change_nothing() {
        let mut runner = started(r#"{"suite": 1}"#);
        write(&mut runner, "notes.md", "hello");
        let before = (runner.env().unwrap().state_key(), runner.render().unwrap());
        let long_path = "p".repeat(65);
        // Two bytes a character: over the file limit within the action's 4096 characters.
        let big = "é".repeat(MAX_FILE_BYTES / 2 + 1);
        for (action, expected) in [
            ("not json".to_string(), "not JSON"),
            ("[1, 2]".into(), "an array, not a JSON object"),
            ("\"list_files\"".into(), "a string, not a JSON object"),
            (r#"{"args": {}}"#.into(), "no \"tool\""),
            (r#"{"tool": 3}"#.into(), "not a string"),
            (
                r#"{"tool": "rm", "args": {}}"#.into(),
                "unknown tool \"rm\": the tools are list_files, read_file, write_file, answer",
            ),
            (r#"{"tool": "list_files", "args": [1]}"#.into(), "\"args\" is an array"),
            (r#"{"tool": "list_files", "args": {}, "extra": 1}"#.into(), "unexpected key \"extra\""),
            (r#"{"tool": "list_files", "args": {"path": "x"}}"#.into(), "takes no arguments"),
            (r#"{"tool": "read_file", "args": {}}"#.into(), "missing argument \"path\""),
            (r#"{"tool": "read_file", "args": {"path": 5}}"#.into(), "argument \"path\" is a number"),
            (r#"{"tool": "read_file", "args": {"path": "nope.md"}}"#.into(), "no file \"nope.md\""),
            (r#"{"tool": "read_file", "args": {"file": "notes.md"}}"#.into(), "takes path, not \"file\""),
            (r#"{"tool": "write_file", "args": {"path": "a"}}"#.into(), "missing argument \"text\""),
            (r#"{"tool": "write_file", "args": {"path": "a b", "text": ""}}"#.into(), "bad path"),
            (r#"{"tool": "write_file", "args": {"path": "", "text": ""}}"#.into(), "bad path"),
            (json!({"tool": "write_file", "args": {"path": long_path, "text": ""}}).to_string(), "bad path"),
            (json!({"tool": "write_file", "args": {"path": "a", "text": big}}).to_string(), "at most 4096"),
            (r#"{"tool": "answer", "args": {"text": null}}"#.into(), "argument \"text\" is null"),
            (r#"{"tool": "answer"}"#.into(), "missing argument \"text\""),
            (String::new(), "not JSON"),
        ] {
            let t = runner.step(&Action::Text(action.clone())).unwrap();
            assert!(text(&t).starts_with("error: "), "{action}: {}", text(&t));
            assert!(text(&t).contains(expected), "{action}: {}", text(&t));
            assert_eq!((t.rewards[0], t.terminated), (0.0, false), "{action}");
            assert_eq!((runner.env().unwrap().state_key(), runner.render().unwrap()), before, "{action}");
        }
    }

    #[test]
    fn the_workspace_is_bounded() {
        let mut runner = started("");
        for i in 0..MAX_FILES {
            if i == 20 {
                // 24 steps an episode: go on in the next task.
                runner.reset(None, r#"{"task": 1, "carry": true}"#).unwrap();
            }
            assert!(text(&write(&mut runner, &format!("f{i}"), "x")).starts_with("wrote"));
        }
        assert!(text(&write(&mut runner, "one-more", "x")).contains("already holds 32 files"));
        let t = write(&mut runner, "f0", &"é".repeat(MAX_FILE_BYTES / 2));
        assert_eq!(text(&t), "wrote f0 (4096 bytes)");
        let path = "a/B-9_.z".repeat(8);
        assert!(text(&write(&mut runner, &path[..64], "x")).contains("already holds"));
        let valid = runner.env().unwrap().valid_text_actions();
        assert_eq!(valid.len(), 1 + MAX_FILES);
        assert_eq!(valid[0], r#"{"args":{},"tool":"list_files"}"#);
        assert_eq!(valid[1], r#"{"args":{"path":"f0"},"tool":"read_file"}"#);
        // The 24-step limit truncates.
        runner.reset(None, "").unwrap();
        for step in 1..=24 {
            let t = call(&mut runner, "list_files", json!({}));
            assert_eq!(t.truncated, step == 24);
        }
    }

    #[test]
    fn the_right_answer_gets_one_and_any_answer_ends_the_task() {
        let suite = Suite::new(11);
        for position in 0..TASKS {
            let task = suite.task(position).unwrap();
            for (given, reward) in [
                (format!("  {}\n", task.answer.to_uppercase()), 1.0),
                (task.answer.clone(), 1.0),
                ("unknown".into(), 0.0),
            ] {
                let mut runner = Runner::<Workshop>::new();
                let start = runner.reset(Some(position as u64), &json!({"suite": 11, "task": position}).to_string());
                assert_eq!(text(&start.unwrap()), task.briefing);
                let key = runner.env().unwrap().state_key();
                let t = call(&mut runner, "answer", json!({"text": given}));
                assert_eq!((t.rewards[0], t.terminated), (reward, true), "{position}: {given:?}");
                assert_ne!(runner.env().unwrap().state_key(), key);
                assert!(runner.step(&Action::Text("{}".into())).is_err(), "the episode is over");
            }
        }
    }

    #[test]
    fn every_revealed_fact_is_needed_later_and_only_revealed_facts_say_is() {
        for seed in 0..50 {
            let suite = Suite::new(seed);
            assert_eq!(suite, Suite::new(seed));
            let mut kinds = suite.revealed.to_vec();
            kinds.dedup();
            assert_eq!(kinds.len(), 4, "{suite:?}");
            for (k, (&reveal, &need)) in REVEAL_AT.iter().zip(&NEED_AT).enumerate() {
                assert!(reveal < need);
                let (revealing, needing) = (suite.task(reveal).unwrap(), suite.task(need).unwrap());
                assert_eq!((revealing.reveals, revealing.asks), (Some(suite.revealed[k]), suite.revealed[k]));
                assert_eq!((needing.reveals, needing.asks), (None, suite.revealed[k]));
                let name = suite.revealed[k].name();
                let sentence = format!("FYI, the {name} is {}.", revealing.answer);
                assert!(revealing.briefing.contains(&sentence), "{}", revealing.briefing);
                assert!(!needing.briefing.contains(&needing.answer), "{}", needing.briefing);
                for task in [&revealing, &needing] {
                    assert!(task.briefing.contains(&format!("Answer with the {name}.")), "{}", task.briefing);
                    let says_is = task.briefing.matches(" is ").count();
                    assert_eq!(says_is, usize::from(task.reveals.is_some()), "{}", task.briefing);
                    assert!(task.briefing.len() < 1024);
                }
            }
            assert!(suite.task(TASKS).is_none());
            let port = suite.value(Fact::StagingPort);
            assert!(port.len() == 4 && port.bytes().all(|b| b.is_ascii_digit()), "{port}");
        }
        assert_ne!(Suite::new(0).values, Suite::new(1).values);
    }

    #[test]
    fn the_host_seed_changes_nothing() {
        let briefing = |seed| {
            let mut runner = Runner::<Workshop>::new();
            runner.reset(Some(seed), r#"{"suite": 9, "task": 4}"#).unwrap().observation
        };
        assert_eq!(briefing(1), briefing(2));
    }
}
