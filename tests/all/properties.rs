//! Property tests: over random (seed, action sequence, branch point, restore order), every
//! snapshot/restore/fork/serialise path gives trajectories bit-identical to replay from reset,
//! including the full machine state (state hash), and forks are independent.
//!
//! Every path makes the same calls (`legal_actions` then `step`), because the guest's memory is a
//! function of the calls it served, not only of the actions: a `legal_actions` call writes the
//! guest's output buffer. The state hash compares that complete machine state.

use proptest::prelude::*;
use proptest::sample::Index;
use wasmgym::check::fingerprint;
use wasmgym::{Env, EnvModule, Snapshot};
use wasmgym_tests::{module, test_guest};

/// One step of a trajectory: the transition's bytes and the hash of the whole state after it.
type Print = (Vec<u8>, [u8; 32]);

/// Picks actions from `choices`: an index into the legal actions, or into `menu` when given.
fn pick(env: &mut Env, choice: u32, menu: Option<&[i64]>) -> Option<i64> {
    let legal = env.legal_actions().unwrap();
    let options = menu.unwrap_or(&legal);
    (!legal.is_empty()).then(|| options[choice as usize % options.len()])
}

/// The hash of the complete machine state, from the live memory (independent of dirty-page
/// tracking), checked against the fast hash that relies on tracking.
fn machine_hash(env: &mut Env) -> [u8; 32] {
    let full = env.state_hash_full().unwrap();
    assert_eq!(env.state_hash().unwrap(), full, "dirty-page tracking missed a write");
    full
}

/// Steps with `action` (after `legal_actions`, as every path does) and records the result.
fn record(env: &mut Env, action: i64) -> Print {
    env.legal_actions().unwrap();
    let t = env.step(action).unwrap();
    (fingerprint(&t), machine_hash(env))
}

/// Applies `actions` and records the trajectory.
fn play(env: &mut Env, actions: &[i64]) -> Vec<Print> {
    actions.iter().map(|&a| record(env, a)).collect()
}

/// Asserts two trajectories are identical, naming the first step where they differ.
#[track_caller]
fn assert_same(got: &[Print], want: &[Print], what: &str) {
    if let Some(i) = (0..got.len().max(want.len())).find(|&i| got.get(i) != want.get(i)) {
        let part = |p: Option<&Print>| p.map(|(t, h)| format!("transition {t:?}, state hash {:02x?}", &h[..6]));
        panic!("{what}: step {i} differs\n got: {:?}\nwant: {:?}", part(got.get(i)), part(want.get(i)));
    }
}

pub(crate) fn branches_match_replay(
    m: &EnvModule,
    seed: u64,
    choices: &[u32],
    cut: Index,
    order: &[Index],
    menu: Option<&[i64]>,
) {
    // The original run, with a snapshot before every action.
    let mut env = m.instantiate().unwrap();
    env.reset(Some(seed), None).unwrap();
    let mut snapshots = vec![env.snapshot().unwrap()];
    let mut actions = Vec::new();
    let mut prints = Vec::new();
    for &c in choices {
        let Some(a) = pick(&mut env, c, menu) else { break };
        actions.push(a);
        let t = env.step(a).unwrap();
        prints.push((fingerprint(&t), machine_hash(&mut env)));
        snapshots.push(env.snapshot().unwrap());
        if !env.is_running() {
            break;
        }
    }

    // Replay from reset in a fresh instance is the reference.
    let mut replay = m.instantiate().unwrap();
    replay.reset(Some(seed), None).unwrap();
    assert_same(&play(&mut replay, &actions), &prints, "replay from reset");

    let k = cut.index(actions.len() + 1);
    let suffix = &prints[k..];

    // Restore into the instance that played on.
    env.restore(&snapshots[k]).unwrap();
    assert_eq!(env.snapshot().unwrap().to_bytes(), snapshots[k].to_bytes(), "restore is not exact");
    let mut fork = env.fork().unwrap();
    // A sibling fork that diverges must not disturb either.
    let mut sibling = env.fork().unwrap();
    for c in choices.iter().rev().take(3) {
        match pick(&mut sibling, c.wrapping_mul(7).wrapping_add(1), menu) {
            Some(a) if sibling.is_running() => drop(sibling.step(a).unwrap()),
            _ => break,
        }
    }
    assert_same(&play(&mut env, &actions[k..]), suffix, &format!("restore at {k}"));
    assert_same(&play(&mut fork, &actions[k..]), suffix, &format!("fork at {k}"));

    // Through bytes, into a fresh instance.
    let decoded = Snapshot::from_bytes(&snapshots[k].to_bytes()).unwrap();
    let mut fresh = m.instantiate().unwrap();
    fresh.restore(&decoded).unwrap();
    assert_same(&play(&mut fresh, &actions[k..]), suffix, &format!("serialised snapshot at {k}"));
    // Through bytes written against the module's initial memory (format 3).
    let decoded = m.snapshot_from_bytes(&m.snapshot_to_bytes(&snapshots[k]).unwrap()).unwrap();
    let mut fresh = m.instantiate().unwrap();
    fresh.restore(&decoded).unwrap();
    assert_same(&play(&mut fresh, &actions[k..]), suffix, &format!("snapshot serialised against the module at {k}"));

    // A tree of snapshots: restore to ancestors and siblings in any order, each stays exact.
    for idx in order {
        let j = idx.index(actions.len() + 1);
        env.restore(&snapshots[j]).unwrap();
        let n = (actions.len() - j).min(3);
        assert_same(&play(&mut env, &actions[j..j + n]), &prints[j..j + n], &format!("restore to {j} in a tree"));
    }
}

pub(crate) fn config(cases: u32) -> ProptestConfig {
    ProptestConfig { cases, failure_persistence: None, ..ProptestConfig::default() }
}

proptest! {
    #![proptest_config(config(24))]

    #[test]
    fn tic_tac_toe_branches_match_replay(seed: u64, choices in prop::collection::vec(any::<u32>(), 0..12), cut: Index, order in prop::collection::vec(any::<Index>(), 1..6)) {
        branches_match_replay(&module("tic_tac_toe"), seed, &choices, cut, &order, None);
    }

    #[test]
    fn connect_four_branches_match_replay(seed: u64, choices in prop::collection::vec(any::<u32>(), 0..45), cut: Index, order in prop::collection::vec(any::<Index>(), 1..6)) {
        branches_match_replay(&module("connect_four"), seed, &choices, cut, &order, None);
    }

    #[test]
    fn cart_pole_branches_match_replay(seed: u64, choices in prop::collection::vec(any::<u32>(), 0..60), cut: Index, order in prop::collection::vec(any::<Index>(), 1..6)) {
        branches_match_replay(&module("cart_pole"), seed, &choices, cut, &order, None);
    }

    #[test]
    fn bandit_branches_match_replay(seed: u64, choices in prop::collection::vec(any::<u32>(), 0..25), cut: Index, order in prop::collection::vec(any::<Index>(), 1..6)) {
        branches_match_replay(&module("bandit"), seed, &choices, cut, &order, None);
    }
}

proptest! {
    #![proptest_config(config(12))]

    /// Memory grows (8 MiB per GROW) between snapshots, so restores go to smaller and larger
    /// memories; the RNG is drawn (HASH_ORDER) so its state must travel with the snapshot.
    #[test]
    fn chaos_branches_match_replay_across_memory_growth(seed: u64, choices in prop::collection::vec(any::<u32>(), 1..10), cut: Index, order in prop::collection::vec(any::<Index>(), 1..6)) {
        const OK: i64 = 0;
        const HASH_ORDER: i64 = 10;
        const GROW: i64 = 11;
        branches_match_replay(&test_guest("chaos"), seed, &choices, cut, &order, Some(&[OK, GROW, HASH_ORDER]));
    }
}

/// A snapshot's bytes restore in another process (a fresh runtime and compilation) to the same
/// trajectory and the same machine state.
#[test]
fn snapshots_restore_in_another_process() {
    let m = module("connect_four");
    let mut env = m.instantiate().unwrap();
    env.reset(Some(11), None).unwrap();
    for a in [3, 3, 2, 4] {
        env.step(a).unwrap();
    }
    let path = std::env::temp_dir().join(format!("wasmgym-snapshot-{}.bin", std::process::id()));
    // Written against the module's initial memory: the other process's module supplies it.
    std::fs::write(&path, m.snapshot_to_bytes(&env.snapshot().unwrap()).unwrap()).unwrap();
    let actions = [1i64, 5, 6, 0, 6];
    let expected: Vec<String> = actions
        .iter()
        .map(|&a| {
            let t = env.step(a).unwrap();
            let hex = |b: &[u8]| b.iter().map(|x| format!("{x:02x}")).collect::<String>();
            format!("{} {}", hex(&fingerprint(&t)), hex(&env.state_hash_full().unwrap()))
        })
        .collect();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_restore-snapshot"))
        .arg("connect_four")
        .arg(&path)
        .args(actions.iter().map(|a| a.to_string()))
        .output()
        .unwrap();
    std::fs::remove_file(&path).ok();
    assert!(out.status.success(), "child failed: {}", String::from_utf8_lossy(&out.stderr));
    let got: Vec<String> = String::from_utf8(out.stdout).unwrap().lines().map(str::to_owned).collect();
    assert_eq!(got, expected);
}

proptest! {
    #![proptest_config(config(16))]

    /// Restores straight after restores (no guest call between) write only the pages on which the
    /// snapshots differ; each must still give exactly the machine state the snapshot was taken in.
    #[test]
    fn restore_chains_without_steps_are_exact(seed: u64, order in prop::collection::vec(any::<Index>(), 1..12)) {
        let m = test_guest("chaos");
        let mut env = m.instantiate().unwrap();
        env.reset(Some(seed), None).unwrap();
        let mut snapshots = Vec::new();
        // OK, GROW (8 MiB more memory), HASH_ORDER (draws from the RNG), ...
        for action in [0, 11, 10, 0, 11, 10] {
            env.step(action).unwrap();
            snapshots.push((env.snapshot().unwrap(), machine_hash(&mut env)));
        }
        let mut fresh = m.instantiate().unwrap();
        for idx in &order {
            let (snapshot, hash) = &snapshots[idx.index(snapshots.len())];
            env.restore(snapshot).unwrap();
            prop_assert_eq!(machine_hash(&mut env), *hash);
            fresh.restore(snapshot).unwrap();
            prop_assert_eq!(machine_hash(&mut fresh), *hash);
        }
    }
}

/// A runtime without dirty-page tracking: restores and snapshots compare pages instead.
fn untracked_runtime() -> &'static wasmgym::Runtime {
    static RUNTIME: std::sync::OnceLock<wasmgym::Runtime> = std::sync::OnceLock::new();
    RUNTIME.get_or_init(|| {
        let config = wasmgym::RuntimeConfig { track_dirty_pages: false, ..Default::default() };
        wasmgym::Runtime::with_config(config).unwrap()
    })
}

/// Without dirty-page tracking, the conformance suite still passes.
#[test]
fn untracked_runtime_passes_the_conformance_suite() {
    for name in ["connect_four", "cart_pole", "bandit"] {
        let module = untracked_runtime().load(wasmgym_builtin::find(name).unwrap().bytes).unwrap();
        let report = wasmgym::check::run(&module, &wasmgym::check::CheckOptions { episodes: 6, ..Default::default() });
        assert!(report.passed, "{name}: {report:#?}");
    }
}

proptest! {
    #![proptest_config(config(8))]

    /// Without dirty-page tracking, branches across memory growth still match replay.
    #[test]
    fn untracked_chaos_branches_match_replay(seed: u64, choices in prop::collection::vec(any::<u32>(), 1..8), cut: Index, order in prop::collection::vec(any::<Index>(), 1..4)) {
        let chaos = untracked_runtime().load(wasmgym_builtin::find_test_guest("chaos").unwrap().bytes).unwrap();
        branches_match_replay(&chaos, seed, &choices, cut, &order, Some(&[0, 11, 10]));
    }
}

/// Regression: the request bytes the host writes into guest memory before each call must be in the
/// next snapshot. This guest writes no memory at all and takes requests in page 8, so only the host's
/// own record of its write can put them there.
#[test]
fn host_written_request_bytes_are_in_snapshots() {
    let wat =
        crate::bad_input::stub("1", "(i64.const 17592186044443)", "").replace("i32.const 1024)", "i32.const 32768)");
    let m = wasmgym_tests::runtime().load(wat.as_bytes()).unwrap();
    let mut env = m.instantiate().unwrap();
    env.reset(Some(1), None).unwrap();
    env.snapshot().unwrap();
    env.step(1).unwrap(); // the host writes the action over the reset request's bytes
    let after_step = env.snapshot().unwrap();
    let mut fresh = m.instantiate().unwrap();
    fresh.restore(&after_step).unwrap();
    assert_eq!(fresh.state_hash_full().unwrap(), env.state_hash_full().unwrap(), "the snapshot lost a host write");
}

/// `step_and_legal_actions` (one call into the guest through `wasmgym_step_actions`) gives the
/// transitions and legal actions of `step` then `legal_actions`, on every built-in environment;
/// dirty-page tracking sees its writes, and a fork taken between its steps goes on exactly.
#[test]
fn step_and_legal_actions_is_step_then_legal_actions() {
    for name in wasmgym_tests::all_envs() {
        let m = module(name);
        if !matches!(m.spec().action_space, wasmgym::Space::Discrete { .. }) {
            continue;
        }
        for seed in 0..4u64 {
            let (mut one, mut two) = (m.instantiate().unwrap(), m.instantiate().unwrap());
            one.reset(Some(seed), None).unwrap();
            two.reset(Some(seed), None).unwrap();
            let mut legal = two.legal_actions().unwrap();
            let mut rng = wasmgym_abi::rng::Rng::seed_from_u64(seed);
            for step in 0..40 {
                if legal.is_empty() {
                    break;
                }
                let action = legal[wasmgym_abi::wire::rollout_pick(&mut rng, legal.len())];
                let mut fork = (step == 3).then(|| one.fork().unwrap());
                let (t, after) = one.step_and_legal_actions(action).unwrap();
                let want = two.step(action).unwrap();
                legal = if want.done() { Vec::new() } else { two.legal_actions().unwrap() };
                assert_eq!((fingerprint(&t), &after), (fingerprint(&want), &legal), "{name} seed {seed} step {step}");
                machine_hash(&mut one);
                if let Some(fork) = fork.as_mut() {
                    let (t, again) = fork.step_and_legal_actions(action).unwrap();
                    assert_eq!((fingerprint(&t), again), (fingerprint(&want), after), "{name}: the fork differs");
                    assert_eq!(machine_hash(fork), machine_hash(&mut one), "{name}: the fork's state differs");
                }
            }
            assert_eq!(one.steps(), two.steps());
        }
    }
}
