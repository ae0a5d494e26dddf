//! Forking a composite episode (the `support_desk` desk and its simulated user, mid-conversation)
//! against forking the desk alone in the same state: what a conversation's extra parts cost.
//!
//! | group                  | composite                                   | baseline (same group)          |
//! |------------------------|---------------------------------------------|--------------------------------|
//! | `composite/fork`       | `Composite::fork` (desk + user + transcript) | `env_fork`: `Env::fork` of the desk |
//! | `composite/snapshot`   | `Composite::snapshot`                        | `env_snapshot`                  |
//! | `composite/restore`    | `Composite::restore` after one more turn     | `env_restore` after one more step |
//! | `composite/to_bytes`   | `CompositeSnapshot::to_bytes`                | `env_to_bytes`                  |

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use wasmgym::Limits;
use wasmgym_agent::{Composite, CompositeModule, Wiring};

fn config() -> Criterion {
    Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .sample_size(20)
}

/// The support desk composite half-way through the scripted agent's episode of task 3, and the
/// agent's next action there.
fn mid_conversation() -> (Composite, String) {
    let runtime = &wasmgym_benches::modules().runtime;
    let bytes_of = |name: &str| {
        wasmgym_builtin::find(name)
            .or_else(|| wasmgym_builtin::find_program(name))
            .map(|g| g.bytes.to_vec())
            .ok_or_else(|| format!("no built-in {name}"))
    };
    let module = CompositeModule::load(runtime, Wiring::builtin("support_desk").unwrap(), &bytes_of).unwrap();
    let mut composite = module.instantiate(Limits::default()).unwrap();
    let options = r#"{"task": 3}"#;
    let mut agent = wasmgym_agent::scripted::builtin("support_desk").unwrap();
    let mut step = composite.reset(0, Some(options)).unwrap();
    agent.start(&composite.tools());
    let mut actions = Vec::new();
    while !step.done() {
        actions.push(agent.act(&step.messages).unwrap());
        step = composite.step(actions.last().unwrap()).unwrap();
    }
    assert!(actions.len() >= 2, "the episode is too short to stop half-way: {actions:?}");
    composite.reset(0, Some(options)).unwrap();
    let mid = actions.len() / 2;
    for action in &actions[..mid] {
        composite.step(action).unwrap();
    }
    (composite, actions[mid].clone())
}

fn composite(c: &mut Criterion) {
    let (mut composite, next) = mid_conversation();
    let mut desk = composite.part("env").unwrap().fork().unwrap();
    let mut group = c.benchmark_group("composite");
    group.bench_function("fork", |b| b.iter_with_large_drop(|| composite.fork().unwrap()));
    group.bench_function("env_fork", |b| b.iter_with_large_drop(|| desk.fork().unwrap()));
    group.bench_function("snapshot", |b| b.iter_with_large_drop(|| composite.snapshot().unwrap()));
    group.bench_function("env_snapshot", |b| b.iter_with_large_drop(|| desk.snapshot().unwrap()));
    let snapshot = composite.snapshot().unwrap();
    let desk_snapshot = desk.snapshot().unwrap();
    // The step that moves away from the snapshot is not timed.
    group.bench_function("restore", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                composite.step(&next).unwrap();
                let start = Instant::now();
                composite.restore(black_box(&snapshot)).unwrap();
                total += start.elapsed();
            }
            total
        })
    });
    let call = r##"{"tool": "get_order", "args": {"order_id": "#W1001"}}"##;
    group.bench_function("env_restore", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                desk.step(call).unwrap();
                let start = Instant::now();
                desk.restore(black_box(&desk_snapshot)).unwrap();
                total += start.elapsed();
            }
            total
        })
    });
    group.bench_function("to_bytes", |b| b.iter(|| snapshot.to_bytes()));
    group.bench_function("env_to_bytes", |b| b.iter(|| desk_snapshot.to_bytes()));
    group.finish();
}

criterion_group! { name = benches; config = config(); targets = composite }
criterion_main!(benches);
