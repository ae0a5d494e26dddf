//! wasmgym's host runtime: load environments compiled to WebAssembly, drive them with Gymnasium's
//! and OpenSpiel's vocabulary, and snapshot, restore and fork live instances exactly.
//!
//! ```no_run
//! use wasmgym::{Runtime, Result};
//!
//! fn main() -> Result<()> {
//!     let runtime = Runtime::new()?;                       // one per process
//!     let module = runtime.load_file("connect_four.wasm")?; // compiled once, shareable
//!     let mut env = module.instantiate()?;                   // one live instance
//!     env.reset(Some(42), None)?;
//!     env.step(3)?;
//!     let branch_point = env.snapshot()?;                    // complete state, plain data
//!     let mut fork = env.fork()?;                            // independent copy
//!     fork.step(0)?;
//!     env.restore(&branch_point)?;                           // back to the branch point
//!     Ok(())
//! }
//! ```
//!
//! Why WebAssembly: a snapshot of a wasm instance is its linear memories, its mutable globals and
//! the host-side state, nothing more, so every environment can be forked exactly without its author
//! writing clone code; and a guest can touch nothing the host does not hand it.
//!
//! Types, by cost and lifetime: [`Runtime`] (per process), [`EnvModule`] (compiled module,
//! shareable), [`Env`] (instance, owns its store), [`Snapshot`] (plain data).
//!
//! The same sandbox runs untrusted programs (graded by the `wasmgym-grade` crate): [`ProgramModule`] (a compiled WASI
//! command, shareable), [`Program`] (an instance that runs it from a pristine state, again and
//! again), and [`CheckerModule`] / [`Checker`] (sandboxed code that scores an output, or the fork
//! of an environment).

#![deny(missing_docs)]

mod budget;
pub mod check;
mod checker;
mod copy;
mod cow;
mod error;
mod instance;
mod instrument;
mod limits;
mod module;
mod pages;
mod program;
mod reactor;
mod rewrite;
mod sandbox;
mod snapshot;
mod wasi;

pub use checker::{Checker, CheckerModule, Score};
pub use error::{Error, Result};
pub use instance::{Env, Transition};
pub use limits::{Limits, LoadLimits};
pub use module::{EnvModule, ModuleInfo, Runtime, RuntimeConfig, SnapshotKey, cache_dir};
pub use program::{Program, ProgramModule, RunEnd, RunInput, RunReport};
pub use reactor::{Reactor, ReactorModule, ReactorSetup};
pub use snapshot::{
    SNAPSHOT_FORMAT, SNAPSHOT_FORMAT_AGAINST_MODULE, SNAPSHOT_FORMAT_SIGNED, SNAPSHOT_FORMAT_SIGNED_SELF_CONTAINED,
    Snapshot,
};
pub use wasmgym_abi::{ABI_VERSION, Action, Determinism, Dtype, EnvSpec, Observation, Space};
