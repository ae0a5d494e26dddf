//! Every built-in environment passes the conformance suite.

use wasmgym::check::{CheckOptions, run};
use wasmgym_tests::{all_envs, module};

#[test]
fn every_builtin_env_passes_the_conformance_suite() {
    let envs = all_envs();
    let expected = [
        "bandit",
        "cart_pole",
        "connect_four",
        "game_of_24",
        "support_desk",
        "support_user",
        "text_adventure",
        "tic_tac_toe",
        "workshop",
    ];
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
        // A reward outside the spec's reward_range.
        (r#"\"reward_range\":[0.0,1.0]"#, r#"\"reward_range\":[0.0,0.5]"#, "rewards_lie_in_their_range"),
        // Steps that give no reward (an empty reward list) for its one player.
        (
            "(call $transition (i32.const 1) (f64.convert_i32_u (local.get $hit)))",
            "(call $transition (i32.const 0) (f64.convert_i32_u (local.get $hit)))",
            "rewards_lie_in_their_range",
        ),
        // The spec says Deterministic, but every step draws from the RNG.
        (
            r#"\"determinism\":\"stochastic\""#,
            r#"\"determinism\":\"deterministic\""#,
            "deterministic_steps_draw_no_randomness",
        ),
        // A max_episode_steps the guest never enforces.
        (r#"\"max_episode_steps\":null"#, r#"\"max_episode_steps\":5"#, "max_episode_steps_is_enforced"),
        // Player 0 still to move after the episode ended.
        (
            "(select (i32.const -1) (i32.const 0) (local.get $over))",
            "(select (i32.const 0) (i32.const 0) (local.get $over))",
            "no_player_to_move_after_the_end",
        ),
        // Legal actions [1, 1]: a duplicate.
        (
            r#""\00\00\00\00\00\00\00\00" "\01\00\00\00\00\00\00\00")"#,
            r#""\01\00\00\00\00\00\00\00" "\01\00\00\00\00\00\00\00")"#,
            "legal_actions_nonempty_until_the_end",
        ),
        // Render gives nothing.
        (
            "(call $pack (i32.const 0x0c00) (i32.sub (local.get $q) (i32.const 0x0c00))))\n)",
            "(call $pack (i32.const 0x0c00) (i32.const 1)))\n)",
            "render_works",
        ),
        // The total survives reset (state outside the episode): fresh instances agree, a reused one
        // does not.
        ("(global.set $total (i32.const 0))", "", "reset_forgets_the_last_episode"),
        // A `wasmgym_step_actions` that steps, then always lists [1] (legal: [0, 1]; none after the end).
        (
            r#"(func (export "wasmgym_step") (param $ptr i32)"#,
            r#"(func (export "wasmgym_step_actions") (param $p i32) (param $l i32) (result i64)
                 (local $packed i64) (local $end i32)
                 (local.set $packed (call $step (local.get $p) (local.get $l)))
                 (local.set $end (i32.add (i32.wrap_i64 (i64.shr_u (local.get $packed) (i64.const 32)))
                                          (i32.wrap_i64 (local.get $packed))))
                 (i64.store (local.get $end) (i64.const 1))
                 (i32.store offset=8 (local.get $end) (i32.const 1))
                 (i64.add (local.get $packed) (i64.const 12)))
               (func $step (export "wasmgym_step") (param $ptr i32)"#,
            "step_actions_is_step_then_legal_actions",
        ),
        // A `wasmgym_playout` that answers a fixed playout: no step, player 0, and no legal
        // actions although they were asked for.
        (
            r#"(func (export "wasmgym_legal_actions")"#,
            r#"(data (i32.const 0x600) "\00" "\00\00\00\00" "\01\00\00\00" "\00\00\00\00\00\00\00\00" "\00\00\00"
                 "\00\00\00\00\00\00\00\00" "\00\00\00\00" "\00\00\00\00" "\00\00\00\00" "\00\00"
                 "\01\00\00\00" "\00\00\00\00\00\00\00\00")
               (func (export "wasmgym_playout") (param i32 i32) (result i64) (i64.const 0x60000000036))
               (func (export "wasmgym_legal_actions")"#,
            "playout_is_steps_then_a_rollout",
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

/// A guest that panics: its own message is in the failure, first, without the wasm backtrace
/// (unless asked for), and only the check that was running fails.
#[test]
fn a_panicking_guest_is_reported_in_its_own_words_under_the_check_that_ran() {
    let m = wasmgym_tests::test_guest("panicky");
    let report = run(&m, &CheckOptions { episodes: 4, ..CheckOptions::default() });
    assert!(!report.passed);
    // The check each episode was running when the guest panicked fails with its words; the checks
    // no episode reached say so.
    let failed: Vec<_> = report.checks.iter().filter(|c| !c.passed && !c.detail.starts_with("not reached")).collect();
    assert!(failed.iter().any(|c| c.name == "random_rollouts_end"), "{report:#?}");
    for check in failed {
        let detail = &check.detail;
        assert!(detail.contains("boom at step 4") && detail.contains("stopped with an error"), "{detail}");
        assert!(!detail.contains("backtrace") && detail.lines().count() == 1, "{detail}");
        assert!(detail.contains("unreachable"), "{detail}");
    }
    let traced = run(&m, &CheckOptions { episodes: 1, backtrace: true, ..CheckOptions::default() });
    let detail = &traced.checks.iter().find(|c| c.detail.contains("stopped with an error:")).unwrap().detail;
    assert!(detail.contains("boom at step 4") && detail.contains("backtrace"), "{detail}");
}

/// A check that ran nothing never passes; one that does not apply says so.
#[test]
fn checks_that_ran_nothing_do_not_pass() {
    let report = run(&module("bandit"), &CheckOptions { episodes: 0, ..CheckOptions::default() });
    assert!(!report.passed);
    let never = report.checks.iter().filter(|c| c.detail.starts_with("never ran")).count();
    assert!(never >= 10, "{report:#?}");
    let report = run(&module("bandit"), &CheckOptions { episodes: 2, ..CheckOptions::default() });
    assert!(report.passed, "{report:#?}");
    let skipped: Vec<_> = report.checks.iter().filter(|c| c.runs == 0).map(|c| c.name).collect();
    // The WAT bandit sets no step limit, is stochastic, and exports no `wasmgym_playout`.
    let expected =
        ["max_episode_steps_is_enforced", "deterministic_steps_draw_no_randomness", "playout_is_steps_then_a_rollout"];
    assert_eq!(skipped, expected);
    assert!(report.checks.iter().filter(|c| c.runs == 0).all(|c| c.passed && c.detail.starts_with("not applicable")));
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
