//! The built-in scripted agents: rule-based baselines for the built-in agent environments
//! (`wasmgym eval` runs them by default).

pub mod support;
pub mod workshop;

use crate::Agent;

/// The built-in composites that have a scripted agent.
pub const NAMES: &[&str] = &["support_desk", "workshop"];

/// A fresh scripted agent for the built-in composite `name`, if it has one.
pub fn builtin(name: &str) -> Option<Box<dyn Agent>> {
    match name {
        "support_desk" => Some(Box::new(support::SupportAgent::new())),
        "workshop" => Some(Box::new(workshop::WorkshopAgent::new())),
        _ => None,
    }
}
