//! Snapshot costs against memory size and the pages a branch dirties (issue: fork in microseconds
//! at any memory size). The `dirty` test guest allocates N KiB and writes k scattered pages per step.
//!
//! | group            | sandbox                                     | baseline (same group)               |
//! |------------------|---------------------------------------------|-------------------------------------|
//! | `dirty/restore`  | `Env::restore` after one step dirtied k pages | `full_copy`: memcpy of the whole memory |
//! | `dirty/fork`     | `Env::fork` after one step dirtied k pages (reuses a warm instance) | `full_copy`  |
//! | `dirty/fork_new` | `Env::fork` into a new instance: a pooled slot, or copy-on-write on demand for many changed pages from 256 KiB (the defaults) | `fork_new_on_demand`: the same without slots; `fork_new_copy`: a new instance, memory copied |
//! | `dirty/snapshot` | `Env::snapshot` after one step dirtied k pages | `full_copy`                       |
//! | `dirty/state_hash` | `Env::state_hash` after one step dirtied k pages | `state_hash_full` (hashes all memory) |
//!
//! Ids are `dirty/<what>/<memory KiB>/<dirty pages>`. The step that dirties the pages is not timed.

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use wasmgym::{Env, EnvModule, Limits, Runtime, RuntimeConfig, Snapshot};

const MEMORY_KIB: [u64; 4] = [64, 1024, 16 * 1024, 64 * 1024];
const DIRTY_PAGES: [u64; 4] = [1, 16, 256, 1024];

fn config() -> Criterion {
    Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .sample_size(20)
}

/// The `dirty` guest compiled by `runtime`.
fn dirty_guest(runtime: &Runtime) -> EnvModule {
    runtime.load(wasmgym_builtin::find_test_guest("dirty").expect("the dirty test guest is built").bytes).unwrap()
}

/// An instance of the `dirty` guest with `kib` of memory, one step in, and a snapshot of that state.
fn setup(module: &EnvModule, kib: u64, dirty: u64) -> (Env, Snapshot) {
    let limits = Limits { memory_bytes: 1 << 30, ..Limits::default() };
    let mut env = module.instantiate_with(limits).unwrap();
    let options = format!(r#"{{"memory_kib": {kib}, "dirty_pages": {dirty}}}"#);
    env.reset(Some(1), Some(&options)).unwrap();
    env.step(0).unwrap();
    let snapshot = env.snapshot().unwrap();
    (env, snapshot)
}

/// Times `what` after each untimed step (which dirties the pages), restoring to the snapshot in
/// between; what `what` returns is dropped after the clock stops.
fn after_step<T>(env: &mut Env, snapshot: &Snapshot, iters: u64, mut what: impl FnMut(&mut Env) -> T) -> Duration {
    let mut total = Duration::ZERO;
    for _ in 0..iters {
        env.restore(snapshot).unwrap();
        env.step(0).unwrap();
        let start = Instant::now();
        let made = black_box(what(env));
        total += start.elapsed();
        drop(made);
    }
    total
}

fn dirty(c: &mut Criterion) {
    let module = dirty_guest(&wasmgym_benches::modules().runtime);
    // No warm instances: every fork creates one, in a slot or on demand, copy-on-write (from 256
    // KiB, the default) or copying.
    let config = |cow_fork_min_bytes| RuntimeConfig { instance_pool: 0, cow_fork_min_bytes, ..Default::default() };
    let fresh = dirty_guest(&Runtime::with_config(config(256 << 10)).unwrap());
    let on_demand =
        dirty_guest(&Runtime::with_config(RuntimeConfig { instance_slots: 0, ..config(256 << 10) }).unwrap());
    let fresh_copy = dirty_guest(&Runtime::with_config(config(usize::MAX)).unwrap());
    let mut group = c.benchmark_group("dirty");
    for kib in MEMORY_KIB {
        // Page-aligned, as linear memories are: glibc's `memcpy` runs many times slower between
        // buffers 1-31 bytes apart modulo 4 KiB (see the runtime's `copy.rs`).
        let (mut from, mut to) = (vec![1u8; kib as usize * 1024 + 4096], vec![0u8; kib as usize * 1024 + 4096]);
        let aligned = |v: &mut Vec<u8>| v.as_ptr().align_offset(4096);
        let (a, b) = (aligned(&mut from), aligned(&mut to));
        let memory = &from[a..a + kib as usize * 1024];
        let target = &mut to[b..b + kib as usize * 1024];
        for dirty in DIRTY_PAGES.into_iter().filter(|&d| d * 4 <= kib) {
            let (mut env, snapshot) = setup(&module, kib, dirty);
            let id = |what: &str| BenchmarkId::new(what, format!("{kib}/{dirty}"));
            group.bench_function(id("restore"), |b| {
                b.iter_custom(|iters| after_step(&mut env, &snapshot, iters, |env| env.restore(&snapshot).unwrap()))
            });
            group.bench_function(id("fork"), |b| {
                b.iter_custom(|iters| after_step(&mut env, &snapshot, iters, |env| env.fork().unwrap()))
            });
            group.bench_function(id("snapshot"), |b| {
                b.iter_custom(|iters| after_step(&mut env, &snapshot, iters, |env| env.snapshot().unwrap()))
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
            group.bench_function(id("full_copy"), |b| b.iter(|| target.copy_from_slice(black_box(memory))));
            for (name, module) in
                [("fork_new", &fresh), ("fork_new_on_demand", &on_demand), ("fork_new_copy", &fresh_copy)]
            {
                let (mut env, snapshot) = setup(module, kib, dirty);
                group.bench_function(id(name), |b| {
                    b.iter_custom(|iters| after_step(&mut env, &snapshot, iters, |env| env.fork().unwrap()))
                });
            }
        }
    }
    group.finish();
}

criterion_group! { name = benches; config = config(); targets = dirty }
criterion_main!(benches);
