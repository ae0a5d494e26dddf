//! Every built-in environment passes the conformance suite.

use wasmgym::check::{CheckOptions, run};
use wasmgym_tests::{all_envs, module};

#[test]
fn every_builtin_env_passes_the_conformance_suite() {
    let envs = all_envs();
    let expected = ["bandit", "cart_pole", "connect_four", "game_of_24", "text_adventure", "tic_tac_toe"];
    assert_eq!(envs, expected, "every environment of envs/ is built in");
    for name in envs {
        let report = run(&module(name), &CheckOptions { episodes: 12, ..CheckOptions::default() });
        assert!(report.passed, "{name} failed conformance: {report:#?}");
        assert!(report.steps > 12, "{name}: only {} steps played", report.steps);
    }
}

/// The suite fails environments that break its rules: variants of the WAT bandit, each broken in
/// one way, fail exactly the check that names the rule.
#[test]
fn the_suite_catches_broken_environments() {
    let source =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../envs/bandit_wat/bandit.wat")).unwrap();
    let cases = [
        // The spec claims at most 5 pulls, but episodes have 20.
        (r#"\"high\":[20.0,20.0]"#, r#"\"high\":[5.0,5.0]"#, "observations_lie_in_their_space"),
        // Episodes never end.
        (
            "(i32.ge_u (global.get $pulls) (i32.const 20))",
            "(i32.ge_u (global.get $pulls) (i32.const 2000000))",
            "random_rollouts_end",
        ),
        // Arm 2 does not exist, but is accepted.
        (
            "(i64.ge_u (local.get $arm) (i64.const 2))",
            "(i64.ge_u (local.get $arm) (i64.const 99))",
            "illegal_action_rejected_state_unchanged",
        ),
    ];
    for (from, to, check) in cases {
        assert!(source.contains(from), "the bandit no longer contains {from}");
        let broken = wasmgym_tests::runtime().load(source.replace(from, to).as_bytes()).unwrap();
        let report = run(&broken, &CheckOptions { episodes: 4, max_steps: 200, ..CheckOptions::default() });
        assert!(!report.passed, "a bandit broken for {check} passed");
        let failed: Vec<&str> = report.checks.iter().filter(|c| !c.passed).map(|c| c.name).collect();
        assert!(failed.contains(&check), "expected {check} to fail, failed: {failed:?}");
    }
}

/// Text actions and observations (as language agents use them) pass the same suite, and text outside
/// the action space is refused with the state unchanged.
#[test]
fn text_environments_pass_the_suite_and_refuse_bad_text() {
    let m = wasmgym_tests::test_guest("reverse");
    let report = run(&m, &CheckOptions { episodes: 8, ..CheckOptions::default() });
    assert!(report.passed, "{report:#?}");

    let mut env = m.instantiate().unwrap();
    let first = env.reset(Some(2), None).unwrap();
    let wasmgym::Observation::Text(word) = first.observation else { panic!("a text observation") };
    for bad in ["UPPER", "way too long for sixteen", "spa ce"] {
        assert!(matches!(env.step(bad), Err(wasmgym::Error::IllegalAction { .. })), "{bad:?} was accepted");
    }
    assert!(matches!(env.step(7), Err(wasmgym::Error::IllegalAction { .. })), "a discrete action was accepted");
    let t = env.step(word.chars().rev().collect::<String>()).unwrap();
    assert_eq!(t.rewards, vec![1.0], "the right answer after refusals still scores");
    assert_eq!(t.info, r#"{"score":1}"#);
}
