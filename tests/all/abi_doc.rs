//! `docs/abi.md` is executable: its WAT environment passes the conformance suite and refuses calls
//! as its tables say, its example spec is valid, and it names every conformance check.

use wasmgym::check::{CHECKS, CheckOptions, run};
use wasmgym::{EnvSpec, Error, Space};
use wasmgym_tests::runtime;

fn doc() -> String {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/abi.md");
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("reading {path}: {e}"))
}

/// The bodies of the fenced blocks opened by "```{lang}", in order.
fn blocks(doc: &str, lang: &str) -> Vec<String> {
    let fence = format!("```{lang}");
    let mut found = Vec::new();
    let mut lines = doc.lines();
    while let Some(line) = lines.next() {
        if line.trim_end() == fence {
            let body: Vec<&str> = lines.by_ref().take_while(|l| l.trim_end() != "```").collect();
            found.push(body.join("\n") + "\n");
        }
    }
    found
}

/// The doc's environments (every ```wat block), each loaded as written.
fn doc_envs() -> Vec<wasmgym::EnvModule> {
    let wats = blocks(&doc(), "wat");
    assert!(!wats.is_empty(), "docs/abi.md has no ```wat block: the minimal environment is missing");
    wats.iter()
        .enumerate()
        .map(|(i, wat)| {
            runtime().load(wat.as_bytes()).unwrap_or_else(|e| panic!("```wat block {i} does not load: {e}"))
        })
        .collect()
}

/// The minimal WAT environment of the doc passes every check of the conformance suite.
#[test]
fn the_doc_environment_passes_the_conformance_suite() {
    for module in doc_envs() {
        let report = run(&module, &CheckOptions { episodes: 8, ..Default::default() });
        assert!(report.passed, "the doc's environment fails conformance: {report:#?}");
        // Every check ran, but the one on an optional export this minimal environment leaves out.
        let optional = |c: &wasmgym::check::CheckResult| c.detail.contains("does not export wasmgym_playout");
        assert!(report.checks.iter().all(|c| c.runs > 0 || optional(c)), "a check did not apply: {report:#?}");
        assert!(report.steps >= 8, "only {} steps played", report.steps);
    }
}

/// The doc's environment answers each refusal with the status the doc's tables give, in the SDK's
/// order, and truncates at `max_episode_steps` itself.
#[test]
fn the_doc_environment_refuses_and_truncates_as_the_doc_says() {
    let module = doc_envs().remove(0);
    assert_eq!(module.spec().max_episode_steps, Some(4));
    let mut env = module.instantiate().unwrap();
    // Before reset: step (even an illegal one) and render are BadRequest; no legal actions.
    assert!(matches!(env.step(7), Err(Error::InvalidCall { .. })));
    assert!(matches!(env.render(), Err(Error::InvalidCall { .. })));
    assert_eq!(env.legal_actions().unwrap(), Vec::<i64>::new());

    let t = env.reset(Some(3), None).unwrap();
    assert_eq!((t.rewards.len(), t.current_player), (0, Some(0)), "no rewards after reset");
    // Outside the space, and text for a discrete space: IllegalAction, nothing changed. (Not the
    // state hash: every request the host writes changes guest memory.)
    let before = (env.render().unwrap(), env.legal_actions().unwrap());
    assert!(matches!(env.step(2), Err(Error::IllegalAction { .. })));
    assert!(matches!(env.step(-1), Err(Error::IllegalAction { .. })));
    assert!(matches!(env.step("up"), Err(Error::IllegalAction { .. })));
    assert_eq!((env.render().unwrap(), env.legal_actions().unwrap()), before, "a refusal changed the state");
    assert_eq!(env.steps(), 0);

    // 1 + 1 + 2 = 4: only action 0 is legal there, and 1 is refused.
    for a in [0, 0, 1] {
        let t = env.step(a).unwrap();
        assert_eq!((t.rewards.clone(), t.done()), (vec![0.0], false));
    }
    assert_eq!(env.legal_actions().unwrap(), vec![0]);
    assert!(matches!(env.step(1), Err(Error::IllegalAction { .. })));
    // The fourth step reaches 5 (terminated) and the limit (truncated) at once; nobody moves.
    let t = env.step(0).unwrap();
    assert!(t.terminated && t.truncated, "{t:?}");
    assert_eq!((t.rewards, t.current_player), (vec![1.0], None));
    // After the end: no legal actions, step is BadRequest (even an illegal one), render still works.
    assert_eq!(env.legal_actions().unwrap(), Vec::<i64>::new());
    assert!(matches!(env.step(0), Err(Error::InvalidCall { .. })));
    assert!(matches!(env.step(9), Err(Error::InvalidCall { .. })));
    assert!(env.render().unwrap().contains("count 5"));
    assert!(!env.is_poisoned());

    // Four steps of 1 stop at 4, truncated by the guest, not terminated.
    env.reset(None, None).unwrap();
    let last = (0..4).map(|_| env.step(0).unwrap()).last().unwrap();
    assert!(last.truncated && !last.terminated, "{last:?}");
    assert_eq!(last.current_player, None);
}

/// The doc's example spec parses as an `EnvSpec`, is valid, and shows what the doc says: infinite
/// bounds written as strings, and one bound per element of the box.
#[test]
fn the_doc_example_spec_is_valid() {
    let jsons = blocks(&doc(), "json");
    assert!(!jsons.is_empty(), "docs/abi.md has no ```json block: the example spec is missing");
    for json in jsons {
        let spec: EnvSpec = serde_json::from_str(&json).unwrap_or_else(|e| panic!("{e}: {json}"));
        spec.validate().unwrap_or_else(|e| panic!("the example spec is invalid: {e}"));
        let Space::Box { shape, low, high, .. } = &spec.observation_space else {
            panic!("the example should show a box observation space: {json}")
        };
        let elements: u32 = shape.iter().product();
        assert_eq!((low.len(), high.len()), (elements as usize, elements as usize));
        assert!(low.contains(&f64::NEG_INFINITY) && high.contains(&f64::INFINITY), "{low:?} {high:?}");
        assert_eq!(spec.reward_range.0, f64::NEG_INFINITY);
        assert!(spec.max_episode_steps.is_some(), "the example should show max_episode_steps");
        // The host's own JSON reads back to the same spec.
        let again: EnvSpec = serde_json::from_str(&serde_json::to_string(&spec).unwrap()).unwrap();
        assert_eq!(again, spec);
    }
}

/// Authors see the suite's check names in reports: the doc lists every one of them.
#[test]
fn the_doc_names_every_conformance_check() {
    let doc = doc();
    let missing: Vec<&str> = CHECKS.iter().copied().filter(|c| !doc.contains(&format!("| `{c}` |"))).collect();
    assert!(missing.is_empty(), "docs/abi.md does not list the checks {missing:?}");
}
