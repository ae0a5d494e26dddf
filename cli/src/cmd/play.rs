//! `wasmgym play <env>`: a person against a uniform-random opponent, in the terminal or through a
//! pipe. Bad input is refused with a message and asked again; an illegal action leaves the game
//! as it was (the runtime refuses it without changing the state).
//!
//! `wasmgym play <composite>` (a built-in composite such as `support_desk`, or a wiring file): the
//! person is the agent, typing messages to the simulated user and tool calls (`/NAME {args}` or the
//! JSON call); the tools are listed first, and the checker's score is shown at the end.

use std::io::{self, BufRead, IsTerminal, Write};

use wasmgym::check::{random_action, text_choices};
use wasmgym::{Action, Env, Space};
use wasmgym_abi::rng::Rng;

use crate::cmd::run::Ending;
use crate::error::{Context, Error, Outcome};
use crate::{load, output};

#[derive(clap::Args)]
pub struct Args {
    /// A built-in name (see `wasmgym envs`), a path to a .wasm or .wat file, or a composite (a
    /// built-in such as support_desk, or a wiring .json file), in which you are the agent.
    pub env: String,
    /// Seed of the reset and of the random opponent.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Reset options as JSON (for composites, the task: `{"task": 3}`).
    #[arg(long)]
    pub options: Option<String>,
    /// Which player you are (0 moves first); the other players choose at random.
    #[arg(long, default_value_t = 0)]
    pub human_player: u32,
}

/// What a line of input asks for.
enum Input {
    Action(Action),
    Quit,
    Invalid(String),
}

pub fn run(args: Args) -> Result<Outcome, Error> {
    if load::is_composite(&args.env) {
        return converse(&args);
    }
    let loaded = load::load(&load::runtime()?, &args.env)?;
    let spec = loaded.module.spec().clone();
    if args.human_player >= spec.players {
        return Err(Error::Usage(format!(
            "--human-player {} does not exist: {} has {} player(s), numbered from 0",
            args.human_player, spec.name, spec.players
        )));
    }
    let mut env = loaded.module.instantiate().context(|| "creating an instance".into())?;
    let mut rng = Rng::seed_from_u64(args.seed);
    let stdin = io::stdin();
    let echo = !stdin.is_terminal();
    let mut input = stdin.lock();
    let mut out = io::stdout().lock();

    let opponents = if spec.players > 1 { " against a random opponent" } else { "" };
    writeln!(
        out,
        "{} ({}): you are player {}{opponents}, seed {}.",
        spec.name, loaded.source, args.human_player, args.seed
    )?;
    writeln!(out, "Type an action and press Enter{}.", quit_hint(&spec.action_space))?;
    env.reset(Some(args.seed), args.options.as_deref()).context(|| format!("resetting with seed {}", args.seed))?;
    let mut returns = vec![0.0; spec.players as usize];
    let mut truncated = false;

    while env.is_running() {
        let player = env.current_player().unwrap_or(0);
        let step = env.steps();
        let t = if spec.players == 1 || player == args.human_player {
            writeln!(out, "\n{}", indent(&env.render().context(|| format!("rendering at step {step}"))?))?;
            let legal = env.legal_actions().context(|| format!("listing legal actions at step {step}"))?;
            writeln!(out, "legal actions: {}", describe_legal(&spec.action_space, &legal))?;
            let texts = text_choices(&mut env).context(|| format!("listing valid commands at step {step}"))?;
            if !texts.is_empty() {
                let texts: Vec<String> = texts.iter().map(|t| output::printable(t)).collect();
                writeln!(out, "valid commands: {}", texts.join(" | "))?;
            }
            match ask(&mut env, &mut input, &mut out, player, echo)? {
                Some(t) => t,
                None => return Ok(Outcome::Passed),
            }
        } else {
            let legal = env.legal_actions().context(|| format!("listing legal actions at step {step}"))?;
            let texts = text_choices(&mut env).context(|| format!("listing valid commands at step {step}"))?;
            let Some(action) = random_action(&spec.action_space, &legal, &texts, &mut rng) else {
                writeln!(out, "player {player} has no legal action: stopping.")?;
                return Ok(Outcome::Passed);
            };
            let t = env.step(action.clone()).context(|| format!("step {step}: player {player} plays {action}"))?;
            writeln!(out, "player {player} (random) plays {action}")?;
            t
        };
        for (p, r) in returns.iter_mut().enumerate() {
            *r += t.reward(p as u32);
        }
        truncated = t.truncated;
    }

    writeln!(out, "\n{}", indent(&env.render().context(|| "rendering the final state".into())?))?;
    let result = match Ending::of(&returns, truncated, false) {
        Ending::Draw => "Draw.".to_string(),
        Ending::Truncated => "Episode truncated (step limit reached).".to_string(),
        Ending::Terminated | Ending::CutOff => "Episode over.".to_string(),
        Ending::Winner(p) if p == args.human_player as usize => format!("You win! (player {p})"),
        Ending::Winner(p) => format!("You lose: player {p} wins."),
    };
    writeln!(out, "Game over after {} steps. {result} Returns: {}", env.steps(), output::numbers(&returns))?;
    Ok(Outcome::Passed)
}

/// Asks for the human's action until the environment accepts one, and returns what it did.
/// `None`: input ended or the human quit.
fn ask(
    env: &mut Env,
    input: &mut impl BufRead,
    out: &mut impl Write,
    player: u32,
    echo: bool,
) -> Result<Option<wasmgym::Transition>, Error> {
    let space = env.spec().action_space.clone();
    loop {
        write!(out, "player {player}> ")?;
        out.flush()?;
        let mut line = Vec::new();
        if input.read_until(b'\n', &mut line)? == 0 {
            writeln!(out, "\nInput ended before the game did: stopping without a result.")?;
            return Ok(None);
        }
        let line = String::from_utf8_lossy(&line);
        let line = line.trim_end_matches(['\n', '\r']);
        if echo {
            writeln!(out, "{line}")?;
        }
        let action = match parse(&space, line) {
            Input::Action(action) => action,
            Input::Quit => {
                writeln!(out, "Quit: game abandoned.")?;
                return Ok(None);
            }
            Input::Invalid(why) => {
                writeln!(out, "{why}; try again.")?;
                continue;
            }
        };
        let step = env.steps();
        match env.step(action.clone()) {
            Ok(t) => return Ok(Some(t)),
            Err(e @ wasmgym::Error::IllegalAction { .. }) => {
                writeln!(out, "{e}; the game is unchanged, try again.")?;
            }
            Err(source) => return Err(Error::Env { context: format!("step {step}: you play {action}"), source }),
        }
    }
}

/// Reads a line as an action of `space`: a number for discrete spaces, the text itself for text
/// spaces.
fn parse(space: &Space, line: &str) -> Input {
    match space {
        Space::Text { .. } => Input::Action(Action::Text(line.to_owned())),
        _ => match line.trim() {
            "q" | "quit" | "exit" => Input::Quit,
            "" => Input::Invalid("enter the number of an action".into()),
            text => match text.parse::<i64>() {
                Ok(a) => Input::Action(Action::Discrete(a)),
                Err(_) => Input::Invalid(format!("`{text}` is not an action: enter one of the numbers listed")),
            },
        },
    }
}

fn describe_legal(space: &Space, legal: &[i64]) -> String {
    match space {
        Space::Text { .. } => format!("any text in {}", output::space(space)),
        _ => legal.iter().map(|a| a.to_string()).collect::<Vec<_>>().join(" "),
    }
}

fn quit_hint(space: &Space) -> &'static str {
    match space {
        Space::Text { .. } => " (end of input, Ctrl-D, stops)",
        _ => " (`quit` or end of input stops)",
    }
}

fn indent(text: &str) -> String {
    text.lines().map(|l| format!("    {}", crate::output::printable(l))).collect::<Vec<_>>().join("\n")
}

/// Plays a composite: the person is the agent.
fn converse(args: &Args) -> Result<Outcome, Error> {
    let module = load::composite(&load::runtime()?, &args.env)?;
    let mut composite = module.instantiate(wasmgym::Limits::default())?;
    let stdin = io::stdin();
    let echo = !stdin.is_terminal();
    let mut input = stdin.lock();
    let mut out = io::stdout().lock();
    let name = &module.wiring().name;
    writeln!(out, "{name}: you are the agent, seed {}.", args.seed)?;
    let tools = module.tools();
    if !tools.is_empty() {
        writeln!(
            out,
            "Tools (call one with `/NAME {{\"arg\": ...}}` or the JSON call {{\"tool\": NAME, \"args\": {{...}}}}):"
        )?;
        for tool in &tools {
            let params = tool.parameters.get("properties").and_then(|p| p.as_object());
            let params: Vec<&str> = params.into_iter().flat_map(|p| p.keys()).map(String::as_str).collect();
            writeln!(out, "  {}({}): {}", tool.name, params.join(", "), output::printable(&tool.description))?;
        }
    }
    writeln!(out, "Anything else you type is a message to the user. End of input (Ctrl-D) stops.")?;
    let mut step = composite.reset(args.seed, args.options.as_deref())?;
    loop {
        for m in &step.messages {
            writeln!(out, "\n[{}] {}", m.from, indent(&m.text).trim_start())?;
        }
        if step.done() {
            break;
        }
        write!(out, "agent> ")?;
        out.flush()?;
        let mut line = String::new();
        if input.read_line(&mut line)? == 0 {
            writeln!(out, "\nInput ended before the episode did: stopping without a result.")?;
            return Ok(Outcome::Passed);
        }
        let line = line.trim_end_matches(['\n', '\r']);
        if echo {
            writeln!(out, "{line}")?;
        }
        step = composite.step(&shortcut(line))?;
    }
    let ending = if step.terminated { "over" } else { "truncated" };
    write!(out, "\nEpisode {ending} after {} turns. Reward {}", composite.turns(), composite.total_reward())?;
    match composite.score() {
        Some(s) if s.message.is_empty() => writeln!(out, " (checker: {}).", s.score)?,
        Some(s) => writeln!(out, " (checker: {}: {}).", s.score, output::printable(&s.message))?,
        None => writeln!(out, ".")?,
    }
    Ok(Outcome::Passed)
}

/// `/NAME {args}` (or `/NAME` alone) as the JSON call; any other line as it is.
fn shortcut(line: &str) -> String {
    let Some(call) = line.strip_prefix('/') else { return line.to_string() };
    let (tool, args) = call.split_once(char::is_whitespace).unwrap_or((call, ""));
    let args = args.trim();
    match serde_json::from_str::<serde_json::Value>(if args.is_empty() { "{}" } else { args }) {
        Ok(args) => serde_json::json!({"tool": tool, "args": args}).to_string(),
        // Not JSON: passed as text, which the host answers by saying what is wrong with it.
        Err(_) => serde_json::json!({"tool": tool, "args": args}).to_string(),
    }
}
