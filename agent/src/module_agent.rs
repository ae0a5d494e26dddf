//! [`ModuleAgent`]: an agent that is itself a sandboxed module.

use wasmgym::{Env, EnvModule, Observation};
use wasmgym_abi::Tool;

use crate::{Agent, Message, render};

/// An agent given as a module under the environment ABI, turned around: each step's action is
/// what the agent was shown (`from: text` lines), and its observation is the agent's action.
/// It is reset at every episode with seed 0 and options `{"tools": [...]}` (the tools in the
/// function-calling shape). It ending its own episode is an error of the agent.
pub struct ModuleAgent {
    env: Option<Env>,
    /// Why the last reset failed.
    failed: Option<String>,
}

impl ModuleAgent {
    /// An agent driving the module instance `env` (text observations and actions).
    pub fn new(env: Env) -> ModuleAgent {
        ModuleAgent { env: Some(env), failed: None }
    }

    /// An agent on a new instance of `module` (a failure to make one is the agent's first error).
    pub fn from_module(module: &EnvModule) -> ModuleAgent {
        match module.instantiate() {
            Ok(env) => ModuleAgent::new(env),
            Err(e) => ModuleAgent { env: None, failed: Some(format!("no instance of the agent module: {e}")) },
        }
    }
}

fn text(observation: &Observation) -> Result<String, String> {
    match observation {
        Observation::Text(s) => Ok(s.clone()),
        other => Err(format!("an agent module must answer in text, not {other:?}")),
    }
}

impl Agent for ModuleAgent {
    fn start(&mut self, tools: &[Tool]) {
        let options = serde_json::json!({"tools": crate::function_specs(tools)}).to_string();
        // A failure here is reported by the first `act`.
        if let Some(env) = &mut self.env {
            self.failed =
                env.reset(Some(0), Some(&options)).err().map(|e| format!("the agent module refused its reset: {e}"));
        }
    }

    fn act(&mut self, seen: &[Message]) -> Result<String, String> {
        let (Some(env), None) = (&mut self.env, &self.failed) else {
            return Err(self.failed.clone().unwrap_or_default());
        };
        if !env.is_running() {
            return Err("the agent module ended its own episode".into());
        }
        let t = env.step(render(seen).as_str()).map_err(|e| e.to_string())?;
        text(&t.observation)
    }
}
