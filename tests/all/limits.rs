//! Every limit maps to its typed error, in bounded time, with the host alive; a limit error poisons
//! the instance until a restore, and restoring makes it usable again. Also: the sandbox gives no
//! filesystem, environment, arguments or wall clock, and captures output.

use std::time::{Duration, Instant};

use wasmgym::{Env, Error, Limits};
use wasmgym_tests::test_guest;

/// Chaos actions (see tests/guests/chaos).
use chaos::actions as act;

fn chaos(limits: Limits) -> Env {
    let mut env = test_guest("chaos").instantiate_with(limits).unwrap();
    env.reset(Some(1), None).unwrap();
    env
}

/// Runs `action`, expects `check` to accept the error, then proves the poisoned instance refuses
/// calls and comes back to life through a restore.
fn assert_limit(limits: Limits, action: i64, check: impl Fn(&Error) -> bool) {
    let mut env = chaos(limits);
    env.step(act::OK).unwrap();
    let before = env.snapshot().unwrap();
    let started = Instant::now();
    let err = env.step(action).unwrap_err();
    assert!(check(&err), "action {action} gave the wrong error: {err:?}");
    assert!(started.elapsed() < Duration::from_secs(30), "action {action} took {:?}", started.elapsed());
    assert!(err.poisons(), "{err:?} should poison");
    assert!(env.is_poisoned());
    assert!(matches!(env.step(act::OK), Err(Error::Poisoned { .. })), "a poisoned instance accepted a step");
    assert!(matches!(env.snapshot(), Err(Error::Poisoned { .. })));
    env.restore(&before).unwrap();
    assert!(!env.is_poisoned());
    let t = env.step(act::OK).unwrap();
    assert_eq!(t.observation, wasmgym::Observation::I32(vec![2]), "restored state is the snapshot's");
}

#[test]
fn infinite_loop_runs_out_of_fuel() {
    let limits = Limits { fuel_per_call: Some(50_000_000), deadline: None, ..Limits::default() };
    assert_limit(limits, act::INFINITE_LOOP, |e| matches!(e, Error::OutOfFuel { limit: 50_000_000 }));
}

#[test]
fn infinite_loop_hits_the_deadline_without_fuel_limit() {
    let limits = Limits { fuel_per_call: None, deadline: Some(Duration::from_millis(200)), ..Limits::default() };
    assert_limit(limits, act::INFINITE_LOOP, |e| matches!(e, Error::Deadline { limit } if limit.as_millis() == 200));
}

#[test]
fn memory_bomb_hits_the_memory_limit() {
    let limits = Limits { memory_bytes: 32 << 20, ..Limits::default() };
    assert_limit(
        limits,
        act::MEMORY_BOMB,
        |e| matches!(e, Error::MemoryLimit { limit, requested } if *limit == 32 << 20 && *requested > *limit),
    );
}

#[test]
fn unbounded_recursion_overflows_the_stack() {
    assert_limit(Limits::default(), act::RECURSE, |e| matches!(e, Error::StackOverflow { shadow: true }));
}

#[test]
fn output_flood_hits_the_output_limit() {
    let limits = Limits { output_bytes: 64 << 10, ..Limits::default() };
    assert_limit(limits, act::FLOOD_STDOUT, |e| matches!(e, Error::OutputLimit { limit } if *limit == 64 << 10));
}

#[test]
fn panic_is_a_trap_and_its_message_is_captured() {
    let mut env = chaos(Limits::default());
    let err = env.step(act::PANIC).unwrap_err();
    assert!(matches!(&err, Error::Trap { message } if message.contains("unreachable")), "{err:?}");
    let stderr = String::from_utf8_lossy(env.stderr());
    assert!(stderr.contains("chaos asked to panic"), "stderr: {stderr}");
    assert_limit(Limits::default(), act::PANIC, |e| matches!(e, Error::Trap { .. }));
}

#[test]
fn proc_exit_is_reported_with_its_code() {
    assert_limit(Limits::default(), act::EXIT, |e| matches!(e, Error::Exit { code: 3 }));
}

#[test]
fn sleeping_an_hour_ends_at_once() {
    // poll_oneoff is refused, so Rust's sleep fails immediately: no wall clock reaches the guest.
    assert_limit(Limits::default(), act::SLEEP, |e| matches!(e, Error::Trap { .. }));
}

#[test]
fn sandbox_has_no_files_env_args_or_wall_clock() {
    let mut env = chaos(Limits::default());
    let t = env.step(act::PROBE).unwrap();
    let info: serde_json::Value = serde_json::from_str(&t.info).unwrap();
    assert!(info["file_error"].is_string(), "reading /etc/passwd succeeded: {info}");
    assert!(info["parent_dir_error"].is_string(), "listing .. succeeded: {info}");
    assert_eq!(info["env_vars"], 0);
    assert_eq!(info["args"], 0);
    // The virtual clock starts at 0 and moves 1 µs per read: nowhere near the real time.
    let clock = info["clock_ns"].as_u64().unwrap();
    assert!(clock > 0 && clock < 1_000_000, "clock_ns = {clock}");
    // The same probe in a fresh instance reads the same virtual time.
    let again: serde_json::Value =
        serde_json::from_str(&chaos(Limits::default()).step(act::PROBE).unwrap().info).unwrap();
    assert_eq!(info, again);
}

#[test]
fn output_is_captured_and_restored_with_snapshots() {
    let mut env = chaos(Limits::default());
    let empty = env.snapshot().unwrap();
    env.step(act::HELLO).unwrap();
    assert_eq!(env.stdout(), b"hello from chaos\n");
    assert_eq!(env.stderr(), b"warning from chaos\n");
    env.restore(&empty).unwrap();
    assert!(env.stdout().is_empty() && env.stderr().is_empty());
}

#[test]
fn hash_map_order_comes_from_the_seed() {
    let order = |seed| {
        let mut env = test_guest("chaos").instantiate().unwrap();
        env.reset(Some(seed), None).unwrap();
        env.step(act::HASH_ORDER).unwrap().info
    };
    assert_eq!(order(5), order(5));
    assert_ne!(order(5), order(6), "the RNG (and so RandomState) should depend on the seed");
}

#[test]
fn a_limit_error_in_one_instance_leaves_others_untouched() {
    let limits = Limits { fuel_per_call: Some(10_000_000), ..Limits::default() };
    let mut healthy = chaos(limits.clone());
    let mut sick = healthy.fork().unwrap();
    assert!(matches!(sick.step(act::INFINITE_LOOP), Err(Error::OutOfFuel { .. })));
    assert!(healthy.step(act::OK).is_ok());
    assert!(!healthy.is_poisoned());
}

#[test]
fn fuel_use_is_deterministic() {
    let run = || {
        let mut env = chaos(Limits::default());
        for _ in 0..5 {
            env.step(act::OK).unwrap();
        }
        env.fuel_consumed()
    };
    let fuel = run();
    assert!(fuel > 0);
    assert_eq!(fuel, run());
}
