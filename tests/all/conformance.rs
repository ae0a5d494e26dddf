//! Every built-in environment passes the conformance suite.

use wasmgym::check::{CheckOptions, run};
use wasmgym_tests::{all_envs, module};

#[test]
fn every_builtin_env_passes_the_conformance_suite() {
    let envs = all_envs();
    assert_eq!(envs.len(), 4, "expected bandit, cart_pole, connect_four, tic_tac_toe: {envs:?}");
    for name in envs {
        let report = run(&module(name), &CheckOptions { episodes: 12, ..CheckOptions::default() });
        assert!(report.passed, "{name} failed conformance: {report:#?}");
        assert!(report.steps > 12, "{name}: only {} steps played", report.steps);
    }
}
