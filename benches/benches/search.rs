//! MCTS against OpenSpiel's C++ `MCTSBot`, side by side in the same run (issue 11's speed goal:
//! ≥ 1.5× OpenSpiel's simulations/s on connect_four, ≥ 0.7× on tic_tac_toe).
//!
//! | group               | wasmgym                                          | baseline (same group)            |
//! |---------------------|--------------------------------------------------|----------------------------------|
//! | `mcts/tic_tac_toe`  | `wasmgym`: `wasmgym_search::mcts` on the built-in env | `open_spiel`: `pyspiel.MCTSBot` |
//! | `mcts/connect_four` | the same                                         | the same                         |
//!
//! One iteration is one search of [`SIMULATIONS`] simulations from the game's initial state, UCT
//! c = 2, one random rollout per simulation, one thread, a new seed per search on both sides;
//! throughput is in simulations (criterion prints simulations/s as `elem/s`).
//!
//! The OpenSpiel side is `benches/peers/openspiel_mcts.py --serve`, one Python process per game
//! started before its benchmark: each sample asks it for `iters` searches and takes the time it
//! measured around them (`time.perf_counter`), so neither Python's start-up nor the pipe is
//! counted. Its interpreter is `$WASMGYM_OPENSPIEL_PYTHON`, else the venv of
//! `scripts/get-openspiel.sh` (run here when the venv is missing); without it the `open_spiel`
//! benchmarks are skipped with a message.
//!
//! `scaling` runs one thread against two (root-parallel MCTS, `expand`, `VecEnv`) and a 1 MiB
//! environment against a 16 MiB one, each pair in one group.
//!
//! After each group, `info: <game>: paired ...` prints the ratio measured in 20 alternating rounds
//! of 5 searches a side, which a change of the machine's load biases less than criterion's two
//! figures, taken tens of seconds apart.

use std::hint::black_box;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::time::{Duration, Instant};

use criterion::{Criterion, SamplingMode, Throughput, criterion_group, criterion_main};
use wasmgym::Env;
use wasmgym_benches::{modules, wasm};
use wasmgym_search::{MctsOptions, mcts};

/// Simulations per search, on both sides.
const SIMULATIONS: usize = 1000;
/// UCT's exploration constant, on both sides.
const EXPLORATION: f64 = 2.0;
/// Games, by the same name in wasmgym and OpenSpiel.
const GAMES: [&str; 2] = ["tic_tac_toe", "connect_four"];

fn config() -> Criterion {
    Criterion::default().warm_up_time(Duration::from_secs(2)).measurement_time(Duration::from_secs(6)).sample_size(20)
}

fn search(c: &mut Criterion) {
    let python = openspiel_python();
    for game in GAMES {
        let mut group = c.benchmark_group(format!("mcts/{game}"));
        // A search takes milliseconds: flat sampling, the same number of searches in every sample.
        group.sampling_mode(SamplingMode::Flat).throughput(Throughput::Elements(SIMULATIONS as u64));

        let mut ours = Ours::new(game);
        group.bench_function("wasmgym", |b| b.iter_custom(|iters| ours.search(iters)));
        let mut peer = match python.as_deref().map(|python| Peer::start(python, game)) {
            Some(Ok(mut peer)) => {
                let first = peer.search(1);
                println!(
                    "info: {game}: open_spiel: one search: {:.0} simulations/s",
                    SIMULATIONS as f64 / first.as_secs_f64()
                );
                group.bench_function("open_spiel", |b| b.iter_custom(|iters| peer.search(iters)));
                Some(peer)
            }
            Some(Err(e)) => {
                println!("info: {game}: skipping open_spiel: the peer did not start: {e}");
                None
            }
            None => {
                println!("info: {game}: skipping open_spiel: no Python with open_spiel (see above)");
                None
            }
        };
        group.finish();
        if let Some(peer) = &mut peer {
            paired(game, &mut ours, peer);
        }
    }
}

/// Rounds and searches per side per round of [`paired`].
const PAIRED_ROUNDS: usize = 20;
const PAIRED_SEARCHES: u64 = 5;

/// The ratio wasmgym ÷ OpenSpiel (simulations/s) measured in alternating rounds (ABBA order), so
/// that a change of the machine's load during the run falls on both sides alike: criterion times
/// the two functions one after the other, tens of seconds apart. Prints the median and range of
/// the per-round ratios.
fn paired(game: &str, ours: &mut Ours, peer: &mut Peer) {
    let mut ratios = Vec::with_capacity(PAIRED_ROUNDS);
    let (mut a_total, mut b_total) = (Duration::ZERO, Duration::ZERO);
    for round in 0..PAIRED_ROUNDS {
        let (a, b) = if round % 2 == 0 {
            let a = ours.search(PAIRED_SEARCHES);
            (a, peer.search(PAIRED_SEARCHES))
        } else {
            let b = peer.search(PAIRED_SEARCHES);
            (ours.search(PAIRED_SEARCHES), b)
        };
        ratios.push(b.as_secs_f64() / a.as_secs_f64());
        (a_total, b_total) = (a_total + a, b_total + b);
    }
    ratios.sort_by(f64::total_cmp);
    let rate = |t: Duration| (PAIRED_ROUNDS as u64 * PAIRED_SEARCHES) as f64 * SIMULATIONS as f64 / t.as_secs_f64();
    println!(
        "info: {game}: paired, {PAIRED_ROUNDS} alternating rounds of {PAIRED_SEARCHES} searches: wasmgym {:.0} \
         simulations/s, open_spiel {:.0}; wasmgym ÷ open_spiel: median {:.2} (rounds {:.2}..{:.2})",
        rate(a_total),
        rate(b_total),
        ratios[PAIRED_ROUNDS / 2],
        ratios[0],
        ratios[PAIRED_ROUNDS - 1]
    );
}

/// wasmgym's side: the built-in environment at its initial state (reset with seed 0), searched
/// with a new seed each time.
struct Ours {
    env: Env,
    seed: u64,
}

impl Ours {
    fn new(game: &str) -> Ours {
        let mut env = modules().runtime.load(wasm(game)).unwrap().instantiate().unwrap();
        env.reset(Some(0), None).unwrap();
        let mut ours = Ours { env, seed: u64::MAX };
        let options = ours.options();
        let first = mcts(&mut ours.env, &options).unwrap();
        assert_eq!(first.simulations, SIMULATIONS);
        println!(
            "info: {game}: wasmgym: one search: {} nodes, plays {:?} (value {:.2}), {:.0} simulations/s",
            first.nodes,
            first.action,
            first.value,
            SIMULATIONS as f64 / first.seconds
        );
        ours
    }

    fn options(&self) -> MctsOptions {
        MctsOptions { simulations: SIMULATIONS, exploration: EXPLORATION, seed: self.seed, ..Default::default() }
    }

    /// Runs `searches` searches and returns the time they took (dropping each tree is timed, as
    /// OpenSpiel's `bot.step` frees its own).
    fn search(&mut self, searches: u64) -> Duration {
        let start = Instant::now();
        for _ in 0..searches {
            self.seed = self.seed.wrapping_add(1);
            let options = self.options();
            black_box(mcts(&mut self.env, &options).unwrap());
        }
        start.elapsed()
    }
}

/// `benches/peers/openspiel_mcts.py --serve` for one game.
struct Peer {
    child: Child,
    stdin: Option<ChildStdin>,
    stdout: BufReader<ChildStdout>,
}

impl Peer {
    fn start(python: &Path, game: &str) -> std::io::Result<Peer> {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("peers/openspiel_mcts.py");
        let mut child = Command::new(python)
            .arg(&script)
            .args(["--serve", game, &SIMULATIONS.to_string(), "0"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()?;
        let stdin = child.stdin.take();
        let stdout = BufReader::new(child.stdout.take().expect("piped"));
        Ok(Peer { child, stdin, stdout })
    }

    /// Runs `searches` searches in the peer and returns the time it measured around them.
    fn search(&mut self, searches: u64) -> Duration {
        let stdin = self.stdin.as_mut().expect("open until drop");
        writeln!(stdin, "{searches}").and_then(|()| stdin.flush()).expect("writing to the OpenSpiel peer");
        let mut line = String::new();
        self.stdout.read_line(&mut line).expect("reading from the OpenSpiel peer");
        let reply: serde_json::Value = serde_json::from_str(&line)
            .unwrap_or_else(|e| panic!("the OpenSpiel peer answered {line:?} (not JSON: {e}); its stderr is above"));
        assert_eq!(reply["searches"].as_u64(), Some(searches), "{reply}");
        assert_eq!(reply["simulations_per_search"].as_u64(), Some(SIMULATIONS as u64), "{reply}");
        Duration::from_secs_f64(reply["seconds"].as_f64().unwrap_or_else(|| panic!("no seconds in {reply}")))
    }
}

impl Drop for Peer {
    fn drop(&mut self) {
        drop(self.stdin.take()); // end of input: the peer exits
        let _ = self.child.wait();
    }
}

/// The Python that runs the OpenSpiel peer: `$WASMGYM_OPENSPIEL_PYTHON`, else the venv of
/// `scripts/get-openspiel.sh` (at `$WASMGYM_OPENSPIEL_VENV`, else `$XDG_CACHE_HOME/wasmgym/openspiel-venv`,
/// else `~/.cache/wasmgym/openspiel-venv`), made by running the script when it is missing. `None`
/// (with a message saying why) when there is none.
fn openspiel_python() -> Option<PathBuf> {
    if let Some(python) = std::env::var_os("WASMGYM_OPENSPIEL_PYTHON") {
        let python = PathBuf::from(python);
        println!("info: OpenSpiel peer: {} (WASMGYM_OPENSPIEL_PYTHON)", python.display());
        return Some(python);
    }
    let venv = std::env::var_os("WASMGYM_OPENSPIEL_VENV").map(PathBuf::from).or_else(|| {
        let cache = std::env::var_os("XDG_CACHE_HOME")
            .map(PathBuf::from)
            .or_else(|| std::env::var_os("HOME").map(|home| Path::new(&home).join(".cache")))?;
        Some(cache.join("wasmgym/openspiel-venv"))
    });
    if let Some(python) = venv.map(|venv| venv.join("bin/python")).filter(|python| python.exists()) {
        println!("info: OpenSpiel peer: {}", python.display());
        return Some(python);
    }
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/get-openspiel.sh");
    println!("info: no OpenSpiel venv: running {} (creates it, installs open_spiel from PyPI)", script.display());
    let output = Command::new("bash").arg(&script).stderr(Stdio::inherit()).output();
    match output {
        Ok(out) if out.status.success() => {
            let stdout = String::from_utf8_lossy(&out.stdout);
            let python = PathBuf::from(stdout.lines().last().unwrap_or_default().trim());
            println!("info: OpenSpiel peer: {}", python.display());
            Some(python)
        }
        Ok(out) => {
            println!("info: {} failed ({}): the open_spiel benchmarks are skipped", script.display(), out.status);
            None
        }
        Err(e) => {
            println!("info: could not run {}: {e}: the open_spiel benchmarks are skipped", script.display());
            None
        }
    }
}

/// Scaling, each group with its baseline in the same group: one thread against two (root-parallel
/// MCTS with two trees, `expand` of every child, `VecEnv` stepping 256 cart-poles), and a
/// 1 MiB environment against a 16 MiB one (the `dirty` test guest, one page written per step).
fn scaling(c: &mut Criterion) {
    let connect_four = &modules().connect_four;
    let mut group = c.benchmark_group("mcts_threads/connect_four");
    group.sampling_mode(SamplingMode::Flat).throughput(Throughput::Elements(2 * SIMULATIONS as u64));
    for threads in [1, 2] {
        let mut env = connect_four.instantiate().unwrap();
        env.reset(Some(0), None).unwrap();
        let mut seed = 0;
        group.bench_function(format!("{threads}_threads"), |b| {
            b.iter(|| {
                seed += 1;
                let options =
                    MctsOptions { simulations: 2 * SIMULATIONS, trees: 2, threads, seed, ..Default::default() };
                black_box(mcts(&mut env, &options).unwrap())
            })
        });
    }
    group.finish();

    let mut group = c.benchmark_group("expand/connect_four");
    group.throughput(Throughput::Elements(7));
    let mut env = connect_four.instantiate().unwrap();
    env.reset(Some(0), None).unwrap();
    let actions: Vec<wasmgym::Action> = env.actions().unwrap();
    for threads in [1, 2] {
        group.bench_function(format!("{threads}_threads"), |b| {
            b.iter(|| black_box(wasmgym_search::expand(&mut env, &actions, threads).unwrap()))
        });
    }
    group.finish();

    // Cart-pole: both actions are always legal, so the loop times the steps alone.
    let mut group = c.benchmark_group("vec_env/cart_pole_256");
    group.throughput(Throughput::Elements(256));
    for threads in [1, 2] {
        let mut vector = wasmgym_search::VecEnv::new(&modules().cart_pole, 256, 0, threads, true).unwrap();
        let mut step = 0i64;
        group.bench_function(format!("{threads}_threads"), |b| {
            b.iter(|| {
                step += 1;
                let actions: Vec<wasmgym::Action> =
                    (0..256).map(|i| wasmgym::Action::Discrete((step + i) % 2)).collect();
                black_box(vector.step(&actions).unwrap())
            })
        });
    }
    group.finish();

    let dirty = modules().runtime.load(wasmgym_builtin::find_test_guest("dirty").unwrap().bytes).unwrap();
    let mut group = c.benchmark_group("mcts_memory/dirty");
    group.sampling_mode(SamplingMode::Flat).throughput(Throughput::Elements(SIMULATIONS as u64));
    for mib in [1, 16] {
        let mut env = dirty.instantiate().unwrap();
        let options = format!(r#"{{"memory_kib": {}, "dirty_pages": 1}}"#, mib * 1024);
        env.reset(Some(0), Some(&options)).unwrap();
        let mut seed = 0;
        group.bench_function(format!("{mib}_MiB"), |b| {
            b.iter(|| {
                seed += 1;
                let options =
                    MctsOptions { simulations: SIMULATIONS, max_rollout_steps: 20, seed, ..Default::default() };
                black_box(mcts(&mut env, &options).unwrap())
            })
        });
    }
    group.finish();
}

criterion_group! { name = benches; config = config(); targets = search, scaling }
criterion_main!(benches);
