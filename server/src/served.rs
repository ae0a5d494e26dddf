//! The environments a server serves: loaded once, instantiated per session.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use serde_json::{Value, json};
use wasmgym::{Env, EnvModule, EnvSpec, Runtime};

use crate::spaces;

/// One served environment: its compiled module and what `/metadata` and `/schema` answer.
pub struct Served {
    /// The name in URLs (`/envs/<name>/ws`): the built-in's name, or the spec's name for a file.
    pub name: String,
    /// `builtin:<name>` or the path it was loaded from.
    pub source: String,
    module: EnvModule,
    schemas: Value,
}

impl Served {
    /// The environment's spec.
    pub fn spec(&self) -> &EnvSpec {
        self.module.spec()
    }

    /// A new instance under the same limits as the CLI's.
    pub fn instantiate(&self) -> wasmgym::Result<Env> {
        self.module.instantiate()
    }

    /// `/schema`: the JSON schemas of action, observation and state.
    pub fn schemas(&self) -> &Value {
        &self.schemas
    }

    /// `/metadata`: OpenEnv's fields (`name`, `description`, `version`, ...) and the spec.
    pub fn metadata(&self) -> Value {
        let spec = self.spec();
        json!({
            "name": self.name,
            "description": format!(
                "{} (wasmgym, {} player{}, {} actions), sandboxed WebAssembly from {}",
                spec.name,
                spec.players,
                if spec.players == 1 { "" } else { "s" },
                match spec.action_space { wasmgym::Space::Text { .. } => "text", _ => "discrete" },
                self.source
            ),
            "version": spec.version.to_string(),
            "readme_content": null,
            "author": null,
            "documentation_url": null,
            "spec": spec,
            "module_hash": self.module.hash().iter().map(|b| format!("{b:02x}")).collect::<String>(),
        })
    }
}

/// Loads each of `envs` (a built-in name or a path to a `.wasm` / `.wat` file). Names must be
/// unique; an unknown name lists the built-ins.
pub fn load(runtime: &Runtime, envs: &[String]) -> Result<BTreeMap<String, Arc<Served>>, String> {
    let mut served = BTreeMap::new();
    for env in envs {
        let (module, name, source) = match wasmgym_builtin::find(env) {
            Some(builtin) => {
                let module = runtime.load(builtin.bytes).map_err(|e| format!("loading built-in `{env}`: {e}"))?;
                (module, env.clone(), format!("builtin:{env}"))
            }
            None if Path::new(env).is_file() => {
                let module = runtime.load_file(env).map_err(|e| format!("loading `{env}`: {e}"))?;
                let name = module.spec().name.clone();
                (module, name, env.clone())
            }
            None => {
                return Err(format!(
                    "unknown environment `{env}`: the built-ins are {}; a path to a .wasm or .wat file works too",
                    wasmgym_builtin::names().join(", ")
                ));
            }
        };
        if !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-' || c == '.') || name.is_empty() {
            return Err(format!("`{env}` is named {name:?}, which cannot be part of a URL: rename it in its spec"));
        }
        if served.contains_key(&name) {
            return Err(format!("two environments are named `{name}`: serve each once"));
        }
        let schemas = spaces::schemas(module.spec());
        served.insert(name.clone(), Arc::new(Served { name, source, module, schemas }));
    }
    Ok(served)
}
