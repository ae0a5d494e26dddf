//! `wasmgym new <name>`: a ready environment crate: builds for wasm32-wasip1 with the link flags
//! the built-ins use, has a native test, and a README of three commands.

use std::io::Write;
use std::path::{Path, PathBuf};

use crate::error::{Error, Outcome};

#[derive(clap::Args)]
pub struct Args {
    /// The environment's name: lowercase letters, digits and `_`, starting with a letter (the
    /// crate, the spec's name and the `.wasm` file take it).
    pub name: String,
    /// Players: 1 makes a single-agent guessing game, 2 or more a game of Nim for that many.
    #[arg(long, default_value_t = 1)]
    pub players: u32,
    /// A text environment instead: text observations, text commands with a list of valid ones.
    #[arg(long, conflicts_with = "players")]
    pub text: bool,
    /// The folder to create the crate in (default: the current one).
    #[arg(long, default_value = ".")]
    pub path: PathBuf,
    /// The wasmgym-sdk crate to depend on (default: the sdk/ of the checkout this binary was built
    /// from).
    #[arg(long)]
    pub sdk: Option<PathBuf>,
    /// Print what was created as one JSON document.
    #[arg(long)]
    pub json: bool,
}

/// The sdk/ folder of the checkout this binary was built from.
fn default_sdk() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../sdk")
}

pub fn run(args: Args) -> Result<Outcome, Error> {
    let name = &args.name;
    let valid = name.chars().next().is_some_and(|c| c.is_ascii_lowercase())
        && name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    if !valid {
        return Err(Error::Usage(format!(
            "`{name}` is not a valid environment name: use lowercase letters, digits and `_`, starting with a letter \
             (such as `my_env`)"
        )));
    }
    if args.players == 0 || args.players > 16 {
        return Err(Error::Usage(format!("--players {} is out of range: use 1 to 16", args.players)));
    }
    let sdk = args.sdk.clone().unwrap_or_else(default_sdk);
    let sdk = std::fs::canonicalize(&sdk).ok().filter(|p| p.join("Cargo.toml").is_file()).ok_or_else(|| {
        Error::Usage(format!(
            "no wasmgym-sdk crate at {}: pass --sdk PATH/TO/wasmgym/sdk (the sdk/ folder of a wasmgym checkout)",
            sdk.display()
        ))
    })?;
    let dir = args.path.join(name);
    if dir.exists() {
        return Err(Error::Usage(format!("{} exists already: pick another name or --path", dir.display())));
    }
    let type_name: String =
        name.split('_').filter(|w| !w.is_empty()).map(|w| w[..1].to_ascii_uppercase() + &w[1..]).collect();
    let (kind, source) = match (args.text, args.players) {
        (true, _) => ("text", TEXT),
        (false, 1) => ("single-agent", GUESS),
        (false, _) => ("multi-player", NIM),
    };
    // The sandboxed test runs this very binary's `check` unless WASMGYM_BIN or PATH gives another.
    let wasmgym = std::env::current_exe().map(|p| p.display().to_string().replace('\\', "/")).unwrap_or_default();
    let fill = |template: &str| {
        template
            .replace("{name}", name)
            .replace("{Type}", &type_name)
            .replace("{players}", &args.players.to_string())
            .replace("{sdk}", &sdk.display().to_string().replace('\\', "/"))
            .replace("{wasmgym}", &wasmgym)
    };
    let files = [
        ("Cargo.toml", fill(CARGO_TOML)),
        (".cargo/config.toml", CONFIG_TOML.to_owned()),
        (".gitignore", "/target\n".to_owned()),
        ("src/lib.rs", fill(source)),
        ("tests/native.rs", fill(NATIVE_TEST)),
        ("tests/sandbox.rs", fill(SANDBOX_TEST)),
        ("README.md", fill(README)),
    ];
    for (file, text) in &files {
        let path = dir.join(file);
        let parent = path.parent().expect("files are inside the crate");
        std::fs::create_dir_all(parent)
            .and_then(|_| std::fs::write(&path, text))
            .map_err(|e| Error::Usage(format!("cannot write {}: {e}", path.display())))?;
    }
    let mut out = std::io::stdout().lock();
    if args.json {
        let files: Vec<&str> = files.iter().map(|(f, _)| *f).collect();
        let doc =
            serde_json::json!({"created": dir, "name": name, "kind": kind, "players": args.players, "files": files});
        writeln!(out, "{doc}")?;
    } else {
        writeln!(out, "created {} ({kind} environment `{name}`), next:", dir.display())?;
        writeln!(out, "  cd {}", dir.display())?;
        writeln!(out, "  cargo test                                         # native, then the suite in the sandbox")?;
        writeln!(out, "  cargo build --release --target wasm32-wasip1")?;
        writeln!(out, "  wasmgym check target/wasm32-wasip1/release/{name}.wasm   # the conformance suite, sandboxed")?;
    }
    Ok(Outcome::Passed)
}

const CARGO_TOML: &str = r#"[package]
name = "{name}"
version = "0.1.0"
edition = "2024"
publish = false

[lib]
# cdylib: the .wasm the host loads; rlib: the same code natively, for tests and baselines.
crate-type = ["cdylib", "rlib"]

[dependencies]
wasmgym-sdk = { path = "{sdk}" }

[profile.release]
debug = false

# A workspace of its own, so the crate builds inside another project's folder too.
[workspace]
"#;

const CONFIG_TOML: &str = r#"# A 128 KiB stack instead of Rust's default 1 MiB: the module's memory, its snapshots and its forks
# stay small (the built-in environments are linked the same way).
[target.wasm32-wasip1]
rustflags = ["-Clink-arg=-zstack-size=131072"]
"#;

const README: &str = r#"# {name}

A [wasmgym](https://example.invalid/wasmgym) environment. Its rules are in `src/lib.rs`.

```sh
cargo test                                                   # natively, then `wasmgym check` in the sandbox
cargo build --release --target wasm32-wasip1                 # target/wasm32-wasip1/release/{name}.wasm
wasmgym check target/wasm32-wasip1/release/{name}.wasm       # the conformance suite, in the sandbox
```

Then `wasmgym run target/wasm32-wasip1/release/{name}.wasm --episodes 100` plays it with a random policy,
and `wasmgym play` lets you play it. Draw every random choice from the `rng` the SDK passes in, and keep
all state in the struct: the host snapshots the whole module, so forks need no clone code.
"#;

const GUESS: &str = r#"//! {name}: guess the hidden number from 0 to 15; a wrong guess is told "higher" or "lower".
//! Make it yours: the spec, `reset`, `observation` and `step` (and the optional methods).

use wasmgym_sdk::*;

/// The numbers to guess from.
const SIZE: u64 = 16;

/// One episode's state. A new one is made by every reset.
pub struct {Type} {
    secret: i64,
    /// 0: no guess yet, 1: higher, 2: lower.
    hint: i64,
}

impl Environment for {Type} {
    fn spec() -> EnvSpec {
        EnvSpec {
            name: "{name}".into(),
            version: 1,
            players: 1,
            observation_space: Space::Discrete { n: 3 },
            action_space: Space::Discrete { n: SIZE },
            reward_range: (-0.1, 1.0),
            max_episode_steps: Some(SIZE),
            determinism: Determinism::Deterministic,
            tools: vec![],
        }
    }

    fn reset(rng: &mut Rng, _options: &Options) -> Result<Self, EnvError> {
        Ok({Type} { secret: rng.below(SIZE) as i64, hint: 0 }) // randomness only from the seeded RNG
    }

    fn observation(&self) -> Observation {
        Observation::Discrete(self.hint)
    }

    fn step(&mut self, action: &Action, _rng: &mut Rng) -> Result<Transition, EnvError> {
        let guess = action.discrete(); // the SDK has checked it is a legal action
        if guess == self.secret {
            return Ok(Transition::reward(1.0).terminal());
        }
        self.hint = if guess < self.secret { 1 } else { 2 };
        Ok(Transition::reward(-0.1))
    }

    fn render(&self) -> String {
        ["guess a number from 0 to 15", "higher", "lower"][self.hint as usize].into()
    }
}

export_env!({Type});
"#;

const NIM: &str = r#"//! {name}: Nim for {players} players. From a pile of 10 to 20 stones, each player in turn takes 1,
//! 2 or 3; whoever takes the last stone wins. Make it yours: the spec, `reset`, `observation`,
//! `step`, and the optional `legal_actions`, `current_player` and `render`.

use wasmgym_sdk::*;

/// Players at the table.
const PLAYERS: u32 = {players};

/// One episode's state. A new one is made by every reset.
pub struct {Type} {
    stones: i64,
    player: u32,
}

impl Environment for {Type} {
    fn spec() -> EnvSpec {
        EnvSpec {
            name: "{name}".into(),
            version: 1,
            players: PLAYERS,
            // [stones left, player to move]
            observation_space: Space::Box {
                dtype: Dtype::I32,
                shape: vec![2],
                low: vec![0.0, 0.0],
                high: vec![20.0, (PLAYERS - 1) as f64],
            },
            // Action a takes a + 1 stones.
            action_space: Space::Discrete { n: 3 },
            reward_range: (-1.0, 1.0),
            max_episode_steps: Some(20),
            determinism: Determinism::Deterministic,
            tools: vec![],
        }
    }

    fn reset(rng: &mut Rng, _options: &Options) -> Result<Self, EnvError> {
        Ok({Type} { stones: 10 + rng.below(11) as i64, player: 0 })
    }

    fn observation(&self) -> Observation {
        Observation::I32(vec![self.stones as i32, self.player as i32])
    }

    fn legal_actions(&self) -> Vec<i64> {
        (0..3).filter(|a| a + 1 <= self.stones).collect()
    }

    fn current_player(&self) -> u32 {
        self.player
    }

    fn step(&mut self, action: &Action, _rng: &mut Rng) -> Result<Transition, EnvError> {
        self.stones -= action.discrete() + 1; // the SDK has checked it is a legal action
        if self.stones == 0 {
            let rewards: Vec<f64> = (0..PLAYERS).map(|p| if p == self.player { 1.0 } else { -1.0 }).collect();
            return Ok(Transition::rewards(rewards).terminal());
        }
        self.player = (self.player + 1) % PLAYERS;
        Ok(Transition::rewards(vec![0.0; PLAYERS as usize]))
    }

    fn render(&self) -> String {
        format!("{} stones left; player {} to take 1, 2 or 3", self.stones, self.player)
    }
}

export_env!({Type});
"#;

const TEXT: &str = r#"//! {name}: a locked room. The key is under the mat or in the drawer; take it, open the door, go
//! out. Make it yours: the spec, `reset`, `observation`, `step`, and `valid_text_actions` (the
//! commands worth trying now, which search and random rollouts pick from).

use wasmgym_sdk::*;

/// One episode's state. A new one is made by every reset.
pub struct {Type} {
    key_in_drawer: bool,
    searched: bool,
    has_key: bool,
    door_open: bool,
    last: String,
}

impl Environment for {Type} {
    fn spec() -> EnvSpec {
        EnvSpec {
            name: "{name}".into(),
            version: 1,
            players: 1,
            observation_space: Space::Text { max_length: 512, charset: None },
            action_space: Space::Text { max_length: 64, charset: None },
            reward_range: (-0.01, 1.0),
            max_episode_steps: Some(50),
            determinism: Determinism::Deterministic,
            tools: vec![],
        }
    }

    fn reset(rng: &mut Rng, _options: &Options) -> Result<Self, EnvError> {
        Ok({Type} {
            key_in_drawer: rng.below(2) == 1,
            searched: false,
            has_key: false,
            door_open: false,
            last: "You are in a small room with a locked door, a mat and a drawer.".into(),
        })
    }

    fn observation(&self) -> Observation {
        Observation::Text(self.last.clone())
    }

    fn valid_text_actions(&self) -> Vec<String> {
        let mut commands = vec!["look under the mat", "open the drawer"];
        if self.searched && !self.has_key {
            commands.push("take the key");
        }
        commands.push(if self.door_open { "go out" } else { "open the door" });
        commands.into_iter().map(String::from).collect()
    }

    fn step(&mut self, action: &Action, _rng: &mut Rng) -> Result<Transition, EnvError> {
        let command = action.text().trim().to_lowercase();
        self.last = match command.as_str() {
            "look under the mat" | "open the drawer" => {
                let here = (command == "open the drawer") == self.key_in_drawer;
                self.searched |= here;
                if here && !self.has_key { "There is a key here." } else { "Nothing of use here." }.into()
            }
            "take the key" if self.searched && !self.has_key => {
                self.has_key = true;
                "You take the key.".into()
            }
            "open the door" if self.has_key => {
                self.door_open = true;
                "The door swings open.".into()
            }
            "open the door" => "The door is locked.".into(),
            "go out" if self.door_open => {
                self.last = "You are outside. Well done!".into();
                return Ok(Transition::reward(1.0).terminal());
            }
            _ => format!("You cannot {command:?} here."),
        };
        Ok(Transition::reward(-0.01))
    }

    fn render(&self) -> String {
        self.last.clone()
    }
}

export_env!({Type});
"#;

const NATIVE_TEST: &str = r#"//! Plays seeded episodes natively, without the sandbox: the same seed gives the same episode, and
//! every step keeps to the spec's rewards. `wasmgym check` runs the whole conformance suite on the
//! built .wasm, in the sandbox.

use wasmgym_sdk::{Action, Environment, Runner, Space};
use {name}::{Type};

/// One episode from `seed`, choosing among the legal actions (or valid commands) by `seed`.
fn play(seed: u64) -> Vec<String> {
    let mut runner = Runner::<{Type}>::new();
    let spec = runner.spec().clone();
    let mut transition = runner.reset(Some(seed), "").expect("reset");
    let mut log = vec![format!("{transition:?}")];
    let mut choice = seed;
    while !(transition.terminated || transition.truncated) {
        choice = choice.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        let action = match spec.action_space {
            Space::Text { .. } => {
                let commands = runner.env().expect("an episode is running").valid_text_actions();
                Action::Text(commands[(choice >> 33) as usize % commands.len()].clone())
            }
            _ => {
                let legal = runner.legal_actions();
                assert!(!legal.is_empty(), "no legal action in a running episode");
                Action::Discrete(legal[(choice >> 33) as usize % legal.len()])
            }
        };
        transition = runner.step(&action).expect("a legal action steps");
        for &r in &transition.rewards {
            assert!(spec.reward_range.0 <= r && r <= spec.reward_range.1, "reward {r} outside {:?}", spec.reward_range);
        }
        log.push(format!("{action:?} {transition:?}"));
        assert!(log.len() <= 100_000, "the episode never ends");
    }
    log
}

#[test]
fn seeded_episodes_repeat_exactly() {
    for seed in 0..50 {
        assert_eq!(play(seed), play(seed), "seed {seed}");
    }
}
"#;

const SANDBOX_TEST: &str = r#"//! Builds the environment for wasm32-wasip1 and runs wasmgym's conformance suite on it, in the
//! sandbox: `wasmgym check` (the binary in $WASMGYM_BIN, else the one that made this crate, else
//! `wasmgym` on the PATH).

use std::path::PathBuf;
use std::process::Command;

fn wasmgym() -> PathBuf {
    if let Some(bin) = std::env::var_os("WASMGYM_BIN") {
        return bin.into();
    }
    let maker = PathBuf::from("{wasmgym}");
    if maker.is_file() { maker } else { "wasmgym".into() }
}

#[test]
fn the_conformance_suite_passes_in_the_sandbox() {
    // A target directory of its own, so this build does not wait for the one running the tests.
    let target = std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| PathBuf::from("target"), PathBuf::from).join("sandbox");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let built = Command::new(cargo)
        .args(["build", "--quiet", "--release", "--target", "wasm32-wasip1", "--target-dir"])
        .arg(&target)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .status()
        .expect("running cargo");
    assert!(built.success(), "the wasm32-wasip1 build failed (rustup target add wasm32-wasip1?)");
    let wasm = target.join("wasm32-wasip1/release/{name}.wasm");
    let checked = Command::new(wasmgym()).arg("check").arg(&wasm).output().expect("running wasmgym (set WASMGYM_BIN)");
    let report = String::from_utf8_lossy(&checked.stdout);
    assert!(checked.status.success(), "wasmgym check failed:\n{report}{}", String::from_utf8_lossy(&checked.stderr));
}
"#;
