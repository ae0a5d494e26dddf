//! A test and bench environment for snapshot costs: reset with `{"memory_kib": N, "dirty_pages": k}`
//! allocates N KiB and then every step writes one byte in each of k pages, scattered over the
//! allocation and different from step to step.

use wasmgym_sdk::*;

const PAGE: usize = 4096;

/// The allocation and where the next step writes.
pub struct Dirty {
    memory: Vec<u8>,
    dirty_pages: usize,
    steps: i32,
}

impl Dirty {
    fn option(options: &Options, key: &str, default: u64) -> Result<u64, EnvError> {
        match options.get(key) {
            None => Ok(default),
            Some(v) => v.as_u64().ok_or_else(|| EnvError::new(format!("{key} must be a non-negative integer"))),
        }
    }
}

impl Environment for Dirty {
    fn spec() -> EnvSpec {
        EnvSpec {
            name: "dirty".into(),
            version: 1,
            players: 1,
            observation_space: Space::uniform_box(Dtype::I32, &[1], 0.0, i32::MAX as f64),
            action_space: Space::Discrete { n: 1 },
            reward_range: (0.0, 0.0),
            max_episode_steps: None,
            determinism: Determinism::Deterministic,
            tools: vec![],
        }
    }

    fn reset(_rng: &mut Rng, options: &Options) -> Result<Self, EnvError> {
        let kib = Self::option(options, "memory_kib", 64)? as usize;
        let dirty_pages = Self::option(options, "dirty_pages", 1)? as usize;
        let mut memory = vec![0u8; kib * 1024];
        // Touch every page once so the allocation is real memory, not a promise.
        for page in memory.chunks_mut(PAGE) {
            page[0] = 1;
        }
        Ok(Dirty { memory, dirty_pages, steps: 0 })
    }

    fn observation(&self) -> Observation {
        Observation::I32(vec![self.steps])
    }

    fn step(&mut self, _action: &Action, _rng: &mut Rng) -> Result<Transition, EnvError> {
        self.steps += 1;
        let pages = self.memory.len() / PAGE;
        if pages > 0 {
            // A stride coprime with most page counts scatters the writes; the offset moves each step.
            let start = self.steps as usize * 7919;
            for j in 0..self.dirty_pages.min(pages) {
                let page = (start + j * 4099) % pages;
                let byte = &mut self.memory[page * PAGE + (self.steps as usize % PAGE)];
                *byte = byte.wrapping_add(1);
            }
        }
        Ok(Transition::reward(0.0))
    }
}

export_env!(Dirty);
