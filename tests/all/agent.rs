//! Composite episodes (environment, simulated user, checker) fork, restore and hash as one;
//! tool calls; pass^k; sequential suites; misbehaving users.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use wasmgym::Limits;
use wasmgym_agent::{
    Agent, Channel, CheckerSpec, Composite, CompositeModule, CompositeSnapshot, Error, EvalOptions, Message, PartSpec,
    Step, SuiteOptions, UserReply, Wiring, scripted,
};
use wasmgym_tests::composite;

fn builtin(name: &str) -> CompositeModule {
    composite(Wiring::builtin(name).unwrap())
}

/// The answer environment (programs/answer_env) scored by its reward checker: one question, the
/// answer typed as text, the checker's score as the reward.
fn answer_wiring() -> Wiring {
    Wiring {
        name: "answer".into(),
        parts: vec![PartSpec { name: "env".into(), module: Some("answer_env".into()), hears: vec![Channel::Messages] }],
        checker: Some(CheckerSpec { module: "answer_checker".into(), part: "env".into() }),
        max_turns: 4,
        max_transcript_bytes: 1 << 20,
    }
}

fn task(n: u64) -> String {
    format!(r#"{{"task": {n}}}"#)
}

/// One episode of the scripted agent: every action, and the state hash and transcript length
/// after reset and after each action.
struct Run {
    actions: Vec<String>,
    hashes: Vec<[u8; 32]>,
}

fn play(c: &mut Composite, name: &str, seed: u64, options: &str) -> Run {
    let mut agent = scripted::builtin(name).unwrap();
    let mut step = c.reset(seed, Some(options)).unwrap();
    agent.start(&c.tools());
    let mut run = Run { actions: Vec::new(), hashes: vec![c.state_hash().unwrap()] };
    while !step.done() {
        let action = agent.act(&step.messages).unwrap();
        step = c.step(&action).unwrap();
        run.actions.push(action);
        run.hashes.push(c.state_hash().unwrap());
    }
    run
}

/// Steps `actions`, returning the state hash after each.
fn replay(c: &mut Composite, actions: &[String]) -> Vec<[u8; 32]> {
    actions
        .iter()
        .map(|a| {
            c.step(a).unwrap();
            c.state_hash().unwrap()
        })
        .collect()
}

#[test]
fn a_fork_mid_conversation_replays_bit_for_bit() {
    let module = builtin("support_desk");
    for (t, seed) in [(0, 0), (1, 5), (2, 1), (3, 7), (6, 2)] {
        let mut c = module.instantiate(Limits::default()).unwrap();
        let run = play(&mut c, "support_desk", seed, &task(t));
        assert!(run.actions.len() >= 3, "task {t} seed {seed}: too short a conversation to fork in: {:?}", run.actions);
        // Same actions from reset: the same states, bit for bit (desk, user and conversation).
        let mut again = module.instantiate(Limits::default()).unwrap();
        again.reset(seed, Some(&task(t))).unwrap();
        assert_eq!(again.state_hash().unwrap(), run.hashes[0]);
        assert_eq!(replay(&mut again, &run.actions), run.hashes[1..]);

        for mid in [1, run.actions.len() / 2, run.actions.len() - 1] {
            let mut parent = module.instantiate(Limits::default()).unwrap();
            parent.reset(seed, Some(&task(t))).unwrap();
            replay(&mut parent, &run.actions[..mid]);
            let snapshot = parent.snapshot().unwrap();
            let mut child = parent.fork().unwrap();
            assert_eq!(child.state_hash().unwrap(), run.hashes[mid]);
            assert_eq!(child.transcript(), parent.transcript());
            // The parent goes elsewhere; the fork does not notice.
            parent.step("Sorry, I have to go. Goodbye!").unwrap();
            assert_eq!(
                replay(&mut child, &run.actions[mid..]),
                run.hashes[mid + 1..],
                "task {t} seed {seed} fork at {mid}"
            );
            // The snapshot brings the parent back, and its bytes restore into a fresh instance.
            parent.restore(&snapshot).unwrap();
            assert_eq!(replay(&mut parent, &run.actions[mid..]), run.hashes[mid + 1..]);
            let bytes = snapshot.to_bytes();
            let mut fresh = module.instantiate(Limits::default()).unwrap();
            fresh.restore(&CompositeSnapshot::from_bytes(&bytes).unwrap()).unwrap();
            assert_eq!(fresh.state_hash().unwrap(), run.hashes[mid]);
            assert_eq!(replay(&mut fresh, &run.actions[mid..]), run.hashes[mid + 1..]);
        }
    }
}

#[test]
fn composite_snapshot_bytes_restore_in_another_process() {
    let module = builtin("support_desk");
    let mut c = module.instantiate(Limits::default()).unwrap();
    let run = play(&mut c, "support_desk", 3, &task(4));
    let mid = run.actions.len() / 2;
    c.reset(3, Some(&task(4))).unwrap();
    replay(&mut c, &run.actions[..mid]);
    let bytes = c.snapshot().unwrap().to_bytes();
    let mut expected = Vec::new();
    for action in &run.actions[mid..] {
        let step = c.step(action).unwrap();
        let hash: String = c.state_hash().unwrap().iter().map(|b| format!("{b:02x}")).collect();
        expected.push(format!("{} {hash}", serde_json::to_string(&step.observation()).unwrap()));
    }
    let file = std::env::temp_dir().join(format!("wasmgym-composite-{}.snap", std::process::id()));
    std::fs::write(&file, &bytes).unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_restore-composite"))
        .arg("support_desk")
        .arg(&file)
        .args(&run.actions[mid..])
        .output()
        .unwrap();
    std::fs::remove_file(&file).unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(String::from_utf8(out.stdout).unwrap().lines().collect::<Vec<_>>(), expected);
}

/// With a snapshot key, composite snapshot bytes are signed (the whole, and each part), restore on
/// runtimes with the key, and are refused elsewhere; unsigned ones read but do not restore there.
#[test]
fn signed_composite_snapshots_restore_only_with_their_key() {
    let finders = [wasmgym_builtin::find, wasmgym_builtin::find_program, wasmgym_builtin::find_test_guest];
    let bytes_of =
        |name: &str| finders.iter().find_map(|f| f(name)).map(|g| g.bytes.to_vec()).ok_or_else(|| name.to_owned());
    let key = wasmgym::SnapshotKey([7; 32]);
    let config = wasmgym::RuntimeConfig { snapshot_key: Some(key.clone()), ..Default::default() };
    let runtime = wasmgym::Runtime::with_config(config).unwrap();
    let keyed = CompositeModule::load(&runtime, Wiring::builtin("support_desk").unwrap(), &bytes_of).unwrap();
    let mut c = keyed.instantiate(Limits::default()).unwrap();
    c.reset(2, Some(&task(3))).unwrap();
    c.step("Hello, I need help with my order.").unwrap();
    let snapshot = c.snapshot().unwrap();
    let signed = snapshot.to_bytes_signed(&key);
    let mut fresh = keyed.instantiate(Limits::default()).unwrap();
    fresh.restore(&CompositeSnapshot::from_bytes_signed(&signed, &key).unwrap()).unwrap();
    assert_eq!(fresh.state_hash().unwrap(), c.state_hash().unwrap());

    let message = |e: Error| e.to_string();
    let other = wasmgym::SnapshotKey([8; 32]);
    assert!(
        message(CompositeSnapshot::from_bytes_signed(&signed, &other).unwrap_err()).contains("authentication failed")
    );
    assert!(message(CompositeSnapshot::from_bytes(&signed).unwrap_err()).contains("signed with a snapshot key"));
    let mut forged = signed.clone();
    let n = forged.len();
    forged[n / 2] ^= 1;
    let plain = blake3::hash(&forged[..n - 32]);
    forged[n - 32..].copy_from_slice(plain.as_bytes());
    assert!(
        message(CompositeSnapshot::from_bytes_signed(&forged, &key).unwrap_err()).contains("authentication failed")
    );
    let unsigned = CompositeSnapshot::from_bytes_signed(&snapshot.to_bytes(), &key).unwrap();
    assert!(message(fresh.restore(&unsigned).unwrap_err()).contains("not signed"));
    // The refusal changed nothing: the composite goes on as before.
    assert_eq!(fresh.state_hash().unwrap(), c.state_hash().unwrap());
    assert_eq!(
        fresh.step("Thank you, goodbye.").unwrap().observation(),
        c.step("Thank you, goodbye.").unwrap().observation()
    );
}

#[test]
fn bad_composite_snapshots_are_refused_and_change_nothing() {
    let module = builtin("support_desk");
    let mut c = module.instantiate(Limits::default()).unwrap();
    c.reset(0, Some(&task(1))).unwrap();
    let bytes = c.snapshot().unwrap().to_bytes();
    let message = |bytes: &[u8]| CompositeSnapshot::from_bytes(bytes).unwrap_err().to_string();
    let mut flipped = bytes.clone();
    flipped[bytes.len() / 2] ^= 1;
    assert!(message(&flipped).contains("checksum"), "{}", message(&flipped));
    assert!(message(&bytes[..bytes.len() - 7]).contains("checksum"));
    assert!(message(&[]).contains("too short"));
    let env_snapshot = c.part("env").unwrap().snapshot().unwrap().to_bytes();
    assert!(message(&env_snapshot).contains("header"), "{}", message(&env_snapshot));
    // A snapshot of another composite is refused before anything changes.
    let other = builtin("workshop");
    let mut w = other.instantiate(Limits::default()).unwrap();
    w.reset(0, Some(&task(0))).unwrap();
    let before = c.state_hash().unwrap();
    let refused = c.restore(&w.snapshot().unwrap()).unwrap_err();
    assert!(matches!(refused, Error::Snapshot(_)), "{refused}");
    assert_eq!(c.state_hash().unwrap(), before);
}

#[test]
fn invalid_tool_calls_are_observations() {
    let module = builtin("support_desk");
    let mut c = module.instantiate(Limits::default()).unwrap();
    c.reset(0, Some(&task(0))).unwrap();
    let names: Vec<String> = c.tools().iter().map(|t| t.name.clone()).collect();
    assert!(names.contains(&"get_order".to_string()), "{names:?}");
    let cases = [
        (r#"{"tool": "launch_rocket", "args": {}}"#, "host", "unknown tool"),
        (r#"{"tool": "get_order", "args": {}}"#, "host", "missing argument order_id"),
        (r#"{"tool": "get_order", "args": {"order_id": 7}}"#, "host", "must be a string"),
        (r##"{"tool": "get_order", "args": {"order_id": "#W1001", "x": 1}}"##, "host", "unknown argument"),
        (r#"{"tool": "get_order", "args": [1]}"#, "host", "must be an object"),
        (r#"{"x": 1}"#, "host", "\"tool\""),
        (r##"{"tool": "get_order", "args": {"order_id": "#W9999"}}"##, "env", "W9999"),
    ];
    for (i, (action, from, says)) in cases.iter().enumerate() {
        let step = c.step(action).unwrap();
        assert!(!step.done(), "{action}");
        let m = step.messages.last().unwrap_or_else(|| panic!("{action}: no reply"));
        assert_eq!(&m.from, from, "{action}: {m:?}");
        assert!(m.text.contains(says), "{action}: {:?} does not say {says:?}", m.text);
        assert_eq!(c.turns(), i as u32 + 1);
    }
    assert!(c.is_running());
}

#[test]
fn pass_k_equals_a_hand_count() {
    // The answer environment (programs/answer_env) scored by its reward checker: an agent that
    // adds right, except in the second trial of the second task.
    let module = composite(answer_wiring());
    struct Adder(bool);
    impl Agent for Adder {
        fn act(&mut self, seen: &[Message]) -> Result<String, String> {
            let text = &seen.last().ok_or("nothing seen")?.text;
            let numbers: Vec<u32> = text.split(['+', '=']).filter_map(|n| n.trim().parse().ok()).collect();
            let sum: u32 = numbers.iter().sum::<u32>() + u32::from(self.0);
            Ok(format!("{sum}="))
        }
    }
    let made = AtomicUsize::new(0);
    // One job: agents are made in task-major order, so the sixth is task 1's second trial.
    let agent = || -> Box<dyn Agent> { Box::new(Adder(made.fetch_add(1, Ordering::SeqCst) == 5)) };
    let options = EvalOptions { tasks: vec![0, 1, 2], k: 4, seed: 10, jobs: 1, limits: Limits::default() };
    let report = wasmgym_agent::eval(&module, &agent, &options, &|_| {}).unwrap();
    let wins: Vec<Vec<bool>> = report.tasks.iter().map(|t| t.iter().map(|t| t.success).collect()).collect();
    assert_eq!(wins, [[true; 4], [true, false, true, true], [true; 4]]);
    assert_eq!(report.tasks[1][1].seed, 11);
    assert!(report.tasks[1][1].reward < 1.0);
    // By hand: pass^1 = 11/12; pass^4 = 2/3 (two tasks solved in all four trials).
    assert_eq!(report.pass_hat[0], 11.0 / 12.0);
    assert_eq!(report.pass_k, 2.0 / 3.0);
    // pass^2 = (1 + C(3,2)/C(4,2) + 1) / 3 = (1 + 1/2 + 1) / 3.
    assert!((report.pass_hat[1] - 2.5 / 3.0).abs() < 1e-12);
    // The same with threads.
    made.store(0, Ordering::SeqCst);
    let threaded = EvalOptions { jobs: 3, ..options };
    let report2 =
        wasmgym_agent::eval(&module, &|| Box::new(Adder(false)) as Box<dyn Agent>, &threaded, &|_| {}).unwrap();
    assert_eq!(report2.pass_k, 1.0);
}

#[test]
fn the_sequential_suite_carries_state_and_iid_does_not() {
    let module = builtin("workshop");
    let call = |tool: &str, args: serde_json::Value| serde_json::json!({"tool": tool, "args": args}).to_string();
    let answer = call("answer", serde_json::json!({"text": "I do not know"}));
    let options = |t: u32, carry: bool| {
        let mut o = serde_json::json!({"suite": 7, "task": t});
        if carry {
            o["carry"] = true.into();
        }
        o.to_string()
    };
    let mut c = module.instantiate(Limits::default()).unwrap();
    let read_in_task_3 = |c: &mut Composite| -> String {
        let step: Step = c.step(&call("read_file", serde_json::json!({"path": "notes/from-task-1.md"}))).unwrap();
        step.observation()
    };
    for t in 0..3 {
        c.reset(t.into(), Some(&options(t, t > 0))).unwrap();
        if t == 1 {
            let wrote = c
                .step(&call(
                    "write_file",
                    serde_json::json!({"path": "notes/from-task-1.md", "text": "the answer is 42"}),
                ))
                .unwrap();
            assert!(!wrote.observation().contains("error"), "{}", wrote.observation());
        }
        assert!(c.step(&answer).unwrap().done());
    }
    c.reset(3, Some(&options(3, true))).unwrap();
    assert!(read_in_task_3(&mut c).contains("the answer is 42"), "{}", read_in_task_3(&mut c));
    // i.i.d.: task 3 in a fresh composite, and a plain reset in this one, see nothing of task 1.
    let mut fresh = module.instantiate(Limits::default()).unwrap();
    fresh.reset(3, Some(&options(3, false))).unwrap();
    assert!(!read_in_task_3(&mut fresh).contains("the answer is 42"));
    c.reset(3, Some(&options(3, false))).unwrap();
    assert!(!read_in_task_3(&mut c).contains("the answer is 42"));

    // The suite runner with the scripted agent: facts revealed early help later, only in sequence.
    let agent = || scripted::builtin("workshop").unwrap();
    let report = wasmgym_agent::suite(
        &module,
        &agent,
        &SuiteOptions { tasks: 8, runs: 2, seed: 0, limits: Limits::default() },
        &|_| {},
    )
    .unwrap();
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
    assert!(mean(&report.sequential) > mean(&report.iid), "{:?} vs {:?}", report.sequential, report.iid);
    assert!(report.iid.iter().any(|&p| p < 1.0) && report.sequential.iter().all(|&p| p == 1.0), "{report:?}");
    assert_eq!(report.sequential_trials[0][0].seed, report.iid_trials[0][0].seed);
}

#[test]
fn a_user_that_traps_or_exceeds_a_limit_ends_the_episode_with_a_typed_error() {
    let wiring = Wiring {
        name: "grumpy".into(),
        parts: vec![PartSpec {
            name: "user".into(),
            module: Some("grumpy_user".into()),
            hears: vec![Channel::Messages],
        }],
        checker: None,
        max_turns: 20,
        max_transcript_bytes: 1 << 20,
    };
    let module = composite(wiring);
    let limits = Limits { fuel_per_call: Some(50_000_000), memory_bytes: 32 << 20, ..Limits::default() };
    let mut c = module.instantiate(limits).unwrap();
    for (word, kind) in [("trap", "trap"), ("loop", "out_of_fuel"), ("grow", "memory_limit")] {
        let opening = c.reset(1, None).unwrap();
        assert!(opening.observation().starts_with("user: hello"), "{}", opening.observation());
        let before = c.snapshot().unwrap();
        assert!(c.step("hi").unwrap().observation().contains("you said"));
        match c.step(word) {
            Err(Error::Part { part, source }) => {
                assert_eq!(part, "user");
                assert_eq!(source.kind(), kind, "{word}: {source}");
            }
            other => panic!("{word}: {:?}", other.map(|s| s.messages)),
        }
        let refused = c.step("hello?").unwrap_err();
        assert!(matches!(&refused, Error::NotRunning(m) if m.contains("reset")), "{refused}");
        // A snapshot brings it back to life, as does the next reset.
        c.restore(&before).unwrap();
        assert!(c.step("again").unwrap().observation().contains("you said"));
    }
}

#[test]
fn a_host_callback_user_forks_with_the_composite() {
    let wiring = Wiring {
        name: "desk_and_llm".into(),
        parts: vec![
            PartSpec { name: "env".into(), module: Some("support_desk".into()), hears: vec![Channel::ToolCalls] },
            PartSpec { name: "user".into(), module: None, hears: vec![Channel::Messages] },
        ],
        checker: None,
        max_turns: 10,
        max_transcript_bytes: 1 << 20,
    };
    let mut module = composite(wiring);
    let calls = Arc::new(AtomicUsize::new(0));
    let counter = calls.clone();
    module
        .set_user(
            "user",
            Arc::new(move |turn| {
                counter.fetch_add(1, Ordering::SeqCst);
                let heard = turn.transcript.iter().filter(|m| m.from == "agent" && m.to == "user").count();
                if turn.transcript.last().is_some_and(|m| m.text == "fail") {
                    return Err("the model is down".into());
                }
                Ok(UserReply { text: format!("user {} says {heard}", turn.seed % 100), done: heard >= 3 })
            }),
        )
        .unwrap();
    let mut c = module.instantiate(Limits::default()).unwrap();
    let opening = c.reset(4, Some(&task(2))).unwrap();
    assert_eq!(opening.messages.last().unwrap().from, "user");
    c.step("hello").unwrap();
    let mut fork = c.fork().unwrap();
    let a = c.step("one").unwrap();
    let b = fork.step("one").unwrap();
    assert_eq!(a, b);
    assert_eq!(c.state_hash().unwrap(), fork.state_hash().unwrap());
    assert!(fork.step("two").unwrap().terminated);
    assert!(c.is_running());
    let error = c.step("fail").unwrap_err();
    assert!(matches!(&error, Error::User { message, .. } if message.contains("down")), "{error}");
    assert!(calls.load(Ordering::SeqCst) >= 5);
}

#[test]
fn breadth_first_and_beam_search_run_on_a_composite_unchanged() {
    use wasmgym::Action;
    use wasmgym_search::{BeamOptions, SearchError, bfs};
    // The answer environment and its checker: candidate answers proposed from the question, the
    // checker's score as the reward of the step that ends the episode.
    let module = composite(answer_wiring());
    let mut c = module.instantiate(Limits::default()).unwrap();
    c.reset(7, None).unwrap();
    let root = c.state_hash().unwrap();
    let mut propose = |c: &mut Composite| -> Result<Vec<Action>, SearchError> {
        let question = &c.transcript().iter().rev().find(|m| m.from == "env").unwrap().text;
        let sum: u32 = question.split(['+', '=']).filter_map(|n| n.trim().parse::<u32>().ok()).sum();
        Ok([sum + 1, sum, sum.saturating_sub(1)].iter().map(|n| Action::Text(format!("{n}="))).collect())
    };
    let result = bfs(&mut c, Some(&mut propose), None, &BeamOptions { depth: 2, ..Default::default() }).unwrap();
    assert_eq!(result.nodes, 3, "three answers, each ending the episode");
    let best = result.solution().expect("the right sum scores 1");
    assert_eq!(best.return_, 1.0);
    assert_eq!(result.trajectories.iter().filter(|t| t.return_ == 1.0).count(), 1, "{result:?}");
    assert_eq!(c.state_hash().unwrap(), root, "the search leaves the composite where it was");

    // The support desk: its own valid tool calls, beam search, and back to the root.
    let module = builtin("support_desk");
    let mut c = module.instantiate(Limits::default()).unwrap();
    c.reset(0, Some(&task(5))).unwrap();
    let root = c.state_hash().unwrap();
    let options = BeamOptions { depth: 2, width: 3, ..Default::default() };
    let result = wasmgym_search::beam(&mut c, None, None, &options).unwrap();
    assert!(result.nodes > 3 && result.distinct_states > 3, "{result:?}");
    assert!(result.trajectories.iter().all(|t| t.actions.len() <= 2));
    assert_eq!(c.state_hash().unwrap(), root);
}

#[test]
fn a_conversation_past_its_text_bound_is_truncated() {
    let wiring = Wiring {
        name: "chatty".into(),
        parts: vec![PartSpec {
            name: "user".into(),
            module: Some("grumpy_user".into()),
            hears: vec![Channel::Messages],
        }],
        checker: None,
        max_turns: 1000,
        max_transcript_bytes: 2000,
    };
    let mut c = composite(wiring).instantiate(Limits::default()).unwrap();
    c.reset(0, None).unwrap();
    let words = "blah ".repeat(100);
    let mut turns = 0;
    loop {
        let step = c.step(&words).unwrap();
        turns += 1;
        if step.done() {
            assert!(step.truncated && !step.terminated);
            assert!(step.messages.last().unwrap().text.contains("more than the wiring's 2000"), "{step:?}");
            break;
        }
        assert!(turns < 10, "never truncated");
    }
    assert!(turns >= 2, "truncated after {turns} turns");
    assert!(!c.is_running());
}

#[test]
fn an_agent_given_as_a_module_is_evaluated_like_any_other() {
    let module = composite(answer_wiring());
    let agent_module = wasmgym_tests::test_guest("adder_agent");
    let agent = || -> Box<dyn Agent> { Box::new(wasmgym_agent::ModuleAgent::from_module(&agent_module)) };
    let options = EvalOptions { tasks: vec![0, 1], k: 3, seed: 4, jobs: 2, limits: Limits::default() };
    let report = wasmgym_agent::eval(&module, &agent, &options, &|_| {}).unwrap();
    assert_eq!(report.pass_k, 1.0, "{report:?}");
    assert!(report.tasks.iter().flatten().all(|t| t.turns == 1));
    // On a task it cannot do, its answers are refused by the environment (host notes), and the
    // episode runs out of turns: a failed trial, not an error.
    let module = composite(Wiring { max_turns: 3, ..answer_wiring() });
    let mut c = module.instantiate(Limits::default()).unwrap();
    c.reset(0, None).unwrap();
    let mut dumb = wasmgym_agent::ModuleAgent::from_module(&agent_module);
    dumb.start(&[]);
    let said = dumb.act(&[Message { from: "user".into(), to: "agent".into(), text: "hello".into() }]).unwrap();
    assert_eq!(said, "I do not know");
    let step = c.step(&said).unwrap();
    assert_eq!(step.messages[0].from, "host", "{step:?}");
    // A module that does not take text is refused at its first action, with the reason.
    let mut board = wasmgym_agent::ModuleAgent::from_module(&wasmgym_tests::module("tic_tac_toe"));
    board.start(&[]);
    let refused = board.act(&[]).unwrap_err();
    assert!(refused.contains("does not fit the action space"), "{refused}");
}
