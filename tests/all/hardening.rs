//! Hostile input cannot crash, hang, starve or fool the host (issue 9): each test is one item of
//! the issue, and failed before its fix.

use std::time::Duration;

use wasmgym::{Error, Limits, LoadLimits, Runtime, RuntimeConfig, SnapshotKey};
use wasmgym_grade::{GradeError, GradeOptions, Grader, InvalidProgram, TestCase, Verdict};
use wasmgym_tests::{runtime, test_case as test};

const BANDIT: &str = include_str!("../../envs/bandit_wat/bandit.wat");

fn invalid_program(runtime: &Runtime, wasm: &[u8]) -> (InvalidProgram, Error) {
    match Grader::new(runtime, wasm, None, GradeOptions { jobs: 1, ..GradeOptions::default() }) {
        Err(GradeError::InvalidProgram { reason, source }) => (reason, source),
        Err(e) => panic!("expected an invalid program, got {e}"),
        Ok(_) => panic!("expected an invalid program, it loaded"),
    }
}

/// A bandit whose WAT source has `from` replaced by `to` (exactly once).
fn bandit_with(from: &str, to: &str) -> String {
    assert_eq!(BANDIT.matches(from).count(), 1, "{from:?} must occur once in bandit.wat");
    BANDIT.replace(from, to)
}

// Item 1: a module without linear memory panicked the grader's dirty-page capture.
#[test]
fn a_module_without_memory_gets_a_clean_answer_as_program_env_and_checker() {
    let wasm = wat::parse_str(r#"(module (func (export "_start")))"#).unwrap();
    let (reason, source) = invalid_program(runtime(), &wasm);
    assert_eq!(reason, InvalidProgram::Unsupported);
    assert!(source.to_string().contains("no linear memory"), "{source}");
    // As an environment or a checker it is refused too (first for what it lacks of their ABI).
    assert!(runtime().load(&wasm).is_err());
    assert!(runtime().load_checker(&wasm).is_err());
    let stamped = wat::parse_str(format!(
        r#"(module (@custom "{}" "\01\00\00\00") (func (export "_start")))"#,
        wasmgym_abi::ABI_SECTION
    ))
    .unwrap();
    assert!(matches!(runtime().load(&stamped), Err(Error::MissingExport { .. } | Error::Unsupported { .. })));
}

// Item 2: the memory limit held per memory, so ten memories of 250 MiB passed a 256 MiB limit.
#[test]
fn the_memory_limit_counts_all_memories_of_an_instance() {
    let memories = "(memory 4000) ".repeat(10); // 10 × 250 MiB
    let wasm = wat::parse_str(format!(r#"(module {memories} (func (export "_start")))"#)).unwrap();
    let options = GradeOptions { jobs: 1, ..GradeOptions::default() };
    let report = Grader::new(runtime(), &wasm, None, options).unwrap().grade(&[test("a", "", ""), test("b", "", "")]);
    for t in &report.tests {
        match t.verdict {
            Verdict::MemoryLimitExceeded { requested, limit, table: false } => {
                assert_eq!(limit, 256 << 20);
                assert_eq!(requested, 2 * 4000 * 65536, "refused at the second memory");
            }
            ref other => panic!("{}: {other}", t.name),
        }
    }
    // Growth inside a run counts the other memories too: two memories of 200 MiB each.
    let grow = wat::parse_str(
        r#"(module (memory $a 1) (memory $b 1)
             (func (export "_start")
               (drop (memory.grow $a (i32.const 3200)))
               (drop (memory.grow $b (i32.const 3200)))))"#,
    )
    .unwrap();
    let options = GradeOptions { jobs: 1, ..GradeOptions::default() };
    let report = Grader::new(runtime(), &grow, None, options).unwrap().grade(&[test("grow", "", "")]);
    assert!(
        matches!(report.tests[0].verdict, Verdict::MemoryLimitExceeded { requested, .. } if requested > 256 << 20),
        "{}",
        report.tests[0].verdict
    );
}

/// `depth` nested `if`s (or `loop`s) in one function of a program.
fn nested(kind: &str, depth: usize) -> Vec<u8> {
    let body = format!("{}{}", format!("local.get 0 {kind} ").repeat(depth), "end ".repeat(depth));
    let body = body.replace("local.get 0 loop", "loop");
    wat::parse_str(format!(r#"(module (memory 1) (func (export "_start") (local i32) {body}))"#)).unwrap()
}

// Item 3: compilation had no bound (nested blocks compile in time quadratic in their depth).
#[test]
fn modules_over_the_load_limits_are_refused_before_compiling() {
    let limits = LoadLimits::default();
    let over = |wasm: &[u8], what: &str| {
        let (reason, source) = invalid_program(runtime(), wasm);
        assert_eq!(reason, InvalidProgram::OverLoadLimits, "{source}");
        match source {
            Error::ModuleLimit { what: w, found, limit } => {
                assert!(w.starts_with(what), "{w} is not {what}");
                assert!(found > limit);
            }
            other => panic!("{other}"),
        }
    };
    let depth = limits.nesting_depth as usize + 1;
    over(&nested("if", depth), "nesting_depth");
    over(&nested("loop", depth), "nesting_depth");
    let blocks = |n: usize| format!("(func {})", "block end ".repeat(n));
    let one = blocks(limits.function_blocks as usize + 1);
    over(&wat::parse_str(format!("(module (memory 1) {one})")).unwrap(), "function_blocks");
    let full = blocks(limits.function_blocks as usize).repeat((limits.blocks / limits.function_blocks) as usize + 1);
    over(&wat::parse_str(format!("(module (memory 1) {full})")).unwrap(), "blocks");
    let functions = "(func)".repeat(limits.functions as usize + 1);
    over(&wat::parse_str(format!("(module (memory 1) {functions})")).unwrap(), "functions");
    let locals = format!("(local {})", "i32 ".repeat(limits.locals as usize + 1));
    over(&wat::parse_str(format!("(module (memory 1) (func {locals}))")).unwrap(), "locals");
    let body = "i32.const 1 drop ".repeat(limits.function_body_bytes as usize / 3 + 1);
    over(&wat::parse_str(format!("(module (memory 1) (func {body}))")).unwrap(), "function_body_bytes");
    let mut big = wat::parse_str("(module (memory 1))").unwrap();
    let payload = vec![0u8; limits.module_bytes];
    big.push(0); // custom section id
    leb128(&mut big, (payload.len() + 2) as u64);
    big.extend_from_slice(&[1, b'x']);
    big.extend_from_slice(&payload);
    over(&big, "module_bytes");
    // At the limit, the same shapes load; past it, a runtime for trusted modules loads them too.
    runtime().load_program(&nested("if", limits.nesting_depth as usize)).unwrap();
    let trusted = runtime().with_load_limits(LoadLimits::trusted());
    trusted.load_program(&nested("if", depth)).unwrap();
}

fn leb128(out: &mut Vec<u8>, mut v: u64) {
    loop {
        let byte = (v & 0x7f) as u8;
        v >>= 7;
        if v == 0 {
            out.push(byte);
            return;
        }
        out.push(byte | 0x80);
    }
}

// Item 4: an environment's spec was trusted too much.
#[test]
fn invalid_code_is_refused_by_validation_before_the_compiler_sees_it() {
    // 2,000 valid functions, then one whose body does not type-check: refused as invalid
    // WebAssembly, with the offset, as a program, an environment and a checker alike.
    let mut wat = String::from("(module (memory (export \"memory\") 1)");
    for i in 0..2000 {
        wat.push_str(&format!("(func $f{i} (result i32) (i32.add (i32.const {i}) (i32.const 1)))"));
    }
    wat.push_str("(func (export \"_start\") (drop (i64.add (i32.const 1) (i64.const 2)))))");
    let wasm = wat::parse_str(&wat).unwrap(); // the text format does not type-check
    let (reason, source) = invalid_program(runtime(), &wasm);
    assert_eq!(reason, InvalidProgram::NotWasm, "{source}");
    let message = source.to_string();
    assert!(message.contains("not valid WebAssembly") && message.contains("type mismatch"), "{message}");
    assert!(message.contains("offset"), "{message}");
    for err in [runtime().load(&wasm).map(|_| ()).unwrap_err(), runtime().load_checker(&wasm).map(|_| ()).unwrap_err()]
    {
        assert!(err.to_string().contains("not valid WebAssembly"), "{err}");
    }
}

#[test]
fn absurd_specs_are_refused_at_load_with_the_field_named() {
    let cases = [
        (r#"\"players\":1,"#, r#"\"players\":4294967295,"#, "players"),
        (r#"\"name\":\"bandit\""#, r#"\"name\":\"\\u001b[2Jevil\""#, "name"),
        (r#"\"reward_range\":[0.0,1.0]"#, r#"\"reward_range\":[1.0,0.0]"#, "reward_range"),
        (r#"\"shape\":[2]"#, r#"\"shape\":[4294967295,4294967295,2]"#, "elements"),
        (r#"{\"type\":\"discrete\",\"n\":2}"#, r#"{\"type\":\"text\",\"max_length\":4,\"charset\":\"\"}"#, "charset"),
    ];
    for (from, to, word) in cases {
        let wat = bandit_with(from, to);
        match runtime().load(wat.as_bytes()) {
            Err(Error::Protocol { message }) => assert!(message.contains(word), "{message} does not name {word}"),
            Err(other) => panic!("{to}: {other}"),
            Ok(_) => panic!("{to}: loaded"),
        }
    }
}

#[test]
fn legal_actions_outside_the_space_and_players_past_the_count_are_protocol_errors() {
    // Legal actions [0, 7] in Discrete(2).
    let wat = bandit_with(r#""\01\00\00\00\00\00\00\00")"#, r#""\07\00\00\00\00\00\00\00")"#);
    let mut env = runtime().load(wat.as_bytes()).unwrap().instantiate().unwrap();
    env.reset(Some(0), None).unwrap();
    let e = env.legal_actions().unwrap_err();
    assert!(matches!(&e, Error::Protocol { message } if message.contains("outside")), "{e}");
    assert!(env.is_poisoned());
    // Player 5 to move in a one-player game.
    let wat = bandit_with("(select (i32.const -1) (i32.const 0)", "(select (i32.const -1) (i32.const 5)");
    let mut env = runtime().load(wat.as_bytes()).unwrap().instantiate().unwrap();
    let e = env.reset(Some(0), None).unwrap_err();
    assert!(matches!(&e, Error::Protocol { message } if message.contains("player 5")), "{e}");
}

#[test]
fn legal_actions_listed_for_a_text_action_space_are_a_protocol_error() {
    // bandit's legal actions [0, 1], under a Text action space.
    let text = r#""\"action_space\":{\"type\":\"text\",\"max_length\":8,\"charset\":null},""#;
    let wat = bandit_with(r#""\"action_space\":{\"type\":\"discrete\",\"n\":2},""#, text);
    let mut env = runtime().load(wat.as_bytes()).unwrap().instantiate().unwrap();
    env.reset(Some(0), None).unwrap();
    let e = env.legal_actions().unwrap_err();
    assert!(matches!(&e, Error::Protocol { message } if message.contains("wasmgym_text_actions")), "{e}");
    assert!(env.is_poisoned());
}

/// A program that prints `1`, then grows its memory by `grow_mib` MiB and exits.
fn answer_then_grow(grow_mib: u32) -> Vec<u8> {
    wat::parse_str(format!(
        r#"(module
             (import "wasi_snapshot_preview1" "fd_write" (func $write (param i32 i32 i32 i32) (result i32)))
             (memory 1)
             (data (i32.const 100) "1\n")
             (func (export "_start")
               (i32.store (i32.const 16) (i32.const 100))
               (i32.store (i32.const 20) (i32.const 2))
               (drop (call $write (i32.const 1) (i32.const 16) (i32.const 1) (i32.const 24)))
               (drop (memory.grow (i32.const {pages})))))"#,
        pages = grow_mib * 16
    ))
    .unwrap()
}

// Item 5: under a memory cap, a program could raise its own score.
#[test]
fn a_program_cannot_raise_its_score_by_exhausting_the_cap() {
    let program = answer_then_grow(32);
    // What one worker holds after the first test, measured on a runtime of its own; the cap then
    // leaves less room than a second instance needs, as a program would arrange to. (The
    // program's limit is the cap: one job may use all of it.)
    let measure = Runtime::new().unwrap();
    let mut instance = measure.load_program(&program).unwrap().instantiate(Limits::default()).unwrap();
    instance.run(&wasmgym::RunInput::default()).unwrap();
    let held = measure.memory_in_use();
    let cap = held + (32 << 10);
    let limits = Limits { memory_bytes: cap, ..GradeOptions::default().limits };
    let options = GradeOptions { jobs: 1, limits, ..GradeOptions::default() };
    let runtime = Runtime::with_config(RuntimeConfig { memory_cap: Some(cap), ..RuntimeConfig::default() }).unwrap();
    let tests: Vec<TestCase> = (1..=10).map(|i| test(&format!("t{i}"), "", &i.to_string())).collect();
    let report = Grader::new(&runtime, &program, None, options).unwrap().grade(&tests);
    let s = &report.summary;
    assert_eq!((s.passed, s.total, s.grading_errors), (1, 10, 0), "{:?}", report.tests);
    assert!((s.score - 0.1).abs() < 1e-12, "score {}", s.score);
    assert!(report.tests[1..].iter().all(|t| matches!(t.verdict, Verdict::WrongAnswer { .. })));

    // A program that takes the runtime past its cap in its own run: a grading error, counted as a
    // failure and in the summary's count.
    let runtime =
        Runtime::with_config(RuntimeConfig { memory_cap: Some(96 << 20), ..RuntimeConfig::default() }).unwrap();
    let options = GradeOptions { jobs: 1, ..GradeOptions::default() }; // 256 MiB per program
    // (`Grader::new` refuses a limit past the cap; `from_modules` leaves that to the caller, and
    // other instances of the runtime can hold the memory just the same.)
    let program = runtime.load_program(&answer_then_grow(200)).unwrap();
    let report = Grader::from_modules(program, None, options).grade(&[test("a", "", "1"), test("b", "", "1")]);
    let grading_errors = report.tests.iter().filter(|t| matches!(t.verdict, Verdict::GradingError { .. })).count();
    assert_eq!(grading_errors, 2, "{:?}", report.tests);
    assert_eq!(report.summary.grading_errors, grading_errors);
    assert_eq!(report.summary.score, 0.0);
    assert!(report.tests.iter().all(|t| t.score.is_none()));
}

#[test]
fn jobs_times_the_memory_limit_is_checked_against_the_cap_before_a_batch() {
    let runtime = Runtime::with_config(RuntimeConfig { memory_cap: Some(1 << 30), ..RuntimeConfig::default() })
        .expect("a runtime");
    let options = GradeOptions { jobs: 8, ..GradeOptions::default() }; // 8 × 256 MiB > 1 GiB
    match Grader::new(&runtime, &answer_then_grow(0), None, options) {
        Err(GradeError::Resources { message }) => {
            assert!(message.contains("use at most 4 jobs"), "{message}")
        }
        other => panic!("{:?}", other.map(|_| ())),
    }
    let options = GradeOptions { jobs: 4, ..GradeOptions::default() };
    Grader::new(&runtime, &answer_then_grow(0), None, options).unwrap();
}

// Item 7: valid modules with state a snapshot cannot hold, shared memory, and restores of
// snapshots that the module's memory could never hold.
#[test]
fn a_mutable_funcref_global_is_a_program_with_fresh_instances_and_an_unsupported_env() {
    let wasm = wat::parse_str(
        r#"(module
             (import "wasi_snapshot_preview1" "fd_write" (func $write (param i32 i32 i32 i32) (result i32)))
             (memory 1)
             (global $g (mut funcref) (ref.null func))
             (data (i32.const 100) "ok")
             (func (export "_start")
               (i32.store (i32.const 16) (i32.const 100))
               (i32.store (i32.const 20) (i32.const 2))
               (drop (call $write (i32.const 1) (i32.const 16) (i32.const 1) (i32.const 24)))))"#,
    )
    .unwrap();
    let program = runtime().load_program(&wasm).unwrap();
    assert!(program.fresh_instance_per_run());
    let options = GradeOptions { jobs: 1, ..GradeOptions::default() };
    let report = Grader::from_modules(program, None, options).grade(&[test("a", "", "ok"), test("b", "", "ok")]);
    assert_eq!(report.summary.passed, 2, "{:?}", report.tests);
    let e = runtime().load_checker(&wasm).unwrap_err();
    assert!(matches!(&e, Error::Unsupported { message } if message.contains("reference type")), "{e}");

    let shared = wat::parse_str(r#"(module (memory 1 1 shared) (func (export "_start")))"#).unwrap();
    let (reason, source) = invalid_program(runtime(), &shared);
    assert_eq!(reason, InvalidProgram::Unsupported, "{source}");
}

#[test]
fn a_wat_error_does_not_copy_a_megabyte_line_into_the_message() {
    let line = format!("(module (func {} oops)))", "nop ".repeat(500_000));
    let e = runtime().load_program(line.as_bytes()).unwrap_err();
    let message = e.to_string();
    assert!(message.contains("WAT does not parse"), "{message}");
    assert!(message.len() < 2000, "{} bytes", message.len());
}

// Item 6 is in grade.rs (`the_host_refuses_escapes_from_the_granted_directory`: a named pipe).

#[test]
fn a_deadline_still_bounds_a_program_under_the_new_limits() {
    // The grader's per-test deadline is unchanged by the memory accounting above.
    let wasm = wat::parse_str(r#"(module (memory 1) (func (export "_start") (loop (br 0))))"#).unwrap();
    let limits = Limits { fuel_per_call: None, deadline: Some(Duration::from_millis(50)), ..Limits::default() };
    let options = GradeOptions { jobs: 1, limits, ..GradeOptions::default() };
    let report = Grader::new(runtime(), &wasm, None, options).unwrap().grade(&[test("spin", "", "")]);
    assert_eq!(report.tests[0].verdict.name(), "time_limit_exceeded");
}

/// connect_four's module and an instance seven moves into a game.
fn connect_four_mid_game() -> (wasmgym::EnvModule, wasmgym::Env) {
    let module = wasmgym_tests::module("connect_four");
    let mut env = module.instantiate().unwrap();
    env.reset(Some(7), None).unwrap();
    for action in [3, 3, 2, 4, 1, 0, 6] {
        env.step(action).unwrap();
    }
    (module, env)
}

// Compact snapshot bytes: zero pages by reference, the rest compressed (connect_four's were 197 KB).
#[test]
fn a_connect_four_snapshot_is_at_most_40_kb_and_restores_exactly() {
    let (module, mut env) = connect_four_mid_game();
    let bytes = env.snapshot().unwrap().to_bytes();
    assert!(bytes.len() <= 40_000, "{} bytes", bytes.len());
    let hash = env.state_hash().unwrap();
    let mut other = module.instantiate().unwrap();
    other.restore(&wasmgym::Snapshot::from_bytes(&bytes).unwrap()).unwrap();
    assert_eq!(other.state_hash().unwrap(), hash);
    assert_eq!(other.step(5).unwrap(), env.step(5).unwrap());
}

// Compact snapshot bytes, continued: pages equal to the module's initial memory (its data
// segments, mostly) by reference (format 3), read back only with the module.
#[test]
fn snapshot_bytes_against_the_module_leave_out_its_initial_memory_and_need_it_back() {
    let (module, mut env) = connect_four_mid_game();
    let snapshot = env.snapshot().unwrap();
    let (plain, compact) = (snapshot.to_bytes(), module.snapshot_to_bytes(&snapshot).unwrap());
    assert!(compact.len() * 4 <= plain.len(), "{} bytes against {}", compact.len(), plain.len());
    let hash = env.state_hash().unwrap();
    let mut other = module.instantiate().unwrap();
    other.restore(&module.snapshot_from_bytes(&compact).unwrap()).unwrap();
    assert_eq!(other.state_hash().unwrap(), hash);
    assert_eq!(other.step(5).unwrap(), env.step(5).unwrap());
    // The module reads the plain format too.
    other.restore(&module.snapshot_from_bytes(&plain).unwrap()).unwrap();
    assert_eq!(other.state_hash().unwrap(), hash);

    // Without the module, or with another, the bytes are refused, naming the way to read them.
    let message = |e: Error| match e {
        Error::BadSnapshot { reason } => reason,
        other => panic!("{other:?}"),
    };
    let reason = message(wasmgym::Snapshot::from_bytes(&compact).unwrap_err());
    assert!(reason.contains("EnvModule::snapshot_from_bytes"), "{reason}");
    let tic_tac_toe = wasmgym_tests::module("tic_tac_toe");
    assert!(message(tic_tac_toe.snapshot_from_bytes(&compact).unwrap_err()).contains("another module"));
    assert!(message(tic_tac_toe.snapshot_from_bytes(&plain).unwrap_err()).contains("another module"));
    assert!(message(tic_tac_toe.snapshot_to_bytes(&snapshot).unwrap_err()).contains("another module"));
    // Corrupt or truncated, as for the plain format.
    for cut in [12, 50, compact.len() / 2, compact.len() - 1] {
        assert!(matches!(module.snapshot_from_bytes(&compact[..cut]), Err(Error::BadSnapshot { .. })), "cut {cut}");
    }
    for at in (0..compact.len()).step_by(7) {
        let mut corrupt = compact.clone();
        corrupt[at] ^= 0x10;
        assert!(matches!(module.snapshot_from_bytes(&corrupt), Err(Error::BadSnapshot { .. })), "flip at {at}");
    }
}

// Authenticated snapshots: with a key in `RuntimeConfig`, only bytes signed with it restore, so a
// peer without the key cannot hand over a state that was never reached.
#[test]
fn with_a_snapshot_key_only_bytes_signed_with_it_restore() {
    let runtime = |key: Option<u8>| {
        let config = RuntimeConfig { snapshot_key: key.map(|k| SnapshotKey([k; 32])), ..RuntimeConfig::default() };
        let runtime = Runtime::with_config(config).unwrap();
        runtime.load(wasmgym_builtin::find("connect_four").unwrap().bytes).unwrap()
    };
    let (ours, same_key, other_key, no_key) = (runtime(Some(1)), runtime(Some(1)), runtime(Some(2)), runtime(None));
    let mut env = ours.instantiate().unwrap();
    env.reset(Some(3), None).unwrap();
    for action in [3, 2, 3] {
        env.step(action).unwrap();
    }
    let snapshot = env.snapshot().unwrap();
    let signed = ours.snapshot_to_bytes(&snapshot).unwrap();
    let hash = env.state_hash().unwrap();

    // Another runtime with the key restores it exactly.
    let mut peer = same_key.instantiate().unwrap();
    peer.restore(&same_key.snapshot_from_bytes(&signed).unwrap()).unwrap();
    assert_eq!(peer.state_hash().unwrap(), hash);
    assert_eq!(peer.step(4).unwrap(), env.fork().unwrap().step(4).unwrap());

    let reason = |e: Error| match e {
        Error::BadSnapshot { reason } => reason,
        other => panic!("{other:?}"),
    };
    assert!(reason(other_key.snapshot_from_bytes(&signed).unwrap_err()).contains("authentication failed"));
    assert!(reason(no_key.snapshot_from_bytes(&signed).unwrap_err()).contains("signed with a snapshot key"));
    // Signed self-contained bytes (format 5, for snapshots that travel without their module) restore
    // on a runtime with the key, read with or without the module.
    let key = SnapshotKey([1; 32]);
    let travelling = snapshot.to_bytes_signed(&key);
    for decoded in [
        wasmgym::Snapshot::from_bytes_signed(&travelling, &key).unwrap(),
        same_key.snapshot_from_bytes(&travelling).unwrap(),
    ] {
        let mut peer = same_key.instantiate().unwrap();
        peer.restore(&decoded).unwrap();
        assert_eq!(peer.state_hash().unwrap(), hash);
    }
    assert!(reason(other_key.snapshot_from_bytes(&travelling).unwrap_err()).contains("authentication failed"));
    assert!(reason(wasmgym::Snapshot::from_bytes(&travelling).unwrap_err()).contains("signed with a snapshot key"));
    // Unsigned bytes (the plain format, or a runtime without the key) do not get in either way.
    let unsigned = no_key.snapshot_to_bytes(&no_key.instantiate().unwrap().snapshot().unwrap()).unwrap();
    assert!(reason(ours.snapshot_from_bytes(&unsigned).unwrap_err()).contains("unsigned"));
    assert!(reason(ours.snapshot_from_bytes(&snapshot.to_bytes()).unwrap_err()).contains("unsigned"));
    let decoded = wasmgym::Snapshot::from_bytes(&snapshot.to_bytes()).unwrap();
    let mut reference = env.fork().unwrap();
    assert!(reason(env.restore(&decoded).unwrap_err()).contains("not signed"));
    assert!(!env.is_poisoned());
    assert_eq!(env.state_hash().unwrap(), reference.state_hash().unwrap());
    // A forged body with a recomputed plain checksum is refused.
    let mut forged = signed.clone();
    let n = forged.len();
    forged[n - 33] ^= 1;
    let checksum = blake3::hash(&forged[..n - 32]);
    forged[n - 32..].copy_from_slice(checksum.as_bytes());
    assert!(reason(same_key.snapshot_from_bytes(&forged).unwrap_err()).contains("authentication failed"));
    // Snapshots taken in the process restore as before.
    env.step(0).unwrap();
    env.restore(&snapshot).unwrap();
    assert_eq!(env.state_hash().unwrap(), hash);
    assert_eq!(env.step(4).unwrap(), reference.step(4).unwrap());
}

// Item 3's last part: `inspect` (loading as an environment) said "ABI version mismatch" of a
// program or a checker; it now says what the module is, before compiling it.
#[test]
fn loading_a_program_or_checker_as_an_environment_names_its_kind() {
    for (name, word) in [("sum", "program"), ("sum_checker", "checker")] {
        let bytes = wasmgym_builtin::find_program(name).unwrap().bytes;
        match runtime().load(bytes) {
            Err(Error::WrongKind { message }) => assert!(message.contains(word), "{message}"),
            other => panic!("{name}: {:?}", other.map(|_| ())),
        }
    }
}

/// The bandit with `extra` (functions, data) added after its memory.
fn bandit_plus(extra: &str) -> String {
    bandit_with(r#"(memory (export "memory") 1)"#, &format!("(memory (export \"memory\") 1)\n{extra}"))
}

/// A packed (ptr, len) answer at 0x8000 of `len` bytes, as an export body.
fn answer_at_0x8000(len: u32) -> String {
    format!("(i64.or (i64.shl (i64.const 0x8000) (i64.const 32)) (i64.const {len}))")
}

#[test]
fn a_fixed_input_buffer_outside_memory_is_a_protocol_error_and_one_inside_serves_requests() {
    let runtime = runtime();
    // Past the end of the one-page memory: the first request is refused and poisons.
    let outside = bandit_plus(
        r#"(func (export "wasmgym_input_buffer") (result i64) (i64.or (i64.shl (i64.const 0x20000) (i64.const 32)) (i64.const 64)))"#,
    );
    let mut env = runtime.load(outside.as_bytes()).unwrap().instantiate().unwrap();
    let e = env.reset(Some(0), None).unwrap_err();
    assert!(matches!(e, Error::Protocol { .. }) && e.to_string().contains("wasmgym_input_buffer"), "{e}");
    assert!(env.is_poisoned());
    // Inside the bandit's input area (which it reads at `ptr`): the same transitions as through
    // `wasmgym_alloc`, step for step.
    let inside = bandit_plus(
        r#"(func (export "wasmgym_input_buffer") (result i64) (i64.or (i64.shl (i64.const 0x2000) (i64.const 32)) (i64.const 64)))"#,
    );
    let mut fixed = runtime.load(inside.as_bytes()).unwrap().instantiate().unwrap();
    let mut plain = runtime.load(bandit_plus("").as_bytes()).unwrap().instantiate().unwrap();
    assert_eq!(fixed.reset(Some(3), None).unwrap(), plain.reset(Some(3), None).unwrap());
    for action in [0, 1, 1, 0, 1] {
        assert_eq!(fixed.step(action).unwrap(), plain.step(action).unwrap());
    }
    // Another signature: refused at load.
    let wrong = bandit_plus(r#"(func (export "wasmgym_input_buffer") (result i32) (i32.const 0))"#);
    assert!(matches!(runtime.load(wrong.as_bytes()), Err(Error::MissingExport { .. })));
}

#[test]
fn hostile_optional_exports_get_typed_errors_and_a_wrong_signature_is_refused_at_load() {
    let runtime = runtime();
    // A rollout naming a player the spec does not have: a protocol error that poisons.
    let rollout = r#"(data (i32.const 0x8000) "\00\01\00\00\00\09\00\00\00\ff\ff\ff\ff\01\00\01\00\00\00\00\00\00\00\00\00\00\00")"#;
    let wat = bandit_plus(&format!(
        "{rollout} (func (export \"wasmgym_rollout\") (param i64 i32 i32 i64) (result i64) {})",
        answer_at_0x8000(27)
    ));
    let mut env = runtime.load(wat.as_bytes()).unwrap().instantiate().unwrap();
    env.reset(Some(0), None).unwrap();
    let request = wasmgym_abi::wire::RolloutRequest { first: None, seed: 1, max_steps: 10 };
    let e = env.rollout(&request).unwrap_err();
    assert!(matches!(e, Error::Protocol { .. }) && e.to_string().contains("player 9"), "{e}");
    assert!(env.is_poisoned());
    // A rollout that never returns stops at the fuel limit, poisons, and a restore recovers.
    let wat = bandit_plus(
        r#"(func (export "wasmgym_rollout") (param i64 i32 i32 i64) (result i64) (loop $l (br $l)) (i64.const 0))"#,
    );
    let mut env = runtime.load(wat.as_bytes()).unwrap().instantiate().unwrap();
    env.set_limits(wasmgym::Limits { fuel_per_call: Some(1_000_000), ..env.limits().clone() });
    env.reset(Some(0), None).unwrap();
    let start = env.snapshot().unwrap();
    assert!(matches!(env.rollout(&request), Err(Error::OutOfFuel { .. })));
    assert!(env.is_poisoned());
    env.restore(&start).unwrap();
    assert_eq!(env.legal_actions().unwrap(), vec![0, 1]);
    // A state key answer that is neither "none" nor a key, and text actions that claim more
    // entries than their bytes hold (or any, for a discrete space).
    for (export, data, len) in [
        ("wasmgym_state_key", r#""\00\07""#, 2),
        ("wasmgym_text_actions", r#""\00\e8\03\00\00""#, 5),
        ("wasmgym_text_actions", r#""\00\01\00\00\00\01\00\00\00a""#, 10),
    ] {
        let wat = bandit_plus(&format!(
            "(data (i32.const 0x8000) {data}) (func (export \"{export}\") (result i64) {})",
            answer_at_0x8000(len)
        ));
        let mut env = runtime.load(wat.as_bytes()).unwrap().instantiate().unwrap();
        env.reset(Some(0), None).unwrap();
        let e =
            if export == "wasmgym_state_key" { env.state_key().unwrap_err() } else { env.text_actions().unwrap_err() };
        assert!(matches!(e, Error::Protocol { .. }), "{export} {data}: {e}");
    }
    // An optional export with another signature: refused at load, naming the signature.
    let wat = bandit_plus(r#"(func (export "wasmgym_state_key") (param i32) (result i64) (i64.const 0))"#);
    match runtime.load(wat.as_bytes()) {
        Err(Error::MissingExport { name, expected }) => {
            assert_eq!(name, "wasmgym_state_key");
            assert!(expected.contains("found"), "{expected}");
        }
        other => panic!("{:?}", other.map(|_| "loaded")),
    }
}
