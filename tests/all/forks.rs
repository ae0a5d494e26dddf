//! Copy-on-write forks, the memory account and the runtime's memory cap (issue: fork at any
//! memory size). A fork of a large environment maps its parent's memory copy-on-write, so it holds
//! the pages it writes; the runtime counts what its instances hold and refuses, with a typed error,
//! what would take it past its cap.

use proptest::prelude::*;
use proptest::sample::Index;
use wasmgym::{Env, EnvModule, Error, Limits, Runtime, RuntimeConfig};

use crate::properties::{branches_match_replay, config};

const SIXTEEN_MIB: &str = r#"{"memory_kib": 16384, "dirty_pages": 2}"#;

fn runtime_with(config: RuntimeConfig) -> Runtime {
    Runtime::with_config(config).unwrap()
}

fn load(runtime: &Runtime, guest: &str) -> EnvModule {
    let found = wasmgym_builtin::find(guest).or_else(|| wasmgym_builtin::find_test_guest(guest)).unwrap();
    runtime.load(found.bytes).unwrap()
}

/// A runtime whose every fork maps its parent's memory copy-on-write into a new instance.
fn cow_runtime() -> &'static Runtime {
    static RUNTIME: std::sync::OnceLock<Runtime> = std::sync::OnceLock::new();
    RUNTIME.get_or_init(|| {
        runtime_with(RuntimeConfig { instance_pool: 0, cow_fork_min_bytes: 0, instance_slots: 0, ..Default::default() })
    })
}

/// A runtime whose every fork is a new instance, in one of three pooled slots while one is free
/// (copying its parent's changed pages into memory a dropped instance left) and created on demand
/// past them.
fn slot_runtime() -> &'static Runtime {
    static RUNTIME: std::sync::OnceLock<Runtime> = std::sync::OnceLock::new();
    RUNTIME.get_or_init(|| runtime_with(RuntimeConfig { instance_pool: 0, instance_slots: 3, ..Default::default() }))
}

/// A runtime whose forks of large states map their parent's memory copy-on-write into one of three
/// pooled slots while one is free.
fn mapped_slot_runtime() -> &'static Runtime {
    static RUNTIME: std::sync::OnceLock<Runtime> = std::sync::OnceLock::new();
    RUNTIME.get_or_init(|| runtime_with(RuntimeConfig { instance_pool: 0, instance_slots: 3, ..Default::default() }))
}

/// Whether `env` maps a memfd copy-on-write: it is charged for fewer bytes than its memory.
fn maps_its_memory(env: &Env) -> bool {
    env.resident_bytes() < env.memory_bytes()
}

proptest! {
    #![proptest_config(config(12))]

    /// Forks of a 1 MiB state mapped into pooled slots (forks of forks too) give the states replay
    /// from reset gives, and dropping them in any order leaves the slots clean for the next.
    #[test]
    fn forks_mapped_into_slots_match_replay(seed: u64, steps in 0usize..4, more in prop::collection::vec(0usize..3, 1..4)) {
        const ONE_MIB: &str = r#"{"memory_kib": 1024, "dirty_pages": 3}"#;
        let m = load(mapped_slot_runtime(), "dirty");
        let mut env = m.instantiate().unwrap();
        env.reset(Some(seed), Some(ONE_MIB)).unwrap();
        let mut done = 0;
        for &n in &more {
            for _ in 0..steps + n {
                env.step(0).unwrap();
            }
            done += steps + n;
            let fork = env.fork().unwrap();
            prop_assert!(fork.in_slot() && maps_its_memory(&fork), "the fork maps its parent's memory into a slot");
            drop(std::mem::replace(&mut env, fork));
        }
        env.step(0).unwrap();
        let mut replay = m.instantiate().unwrap();
        replay.reset(Some(seed), Some(ONE_MIB)).unwrap();
        for _ in 0..=done {
            replay.step(0).unwrap();
        }
        prop_assert_eq!(env.state_hash_full().unwrap(), replay.state_hash_full().unwrap());
        prop_assert_eq!(env.state_hash().unwrap(), replay.state_hash().unwrap());
    }

    /// Copy-on-write forks (every fork, of every size) give trajectories identical to replay.
    #[test]
    fn cow_forks_of_every_env_match_replay(env in 0usize..4, seed: u64, choices in prop::collection::vec(any::<u32>(), 0..40), cut: Index, order in prop::collection::vec(any::<Index>(), 1..5)) {
        let name = ["tic_tac_toe", "connect_four", "cart_pole", "bandit"][env];
        branches_match_replay(&load(cow_runtime(), name), seed, &choices, cut, &order, None);
    }

    /// Forks into pooled slots (reset by wasmtime between instances) and past them give
    /// trajectories identical to replay.
    #[test]
    fn slotted_forks_of_every_env_match_replay(env in 0usize..5, seed: u64, choices in prop::collection::vec(any::<u32>(), 0..40), cut: Index, order in prop::collection::vec(any::<Index>(), 1..5)) {
        let name = ["tic_tac_toe", "connect_four", "cart_pole", "bandit", "chaos"][env];
        // chaos: steps that succeed, grow memory, and hash in an order-dependent way.
        let actions: Option<&[i64]> = if name == "chaos" { Some(&[0, 11, 10]) } else { None };
        branches_match_replay(&load(slot_runtime(), name), seed, &choices, cut, &order, actions);
    }

    /// Memory grows between snapshots: forks map grown images and grow past their mapping.
    #[test]
    fn cow_forks_match_replay_across_memory_growth(seed: u64, choices in prop::collection::vec(any::<u32>(), 1..10), cut: Index, order in prop::collection::vec(any::<Index>(), 1..5)) {
        branches_match_replay(&load(cow_runtime(), "chaos"), seed, &choices, cut, &order, Some(&[0, 11, 10]));
    }
}

/// A slot a dropped instance gave back holds nothing of it: the next instance in it starts from the
/// module's initial state, bit for bit what an instance created on demand starts from; forks past
/// the slots are created on demand and are exact too.
#[test]
fn a_reused_slot_starts_clean_and_forks_past_the_slots_are_exact() {
    let slotted =
        load(&runtime_with(RuntimeConfig { instance_pool: 0, instance_slots: 1, ..Default::default() }), "dirty");
    let on_demand = load(&runtime_with(RuntimeConfig { instance_slots: 0, ..Default::default() }), "dirty");
    let fresh = on_demand.instantiate().unwrap();
    assert!(!fresh.in_slot());
    let mut fresh = fresh;
    let initial = fresh.state_hash_full().unwrap();
    for round in 0..4u64 {
        let mut env = slotted.instantiate().unwrap();
        assert!(env.in_slot(), "round {round}: the only slot is free again");
        assert_eq!(env.state_hash_full().unwrap(), initial, "round {round}: the slot kept a dropped instance's state");
        env.reset(Some(round), Some(r#"{"memory_kib": 256, "dirty_pages": 8}"#)).unwrap();
        env.step(0).unwrap();
        let mut fork = env.fork().unwrap();
        assert!(!fork.in_slot(), "the only slot is taken");
        assert_eq!(fork.state_hash_full().unwrap(), env.state_hash_full().unwrap());
        let (a, b) = (env.step(0).unwrap(), fork.step(0).unwrap());
        assert_eq!(a.observation, b.observation);
        assert_eq!(env.state_hash_full().unwrap(), fork.state_hash_full().unwrap());
    }
}

/// A slot a fork mapped a memfd into is put back as wasmtime left it: the next instances in it, of
/// the same module or another, start from their initial state bit for bit.
#[test]
fn a_slot_a_fork_mapped_into_starts_clean_for_any_module() {
    let runtime = runtime_with(RuntimeConfig { instance_pool: 0, instance_slots: 2, ..Default::default() });
    let (dirty, other) = (load(&runtime, "dirty"), load(&runtime, "connect_four"));
    let on_demand = runtime_with(RuntimeConfig { instance_slots: 0, ..Default::default() });
    let initial = |name| load(&on_demand, name).instantiate().unwrap().state_hash_full().unwrap();
    let (dirty_initial, other_initial) = (initial("dirty"), initial("connect_four"));
    for round in 0..3u64 {
        let mut parent = dirty.instantiate().unwrap();
        parent.reset(Some(round), Some(r#"{"memory_kib": 1024, "dirty_pages": 4}"#)).unwrap();
        parent.step(0).unwrap();
        let mut fork = parent.fork().unwrap();
        assert!(fork.in_slot() && maps_its_memory(&fork), "round {round}: the fork maps its memory into a slot");
        assert_eq!(fork.state_hash_full().unwrap(), parent.state_hash_full().unwrap());
        fork.step(0).unwrap();
        parent.step(0).unwrap();
        assert_eq!(fork.state_hash_full().unwrap(), parent.state_hash_full().unwrap());
        drop((fork, parent));
        // Two instances take both slots, so one of them is the slot the fork had.
        for (m, want) in [(&other, other_initial), (&dirty, dirty_initial)] {
            let mut both = [m.instantiate().unwrap(), m.instantiate().unwrap()];
            for env in &mut both {
                assert!(env.in_slot());
                assert_eq!(env.state_hash_full().unwrap(), want, "round {round}: a slot kept a fork's memory");
            }
        }
    }
}

/// A module whose start function writes memory: wasmtime's image of its data is not the memory an
/// instance starts with, so forks map only into instances created on demand, and the slots stay as
/// wasmtime left them.
#[test]
fn forks_of_a_module_whose_start_function_writes_memory_map_outside_the_slots() {
    // Each step writes a word in each of 100 pages, so a fork maps its parent's memory; the start
    // function adds one to a byte of the data image.
    let step = r"(local $i i32)
        (loop $pages
          (i32.store (i32.add (i32.const 8192) (i32.mul (local.get $i) (i32.const 4096))) (i32.const 7))
          (local.set $i (i32.add (local.get $i) (i32.const 1)))
          (br_if $pages (i32.lt_u (local.get $i) (i32.const 100))))
        (i64.const 17592186044443)";
    let start = r"(func $bump (i32.store8 (i32.const 4300) (i32.add (i32.load8_u (i32.const 4300)) (i32.const 1))))
        (start $bump)";
    let wat = crate::bad_input::stub("40", step, start);
    let runtime = runtime_with(RuntimeConfig { instance_pool: 0, instance_slots: 2, ..Default::default() });
    let m = runtime.load(wat.as_bytes()).unwrap();
    let on_demand = runtime_with(RuntimeConfig { instance_slots: 0, ..Default::default() });
    let fresh = on_demand.load(wat.as_bytes()).unwrap().instantiate().unwrap().state_hash_full().unwrap();
    for round in 0..3 {
        let mut parent = m.instantiate().unwrap();
        parent.reset(Some(round), None).unwrap();
        parent.step(0).unwrap();
        let mut fork = parent.fork().unwrap();
        // The first fork into a slot finds out, and is copied into it.
        if round > 0 {
            assert!(!fork.in_slot() && maps_its_memory(&fork), "round {round}: the fork maps on demand");
        }
        assert_eq!(fork.state_hash_full().unwrap(), parent.state_hash_full().unwrap());
        drop((fork, parent));
        let mut both = [m.instantiate().unwrap(), m.instantiate().unwrap()];
        for env in &mut both {
            assert!(env.in_slot());
            assert_eq!(env.state_hash_full().unwrap(), fresh, "round {round}: a slot is not as wasmtime left it");
        }
    }
}

/// A fork of a 16 MiB environment holds what it writes: the kernel's count of the process's memory
/// grows by far less than the memory size per fork, and the fork's trajectory is exact.
#[test]
fn cow_fork_holds_only_what_it_writes_and_stays_exact() {
    let m = load(cow_runtime(), "dirty");
    let mut parent = m.instantiate().unwrap();
    parent.reset(Some(3), Some(SIXTEEN_MIB)).unwrap();
    parent.step(0).unwrap();
    let snapshot = parent.snapshot().unwrap();
    let warm = parent.fork().unwrap(); // the image's memfd is written once, here
    let mut forks: Vec<Env> = (0..64).map(|_| parent.fork().unwrap()).collect();
    for fork in &mut forks {
        fork.step(0).unwrap();
    }
    // Each fork is charged for what it wrote, far from 16 MiB (the kernel's count is checked in a
    // quiet process by the 10,000-fork test).
    assert!(forks.iter().all(|f| f.resident_bytes() < 256 << 10), "{:?}", forks[0].resident_bytes());

    // Every fork is in the state of the parent after one more step, and writing one leaves the
    // parent, its image and the other forks alone.
    parent.step(0).unwrap();
    let want = parent.state_hash_full().unwrap();
    forks[0].step(0).unwrap();
    for fork in &mut forks[1..] {
        assert_eq!(fork.state_hash().unwrap(), want);
        assert_eq!(fork.state_hash_full().unwrap(), want);
    }
    let mut replay = m.instantiate().unwrap();
    replay.reset(Some(3), Some(SIXTEEN_MIB)).unwrap();
    replay.step(0).unwrap();
    replay.step(0).unwrap();
    assert_eq!(replay.state_hash_full().unwrap(), want, "forks and parent differ from replay from reset");
    parent.restore(&snapshot).unwrap();
    drop(warm);
}

/// A fork writes into its mapping only the pages whose bytes differ from the file's: the mapped
/// state reached again and captured anew (its pages new copies with the same bytes) shares every
/// page with the file, as the fork that wrote the file does.
#[test]
fn a_fork_of_the_mapped_state_reached_again_shares_all_its_pages() {
    let m = load(cow_runtime(), "dirty");
    let mut parent = m.instantiate().unwrap();
    parent.reset(Some(1), Some(r#"{"memory_kib": 1024, "dirty_pages": 2}"#)).unwrap();
    let start = parent.snapshot().unwrap();
    parent.step(0).unwrap();
    let first = parent.fork().unwrap(); // writes the memfd of this state
    parent.restore(&start).unwrap();
    parent.step(0).unwrap();
    let mut second = parent.fork().unwrap();
    assert_eq!(second.state_hash_full().unwrap(), parent.state_hash_full().unwrap());
    assert_eq!(second.state_hash().unwrap(), parent.state_hash().unwrap());
    assert_eq!(second.resident_bytes(), first.resident_bytes(), "the second fork copied pages equal to the file's");
}

/// Forks of states that each differ from the last mapped file on many pages copy into pooled slots
/// instead of writing a new file per fork (which costs more: 1 MiB with 256 changed pages, 630 µs
/// against 270 µs), and try a new file again after eight copies, then sixteen, while the files
/// serve no other fork; either way they are exact.
#[test]
fn forks_of_ever_changing_states_copy_instead_of_writing_a_file_each() {
    let runtime = runtime_with(RuntimeConfig { instance_pool: 0, cow_fork_min_bytes: 0, ..Default::default() });
    let m = load(&runtime, "dirty");
    let mut parent = m.instantiate().unwrap();
    parent.reset(Some(1), Some(r#"{"memory_kib": 1024, "dirty_pages": 256}"#)).unwrap();
    let mut mapped = Vec::new();
    for _ in 0..30 {
        parent.step(0).unwrap();
        let mut fork = parent.fork().unwrap();
        assert_eq!(fork.state_hash_full().unwrap(), parent.state_hash_full().unwrap());
        mapped.push(maps_its_memory(&fork));
    }
    let files: Vec<usize> = (0..mapped.len()).filter(|&i| mapped[i]).collect();
    assert_eq!(files, [0, 9, 26], "a new file after 8 copies, then after 16");
}

/// The issue's scale test: 10,000 live forks of an environment with 16 MiB of linear memory, held
/// at once under a memory cap, each stepped once; memory returns when they are dropped. Measured in
/// a process of its own (`live-forks`), so other tests do not move the kernel's count.
#[test]
fn ten_thousand_live_forks_of_a_16_mib_environment() {
    let out =
        std::process::Command::new(env!("CARGO_BIN_EXE_live-forks")).args(["10000", "16384", "4096"]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    eprintln!("{report:#}");
    let get = |key: &str| report[key].as_u64().unwrap_or_else(|| panic!("{key} in {report}"));
    assert_eq!(get("forks"), 10_000);
    assert!(get("memory_bytes") >= 16 << 20);
    // The kernel's count: each fork holds tens of KiB of a 16 MiB memory, not 16 MiB.
    assert!(get("pss_bytes_per_fork_created") <= 32 << 10, "{report}");
    assert!(get("pss_bytes_per_fork_stepped") <= 128 << 10, "{report}");
    // The charge against the cap covers what the kernel counts, so the cap bounds real memory.
    assert!(get("charged_bytes_per_fork_stepped") >= get("pss_bytes_per_fork_stepped"), "{report}");
    assert!(get("charged_bytes_stepped") <= get("cap_bytes"), "{report}");
    assert!(get("forks_checked") > 100 && get("forks_exact") == get("forks_checked"), "{report}");
    // Dropping the forks gives back all they held; the parent keeps the image for its next forks,
    // and dropping it too empties the account.
    assert_eq!(get("in_use_after_drop"), get("in_use_with_image"), "memory did not return when the forks were dropped");
    assert_eq!(get("in_use_at_end"), 0, "{report}");
}

/// Past the cap a fork gets `Error::MemoryCap`, nothing is created and the parent goes on; dropping
/// forks gives their memory back, and forking works again.
#[test]
fn forks_past_the_cap_get_a_typed_error_and_memory_returns_on_drop() {
    let runtime = runtime_with(RuntimeConfig { memory_cap: Some(64 << 20), instance_pool: 0, ..Default::default() });
    let m = load(&runtime, "dirty");
    let mut parent = m.instantiate().unwrap();
    parent.reset(Some(5), Some(SIXTEEN_MIB)).unwrap();
    let idle = runtime.memory_in_use();
    let mut forks = Vec::new();
    let err = loop {
        match parent.fork() {
            Ok(fork) => forks.push(fork),
            Err(e) => break e,
        }
        assert!(forks.len() < 100_000, "the cap never stopped forks");
    };
    assert!(matches!(err, Error::MemoryCap { cap, .. } if cap == 64 << 20), "{err:?}");
    assert_eq!(err.kind(), "memory_cap");
    assert!(err.to_string().contains("RuntimeConfig::memory_cap"), "{err}");
    assert!(forks.len() > 100, "only {} forks of a 16 MiB env fit in 64 MiB", forks.len());
    assert!(runtime.memory_in_use() <= 64 << 20);
    parent.snapshot().unwrap(); // the parent is unharmed
    let in_use = runtime.memory_in_use();
    forks.truncate(forks.len() / 2);
    assert!(runtime.memory_in_use() < in_use);
    forks.push(parent.fork().unwrap());
    forks.clear();
    // What is left is the parent and the image it keeps for its next forks; dropping it empties
    // the account.
    // (its memory, that state's snapshot pages and the memfd: about three times its memory)
    assert!(runtime.memory_in_use() > idle && runtime.memory_in_use() <= 4 * idle, "{}", runtime.memory_in_use());
    drop(parent);
    assert_eq!(runtime.memory_in_use(), 0);
}

/// Warm instances kept for reuse give way when the cap is reached: forks dropped into the pool do
/// not lower how many forks fit next time.
#[test]
fn warm_instances_give_way_to_new_forks_at_the_cap() {
    let runtime = runtime_with(RuntimeConfig { memory_cap: Some(64 << 20), instance_pool: 32, ..Default::default() });
    let m = load(&runtime, "dirty");
    let mut parent = m.instantiate().unwrap();
    parent.reset(Some(5), Some(SIXTEEN_MIB)).unwrap();
    let fill = |parent: &mut Env| {
        let mut forks = Vec::new();
        while let Ok(mut fork) = parent.fork() {
            fork.step(0).unwrap();
            forks.push(fork);
        }
        forks
    };
    let first = fill(&mut parent).len();
    let second = fill(&mut parent).len();
    assert!(first > 100 && second + 1 >= first, "{first} forks fitted, then {second}");
}

/// A call that writes or grows memory past the cap fails with `Error::MemoryCap` and poisons the
/// instance; restoring a snapshot makes it usable again.
#[test]
fn calls_past_the_cap_fail_typed_and_restore_recovers() {
    let runtime = runtime_with(RuntimeConfig { memory_cap: Some(60 << 20), ..Default::default() });
    let m = load(&runtime, "dirty");
    let mut parent = m.instantiate().unwrap();
    parent.reset(Some(5), Some(r#"{"memory_kib": 16384, "dirty_pages": 4096}"#)).unwrap();
    let mut fork = parent.fork().unwrap();
    let at_fork = fork.snapshot().unwrap();
    // Rewriting all 16 MiB privately does not fit beside the parent and its image.
    let err = fork.step(0).unwrap_err();
    assert!(matches!(err, Error::MemoryCap { .. }), "{err:?}");
    assert!(matches!(fork.step(0), Err(Error::Poisoned { .. })));
    let written = fork.resident_bytes();
    fork.restore(&at_fork).unwrap();
    assert!(written > 16 << 20 && fork.resident_bytes() < 1 << 20, "{written} then {}", fork.resident_bytes());
    fork.step(0).unwrap_err(); // the same step again: the same error, not a crash
    fork.restore(&at_fork).unwrap();
    parent.step(0).unwrap();

    // Growing memory past the cap inside a call: the same typed error, before the limit is reached.
    let chaos = load(&runtime, "chaos");
    let mut env = chaos.instantiate_with(Limits { memory_bytes: 1 << 30, ..Limits::default() }).unwrap();
    env.reset(Some(1), None).unwrap();
    let before = env.snapshot().unwrap();
    let err = env.step(2).unwrap_err(); // MEMORY_BOMB
    assert!(matches!(err, Error::MemoryCap { .. }), "{err:?}");
    env.restore(&before).unwrap();
    env.step(0).unwrap();
}

/// Traps in a copy-on-write fork are reported as the right typed errors, and a fork refuses a
/// snapshot of another module without harm.
#[test]
fn cow_forks_report_traps_and_refuse_foreign_snapshots() {
    let chaos = load(cow_runtime(), "chaos");
    let mut parent = chaos.instantiate_with(Limits { fuel_per_call: Some(50_000_000), ..Limits::default() }).unwrap();
    parent.reset(Some(1), None).unwrap();
    type Expect = fn(&Error) -> bool;
    let cases: [(i64, Expect); 3] = [
        (5, |e| matches!(e, Error::Trap { .. })),                     // PANIC
        (3, |e| matches!(e, Error::StackOverflow { .. })),            // RECURSE
        (1, |e| matches!(e, Error::OutOfFuel { limit: 50_000_000 })), // INFINITE_LOOP
    ];
    for (action, expected) in cases {
        let mut fork = parent.fork().unwrap();
        let err = fork.step(action).unwrap_err();
        assert!(expected(&err), "action {action}: {err:?}");
    }
    let mut fork = parent.fork().unwrap();
    let mut other = load(cow_runtime(), "connect_four").instantiate().unwrap();
    other.reset(Some(1), None).unwrap();
    let err = fork.restore(&other.snapshot().unwrap()).unwrap_err();
    assert!(matches!(err, Error::BadSnapshot { .. }), "{err:?}");
    fork.step(0).unwrap();
    parent.step(0).unwrap();
    assert_eq!(fork.state_hash_full().unwrap(), parent.state_hash_full().unwrap());
}

/// Snapshots count against the cap (each stored page once, however many snapshots share it): past
/// it `snapshot` gets `Error::MemoryCap` and the instance goes on; dropped snapshots give their pages
/// back.
#[test]
fn snapshots_count_against_the_cap_and_return_memory_when_dropped() {
    let runtime = runtime_with(RuntimeConfig { memory_cap: Some(64 << 20), instance_pool: 0, ..Default::default() });
    let m = load(&runtime, "dirty");
    let mut env = m.instantiate().unwrap();
    env.reset(Some(5), Some(r#"{"memory_kib": 16384, "dirty_pages": 256}"#)).unwrap();
    let before = runtime.memory_in_use();
    let mut snapshots = vec![env.snapshot().unwrap()];
    assert!(runtime.memory_in_use() >= before + (16 << 20), "a first snapshot stores 16 MiB of pages");
    let err = loop {
        env.step(0).unwrap();
        match env.snapshot() {
            Ok(s) => snapshots.push(s),
            Err(e) => break e,
        }
        assert!(snapshots.len() < 1000, "the cap never stopped snapshots");
    };
    assert!(matches!(err, Error::MemoryCap { .. }), "{err:?}");
    assert!(snapshots.len() > 5, "{} snapshots", snapshots.len());
    // Snapshots share pages: the last one costs its step's pages, not 16 MiB.
    let in_use = runtime.memory_in_use();
    snapshots.truncate(snapshots.len() / 2);
    assert!(runtime.memory_in_use() < in_use);
    env.step(0).unwrap();
    snapshots.push(env.snapshot().unwrap());
    env.restore(&snapshots[0]).unwrap();
    drop(snapshots);
    drop(env);
    assert_eq!(runtime.memory_in_use(), 0);
}
