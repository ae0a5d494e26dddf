//! An example checker: the output must be the sum of the integers in the test's input. It ignores
//! the expected output, so it shows what a checker can do that a diff cannot (and a test's
//! `.out` can say anything).

use wasmgym_sdk::checker::{Checker, Score};

/// Accepts the sum of the input's integers; half credit for an answer off by one.
pub struct SumChecker;

impl Checker for SumChecker {
    fn check(input: &[u8], _expected: &[u8], output: &[u8]) -> Score {
        let text = String::from_utf8_lossy(input);
        let Some(want) = text.split_whitespace().map(|t| t.parse::<i128>().ok()).sum::<Option<i128>>() else {
            return Score::reject("the test's input is not a list of integers");
        };
        let got = String::from_utf8_lossy(output);
        match got.trim().parse::<i128>() {
            Ok(n) if n == want => Score::accept(),
            Ok(n) if (n - want).abs() == 1 => Score::partial(0.5, format!("off by one: expected {want}, got {n}")),
            Ok(n) => Score::reject(format!("expected {want}, got {n}")),
            Err(_) => Score::reject(format!("expected one integer, got {:?}", got.trim())),
        }
    }
}

wasmgym_sdk::export_checker!(SumChecker);
