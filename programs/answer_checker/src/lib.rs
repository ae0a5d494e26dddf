//! An example reward checker for `programs/answer_env`: it reads the question and the answer from
//! the fork of the environment it is given (`fork::render`), submits the answer on the fork if the
//! agent has not (`fork::step`: the real episode never sees it), and scores it: 1 for the right
//! sum, otherwise the fraction of its digits in the right place.

use wasmgym_sdk::checker::{Checker, Score, fork};

/// Scores the answer built in an `answer` environment.
pub struct AnswerChecker;

fn field<'a>(render: &'a str, key: &str) -> Option<&'a str> {
    render.split(';').find_map(|kv| kv.strip_prefix(key)?.strip_prefix('='))
}

impl Checker for AnswerChecker {
    fn check(_input: &[u8], _expected: &[u8], _output: &[u8]) -> Score {
        let Some(mut state) = fork::render() else { return Score::reject("no environment to score") };
        if field(&state, "submitted") == Some("false") {
            if fork::step("=").is_none() {
                return Score::reject("the fork refused the submission");
            }
            state = fork::render().unwrap_or_default();
        }
        let (Some(question), Some(answer)) = (field(&state, "question"), field(&state, "answer")) else {
            return Score::reject(format!("unexpected render {state:?}"));
        };
        let sum: u32 = question.split('+').filter_map(|n| n.parse::<u32>().ok()).sum();
        let want = sum.to_string();
        if answer == want {
            return Score::accept();
        }
        let right = want.chars().zip(answer.chars()).filter(|(a, b)| a == b).count();
        let credit = right as f64 / want.len().max(answer.len()) as f64;
        Score::partial(credit, format!("{question} is {want}, the answer was {answer:?}"))
    }
}

wasmgym_sdk::export_checker!(AnswerChecker);
