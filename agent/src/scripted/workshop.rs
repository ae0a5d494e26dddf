//! [`WorkshopAgent`]: a rule-based agent for `workshop` that keeps its notes in the environment.
//!
//! At every task it lists the workspace, reads [`NOTES`] if it is there, adds the facts the
//! briefing reveals (sentences "... the NAME is VALUE.") to the notes (rewriting the whole file),
//! and answers the question ("Answer with the NAME.") from the briefing or the notes, or with
//! `unknown`. It remembers nothing across tasks itself: what it knows at a later task is what the
//! workspace carried over, so it succeeds at a task that needs an earlier fact only when the
//! suite runs sequentially.

use serde_json::{Value, json};

use crate::{Agent, Message, Tool};

/// The notes file the agent keeps in the workspace.
pub const NOTES: &str = "notes.md";

/// The first line of the notes file.
const NOTES_TITLE: &str = "# Facts from briefings";

/// Where the agent is in a task.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
enum Phase {
    /// Nothing seen yet: the next message is the briefing.
    #[default]
    Briefing,
    /// `list_files` was called.
    Listed,
    /// `read_file` of the notes was called.
    Read,
    /// The notes were written.
    Wrote,
    /// The answer was given: the task should be over.
    Answered,
}

/// A rule-based agent for `workshop`; deterministic, and started afresh at every task.
#[derive(Clone, Debug, Default)]
pub struct WorkshopAgent {
    phase: Phase,
    /// The fact the question asks for (lower case), if the briefing had a question.
    asked: Option<String>,
    /// The facts the briefing revealed: `(name, value)`, names in lower case.
    revealed: Vec<(String, String)>,
    /// The facts the notes held.
    notes: Vec<(String, String)>,
}

impl WorkshopAgent {
    /// An agent about to start a task.
    pub fn new() -> Self {
        Self::default()
    }

    /// Reads the notes if `list_files` shows them; else goes on without.
    fn after_listing(&mut self, listing: &str) -> String {
        let listed = serde_json::from_str::<Vec<String>>(listing).unwrap_or_default();
        if listed.iter().any(|p| p == NOTES) {
            self.phase = Phase::Read;
            return call("read_file", json!({"path": NOTES}));
        }
        self.after_reading()
    }

    /// Writes the notes if the briefing revealed something they lack; else answers.
    fn after_reading(&mut self) -> String {
        let mut merged = self.notes.clone();
        for (name, value) in &self.revealed {
            match merged.iter_mut().find(|(n, _)| n == name) {
                Some(entry) => entry.1 = value.clone(),
                None => merged.push((name.clone(), value.clone())),
            }
        }
        if merged == self.notes {
            return self.answer();
        }
        self.phase = Phase::Wrote;
        let mut text = format!("{NOTES_TITLE}\n");
        for (name, value) in &merged {
            text += &format!("- {name}: {value}\n");
        }
        self.notes = merged;
        call("write_file", json!({"path": NOTES, "text": text}))
    }

    /// Answers from the briefing, then the notes, else `unknown`.
    fn answer(&mut self) -> String {
        self.phase = Phase::Answered;
        let asked = self.asked.as_deref().unwrap_or_default();
        let known = self.revealed.iter().chain(&self.notes).find(|(name, _)| name == asked);
        call("answer", json!({"text": known.map_or("unknown", |(_, value)| value.as_str())}))
    }
}

/// A tool call as action text.
fn call(tool: &str, args: Value) -> String {
    json!({"tool": tool, "args": args}).to_string()
}

/// The facts a text reveals: in every sentence with " is ", the words after the last "the "
/// before it are the name (lower case), the rest of the sentence the value.
fn revealed_facts(text: &str) -> Vec<(String, String)> {
    let mut facts = Vec::new();
    for sentence in text.split(['.', '\n']) {
        let Some(at) = sentence.find(" is ") else { continue };
        let (left, value) = (&sentence[..at], sentence[at + 4..].trim());
        let lower = left.to_ascii_lowercase();
        let Some(the) = lower.rfind("the ").filter(|&i| i == 0 || !lower.as_bytes()[i - 1].is_ascii_alphanumeric())
        else {
            continue;
        };
        let name = lower[the + 4..].trim();
        if !name.is_empty() && !value.is_empty() {
            facts.push((name.to_string(), value.to_string()));
        }
    }
    facts
}

/// The fact a text asks for: the words after "Answer with the " up to the end of the sentence.
fn asked_fact(text: &str) -> Option<String> {
    const CUE: &str = "answer with the ";
    let lower = text.to_ascii_lowercase();
    let start = lower.find(CUE)? + CUE.len();
    let rest = &lower[start..];
    let end = rest.find(['.', '\n', '?']).unwrap_or(rest.len());
    Some(rest[..end].trim().to_string()).filter(|s| !s.is_empty())
}

/// The facts of a notes file: its lines `- NAME: VALUE`.
fn parse_notes(text: &str) -> Vec<(String, String)> {
    text.lines()
        .filter_map(|line| line.strip_prefix("- ")?.split_once(": "))
        .map(|(name, value)| (name.trim().to_ascii_lowercase(), value.trim().to_string()))
        .collect()
}

impl Agent for WorkshopAgent {
    fn start(&mut self, _tools: &[Tool]) {
        *self = Self::default();
    }

    fn act(&mut self, seen: &[Message]) -> Result<String, String> {
        // The environment's reply to the last call (an empty reply arrives as no message; a
        // refused call as a host note, which the phases below treat as "nothing there").
        let reply = seen.iter().rev().find(|m| m.from != "host" && m.from != "agent").map(|m| m.text.as_str());
        let reply = reply.unwrap_or_default();
        Ok(match self.phase {
            Phase::Briefing => {
                if reply.is_empty() {
                    return Err("workshop agent: the task started without a briefing from the environment".into());
                }
                self.revealed = revealed_facts(reply);
                self.asked = asked_fact(reply);
                self.phase = Phase::Listed;
                call("list_files", json!({}))
            }
            Phase::Listed => self.after_listing(reply),
            Phase::Read => {
                self.notes = if reply.starts_with("error:") { Vec::new() } else { parse_notes(reply) };
                self.after_reading()
            }
            Phase::Wrote => self.answer(),
            Phase::Answered => return Err("workshop agent: the task went on after the answer".into()),
        })
    }
}

#[cfg(test)]
mod tests {
    use wasmgym_sdk::{Action, Environment, Runner};
    use workshop::{NEED_AT, REVEAL_AT, Suite, TASKS, Workshop};

    use super::*;

    fn from_env(text: &[u8]) -> Vec<Message> {
        let text = String::from_utf8(text.to_vec()).unwrap();
        if text.is_empty() {
            return Vec::new(); // as a composite passes an empty reply on: not at all
        }
        vec![Message { from: "env".into(), to: "agent".into(), text }]
    }

    /// One task on `runner` from `options`: the reward and the actions taken.
    fn play(runner: &mut Runner<Workshop>, options: &str, seed: u64) -> (f64, Vec<String>) {
        let mut t = runner.reset(Some(seed), options).unwrap();
        let mut agent = WorkshopAgent::new();
        agent.start(&Workshop::spec().tools);
        let (mut reward, mut actions) = (0.0, Vec::new());
        while !(t.terminated || t.truncated) {
            let action = agent.act(&from_env(&t.observation)).unwrap();
            actions.push(action.clone());
            t = runner.step(&Action::Text(action)).unwrap();
            reward += t.rewards[0];
        }
        (reward, actions)
    }

    /// Success by position over `runs` suites, sequentially (one instance, `"carry": true` after
    /// the first task) and i.i.d. (a fresh instance per task).
    fn success_by_position(runs: u64) -> (Vec<f64>, Vec<f64>) {
        let mut sequential = vec![0u32; TASKS as usize];
        let mut iid = vec![0u32; TASKS as usize];
        for suite in 0..runs {
            let mut runner = Runner::<Workshop>::new();
            for task in 0..TASKS {
                let seed = suite * 1000 + u64::from(task);
                let mut options = json!({"suite": suite, "task": task});
                let (alone, _) = play(&mut Runner::new(), &options.to_string(), seed);
                iid[task as usize] += u32::from(alone == 1.0);
                if task > 0 {
                    options["carry"] = true.into();
                }
                let (carried, _) = play(&mut runner, &options.to_string(), seed);
                sequential[task as usize] += u32::from(carried == 1.0);
            }
            let notes = &runner.env().unwrap().files()[NOTES];
            let lines = notes.lines().filter(|l| l.starts_with("- ")).count();
            assert_eq!(lines, REVEAL_AT.len(), "{notes}");
        }
        let rate = |wins: Vec<u32>| wins.into_iter().map(|w| f64::from(w) / runs as f64).collect();
        (rate(sequential), rate(iid))
    }

    #[test]
    fn success_by_position_differs_between_sequential_and_iid_as_designed() {
        let (sequential, iid) = success_by_position(20);
        eprintln!("success by position: sequential {sequential:?}, i.i.d. {iid:?}");
        assert_eq!(sequential, vec![1.0; TASKS as usize]);
        for position in 0..TASKS {
            let expected = if NEED_AT.contains(&position) { 0.0 } else { 1.0 };
            assert_eq!(iid[position as usize], expected, "position {position}: {iid:?}");
        }
    }

    #[test]
    fn a_task_takes_list_read_write_answer_and_the_notes_carry_the_facts() {
        let suite = Suite::new(4);
        let mut runner = Runner::<Workshop>::new();
        let (reward, actions) = play(&mut runner, r#"{"suite": 4, "task": 0}"#, 1);
        assert_eq!(reward, 1.0);
        let tools: Vec<String> =
            actions.iter().map(|a| serde_json::from_str::<Value>(a).unwrap()["tool"].to_string()).collect();
        assert_eq!(tools, [r#""list_files""#, r#""write_file""#, r#""answer""#]);
        let fact = suite.revealed[0];
        let expected = format!("{NOTES_TITLE}\n- {}: {}\n", fact.name().to_lowercase(), suite.value(fact));
        assert_eq!(runner.env().unwrap().files()[NOTES], expected);
        // A task that needs that fact reads the notes and writes nothing.
        let (reward, actions) = play(&mut runner, r#"{"suite": 4, "task": 2, "carry": true}"#, 2);
        assert_eq!(reward, 1.0);
        assert_eq!(actions[1], call("read_file", json!({"path": NOTES})));
        assert_eq!(actions.len(), 3);
        // Without the notes it does not know.
        let (reward, actions) = play(&mut Runner::new(), r#"{"suite": 4, "task": 2}"#, 2);
        assert_eq!(
            (reward, actions.last().unwrap().as_str()),
            (0.0, call("answer", json!({"text": "unknown"})).as_str())
        );
    }

    #[test]
    fn facts_and_questions_are_read_from_text() {
        let text = "Briefing from Dana, your lead: Hi! FYI, the staging port is 8431. Lunch on Thursday.\n\
                    Your task: Check it. Answer with the staging port.\nTools: list_files(), answer(text).";
        assert_eq!(revealed_facts(text), [("staging port".to_string(), "8431".to_string())]);
        assert_eq!(asked_fact(text).as_deref(), Some("staging port"));
        assert_eq!(revealed_facts("Theme is dark. Bathe dogs is fun."), Vec::<(String, String)>::new());
        assert_eq!(asked_fact("No question here."), None);
        let notes = format!("{NOTES_TITLE}\n- API region: eu-west-1\n- deploy branch: release/wren-12\nnoise\n");
        assert_eq!(
            parse_notes(&notes),
            [("api region".to_string(), "eu-west-1".to_string()), ("deploy branch".into(), "release/wren-12".into())]
        );
    }

    #[test]
    fn host_notes_and_odd_replies_do_not_derail_it() {
        let mut agent = WorkshopAgent::new();
        assert!(agent.act(&[]).is_err(), "no briefing");
        agent.start(&[]);
        let briefing =
            Message { from: "env".into(), to: "agent".into(), text: "Answer with the deploy branch.".into() };
        assert_eq!(agent.act(&[briefing]).unwrap(), call("list_files", json!({})));
        let note = Message { from: "host".into(), to: "agent".into(), text: "refused".into() };
        assert_eq!(agent.act(&[note]).unwrap(), call("answer", json!({"text": "unknown"})));
        assert!(agent.act(&[]).is_err(), "after the answer");
    }
}
