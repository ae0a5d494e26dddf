//! The reward checker of the `support_desk` domain: it reads the final state of a fork of the desk
//! (`fork::render()`, `{"task": N, "db": DB}`) and accepts it if the database is exactly what a
//! policy-following agent leaves behind ([`support_domain::expected_db`] of task N); otherwise it
//! rejects, naming the first differing user or order and field. Like tau-bench, it scores the
//! outcome, not the conversation: a declined request scores 1 only if nothing changed.

use support_domain::{Db, expected_db, first_difference, task};
use wasmgym_sdk::checker::{Checker, Score, fork};

/// Scores the database of a `support_desk` fork.
pub struct SupportChecker;

/// The score of a desk's render text.
pub fn score(render: &str) -> Score {
    let value: serde_json::Value = match serde_json::from_str(render) {
        Ok(value) => value,
        Err(e) => return Score::reject(format!("the desk's render is not JSON ({e}): is this a support_desk fork?")),
    };
    let Some(n) = value.get("task").and_then(|t| t.as_u64()) else {
        return Score::reject("the desk's render has no task number (\"task\"): is this a support_desk fork?");
    };
    let db: Db = match value.get("db").map(|db| serde_json::from_value(db.clone())) {
        Some(Ok(db)) => db,
        Some(Err(e)) => return Score::reject(format!("the desk's database does not read ({e})")),
        None => return Score::reject("the desk's render has no database (\"db\"): is this a support_desk fork?"),
    };
    match first_difference(&expected_db(&task(n)), &db) {
        None => Score::accept(),
        Some(difference) => Score::reject(format!("task {n}: {difference}")),
    }
}

impl Checker for SupportChecker {
    fn check(_input: &[u8], _expected: &[u8], _output: &[u8]) -> Score {
        match fork::render() {
            Some(render) => score(&render),
            None => Score::reject("no environment to score: run this checker on a fork of support_desk"),
        }
    }
}

wasmgym_sdk::export_checker!(SupportChecker);

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use support_domain::Status;

    fn render(n: u64, db: &Db) -> String {
        json!({"task": n, "db": db}).to_string()
    }

    #[test]
    fn the_expected_database_is_accepted_and_others_are_not() {
        for n in 0..20 {
            let t = task(n);
            let expected = expected_db(&t);
            assert_eq!(score(&render(n, &expected)), Score::accept(), "task {n}");
            if expected != t.db {
                let s = score(&render(n, &t.db));
                assert_eq!(s.score, 0.0);
                assert!(s.message.starts_with(&format!("task {n}: order {}: ", t.goal.order_id)), "{}", s.message);
            } else {
                // A refund in spite of the policy is caught.
                let mut db = t.db.clone();
                let order = db.order_mut(&t.goal.order_id).unwrap();
                if order.status == Status::Delivered {
                    order.status = Status::Refunded;
                    let s = score(&render(n, &db));
                    assert!(s.message.contains("status is \"refunded\", expected \"delivered\""), "{}", s.message);
                }
            }
        }
    }

    #[test]
    fn malformed_renders_are_rejected_with_a_reason() {
        for (text, said) in [
            ("question=1+2", "not JSON"),
            ("{}", "no task number"),
            (r#"{"task": 1}"#, "no database"),
            (r#"{"task": 1, "db": {"users": []}}"#, "does not read"),
            (r#"{"task": -1, "db": {}}"#, "no task number"),
        ] {
            let s = score(text);
            assert_eq!(s.score, 0.0);
            assert!(s.message.contains(said), "{text}: {}", s.message);
        }
        assert_eq!(SupportChecker::check(b"", b"", b"").score, 0.0, "natively there is no fork");
    }
}
