//! A guest driven by bare wasmtime calls, without wasmgym's host layer: the `step_breakdown`
//! benchmark uses it to split the sandbox's step cost into compiled guest code, fuel and epoch
//! instrumentation, and the runtime's host layer (result copy, observation decoding, limits,
//! bookkeeping).

use std::hint::black_box;

use wasmgym_abi::rng::Rng;
use wasmgym_abi::wire::{self, Status};
use wasmgym_abi::{Action, ResetRequest, exports};
use wasmtime::{Caller, Config, Engine, Linker, Memory, Module, Store, TypedFunc};

use crate::Player;

/// Fuel set before each call when fuel is on, as `Limits::default()` does.
const FUEL_PER_CALL: u64 = 1_000_000_000;

/// Which of the runtime's two interruption mechanisms the compiled code carries.
#[derive(Clone, Copy, Debug)]
pub struct Metering {
    /// Fuel metering (`Config::consume_fuel`): a counter updated in every basic block.
    pub fuel: bool,
    /// Epoch interruption (`Config::epoch_interruption`): a deadline check at function entries
    /// and loop back-edges.
    pub epochs: bool,
}

impl Metering {
    /// Both on, as the runtime compiles every guest.
    pub const RUNTIME: Metering = Metering { fuel: true, epochs: true };
    /// Both off.
    pub const NONE: Metering = Metering { fuel: false, epochs: false };
}

/// An engine with the runtime's settings except, possibly, its metering, and a module it compiled.
pub struct RawModule {
    engine: Engine,
    module: Module,
    metering: Metering,
}

impl RawModule {
    /// Compiles `wasm` (a built-in guest, as built, not rewritten) for bare calls.
    pub fn new(wasm: &[u8], metering: Metering) -> RawModule {
        let mut config = Config::new();
        // The runtime's settings (module.rs), with the metering chosen.
        config
            .consume_fuel(metering.fuel)
            .epoch_interruption(metering.epochs)
            .cranelift_nan_canonicalization(true)
            .relaxed_simd_deterministic(true)
            .max_wasm_stack(512 << 10);
        let engine = Engine::new(&config).expect("engine");
        let module = Module::new(&engine, wasm).expect("the built-in guest compiles");
        RawModule { engine, module, metering }
    }

    /// A new instance, initialised.
    pub fn instantiate(&self) -> RawGuest {
        let mut linker = Linker::new(&self.engine);
        linker
            .func_wrap(
                "wasi_snapshot_preview1",
                "random_get",
                |mut caller: Caller<'_, Rng>, ptr: i32, len: i32| -> i32 {
                    let memory = caller.get_export("memory").and_then(|e| e.into_memory()).expect("memory");
                    let (data, rng) = memory.data_and_store_mut(&mut caller);
                    rng.fill_bytes(&mut data[ptr as u32 as usize..][..len as u32 as usize]);
                    0
                },
            )
            .expect("defining random_get");
        linker.define_unknown_imports_as_traps(&self.module).expect("stubbing the other imports");
        let mut store = Store::new(&self.engine, Rng::seed_from_u64(0));
        let metering = self.metering;
        arm(&mut store, metering);
        let instance = linker.instantiate(&mut store, &self.module).expect("instantiating");
        if let Ok(init) = instance.get_typed_func::<(), ()>(&mut store, "_initialize") {
            init.call(&mut store, ()).expect("_initialize");
        }
        RawGuest {
            alloc: instance.get_typed_func(&mut store, exports::ALLOC).expect("alloc"),
            reset: instance.get_typed_func(&mut store, exports::RESET).expect("reset"),
            step: instance.get_typed_func(&mut store, exports::STEP).expect("step"),
            memory: instance.get_memory(&mut store, "memory").expect("memory"),
            store,
            metering,
            request: Vec::new(),
        }
    }
}

/// One bare instance: [`Player::step`] is the guest's `alloc` and `step` calls, the request written
/// into guest memory and the result decoded where it lies, exactly the work [`wasmgym_sdk::Runner`]
/// does natively around the environment; none of the runtime's copies, observation decoding,
/// limits or bookkeeping.
pub struct RawGuest {
    store: Store<Rng>,
    alloc: TypedFunc<i32, i32>,
    reset: TypedFunc<(i32, i32), i64>,
    step: TypedFunc<(i32, i32), i64>,
    memory: Memory,
    metering: Metering,
    request: Vec<u8>,
}

/// Sets the fuel and the epoch deadline for a call, as the runtime does, where they are on.
fn arm(store: &mut Store<Rng>, metering: Metering) {
    if metering.fuel {
        store.set_fuel(FUEL_PER_CALL).expect("fuel is on");
    }
    if metering.epochs {
        store.set_epoch_deadline(u64::MAX / 2);
    }
}

impl RawGuest {
    /// `alloc`, the request written, then `reset` (or `step`), as the runtime calls them; the
    /// result decoded in place (as `Runner` decodes its own), returning whether the episode ended.
    fn call(&mut self, reset: bool) -> bool {
        arm(&mut self.store, self.metering);
        let f = if reset { &self.reset } else { &self.step };
        let ptr = self.alloc.call(&mut self.store, self.request.len() as i32).expect("alloc");
        self.memory.write(&mut self.store, ptr as u32 as usize, &self.request).expect("request fits");
        let packed = f.call(&mut self.store, (ptr, self.request.len() as i32)).expect("call");
        let (ptr, len) = wasmgym_abi::unpack(packed);
        let out = &self.memory.data(&self.store)[ptr as usize..][..len as usize];
        assert_eq!(out[0], Status::Ok as u8, "the guest refused a recorded call");
        let t = wire::Transition::decode(&out[1..]).expect("the guest's transition decodes");
        black_box(&t);
        t.terminated || t.truncated
    }
}

impl Player for RawGuest {
    fn reset(&mut self, seed: u64) {
        *self.store.data_mut() = Rng::seed_from_u64(seed);
        self.request.clear();
        ResetRequest { seed: Some(seed), options: String::new() }.encode(&mut self.request);
        self.call(true);
    }

    fn step(&mut self, action: i64) -> bool {
        self.request.clear();
        Action::Discrete(action).encode(&mut self.request);
        self.call(false)
    }
}
