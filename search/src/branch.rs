//! [`Branch`]: what breadth-first and beam search need of an environment. `wasmgym::Env` is one;
//! so is any other state that snapshots and steps exactly (a composite agent episode,
//! `wasmgym_agent::Composite`), which the searches then run on unchanged.

use wasmgym::{Env, Snapshot, Transition};
use wasmgym_abi::{Action, Observation};

use crate::SearchError;

/// An environment a search can branch: exact snapshots, steps and the actions to try.
pub trait Branch {
    /// A complete state, restorable into this environment.
    type Snapshot: Clone;

    /// The current state.
    fn snapshot(&mut self) -> Result<Self::Snapshot, SearchError>;

    /// Returns to `snapshot`.
    fn restore(&mut self, snapshot: &Self::Snapshot) -> Result<(), SearchError>;

    /// Takes `action`; `None` if the environment refused it and nothing changed (an illegal
    /// action), which the search counts and skips.
    fn step(&mut self, action: &Action) -> Result<Option<Transition>, SearchError>;

    /// The actions to try here when the caller proposes none.
    fn actions(&mut self) -> Result<Vec<Action>, SearchError>;

    /// Whose turn it is, or `None` once the episode is over.
    fn current_player(&self) -> Option<u32>;

    /// The current observation, if the environment can say it without a step.
    fn observe(&mut self) -> Result<Option<Observation>, SearchError>;

    /// The environment's own key for the game state, if it has one.
    fn state_key(&mut self) -> Result<Option<Vec<u8>>, SearchError>;

    /// A hash of the complete machine state.
    fn state_hash(&mut self) -> Result<[u8; 32], SearchError>;
}

impl Branch for Env {
    type Snapshot = Snapshot;

    fn snapshot(&mut self) -> Result<Snapshot, SearchError> {
        Ok(Env::snapshot(self)?)
    }

    fn restore(&mut self, snapshot: &Snapshot) -> Result<(), SearchError> {
        Ok(Env::restore(self, snapshot)?)
    }

    fn step(&mut self, action: &Action) -> Result<Option<Transition>, SearchError> {
        match Env::step(self, action.clone()) {
            Ok(t) => Ok(Some(t)),
            Err(wasmgym::Error::IllegalAction { .. }) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    fn actions(&mut self) -> Result<Vec<Action>, SearchError> {
        Ok(Env::actions(self)?)
    }

    fn current_player(&self) -> Option<u32> {
        Env::current_player(self)
    }

    fn observe(&mut self) -> Result<Option<Observation>, SearchError> {
        Ok(Env::observe(self)?)
    }

    fn state_key(&mut self) -> Result<Option<Vec<u8>>, SearchError> {
        Ok(Env::state_key(self)?)
    }

    fn state_hash(&mut self) -> Result<[u8; 32], SearchError> {
        Ok(Env::state_hash(self)?)
    }
}
