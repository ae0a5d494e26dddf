//! Bad input gets a clear, typed error and loses nothing; the host never panics.

use wasmgym::{Error, Snapshot};
use wasmgym_abi::rng::Rng;
use wasmgym_tests::{module, runtime};

const SPEC: &str = r#"{"name":"stub","version":1,"players":1,"observation_space":{"type":"discrete","n":2},"action_space":{"type":"discrete","n":2},"reward_range":[0,1],"max_episode_steps":null,"determinism":"deterministic"}"#;

/// A module that speaks ABI v1 with stub exports; `step` and `extra` vary per test.
pub(crate) fn stub(memory: &str, step: &str, extra: &str) -> String {
    let spec = SPEC.replace('"', "\\\"");
    let spec_len = SPEC.len() + 1;
    // Transition: status, player 0, flags, 0 rewards, 8-byte observation 0, empty info.
    let transition = r"\00\00\00\00\00\00\00\00\00\00\00\08\00\00\00\00\00\00\00\00\00\00\00\00\00\00\00";
    format!(
        r#"(module
             (@custom "wasmgym_abi" "\01\00\00\00")
             (memory (export "memory") {memory})
             (data (i32.const 2048) "\00{spec}")
             (data (i32.const 4096) "{transition}")
             (func (export "wasmgym_alloc") (param i32) (result i32) i32.const 1024)
             (func (export "wasmgym_spec") (result i64) (i64.const {spec_packed}))
             (func (export "wasmgym_reset") (param i32 i32) (result i64) (i64.const {t_packed}))
             (func (export "wasmgym_step") (param i32 i32) (result i64) {step})
             (func (export "wasmgym_legal_actions") (result i64) (i64.const 0))
             (func (export "wasmgym_render") (result i64) (i64.const {t_packed}))
             {extra})"#,
        spec_packed = (2048i64 << 32) | spec_len as i64,
        t_packed = (4096i64 << 32) | 27,
    )
}

fn load_err(wat: &str) -> Error {
    match runtime().load(wat.as_bytes()) {
        Ok(_) => panic!("module loaded but should not have:\n{wat}"),
        Err(e) => e,
    }
}

#[test]
fn the_stub_itself_loads_and_runs() {
    let m = runtime().load(stub("1", "(i64.const 17592186044443)", "").as_bytes()).unwrap();
    let mut env = m.instantiate().unwrap();
    env.reset(Some(0), None).unwrap();
    assert_eq!(m.spec().name, "stub");
}

#[test]
fn garbage_bytes_are_an_invalid_module() {
    let mut rng = Rng::seed_from_u64(9);
    for len in [0usize, 1, 3, 4, 8, 64, 1000] {
        let mut bytes = vec![0u8; len];
        rng.fill_bytes(&mut bytes);
        assert!(matches!(runtime().load(&bytes), Err(Error::InvalidModule { .. })), "{len} random bytes");
        // With the magic and version in front, the body is still garbage.
        let mut framed = b"\0asm\x01\0\0\0".to_vec();
        framed.extend_from_slice(&bytes);
        let err = runtime().load(&framed).err();
        assert!(matches!(err, Some(Error::InvalidModule { .. }) | Some(Error::AbiMismatch { .. })), "{err:?}");
    }
    let err = runtime().load(b"hello, I am a text file\n").unwrap_err();
    assert!(err.to_string().contains("not WebAssembly"), "{err}");
    // Every bit flip of a real module is refused cleanly or still loads; it never panics.
    let wasm = wasmgym_builtin::find("bandit").unwrap().bytes;
    for i in (0..wasm.len()).step_by(7) {
        let mut flipped = wasm.to_vec();
        flipped[i] ^= 0x5a;
        let _ = runtime().load(&flipped);
    }
}

#[test]
fn truncated_modules_are_invalid_not_a_panic() {
    // Regression: a section claiming more bytes than the module has once panicked the loader.
    for env in wasmgym_builtin::ENVS {
        for cut in (8..env.bytes.len()).step_by(env.bytes.len() / 97 + 1) {
            match runtime().load(&env.bytes[..cut]) {
                Err(Error::InvalidModule { .. } | Error::AbiMismatch { .. }) => {}
                other => panic!("{} cut to {cut} bytes: {:?}", env.name, other.map(|_| "loaded")),
            }
        }
    }
}

#[test]
fn a_missing_file_is_an_io_error_naming_it() {
    let err = runtime().load_file("/nonexistent/env.wasm").unwrap_err();
    assert!(matches!(&err, Error::Io { path, .. } if path == "/nonexistent/env.wasm"), "{err:?}");
}

#[test]
fn a_component_is_refused_with_a_hint() {
    let err = runtime().load(&wat::parse_str("(component)").unwrap()).unwrap_err();
    assert!(matches!(&err, Error::InvalidModule { message } if message.contains("component")), "{err:?}");
}

#[test]
fn wrong_or_missing_abi_version_names_both_versions() {
    let v2 = stub("1", "(i64.const 0)", "").replace(r"\01\00\00\00", r"\02\00\00\00");
    let err = load_err(&v2);
    assert!(matches!(err, Error::AbiMismatch { found: Some(2), supported: 1, what: "environment" }), "{err:?}");
    let text = err.to_string();
    assert!(text.contains("version 2") && text.contains("version 1"), "{text}");
    let unstamped = stub("1", "(i64.const 0)", "").replace(r#"(@custom "wasmgym_abi" "\01\00\00\00")"#, "");
    assert!(matches!(load_err(&unstamped), Error::AbiMismatch { found: None, supported: 1, .. }));
}

#[test]
fn missing_or_mistyped_exports_are_named() {
    let err = load_err(r#"(module (@custom "wasmgym_abi" "\01\00\00\00") (memory 1))"#);
    assert!(matches!(&err, Error::MissingExport { name, .. } if name == "wasmgym_alloc"), "{err:?}");
    let mistyped = stub("1", "(i64.const 0)", "").replace(
        r#"(func (export "wasmgym_alloc") (param i32) (result i32) i32.const 1024)"#,
        r#"(func (export "wasmgym_alloc") (param i64) (result i32) i32.const 1024)"#,
    );
    let err = load_err(&mistyped);
    assert!(
        matches!(&err, Error::MissingExport { name, expected } if name == "wasmgym_alloc" && expected.contains("found")),
        "{err:?}"
    );
}

#[test]
fn unknown_imports_are_refused_by_name() {
    let env_import =
        stub("1", "(i64.const 0)", "").replacen("(memory", r#"(import "env" "launch_missiles" (func)) (memory"#, 1);
    let err = load_err(&env_import);
    assert!(
        matches!(&err, Error::UnknownImport { module, name, .. } if module == "env" && name == "launch_missiles"),
        "{err:?}"
    );
    let bogus_wasi = stub("1", "(i64.const 0)", "").replacen(
        "(memory",
        r#"(import "wasi_snapshot_preview1" "teleport" (func (result i32))) (memory"#,
        1,
    );
    assert!(matches!(load_err(&bogus_wasi), Error::UnknownImport { name, .. } if name == "teleport"));
    let imported_memory = r#"(module (@custom "wasmgym_abi" "\01\00\00\00") (import "env" "memory" (memory 1)))"#;
    assert!(matches!(load_err(imported_memory), Error::UnknownImport { .. }));
    // A preview 1 function that is refused at run time still links (it returns ERRNO_NOTCAPABLE).
    let path_open = stub("1", "(i64.const 0)", "").replacen(
        "(memory",
        r#"(import "wasi_snapshot_preview1" "path_open" (func (param i32 i32 i32 i32 i32 i64 i64 i32 i32) (result i32))) (memory"#,
        1,
    );
    runtime().load(path_open.as_bytes()).unwrap();
}

/// The stub with a `wasmgym_step_actions` that answers `answer` (bytes in WAT string syntax).
fn stub_step_actions(answer: &str, len: u32) -> wasmgym::Env {
    let packed = (0x8000i64 << 32) | len as i64;
    let extra = format!(
        r#"(data (i32.const 0x8000) "{answer}") (func (export "wasmgym_step_actions") (param i32 i32) (result i64) (i64.const {packed}))"#
    );
    let wat = stub("1", "(i64.const 17592186044443)", &extra);
    let mut env = runtime().load(wat.as_bytes()).unwrap().instantiate().unwrap();
    env.reset(Some(0), None).unwrap();
    env
}

#[test]
fn step_actions_answers_are_checked_like_legal_actions() {
    // Status 0, then a running transition (player 0, 8-byte observation, no rewards or info).
    let running = r"\00\00\00\00\00\00\00\00\00\00\00\08\00\00\00\00\00\00\00\00\00\00\00\00\00\00\00";
    let ended = r"\00\ff\ff\ff\ff\01\00\00\00\00\00\08\00\00\00\00\00\00\00\00\00\00\00\00\00\00\00";
    let zero = r"\00\00\00\00\00\00\00\00";
    let one = r"\01\00\00\00\00\00\00\00";
    let seven = r"\07\00\00\00\00\00\00\00";
    // Well formed: the transition and the actions after it.
    let mut env = stub_step_actions(&format!(r"{running}{zero}{one}\02\00\00\00"), 27 + 20);
    let (t, legal) = env.step_and_legal_actions(1).unwrap();
    assert_eq!((t.current_player, legal), (Some(0), vec![0, 1]));
    assert_eq!(env.steps(), 1);
    // A count the bytes cannot hold, an action outside Discrete(2), actions after the end, and
    // unordered actions: protocol errors that poison.
    for (answer, len, says) in [
        (format!(r"{running}\05\00\00\00"), 27 + 4, "claims 5 legal actions"),
        (format!(r"{running}{seven}\01\00\00\00"), 27 + 12, "outside the action space"),
        (format!(r"{ended}{zero}\01\00\00\00"), 27 + 12, "the episode is over"),
        (format!(r"{running}{one}{zero}\02\00\00\00"), 27 + 20, "ascending"),
    ] {
        let mut env = stub_step_actions(&answer, len);
        let e = env.step_and_legal_actions(1).unwrap_err();
        assert!(matches!(&e, Error::Protocol { message } if message.contains(says)), "{says}: {e:?}");
        assert!(env.is_poisoned(), "{says}");
    }
    // A refusal is an illegal action naming the action, and the state is unchanged.
    let mut env = stub_step_actions(r"\01no", 3);
    let e = env.step_and_legal_actions(1).unwrap_err();
    assert!(matches!(&e, Error::IllegalAction { action, message } if action == "1" && message == "no"), "{e:?}");
    assert!(!env.is_poisoned());
    assert_eq!(env.steps(), 0);
}

/// The stub with a `wasmgym_playout` that answers `status` and then `answer`'s encoding.
fn stub_playout(status: u8, answer: &[u8]) -> wasmgym::Env {
    let bytes: String = std::iter::once(status).chain(answer.iter().copied()).map(|b| format!("\\{b:02x}")).collect();
    let packed = (0x8000i64 << 32) | (answer.len() as i64 + 1);
    let extra = format!(
        r#"(data (i32.const 0x8000) "{bytes}") (func (export "wasmgym_playout") (param i32 i32) (result i64) (i64.const {packed}))"#
    );
    let wat = stub("1", "(i64.const 17592186044443)", &extra);
    let mut env = runtime().load(wat.as_bytes()).unwrap().instantiate().unwrap();
    env.reset(Some(0), None).unwrap();
    env
}

#[test]
fn playout_answers_are_checked_and_refusals_poison() {
    use wasmgym_abi::wire::{Playout, PlayoutRequest, Rollout};
    let request = PlayoutRequest { prefix: vec![1], legal_actions: true, state_key: true, max_steps: 4, ..Default::default() };
    let rollout = Rollout { steps: 1, after_first: Some(0), current_player: Some(0), returns: vec![1.0], ..Default::default() };
    let good = Playout {
        player: Some(0),
        prefix_rewards: vec![0.0],
        legal_actions: Some(vec![0, 1]),
        state_key: Some(None),
        first: Some(1),
        rollout,
    };
    let encode = |p: &Playout| {
        let mut out = Vec::new();
        p.encode(&mut out);
        out
    };
    let mut env = stub_playout(0, &encode(&good));
    assert_eq!(env.playout(&request).unwrap(), Some(good.clone()));
    assert_eq!(env.steps(), 2, "the prefix and the rollout's step are counted");
    // Answers that break the protocol: errors that poison.
    let broken = [
        (Playout { player: Some(5), ..good.clone() }, "player 5"),
        (Playout { legal_actions: Some(vec![1, 0]), ..good.clone() }, "ascending"),
        (Playout { legal_actions: Some(vec![0, 9]), ..good.clone() }, "outside the action space"),
        (Playout { legal_actions: None, ..good.clone() }, "asked for the legal actions"),
        (Playout { first: None, ..good.clone() }, "first action"),
        (Playout { prefix_rewards: vec![], ..good.clone() }, "prefix rewards"),
        (Playout { rollout: Rollout { returns: vec![1.0, 2.0], ..good.rollout.clone() }, ..good.clone() }, "returns"),
        (Playout { player: None, ..good.clone() }, "after the episode ended"),
    ];
    for (answer, says) in broken {
        let mut env = stub_playout(0, &encode(&answer));
        let e = env.playout(&request).unwrap_err();
        assert!(matches!(&e, Error::Protocol { message } if message.contains(says)), "{says}: {e:?}");
        assert!(env.is_poisoned(), "{says}");
    }
    let mut env = stub_playout(0, &encode(&good)[..10]);
    assert!(matches!(env.playout(&request), Err(Error::Protocol { .. })), "a truncated answer");
    // A refusal may have applied part of the prefix: it poisons, and a restore recovers.
    let mut env = stub_playout(1, b"prefix action 1 of 1 (1): no");
    let before = env.snapshot().unwrap();
    let e = env.playout(&request).unwrap_err();
    assert!(matches!(&e, Error::IllegalAction { message, .. } if message.contains("no")), "{e:?}");
    assert!(env.is_poisoned());
    assert!(matches!(env.legal_actions(), Err(Error::Poisoned { .. })));
    env.restore(&before).unwrap();
    assert!(!env.is_poisoned());
    // Without the export there is nothing to call.
    let mut plain = runtime().load(stub("1", "(i64.const 17592186044443)", "").as_bytes()).unwrap().instantiate().unwrap();
    plain.reset(Some(0), None).unwrap();
    assert!(!plain.has_playout());
    assert_eq!(plain.playout(&request).unwrap(), None);
}

#[test]
fn the_sdk_refuses_playouts_it_cannot_play_and_a_restore_recovers() {
    use wasmgym_abi::wire::PlayoutRequest;
    let mut env = module("tic_tac_toe").instantiate().unwrap();
    env.reset(Some(0), None).unwrap();
    let start = env.snapshot().unwrap();
    // x takes the top row at its fifth move: the game ends there.
    let won = vec![0, 3, 1, 4, 2];
    let cases = [
        (PlayoutRequest { prefix: vec![4, 4], ..Default::default() }, "prefix action 2 of 2 (4)"),
        (PlayoutRequest { prefix: [won.clone(), vec![5]].concat(), ..Default::default() }, "ended after prefix action 5"),
        (PlayoutRequest { prefix: won.clone(), first: Some(5), ..Default::default() }, "no first action"),
        (PlayoutRequest { prefix: vec![9], ..Default::default() }, "outside the action space"),
    ];
    for (request, says) in cases {
        let e = env.playout(&request).unwrap_err();
        let message = match &e {
            Error::IllegalAction { message, .. } | Error::InvalidCall { message } => message,
            other => panic!("{says}: {other:?}"),
        };
        assert!(message.contains(says), "{says}: {message}");
        assert!(env.is_poisoned(), "{says}");
        env.restore(&start).unwrap();
    }
    // A prefix that ends the episode at its last action is answered: over, nothing to roll out.
    let over = env.playout(&PlayoutRequest { prefix: won, legal_actions: true, max_steps: 9, ..Default::default() });
    let over = over.unwrap().unwrap();
    assert_eq!((over.player, over.prefix_rewards, over.legal_actions), (None, vec![1.0, -1.0], Some(vec![])));
    assert_eq!((over.rollout.steps, over.first, env.current_player()), (0, None, None));
    // Text action spaces take no playouts.
    let mut text = module("game_of_24").instantiate().unwrap();
    text.reset(Some(0), None).unwrap();
    let e = text.playout(&PlayoutRequest::default()).unwrap_err();
    assert!(matches!(&e, Error::InvalidCall { message } if message.contains("discrete")), "{e:?}");
}

#[test]
fn a_four_gib_initial_memory_hits_the_memory_limit() {
    let err = load_err(&stub("65536", "(i64.const 0)", ""));
    assert!(matches!(err, Error::MemoryLimit { requested, .. } if requested == 4 << 30), "{err:?}");
}

#[test]
fn table_mutation_is_unsupported() {
    let wat =
        stub("1", "(i64.const 0)", "(table 1 funcref) (func (drop (table.grow 0 (ref.null func) (i32.const 1))))");
    assert!(matches!(load_err(&wat), Error::Unsupported { message } if message.contains("table.grow")));
}

#[test]
fn wasm_call_stack_overflow_is_typed() {
    let wat = stub("1", "(call $down) (i64.const 0)", "(func $down (call $down))");
    let mut env = runtime().load(wat.as_bytes()).unwrap().instantiate().unwrap();
    env.reset(None, None).unwrap();
    let err = env.step(0).unwrap_err();
    assert!(matches!(err, Error::StackOverflow { shadow: false }), "{err:?}");
}

#[test]
fn guest_output_outside_memory_is_a_protocol_error_that_poisons() {
    let wat = stub("1", "(i64.const 0x7fffffff00000010)", "");
    let mut env = runtime().load(wat.as_bytes()).unwrap().instantiate().unwrap();
    let before = env.snapshot().unwrap();
    env.reset(None, None).unwrap();
    let err = env.step(1).unwrap_err();
    assert!(matches!(&err, Error::Protocol { message } if message.contains("outside")), "{err:?}");
    assert!(matches!(env.legal_actions(), Err(Error::Poisoned { .. })));
    env.restore(&before).unwrap();
    // legal_actions returns (0, 0): an empty output, also a protocol error.
    assert!(matches!(env.legal_actions(), Err(Error::Protocol { message }) if message.contains("empty")));
}

/// Checks an instance is exactly where a fork taken before the bad call is.
fn assert_unchanged(env: &mut wasmgym::Env, reference: &mut wasmgym::Env) {
    assert_eq!(env.legal_actions().unwrap(), reference.legal_actions().unwrap());
    assert_eq!(env.current_player(), reference.current_player());
    assert_eq!(env.steps(), reference.steps());
    let action = reference.legal_actions().unwrap()[0];
    let (a, b) = (env.fork().unwrap().step(action).unwrap(), reference.step(action).unwrap());
    assert_eq!(wasmgym::check::fingerprint(&a), wasmgym::check::fingerprint(&b));
}

#[test]
fn illegal_actions_are_refused_with_the_state_unchanged() {
    let mut env = module("tic_tac_toe").instantiate().unwrap();
    env.reset(Some(3), None).unwrap();
    env.step(4).unwrap();
    let mut reference = env.fork().unwrap();
    for (action, why) in [
        (wasmgym::Action::Discrete(4), "not legal"),
        (9.into(), "outside"),
        ((-1).into(), "outside"),
        ("e5".into(), "does not fit"),
    ] {
        let err = env.step(action.clone()).unwrap_err();
        match &err {
            Error::IllegalAction { action: a, message } => {
                assert_eq!(*a, action.to_string());
                assert!(message.contains(why), "{action}: {message}");
            }
            other => panic!("{action}: expected IllegalAction, got {other:?}"),
        }
        assert!(!env.is_poisoned());
    }
    assert_unchanged(&mut env, &mut reference);
}

#[test]
fn calls_out_of_order_are_invalid_calls() {
    let mut env = module("tic_tac_toe").instantiate().unwrap();
    assert!(matches!(env.step(0), Err(Error::InvalidCall { message }) if message.contains("reset")));
    assert!(matches!(env.render(), Err(Error::InvalidCall { .. })));
    env.reset(Some(0), None).unwrap();
    for a in [0, 3, 1, 4, 2] {
        env.step(a).unwrap();
    }
    assert!(!env.is_running());
    assert!(matches!(env.step(5), Err(Error::InvalidCall { message }) if message.contains("over")));
    assert!(env.legal_actions().unwrap().is_empty());
}

#[test]
fn bad_reset_options_are_refused_and_the_episode_goes_on() {
    let mut env = module("cart_pole").instantiate().unwrap();
    env.reset(Some(1), None).unwrap();
    env.step(1).unwrap();
    let mut reference = env.fork().unwrap();
    assert!(matches!(env.reset(Some(2), Some("{not json")), Err(Error::InvalidCall { .. })));
    let err = env.reset(Some(2), Some(r#"{"state": [1, 2]}"#)).unwrap_err();
    assert!(matches!(&err, Error::InvalidCall { message } if message.contains("state")), "{err:?}");
    assert_unchanged(&mut env, &mut reference);
}

#[test]
fn corrupt_truncated_and_foreign_snapshots_are_refused() {
    let mut env = module("connect_four").instantiate().unwrap();
    env.reset(Some(1), None).unwrap();
    env.step(3).unwrap();
    let bytes = env.snapshot().unwrap().to_bytes();
    let mut reference = env.fork().unwrap();

    let refused = |b: &[u8]| matches!(Snapshot::from_bytes(b), Err(Error::BadSnapshot { .. }));
    assert!(refused(&[]));
    assert!(refused(b"garbage"));
    for cut in [1, 12, 100, bytes.len() / 2, bytes.len() - 1] {
        assert!(refused(&bytes[..cut]), "truncated to {cut} bytes");
    }
    let mut rng = Rng::seed_from_u64(4);
    for _ in 0..64 {
        let mut corrupt = bytes.clone();
        let at = rng.next_u64() as usize % corrupt.len();
        corrupt[at] ^= 1 << (rng.next_u64() % 8);
        assert!(refused(&corrupt), "bit flip at byte {at} was accepted");
    }
    let mut future = bytes.clone();
    future[8] = 99;
    let err = Snapshot::from_bytes(&future).unwrap_err();
    assert!(err.to_string().contains("format 99"), "{err}");

    // A valid snapshot of another module is refused on restore, and nothing changes.
    let mut other = module("tic_tac_toe").instantiate().unwrap();
    other.reset(Some(1), None).unwrap();
    let foreign = Snapshot::from_bytes(&other.snapshot().unwrap().to_bytes()).unwrap();
    let err = env.restore(&foreign).unwrap_err();
    assert!(matches!(&err, Error::BadSnapshot { reason } if reason.contains("belongs to module")), "{err:?}");
    assert!(!env.is_poisoned());
    assert_unchanged(&mut env, &mut reference);
}

/// A checker with no stamp, or an environment given as a checker, is told so in a checker's words.
#[test]
fn a_module_of_the_wrong_kind_or_stamp_is_named_for_what_it_was_loaded_as() {
    let runtime = wasmgym_tests::runtime();
    let unstamped = r#"(module (memory (export "memory") 1)
        (func (export "wasmgym_checker_alloc") (param i32) (result i32) i32.const 0)
        (func (export "wasmgym_check") (param i32 i32 i32 i32) (result i64) i64.const 0))"#;
    let e = runtime.load_checker(unstamped.as_bytes()).err().unwrap();
    assert!(matches!(e, Error::AbiMismatch { found: None, what: "checker", .. }), "{e:?}");
    assert!(
        e.to_string().contains("the checker has no version stamp") && e.to_string().contains("export_checker!"),
        "{e}"
    );
    let env = wasmgym_builtin::find("tic_tac_toe").unwrap().bytes;
    let e = runtime.load_checker(env).err().unwrap();
    assert!(matches!(e, Error::WrongKind { .. }) && e.to_string().contains("it is an environment"), "{e}");
}

/// A checker export with the wrong signature is refused at load, in a checker's words.
#[test]
fn a_checker_export_with_the_wrong_signature_is_refused_at_load() {
    let wrong = r#"(module (memory 1) (@custom "wasmgym_checker_abi" "\01\00\00\00")
        (func (export "wasmgym_checker_alloc") (param i32) (result i32) i32.const 0)
        (func (export "wasmgym_check") (param i32 i32 i32) (result i64) i64.const 0))"#;
    let e = wasmgym_tests::runtime().load_checker(wrong.as_bytes()).err().unwrap();
    assert!(matches!(&e, Error::MissingExport { name, .. } if name == "wasmgym_check"), "{e:?}");
    let message = e.to_string();
    assert!(message.contains("found") && message.contains("export_checker!"), "{message}");
}

#[test]
fn a_store_across_a_page_boundary_is_captured_and_undone_whole() {
    // Each step stores 16 bytes that straddle two pages (0xaff8 or 0x9ff8 as the step count is
    // odd or even): half in the page the map marks, half in the next.
    let step = r#"(global.set $k (i32.add (global.get $k) (i32.const 1)))
        (v128.store (i32.add (i32.const 0x9ff8) (i32.mul (i32.and (global.get $k) (i32.const 1)) (i32.const 0x1000)))
                    (i32x4.splat (global.get $k)))
        (i64.const 17592186044443)"#;
    let wat = stub("1", step, r#"(global $k (mut i32) (i32.const 0))"#);
    let mut env = runtime().load(wat.as_bytes()).unwrap().instantiate().unwrap();
    env.reset(Some(0), None).unwrap();
    let start = env.snapshot().unwrap();
    let hash = env.state_hash_full().unwrap();
    for round in 0..4 {
        // Restored straight after the step: only the map says what the step wrote.
        env.step(1).unwrap();
        env.restore(&start).unwrap();
        assert_eq!(env.state_hash_full().unwrap(), hash, "round {round}: a restore left spilled bytes behind");
        env.step(1).unwrap();
        let stepped = env.snapshot().unwrap();
        let stepped_hash = env.state_hash_full().unwrap();
        assert_eq!(env.state_hash().unwrap(), stepped_hash, "round {round}: a snapshot missed the spilled bytes");
        env.restore(&start).unwrap();
        assert_eq!(env.state_hash_full().unwrap(), hash, "round {round}: a restore left spilled bytes behind");
        env.restore(&stepped).unwrap();
        assert_eq!(env.state_hash_full().unwrap(), stepped_hash, "round {round}: a restore missed spilled bytes");
        // A fork into a warm instance copies the bytes the parent spilled, and undoes those the
        // instance spilled in its last life (two steps: into both pages after a marked one).
        let mut child = env.fork().unwrap();
        assert_eq!(child.state_hash_full().unwrap(), stepped_hash, "round {round}: a fork missed spilled bytes");
        child.step(1).unwrap();
        child.step(1).unwrap();
        drop(child);
        let mut child = env.fork().unwrap();
        assert_eq!(child.state_hash_full().unwrap(), stepped_hash, "round {round}: a warm fork kept its own spills");
        env.restore(&start).unwrap();
    }
}
