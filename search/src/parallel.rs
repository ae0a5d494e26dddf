//! Stepping many states at once over threads: [`expand`] (every child of a state) and [`VecEnv`]
//! (N environments in lockstep, EnvPool-like).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

use rayon::iter::{IndexedParallelIterator, IntoParallelRefMutIterator, ParallelIterator};
use wasmgym::{Env, EnvModule, Transition};
use wasmgym_abi::Action;

use crate::SearchError;

/// One child made by [`expand`].
pub struct Child {
    /// The action that led here.
    pub action: Action,
    /// The step's outcome: a transition, or why the environment refused or failed (then `env` is
    /// the parent's state, or poisoned).
    pub outcome: Result<Transition, wasmgym::Error>,
    /// The child's own environment: an independent fork, stepped.
    pub env: Env,
}

/// Forks `env` once per action and steps every fork with its action, spread over `threads`
/// threads. `env` is unchanged. A refused action fails only its own child.
pub fn expand(env: &mut Env, actions: &[Action], threads: usize) -> Result<Vec<Child>, SearchError> {
    let mut children = Vec::with_capacity(actions.len());
    for action in actions {
        let fork = env.fork()?;
        children.push(Child {
            action: action.clone(),
            outcome: Err(wasmgym::Error::InvalidCall { message: String::new() }),
            env: fork,
        });
    }
    for_each_parallel(&mut children, threads, |child| child.outcome = child.env.step(child.action.clone()));
    Ok(children)
}

/// Runs `f` on every item on a pool of `threads` threads (kept for the process's life, one pool
/// per thread count, so a call does not pay for starting threads).
fn for_each_parallel<T: Send>(items: &mut [T], threads: usize, f: impl Fn(&mut T) + Sync + Send) {
    let threads = threads.clamp(1, items.len().max(1));
    if threads == 1 {
        items.iter_mut().for_each(f);
        return;
    }
    pool(threads).install(|| items.par_iter_mut().with_min_len(1).for_each(f));
}

/// The shared pool of `threads` threads.
fn pool(threads: usize) -> Arc<rayon::ThreadPool> {
    static POOLS: OnceLock<Mutex<HashMap<usize, Arc<rayon::ThreadPool>>>> = OnceLock::new();
    let mut pools = POOLS.get_or_init(Default::default).lock().unwrap_or_else(|e| e.into_inner());
    let pool = pools.entry(threads).or_insert_with(|| {
        let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).thread_name(|i| format!("wasmgym-search-{i}"));
        Arc::new(pool.build().expect("starting a thread pool"))
    });
    pool.clone()
}

/// What one environment of a [`VecEnv`] did in a step.
#[derive(Clone, Debug)]
pub struct VecStep {
    /// The step's transition (its episode may have ended).
    pub transition: Transition,
    /// With auto-reset, the first transition of the next episode when this step ended one.
    pub reset: Option<Transition>,
}

/// N environments of one module stepped together, the work spread over threads (synchronous, as
/// EnvPool's sync mode and Gymnasium's `SyncVectorEnv`). With `auto_reset`, an environment whose
/// episode ends is reset in the same step (its generator's stream goes on), and the step reports
/// both.
pub struct VecEnv {
    envs: Vec<Env>,
    threads: usize,
    auto_reset: bool,
}

impl VecEnv {
    /// `n` new instances of `module`, environment `i` reset with seed `seed + i`.
    pub fn new(
        module: &EnvModule,
        n: usize,
        seed: u64,
        threads: usize,
        auto_reset: bool,
    ) -> Result<VecEnv, SearchError> {
        let mut envs = Vec::with_capacity(n);
        for i in 0..n {
            let mut env = module.instantiate()?;
            env.reset(Some(seed.wrapping_add(i as u64)), None)?;
            envs.push(env);
        }
        Ok(VecEnv { envs, threads: threads.max(1), auto_reset })
    }

    /// The environments, to query or step one by one.
    pub fn envs(&mut self) -> &mut [Env] {
        &mut self.envs
    }

    /// Steps environment `i` with `actions[i]`, all of them across the threads. Fails on the first
    /// environment (in order) that refused its action or failed; the others have stepped.
    pub fn step(&mut self, actions: &[Action]) -> Result<Vec<VecStep>, SearchError> {
        if actions.len() != self.envs.len() {
            return Err(SearchError::NoDecision(format!(
                "{} actions for {} environments: give one action per environment",
                actions.len(),
                self.envs.len()
            )));
        }
        let auto_reset = self.auto_reset;
        let mut work: Vec<Work> =
            self.envs.iter_mut().zip(actions).map(|(env, action)| Work { env, action, out: None }).collect();
        for_each_parallel(&mut work, self.threads, |w| {
            let step = w.env.step(w.action.clone()).and_then(|transition| {
                let reset = if auto_reset && transition.done() { Some(w.env.reset(None, None)?) } else { None };
                Ok(VecStep { transition, reset })
            });
            w.out = Some(step);
        });
        work.into_iter().map(|w| Ok(w.out.expect("every environment stepped")?)).collect()
    }
}

/// One environment's share of a [`VecEnv::step`].
struct Work<'a> {
    env: &'a mut Env,
    action: &'a Action,
    out: Option<Result<VecStep, wasmgym::Error>>,
}
