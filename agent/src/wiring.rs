//! How the modules of a composite episode are wired: plain data ([`Wiring`]), read from JSON.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// A composite episode's modules and who hears what, as data.
///
/// ```json
/// {
///   "name": "support_desk",
///   "parts": [
///     {"name": "env", "module": "support_desk", "hears": ["tool_calls"]},
///     {"name": "user", "module": "support_user", "hears": ["messages"]}
///   ],
///   "checker": {"module": "support_checker", "part": "env"},
///   "max_turns": 40
/// }
/// ```
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Wiring {
    /// Name of the composite (reports and snapshots carry it).
    pub name: String,
    /// The modules, in the order they are reset and stepped.
    pub parts: Vec<PartSpec>,
    /// A reward checker that scores the episode's end on a fork of one part: the episode's reward.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checker: Option<CheckerSpec>,
    /// Agent actions after which the episode is truncated.
    #[serde(default = "default_max_turns")]
    pub max_turns: u32,
    /// Text the conversation may hold (every message's bytes); past it the episode is truncated,
    /// so a part that answers at length cannot fill the host's memory.
    #[serde(default = "default_max_transcript_bytes")]
    pub max_transcript_bytes: u64,
}

/// One module of a composite.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PartSpec {
    /// The part's name: what messages from it say in `from` (`"env"`, `"user"`, ...).
    pub name: String,
    /// The module: a built-in name or a path (relative paths are relative to the wiring file).
    /// `None` means a host callback the caller supplies ([`CompositeModule::set_user`](crate::CompositeModule::set_user)).
    #[serde(default)]
    pub module: Option<String>,
    /// What the part receives as its actions.
    pub hears: Vec<Channel>,
}

/// What a part receives. Every reply a part gives (its observation after the step) goes to the
/// agent, unless it is empty.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Channel {
    /// Calls of the tools its spec declares, as `{"tool": NAME, "args": {...}}`.
    ToolCalls,
    /// The agent's messages to the user, as their text.
    Messages,
    /// What user parts say (their opening and their replies), as text.
    UserReplies,
}

/// The reward checker of a composite.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CheckerSpec {
    /// The checker module: a built-in name or a path.
    pub module: String,
    /// The part whose fork it scores (default `"env"`).
    #[serde(default = "default_checker_part")]
    pub part: String,
}

fn default_max_turns() -> u32 {
    64
}

fn default_max_transcript_bytes() -> u64 {
    64 << 20
}

/// The largest [`Wiring::max_transcript_bytes`].
pub const MAX_TRANSCRIPT_BYTES: u64 = 1 << 30;

fn default_checker_part() -> String {
    "env".into()
}

/// The most parts a composite may have.
pub const MAX_PARTS: usize = 16;

/// The most agent actions an episode may be given ([`Wiring::max_turns`]).
pub const MAX_TURNS: u32 = 10_000;

/// The built-in composites: `(name, what it is)`.
pub const BUILTIN: &[(&str, &str)] = &[
    (
        "support_desk",
        "customer support: the desk's database and tools, a simulated user, a checker of the final database",
    ),
    ("workshop", "a sequential task suite: facts revealed early are needed later; the workspace carries over"),
];

impl Wiring {
    /// A built-in composite by name ([`BUILTIN`]).
    pub fn builtin(name: &str) -> Option<Wiring> {
        let part = |name: &str, module: &str, hears: &[Channel]| PartSpec {
            name: name.into(),
            module: Some(module.into()),
            hears: hears.to_vec(),
        };
        match name {
            "support_desk" => Some(Wiring {
                name: name.into(),
                parts: vec![
                    part("env", "support_desk", &[Channel::ToolCalls]),
                    part("user", "support_user", &[Channel::Messages]),
                ],
                checker: Some(CheckerSpec { module: "support_checker".into(), part: "env".into() }),
                max_turns: 40,
                max_transcript_bytes: default_max_transcript_bytes(),
            }),
            "workshop" => Some(Wiring::single("workshop")),
            _ => None,
        }
    }

    /// One environment on its own (a tool-use or plain text environment): every action goes to it.
    pub fn single(module: &str) -> Wiring {
        Wiring {
            name: module.rsplit(['/', '\\']).next().unwrap_or(module).trim_end_matches(".wasm").into(),
            parts: vec![PartSpec {
                name: "env".into(),
                module: Some(module.into()),
                hears: vec![Channel::ToolCalls, Channel::Messages],
            }],
            checker: None,
            max_turns: default_max_turns(),
            max_transcript_bytes: default_max_transcript_bytes(),
        }
    }

    /// Reads a wiring from JSON, checked ([`Wiring::validate`]).
    pub fn from_json(text: &str) -> Result<Wiring, String> {
        let wiring: Wiring = serde_json::from_str(text).map_err(|e| {
            format!("not a wiring ({e}): expected {{\"name\", \"parts\": [{{\"name\", \"module\", \"hears\"}}], ...}}")
        })?;
        wiring.validate()?;
        Ok(wiring)
    }

    /// Checks names are unique and printable, every part hears something, the checker names a
    /// part that is a module, and the bounds ([`MAX_PARTS`], [`MAX_TURNS`]).
    pub fn validate(&self) -> Result<(), String> {
        let name_ok = |s: &str| {
            !s.is_empty() && s.len() <= 64 && s.chars().all(|c| c.is_ascii_alphanumeric() || "_-.".contains(c))
        };
        if !name_ok(&self.name) {
            return Err(format!("wiring name {:?} must be 1 to 64 ASCII letters, digits, _ - .", self.name));
        }
        if self.parts.is_empty() || self.parts.len() > MAX_PARTS {
            return Err(format!("{} parts: a wiring needs 1 to {MAX_PARTS}", self.parts.len()));
        }
        if self.max_turns == 0 || self.max_turns > MAX_TURNS {
            return Err(format!("max_turns is {}: it must be 1 to {MAX_TURNS}", self.max_turns));
        }
        if self.max_transcript_bytes == 0 || self.max_transcript_bytes > MAX_TRANSCRIPT_BYTES {
            return Err(format!(
                "max_transcript_bytes is {}: it must be 1 to {MAX_TRANSCRIPT_BYTES}",
                self.max_transcript_bytes
            ));
        }
        for (i, part) in self.parts.iter().enumerate() {
            if !name_ok(&part.name) || matches!(part.name.as_str(), "agent" | "host") {
                return Err(format!(
                    "part name {:?} must be 1 to 64 ASCII letters, digits, _ - . (and not \"agent\" or \"host\")",
                    part.name
                ));
            }
            if self.parts[..i].iter().any(|p| p.name == part.name) {
                return Err(format!("part {} is named twice: part names must be unique", part.name));
            }
            if part.hears.is_empty() {
                return Err(format!(
                    "part {} hears nothing: give it \"hears\": [\"tool_calls\"] or [\"messages\"]",
                    part.name
                ));
            }
            if part.module.is_none() && part.hears.contains(&Channel::ToolCalls) {
                return Err(format!("part {} is a host callback: only modules answer tool calls", part.name));
            }
        }
        if let Some(checker) = &self.checker {
            match self.parts.iter().find(|p| p.name == checker.part) {
                Some(p) if p.module.is_some() => {}
                _ => return Err(format!("the checker scores part {:?}, which is not a module part", checker.part)),
            }
        }
        Ok(())
    }

    /// Whether the part is a simulated user: it hears the agent's messages and is not a tool.
    pub(crate) fn is_user(part: &PartSpec) -> bool {
        part.hears.contains(&Channel::Messages) && !part.hears.contains(&Channel::ToolCalls)
    }
}

/// The wiring a user names: a built-in composite ([`BUILTIN`]), a wiring `.json` file (with the
/// folder its relative module paths are read from), wiring JSON text, or an environment on its
/// own ([`Wiring::single`]). The error says what could not be read and why.
pub fn wiring_for(target: &str) -> Result<(Wiring, Option<PathBuf>), String> {
    if let Some(wiring) = Wiring::builtin(target) {
        return Ok((wiring, None));
    }
    if target.trim_start().starts_with('{') {
        return Ok((Wiring::from_json(target)?, None));
    }
    if target.ends_with(".json") {
        let text = std::fs::read_to_string(target).map_err(|e| format!("cannot read the wiring `{target}`: {e}"))?;
        let wiring = Wiring::from_json(&text).map_err(|m| format!("{target}: {m}"))?;
        return Ok((wiring, Path::new(target).parent().map(Path::to_path_buf)));
    }
    Ok((Wiring::single(target), None))
}

/// The bytes of the module a wiring names: `builtin(name)` if it knows it, else the file `name`
/// (relative to `base`, the wiring file's folder, when given).
pub fn module_bytes(
    name: &str,
    base: Option<&Path>,
    builtin: impl Fn(&str) -> Option<&'static [u8]>,
) -> Result<Vec<u8>, String> {
    if let Some(bytes) = builtin(name) {
        return Ok(bytes.to_vec());
    }
    let path = match base {
        Some(base) if Path::new(name).is_relative() => base.join(name),
        _ => PathBuf::from(name),
    };
    std::fs::read(&path)
        .map_err(|e| format!("module `{name}` is not a built-in and {} cannot be read ({e})", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_wirings_are_valid_and_round_trip() {
        for (name, _) in BUILTIN {
            let wiring = Wiring::builtin(name).unwrap();
            wiring.validate().unwrap();
            assert_eq!(Wiring::from_json(&serde_json::to_string(&wiring).unwrap()).unwrap(), wiring);
        }
    }

    #[test]
    fn targets_name_a_builtin_a_file_json_text_or_one_env() {
        assert_eq!(wiring_for("support_desk").unwrap().0, Wiring::builtin("support_desk").unwrap());
        let (single, base) = wiring_for("envs/my_env.wasm").unwrap();
        assert_eq!((single.name.as_str(), single.parts.len(), base), ("my_env", 1, None));
        let text = r#"{"name": "x", "parts": [{"name": "u", "module": "m", "hears": ["messages"]}]}"#;
        assert_eq!(wiring_for(text).unwrap().0.parts[0].module.as_deref(), Some("m"));
        assert!(wiring_for("/nonexistent/w.json").unwrap_err().contains("cannot read the wiring"));
        let builtin = |name: &str| (name == "m").then_some(&b"\0asm"[..]);
        assert_eq!(module_bytes("m", None, builtin).unwrap(), b"\0asm");
        let missing = module_bytes("n.wasm", Some(Path::new("/nonexistent")), builtin).unwrap_err();
        assert!(missing.contains("/nonexistent/n.wasm cannot be read"), "{missing}");
    }

    #[test]
    fn bad_wirings_name_the_cause() {
        let refused = |json: &str, word: &str| {
            let message = Wiring::from_json(json).unwrap_err();
            assert!(message.contains(word), "{message:?} does not name {word:?}");
        };
        refused(r#"{"name": "x", "parts": []}"#, "1 to");
        refused(r#"{"name": "x", "parts": [{"name": "a", "module": "m", "hears": []}]}"#, "hears nothing");
        refused(
            r#"{"name": "x", "parts": [{"name": "a", "module": "m", "hears": ["messages"]}, {"name": "a", "module": "m", "hears": ["messages"]}]}"#,
            "twice",
        );
        refused(r#"{"name": "x", "parts": [{"name": "agent", "module": "m", "hears": ["messages"]}]}"#, "\"agent\"");
        refused(r#"{"name": "x", "parts": [{"name": "u", "hears": ["tool_calls"]}]}"#, "callback");
        refused(r#"{"name": "x", "parts": [{"name": "u", "module": "m", "hears": ["shouting"]}]}"#, "not a wiring");
        refused(
            r#"{"name": "x", "parts": [{"name": "u", "module": "m", "hears": ["messages"]}], "checker": {"module": "c"}}"#,
            "not a module part",
        );
        refused(
            r#"{"name": "x", "parts": [{"name": "u", "module": "m", "hears": ["messages"]}], "max_turns": 0}"#,
            "max_turns",
        );
    }
}
