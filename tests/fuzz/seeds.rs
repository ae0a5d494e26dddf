//! Seed inputs made at run time, for what is too large or too format-dependent to commit: real
//! snapshots of the built-in environments, the built-in modules, and the built-in specs as JSON.
//! The fuzz targets write them into their corpus (`fuzz/src/lib.rs`, `seed_corpus`); the
//! regression test runs the oracles over them. Included by path like `oracles.rs`.

use wasmgym::{EnvModule, Runtime};

/// A named input.
pub type Seed = (String, Vec<u8>);

/// Snapshot bytes of every built-in environment after `reset(Some(0))` and after three steps
/// (each the first action listed: legal action, or valid command of a text environment).
pub fn snapshots(runtime: &Runtime) -> Vec<Seed> {
    let modules: Vec<EnvModule> = (wasmgym_builtin::ENVS.iter())
        .map(|builtin| runtime.load(builtin.bytes).unwrap_or_else(|e| panic!("loading {}: {e}", builtin.name)))
        .collect();
    snapshots_of(&modules)
}

/// [`snapshots`] of these modules (the built-in environments, in order).
pub fn snapshots_of(modules: &[EnvModule]) -> Vec<Seed> {
    let mut seeds = Vec::new();
    for (builtin, module) in wasmgym_builtin::ENVS.iter().zip(modules) {
        let mut env = module.instantiate().expect("instantiating a built-in environment");
        env.reset(Some(0), None).expect("reset");
        let mut push = |name: String, snapshot: wasmgym::Snapshot| {
            let against = module.snapshot_to_bytes(&snapshot).expect("a snapshot of the module");
            seeds.push((format!("{name}-module"), against));
            seeds.push((format!("{name}-signed"), snapshot.to_bytes_signed(&super::oracles::FUZZ_KEY)));
            seeds.push((name, snapshot.to_bytes()));
        };
        push(format!("{}-reset", builtin.name), env.snapshot().expect("snapshot"));
        for _ in 0..3 {
            let Some(action) = env.actions().expect("actions").into_iter().next() else { break };
            if env.step(action).expect("step").done() {
                break;
            }
        }
        push(format!("{}-steps", builtin.name), env.snapshot().expect("snapshot"));
    }
    seeds
}

/// The JSON specs of the built-in environments, as their modules report them.
pub fn specs(runtime: &Runtime) -> Vec<Seed> {
    wasmgym_builtin::ENVS
        .iter()
        .map(|builtin| {
            let module = runtime.load(builtin.bytes).unwrap_or_else(|e| panic!("loading {}: {e}", builtin.name));
            (format!("{}-spec", builtin.name), serde_json::to_vec(module.spec()).expect("a spec serialises"))
        })
        .collect()
}

/// Every built-in module (environments, test guests, programs, checkers) of at most `max_len`
/// bytes, and the hand-written bandit environment as WAT text (the small hand-written modules are
/// committed in `tests/fuzz/load_module/`).
pub fn modules(max_len: usize) -> Vec<Seed> {
    let builtins = wasmgym_builtin::ENVS.iter().chain(wasmgym_builtin::TEST_GUESTS).chain(wasmgym_builtin::PROGRAMS);
    let mut seeds: Vec<Seed> =
        builtins.filter(|b| b.bytes.len() <= max_len).map(|b| (format!("{}.wasm", b.name), b.bytes.to_vec())).collect();
    seeds.push(("bandit.wat".into(), include_bytes!("../../envs/bandit_wat/bandit.wat").to_vec()));
    seeds
}
