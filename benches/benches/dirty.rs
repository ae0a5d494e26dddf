//! Snapshot costs against memory size and the pages a branch dirties (issue: fork in microseconds
//! at any memory size). The `dirty` test guest allocates N KiB and writes k scattered pages per step.
//!
//! | group            | sandbox                                     | baseline (same group)               |
//! |------------------|---------------------------------------------|-------------------------------------|
//! | `dirty/restore`  | `Env::restore` after one step dirtied k pages | `full_copy`: memcpy of the whole memory |
//! | `dirty/fork`     | `Env::fork` after one step dirtied k pages  | `full_copy`                          |
//! | `dirty/snapshot` | `Env::snapshot` after one step dirtied k pages | `full_copy`                       |
//! | `dirty/state_hash` | `Env::state_hash` after one step dirtied k pages | `state_hash_full` (hashes all memory) |
//!
//! Ids are `dirty/<what>/<memory KiB>/<dirty pages>`. The step that dirties the pages is not timed.

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use wasmgym::{Env, Limits, Snapshot};

const MEMORY_KIB: [u64; 4] = [64, 1024, 16 * 1024, 64 * 1024];
const DIRTY_PAGES: [u64; 4] = [1, 16, 256, 1024];

fn config() -> Criterion {
    Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .sample_size(20)
}

/// An instance of the `dirty` guest with `kib` of memory, one step in, and a snapshot of that state.
fn setup(kib: u64, dirty: u64) -> (Env, Snapshot) {
    let guest = wasmgym_builtin::find_test_guest("dirty").expect("the dirty test guest is built");
    let module = wasmgym_benches::modules().runtime.load(guest.bytes).unwrap();
    let limits = Limits { memory_bytes: 1 << 30, ..Limits::default() };
    let mut env = module.instantiate_with(limits).unwrap();
    let options = format!(r#"{{"memory_kib": {kib}, "dirty_pages": {dirty}}}"#);
    env.reset(Some(1), Some(&options)).unwrap();
    env.step(0).unwrap();
    let snapshot = env.snapshot().unwrap();
    (env, snapshot)
}

/// Times `what` after each untimed step (which dirties the pages), restoring to the snapshot in between.
fn after_step(env: &mut Env, snapshot: &Snapshot, iters: u64, mut what: impl FnMut(&mut Env)) -> Duration {
    let mut total = Duration::ZERO;
    for _ in 0..iters {
        env.restore(snapshot).unwrap();
        env.step(0).unwrap();
        let start = Instant::now();
        what(env);
        total += start.elapsed();
    }
    total
}

fn dirty(c: &mut Criterion) {
    let mut group = c.benchmark_group("dirty");
    for kib in MEMORY_KIB {
        let memory = vec![1u8; kib as usize * 1024];
        let mut target = vec![0u8; memory.len()];
        for dirty in DIRTY_PAGES.into_iter().filter(|&d| d * 4 <= kib) {
            let (mut env, snapshot) = setup(kib, dirty);
            let id = |what: &str| BenchmarkId::new(what, format!("{kib}/{dirty}"));
            group.bench_function(id("restore"), |b| {
                b.iter_custom(|iters| after_step(&mut env, &snapshot, iters, |env| env.restore(&snapshot).unwrap()))
            });
            group.bench_function(id("fork"), |b| {
                b.iter_custom(|iters| {
                    after_step(&mut env, &snapshot, iters, |env| drop(black_box(env.fork().unwrap())))
                })
            });
            group.bench_function(id("snapshot"), |b| {
                b.iter_custom(|iters| {
                    after_step(&mut env, &snapshot, iters, |env| drop(black_box(env.snapshot().unwrap())))
                })
            });
            group.bench_function(id("state_hash"), |b| {
                b.iter_custom(|iters| {
                    after_step(&mut env, &snapshot, iters, |env| {
                        black_box(env.state_hash().unwrap());
                    })
                })
            });
            group.bench_function(id("state_hash_full"), |b| {
                b.iter_custom(|iters| {
                    after_step(&mut env, &snapshot, iters, |env| {
                        black_box(env.state_hash_full().unwrap());
                    })
                })
            });
            group.bench_function(id("full_copy"), |b| b.iter(|| target.copy_from_slice(black_box(&memory))));
        }
    }
    group.finish();
}

criterion_group! { name = benches; config = config(); targets = dirty }
criterion_main!(benches);
