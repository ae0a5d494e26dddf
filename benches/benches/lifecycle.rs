//! The sandbox lifecycle, one criterion group per stage, each with its baseline in the same group:
//!
//! | group         | sandbox                         | baseline                                          |
//! |---------------|---------------------------------|---------------------------------------------------|
//! | `compile`     | `Runtime::load`                 | none (compare with `instantiate/*/sandbox`)       |
//! | `instantiate` | `EnvModule::instantiate`        | `Runner::new` (native)                            |
//! | `reset`       | `Env::reset(Some(seed), None)`  | `Runner::reset` (native)                          |
//! | `step`        | `Env::step`, `Env::legal_actions` | `Runner::step`, `Runner::legal_actions` (native) |
//! | `step_breakdown` | bare wasmtime calls of the guest's step, fuel and epochs on | fuel only, epochs only, neither |
//! | `snapshot`    | `Env::snapshot` at move 10      | replay: reset + 10 steps (sandbox and native); memcpy |
//! | `restore`     | `Env::restore` to move 10       | replay: reset + 10 steps (sandbox and native)     |
//! | `fork`        | `Env::fork` at move 10 (warm, and `new_instance`: in a pooled slot) | instantiate/`Runner::new` + reset + 10 steps; `new_instance_on_demand` |
//! | `serialise`   | `Snapshot::to_bytes`, `from_bytes`, and against the module (`EnvModule::snapshot_to_bytes`, `snapshot_from_bytes`) | `Vec<u8>` clone of as many bytes (memcpy) |
//!
//! Benchmarks that create something (instance, snapshot, bytes) drop it inside the timing, on both
//! sides. `cargo run -p wasmgym-benches --bin summarise` prints the results as the tables of
//! docs/benchmarks.md.

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion, SamplingMode, Throughput, criterion_group, criterion_main};
use wasmgym::{Env, EnvModule, Runtime, RuntimeConfig, Snapshot};
use wasmgym_benches::raw::{Metering, RawModule};
use wasmgym_benches::{
    CartPole, ConnectFour, EPISODES, Episode, OPENING_MOVES, Player, Tape, cart_pole_episodes, connect_four_episodes,
    modules, opening, replay, wasm,
};
use wasmgym_sdk::{Environment, Runner};

/// Seed of the reset benchmark.
const SEED: u64 = 7;

fn config() -> Criterion {
    Criterion::default().warm_up_time(Duration::from_secs(1)).measurement_time(Duration::from_secs(3)).sample_size(30)
}

fn compile(c: &mut Criterion) {
    let runtime = &modules().runtime;
    let mut group = c.benchmark_group("compile");
    // A load takes tens to hundreds of milliseconds: a few flat samples suffice.
    group.sampling_mode(SamplingMode::Flat).sample_size(10).measurement_time(Duration::from_secs(5));
    for name in ["connect_four", "cart_pole"] {
        let bytes = wasm(name);
        group.bench_function(BenchmarkId::new(name, "sandbox"), |b| b.iter(|| runtime.load(black_box(bytes)).unwrap()));
    }
    group.finish();
}

fn instantiate(c: &mut Criterion) {
    let m = modules();
    let mut group = c.benchmark_group("instantiate");
    group.bench_function(BenchmarkId::new("connect_four", "sandbox"), |b| {
        b.iter(|| m.connect_four.instantiate().unwrap())
    });
    group.bench_function(BenchmarkId::new("connect_four", "native"), |b| b.iter(Runner::<ConnectFour>::new));
    group.bench_function(BenchmarkId::new("cart_pole", "sandbox"), |b| b.iter(|| m.cart_pole.instantiate().unwrap()));
    group.bench_function(BenchmarkId::new("cart_pole", "native"), |b| b.iter(Runner::<CartPole>::new));
    group.finish();
}

fn reset(c: &mut Criterion) {
    let m = modules();
    let mut group = c.benchmark_group("reset");
    reset_pair::<ConnectFour>(&mut group, "connect_four", &m.connect_four);
    reset_pair::<CartPole>(&mut group, "cart_pole", &m.cart_pole);
    group.finish();
}

fn reset_pair<E: Environment>(
    group: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>,
    name: &str,
    module: &EnvModule,
) {
    let mut env = module.instantiate().unwrap();
    group.bench_function(BenchmarkId::new(name, "sandbox"), |b| {
        b.iter(|| env.reset(Some(black_box(SEED)), None).unwrap())
    });
    let mut runner = Runner::<E>::new();
    group.bench_function(BenchmarkId::new(name, "native"), |b| {
        b.iter(|| runner.reset(Some(black_box(SEED)), "").unwrap())
    });
}

/// Times `iters` steps along the tape; the resets between episodes happen outside the timing.
fn timed_steps(player: &mut impl Player, tape: &mut Tape, iters: u64) -> Duration {
    let mut total = Duration::ZERO;
    let mut left = iters as usize;
    while left > 0 {
        let n = tape.remaining().len().min(left);
        let actions = tape.remaining()[..n].to_vec();
        let start = Instant::now();
        for &action in &actions {
            black_box(player.step(black_box(action)));
        }
        total += start.elapsed();
        left -= n;
        if tape.advance(n) {
            player.reset(tape.seed());
        }
    }
    total
}

fn step(c: &mut Criterion) {
    let m = modules();
    let mut group = c.benchmark_group("step");
    step_pair::<ConnectFour>(&mut group, "connect_four", &m.connect_four, connect_four_episodes(EPISODES));
    step_pair::<CartPole>(&mut group, "cart_pole", &m.cart_pole, cart_pole_episodes(EPISODES));

    // legal_actions at the mid-game branch point.
    let opening = opening();
    let mut env = m.connect_four.instantiate().unwrap();
    replay(&mut env, &opening);
    group.bench_function(BenchmarkId::new("connect_four_legal_actions", "sandbox"), |b| {
        b.iter(|| env.legal_actions().unwrap())
    });
    let mut runner = Runner::<ConnectFour>::new();
    replay(&mut runner, &opening);
    group.bench_function(BenchmarkId::new("connect_four_legal_actions", "native"), |b| {
        b.iter(|| runner.legal_actions())
    });
    group.finish();
}

fn step_pair<E: Environment>(
    group: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>,
    name: &str,
    module: &EnvModule,
    episodes: Vec<Episode>,
) {
    let mut tape = Tape::new(episodes.clone());
    let mut env = module.instantiate().unwrap();
    env.reset(Some(tape.seed()), None).unwrap();
    report_fuel(name, module, &episodes, tape.mean_length());
    group.bench_function(BenchmarkId::new(name, "sandbox"), |b| {
        b.iter_custom(|iters| timed_steps(&mut env, &mut tape, iters))
    });

    let mut tape = Tape::new(episodes);
    let mut runner = Runner::<E>::new();
    Player::reset(&mut runner, tape.seed());
    group.bench_function(BenchmarkId::new(name, "native"), |b| {
        b.iter_custom(|iters| timed_steps(&mut runner, &mut tape, iters))
    });
}

/// Prints the fuel (≈ wasm instructions) a step of `name` burns, to read the step figures against.
fn report_fuel(name: &str, module: &EnvModule, episodes: &[Episode], mean_length: f64) {
    let mut env = module.instantiate().unwrap();
    let (mut steps, mut fuel) = (0u64, 0u64);
    for episode in episodes {
        env.reset(Some(episode.seed), None).unwrap();
        for &action in &episode.actions {
            let before = env.fuel_consumed();
            env.step(action).unwrap();
            fuel += env.fuel_consumed() - before;
            steps += 1;
        }
    }
    println!(
        "info: {name}: {} recorded episodes, {mean_length:.1} steps on average, {:.0} fuel per step (alloc + step calls)",
        episodes.len(),
        fuel as f64 / steps as f64
    );
}

/// Where a sandboxed step's time goes: the same recorded steps through bare wasmtime calls (the
/// guest's `alloc` and `step`, the result decoded in place as `Runner` does) compiled with the
/// runtime's fuel and epoch instrumentation, with either alone, and with neither. Compare with
/// `step/*/sandbox` and `step/*/native`.
fn step_breakdown(c: &mut Criterion) {
    let mut group = c.benchmark_group("step_breakdown");
    for (name, episodes) in
        [("connect_four", connect_four_episodes(EPISODES)), ("cart_pole", cart_pole_episodes(EPISODES))]
    {
        for (variant, metering) in [
            ("bare_metered", Metering::RUNTIME),
            ("bare_fuel_only", Metering { fuel: true, epochs: false }),
            ("bare_epochs_only", Metering { fuel: false, epochs: true }),
            ("bare_unmetered", Metering::NONE),
        ] {
            let module = RawModule::new(wasm(name), metering);
            let mut guest = module.instantiate();
            let mut tape = Tape::new(episodes.clone());
            guest.reset(tape.seed());
            group.bench_function(BenchmarkId::new(name, variant), |b| {
                b.iter_custom(|iters| timed_steps(&mut guest, &mut tape, iters))
            });
        }
    }
    group.finish();
}

/// A connect_four instance at the branch point, and a snapshot of it.
fn branch_point() -> (Episode, Env, Snapshot) {
    let opening = opening();
    let mut env = modules().connect_four.instantiate().unwrap();
    replay(&mut env, &opening);
    let snapshot = env.snapshot().unwrap();
    (opening, env, snapshot)
}

fn snapshot(c: &mut Criterion) {
    let (opening, mut env, snap) = branch_point();
    let memory = vec![0x5au8; snap.memory_bytes()];
    let mut group = c.benchmark_group("snapshot");
    group.bench_function(BenchmarkId::new("connect_four", "sandbox"), |b| b.iter(|| env.snapshot().unwrap()));
    group.bench_function(BenchmarkId::new("connect_four", "replay"), |b| {
        b.iter(|| replay(&mut env, black_box(&opening)))
    });
    let mut runner = Runner::<ConnectFour>::new();
    group.bench_function(BenchmarkId::new("connect_four", "replay_native"), |b| {
        b.iter(|| replay(&mut runner, black_box(&opening)))
    });
    group.bench_function(BenchmarkId::new("connect_four", "memcpy"), |b| b.iter(|| black_box(&memory).clone()));
    group.finish();
}

/// Times `op` `iters` times, each after playing two more moves from the branch point (untimed), so
/// that the instance has moved on from the state being restored, as it would in a search.
fn timed_after_moving_on(env: &mut Env, snap: &Snapshot, iters: u64, mut op: impl FnMut(&mut Env)) -> Duration {
    let mut total = Duration::ZERO;
    for _ in 0..iters {
        env.restore(snap).unwrap();
        let legal = env.legal_actions().unwrap();
        env.step(legal[0]).unwrap();
        let legal = env.legal_actions().unwrap();
        env.step(legal[legal.len() - 1]).unwrap();
        let start = Instant::now();
        op(env);
        total += start.elapsed();
    }
    total
}

fn restore(c: &mut Criterion) {
    let (opening, mut env, snap) = branch_point();
    let mut group = c.benchmark_group("restore");
    group.bench_function(BenchmarkId::new("connect_four", "sandbox"), |b| {
        b.iter_custom(|iters| {
            timed_after_moving_on(&mut env, &snap, iters, |env| env.restore(black_box(&snap)).unwrap())
        })
    });
    group.bench_function(BenchmarkId::new("connect_four", "replay"), |b| {
        b.iter_custom(|iters| timed_after_moving_on(&mut env, &snap, iters, |env| replay(env, black_box(&opening))))
    });
    let mut runner = Runner::<ConnectFour>::new();
    group.bench_function(BenchmarkId::new("connect_four", "replay_native"), |b| {
        b.iter(|| replay(&mut runner, black_box(&opening)))
    });
    group.finish();
}

fn fork(c: &mut Criterion) {
    let (opening, mut env, _) = branch_point();
    let module = &modules().connect_four;
    let mut group = c.benchmark_group("fork");
    group.bench_function(BenchmarkId::new("connect_four", "sandbox"), |b| b.iter(|| env.fork().unwrap()));
    // No warm instance to reuse: every fork is a new instance, in a pooled slot (the default) or,
    // as the baseline, created on demand.
    for (id, slots) in [("new_instance", RuntimeConfig::default().instance_slots), ("new_instance_on_demand", 0)] {
        let runtime =
            Runtime::with_config(RuntimeConfig { instance_pool: 0, instance_slots: slots, ..Default::default() });
        let mut env = runtime.unwrap().load(wasm("connect_four")).unwrap().instantiate().unwrap();
        replay(&mut env, &opening);
        group.bench_function(BenchmarkId::new("connect_four", id), |b| b.iter(|| env.fork().unwrap()));
    }
    group.bench_function(BenchmarkId::new("connect_four", "replay"), |b| {
        b.iter(|| {
            let mut child = module.instantiate().unwrap();
            replay(&mut child, black_box(&opening));
            child
        })
    });
    group.bench_function(BenchmarkId::new("connect_four", "replay_native"), |b| {
        b.iter(|| {
            let mut child = Runner::<ConnectFour>::new();
            replay(&mut child, black_box(&opening));
            child
        })
    });
    group.finish();
}

fn serialise(c: &mut Criterion) {
    let (_, _, snap) = branch_point();
    let module = &modules().connect_four;
    let bytes = snap.to_bytes();
    let compact = module.snapshot_to_bytes(&snap).unwrap();
    println!(
        "info: connect_four snapshot after {OPENING_MOVES} moves: {} bytes serialised ({} against the module), {} \
         bytes of linear memory",
        bytes.len(),
        compact.len(),
        snap.memory_bytes()
    );
    let mut group = c.benchmark_group("serialise");
    group.throughput(Throughput::Bytes(bytes.len() as u64));
    group.bench_function(BenchmarkId::new("to_bytes", "sandbox"), |b| b.iter(|| black_box(&snap).to_bytes()));
    group.bench_function(BenchmarkId::new("from_bytes", "sandbox"), |b| {
        b.iter(|| Snapshot::from_bytes(black_box(&bytes)).unwrap())
    });
    group.bench_function(BenchmarkId::new("to_bytes_against_module", "sandbox"), |b| {
        b.iter(|| module.snapshot_to_bytes(black_box(&snap)).unwrap())
    });
    group.bench_function(BenchmarkId::new("from_bytes_against_module", "sandbox"), |b| {
        b.iter(|| module.snapshot_from_bytes(black_box(&compact)).unwrap())
    });
    group.bench_function(BenchmarkId::new("connect_four", "memcpy"), |b| b.iter(|| black_box(&bytes).clone()));
    group.finish();
}

criterion_group! {
    name = lifecycle;
    config = config();
    targets = compile, instantiate, reset, step, step_breakdown, snapshot, restore, fork, serialise
}
criterion_main!(lifecycle);
