//! `wasmgym bench fork`: restore and fork times against memory size and the pages a branch dirties,
//! next to the full copy of the memory that a naive snapshot costs, then forks into new instances
//! of each built-in environment. A quick sweep (well under a minute); the criterion benches in
//! `benches/benches/dirty.rs` measure the same more carefully.

use std::hint::black_box;
use std::time::{Duration, Instant};

use serde::Serialize;
use wasmgym::{Env, EnvModule, Limits, Runtime, RuntimeConfig, Snapshot};

use crate::error::{Context, Error, Outcome};
use crate::output;

const MEMORY_KIB: [u64; 4] = [64, 1024, 16 * 1024, 64 * 1024];
const DIRTY_PAGES: [u64; 4] = [1, 16, 256, 1024];
/// Time spent measuring each figure (at least `MIN_REPS` repetitions).
const BUDGET: Duration = Duration::from_millis(250);
const MIN_REPS: usize = 5;

#[derive(clap::Args)]
pub struct ForkArgs {
    /// Print one JSON document: `{"points": [...], "environments": [...]}`.
    #[arg(long)]
    pub json: bool,
    /// Also draw the rows as an SVG plot (time against memory size, log-log) into this file.
    #[arg(long, value_name = "FILE")]
    pub svg: Option<std::path::PathBuf>,
}

/// One measured point; times are medians in nanoseconds.
#[derive(Serialize)]
struct Row {
    /// What the guest allocated and touched (its `memory_kib`).
    memory_bytes: u64,
    /// The instance's whole linear memory: the allocation, the guest's stack, data and heap.
    linear_memory_bytes: u64,
    dirty_pages: u64,
    restore_ns: u64,
    fork_ns: u64,
    /// Baseline: a copy of the whole linear memory (what a naive snapshot or fork copies).
    full_copy_ns: u64,
    /// A fork into a new instance (no warm one to reuse): into a pooled slot, or copy-on-write into
    /// one created on demand for many changed pages from 256 KiB up (the defaults).
    fork_new_ns: u64,
    /// Baseline: the same without pooled slots (every new instance created on demand).
    fork_new_on_demand_ns: u64,
    /// Baseline: a fork into a new instance that copies the memory.
    fork_new_copy_ns: u64,
}

/// Forks into a new instance of one built-in environment; times are medians in nanoseconds.
#[derive(Serialize)]
struct EnvRow {
    env: &'static str,
    /// The instance's whole linear memory.
    linear_memory_bytes: u64,
    /// A fork into a new instance, in a pooled slot (the default; no warm instance to reuse).
    fork_new_ns: u64,
    /// Baseline: the same without pooled slots (the instance created on demand).
    fork_new_on_demand_ns: u64,
    /// Every fork timed in `fork_new_ns` landed in a slot.
    in_slot: bool,
}

#[derive(Serialize)]
struct Report {
    points: Vec<Row>,
    environments: Vec<EnvRow>,
}

pub fn run(args: ForkArgs) -> Result<Outcome, Error> {
    let guest = wasmgym_builtin::find_test_guest("dirty").expect("the dirty guest is built with the CLI");
    let load = |config: RuntimeConfig| {
        let runtime = Runtime::with_config(config).context(|| "starting the WebAssembly runtime".into())?;
        runtime.load(guest.bytes).context(|| "loading the dirty guest".into())
    };
    let module = load(RuntimeConfig::default())?;
    // No warm instances: every fork creates one, copy-on-write or copying.
    let fresh = load(RuntimeConfig { instance_pool: 0, ..Default::default() })?;
    let on_demand = load(RuntimeConfig { instance_pool: 0, instance_slots: 0, ..Default::default() })?;
    let fresh_copy = load(RuntimeConfig { instance_pool: 0, cow_fork_min_bytes: usize::MAX, ..Default::default() })?;
    let points: Vec<(u64, u64)> = MEMORY_KIB
        .iter()
        .flat_map(|&kib| DIRTY_PAGES.iter().filter(move |&&d| d * 4 <= kib).map(move |&d| (kib, d)))
        .collect();
    let bar = output::progress((points.len() + wasmgym_builtin::ENVS.len()) as u64, 1, "points");
    let mut rows = Vec::new();
    for (kib, dirty) in points {
        let setup = |module: &EnvModule| -> Result<(Env, Snapshot), Error> {
            let limits = Limits { memory_bytes: 1 << 30, ..Limits::default() };
            let mut env = module.instantiate_with(limits).context(|| "instantiating".into())?;
            let options = format!(r#"{{"memory_kib": {kib}, "dirty_pages": {dirty}}}"#);
            env.reset(Some(1), Some(&options)).context(|| "resetting".into())?;
            env.step(0).context(|| "stepping".into())?;
            let snapshot = env.snapshot().context(|| "taking a snapshot".into())?;
            Ok((env, snapshot))
        };
        let (mut env, snapshot) = setup(&module)?;
        let linear = env.memory_bytes() as usize;
        let restore = median(|| after_step(&mut env, &snapshot, |env| env.restore(&snapshot)))?;
        let fork = median(|| after_step(&mut env, &snapshot, |env| env.fork()))?;
        let (mut env, snapshot) = setup(&fresh)?;
        let fork_new = median(|| after_step(&mut env, &snapshot, |env| env.fork()))?;
        let (mut env, snapshot) = setup(&on_demand)?;
        let fork_new_on_demand = median(|| after_step(&mut env, &snapshot, |env| env.fork()))?;
        let (mut env, snapshot) = setup(&fresh_copy)?;
        let fork_new_copy = median(|| after_step(&mut env, &snapshot, |env| env.fork()))?;
        let (mut from, mut to) = (LinearMemory::new(linear)?, LinearMemory::new(linear)?);
        from.bytes().fill(1);
        let full_copy = median(|| {
            let start = Instant::now();
            to.bytes().copy_from_slice(black_box(from.bytes()));
            Ok(start.elapsed())
        })?;
        rows.push(Row {
            memory_bytes: kib * 1024,
            linear_memory_bytes: linear as u64,
            dirty_pages: dirty,
            restore_ns: restore.as_nanos() as u64,
            fork_ns: fork.as_nanos() as u64,
            full_copy_ns: full_copy.as_nanos() as u64,
            fork_new_ns: fork_new.as_nanos() as u64,
            fork_new_on_demand_ns: fork_new_on_demand.as_nanos() as u64,
            fork_new_copy_ns: fork_new_copy.as_nanos() as u64,
        });
        bar.inc(1);
    }
    let mut environments = Vec::new();
    for env in wasmgym_builtin::ENVS {
        environments.push(fork_new_of(env)?);
        bar.inc(1);
    }
    bar.finish_and_clear();
    if let Some(path) = &args.svg {
        std::fs::write(path, svg(&rows)).map_err(Error::Io)?;
    }
    if args.json {
        output::print_json(&Report { points: rows, environments })?;
    } else {
        println!(
            "{:>10} {:>10} {:>6} {:>12} {:>12} {:>12} {:>12} {:>12} {:>12}",
            "allocated", "linear", "dirty", "restore", "fork", "full copy", "fork new", "(on demand)", "(copying)"
        );
        for r in &rows {
            println!(
                "{:>10} {:>10} {:>6} {:>12} {:>12} {:>12} {:>12} {:>12} {:>12}",
                format!("{} KiB", r.memory_bytes / 1024),
                format!("{} KiB", r.linear_memory_bytes / 1024),
                r.dirty_pages,
                micros(r.restore_ns),
                micros(r.fork_ns),
                micros(r.full_copy_ns),
                micros(r.fork_new_ns),
                micros(r.fork_new_on_demand_ns),
                micros(r.fork_new_copy_ns)
            );
        }
        println!(
            "(medians; \"allocated\" is what the guest allocated and touched, \"linear\" its whole linear memory, which \
             \"full copy\" copies; each restore and fork follows an untimed step that dirtied the pages; \"fork\" reuses a warm \
             instance, \"fork new\" creates one in a pooled slot: copying, or for many changed pages from 256 KiB \
             mapping copy-on-write the parent's last memfd, or a new one while new ones get reused (states far apart \
             copy); \"(on demand)\" the same without slots; \"(copying)\" in a slot or on demand, copying)"
        );
        println!("\n{:>16} {:>10} {:>12} {:>12} {:>7}", "environment", "linear", "fork new", "(on demand)", "ratio");
        for r in &environments {
            println!(
                "{:>16} {:>10} {:>12} {:>12} {:>6.1}×{}",
                r.env,
                format!("{} KiB", r.linear_memory_bytes / 1024),
                micros(r.fork_new_ns),
                micros(r.fork_new_on_demand_ns),
                r.fork_new_on_demand_ns as f64 / r.fork_new_ns.max(1) as f64,
                if r.in_slot { "" } else { " (not in a slot)" }
            );
        }
        println!(
            "(medians; each built-in environment reset with seed 1 and three moves, then a fork into a new instance \
             after an untimed step: in a pooled slot, or \"(on demand)\" without slots)"
        );
    }
    Ok(Outcome::Passed)
}

/// Forks into new instances of `env`, in a slot and on demand, each after an untimed step from the
/// same state (the first legal action after three such moves from a reset with seed 1).
fn fork_new_of(env: &wasmgym_builtin::BuiltinEnv) -> Result<EnvRow, Error> {
    let mut times = Vec::new();
    let (mut linear, mut in_slot) = (0, true);
    for slots in [RuntimeConfig::default().instance_slots, 0] {
        let config = RuntimeConfig { instance_pool: 0, instance_slots: slots, ..Default::default() };
        let runtime = Runtime::with_config(config).context(|| "starting the WebAssembly runtime".into())?;
        let module = runtime.load(env.bytes).context(|| format!("loading {}", env.name))?;
        let mut live = module.instantiate().context(|| "instantiating".into())?;
        live.reset(Some(1), None).context(|| "resetting".into())?;
        let first_legal = |live: &mut Env| live.legal_actions().ok().and_then(|legal| legal.first().copied());
        for _ in 0..3 {
            if let Some(action) = first_legal(&mut live) {
                live.step(action).context(|| "stepping".into())?;
            }
        }
        let snapshot = live.snapshot().context(|| "taking a snapshot".into())?;
        let action = first_legal(&mut live);
        linear = live.memory_bytes();
        times.push(median(|| {
            live.restore(&snapshot).context(|| "restoring".into())?;
            if let Some(action) = action {
                live.step(action).context(|| "stepping".into())?;
            }
            let start = Instant::now();
            let fork = black_box(live.fork().context(|| "forking".into())?);
            let elapsed = start.elapsed();
            in_slot &= slots == 0 || fork.in_slot();
            Ok(elapsed)
        })?);
    }
    Ok(EnvRow {
        env: env.name,
        linear_memory_bytes: linear,
        fork_new_ns: times[0].as_nanos() as u64,
        fork_new_on_demand_ns: times[1].as_nanos() as u64,
        in_slot,
    })
}

/// Restores the snapshot, takes the untimed step that dirties the pages, then times `what` (not
/// dropping what it returns).
fn after_step<T>(
    env: &mut Env,
    snapshot: &Snapshot,
    what: impl FnOnce(&mut Env) -> wasmgym::Result<T>,
) -> Result<Duration, Error> {
    env.restore(snapshot).context(|| "restoring".into())?;
    env.step(0).context(|| "stepping".into())?;
    let start = Instant::now();
    let made = black_box(what(env).context(|| "measuring".into())?);
    let elapsed = start.elapsed();
    drop(made);
    Ok(elapsed)
}

/// The baseline's memory, laid out as a linear memory is: `len` bytes at the start of a reservation
/// of its own (8 GiB, as wasmtime reserves 4 GiB and a guard region per memory), so the full copy
/// runs between two such memories, as a naive fork's would. It matters: glibc's `memcpy` runs many
/// times slower between buffers 1-31 bytes apart modulo 4 KiB (see the runtime's `copy.rs`), which
/// two heap vectors can be, and about 10 % faster between heap vectors than between two memories
/// at the same offset in their reservations (measured here, 1.2 MB: 25.7 µs against 28-30 µs).
struct LinearMemory {
    base: *mut u8,
    len: usize,
}

impl LinearMemory {
    const RESERVATION: usize = 8 << 30;

    fn new(len: usize) -> Result<LinearMemory, Error> {
        // SAFETY: a fresh anonymous reservation, of which the first `len` bytes (`len` rounded up
        // to pages by the kernel) are made readable and writable; nothing else refers to it.
        unsafe {
            let base = libc::mmap(
                std::ptr::null_mut(),
                Self::RESERVATION,
                libc::PROT_NONE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE,
                -1,
                0,
            );
            if base == libc::MAP_FAILED {
                return Err(Error::Io(std::io::Error::last_os_error()));
            }
            if libc::mprotect(base, len.max(1), libc::PROT_READ | libc::PROT_WRITE) != 0 {
                let error = std::io::Error::last_os_error();
                libc::munmap(base, Self::RESERVATION);
                return Err(Error::Io(error));
            }
            Ok(LinearMemory { base: base.cast(), len })
        }
    }

    fn bytes(&mut self) -> &mut [u8] {
        // SAFETY: `len` readable and writable bytes at `base`, borrowed through `&mut self`.
        unsafe { std::slice::from_raw_parts_mut(self.base, self.len) }
    }
}

impl Drop for LinearMemory {
    fn drop(&mut self) {
        // SAFETY: the reservation made in `new`, which nothing refers to any more.
        unsafe { libc::munmap(self.base.cast(), Self::RESERVATION) };
    }
}

/// The median of repeated measurements, for `BUDGET` or at least `MIN_REPS` times.
fn median(mut measure: impl FnMut() -> Result<Duration, Error>) -> Result<Duration, Error> {
    let mut times = Vec::new();
    let start = Instant::now();
    while times.len() < MIN_REPS || start.elapsed() < BUDGET {
        times.push(measure()?);
    }
    times.sort();
    Ok(times[times.len() / 2])
}

fn micros(ns: u64) -> String {
    format!("{:.2} µs", ns as f64 / 1000.0)
}

/// A log-log plot of the rows: restore (solid) and fork (dashed) per dirty-page count, the full
/// copy a naive snapshot costs (grey), and forks into new instances (dotted).
fn svg(rows: &[Row]) -> String {
    const W: f64 = 700.0;
    const H: f64 = 420.0;
    let (left, right, top, bottom) = (70.0, W - 190.0, 30.0, H - 50.0);
    // x: memory bytes, 2^16 .. 2^26; y: nanoseconds, 10^2 .. 10^8.
    let x = |bytes: u64| left + ((bytes as f64).log2() - 16.0) / 10.0 * (right - left);
    let y = |ns: u64| bottom - ((ns.max(100) as f64).log10() - 2.0) / 6.0 * (bottom - top);
    let mut out = format!(
        "<svg xmlns='http://www.w3.org/2000/svg' width='{W}' height='{H}' font-family='sans-serif' font-size='12'>\n\
         <rect width='100%' height='100%' fill='white'/>\n\
         <text x='{left}' y='18' font-size='14'>wasmgym: restore and fork time against memory size</text>\n"
    );
    for (label, bytes) in [("64 KiB", 1u64 << 16), ("1 MiB", 1 << 20), ("16 MiB", 1 << 24), ("64 MiB", 1 << 26)] {
        let px = x(bytes);
        out += &format!("<line x1='{px}' y1='{top}' x2='{px}' y2='{bottom}' stroke='#eee'/>\n");
        out += &format!("<text x='{px}' y='{}' text-anchor='middle'>{label}</text>\n", bottom + 16.0);
    }
    for (label, ns) in [
        ("100 ns", 100u64),
        ("1 µs", 1_000),
        ("10 µs", 10_000),
        ("100 µs", 100_000),
        ("1 ms", 1_000_000),
        ("10 ms", 10_000_000),
        ("100 ms", 100_000_000),
    ] {
        let py = y(ns);
        out += &format!("<line x1='{left}' y1='{py}' x2='{right}' y2='{py}' stroke='#eee'/>\n");
        out += &format!("<text x='{}' y='{}' text-anchor='end'>{label}</text>\n", left - 6.0, py + 4.0);
    }
    out += &format!(
        "<text x='{}' y='{}' text-anchor='middle'>memory the environment allocated (its linear memory is about 1 MiB more)</text>\n",
        (left + right) / 2.0,
        H - 12.0
    );
    let colors = ["#1b9e77", "#d95f02", "#7570b3", "#e7298a"];
    let mut legend = top;
    let mut series = |name: String, color: &str, dash: &str, points: Vec<(u64, u64)>| {
        let path: Vec<String> = points.iter().map(|&(b, ns)| format!("{:.1},{:.1}", x(b), y(ns))).collect();
        out += &format!(
            "<polyline fill='none' stroke='{color}' stroke-width='2' stroke-dasharray='{dash}' points='{}'/>\n",
            path.join(" ")
        );
        out += &format!(
            "<line x1='{}' y1='{legend}' x2='{}' y2='{legend}' stroke='{color}' stroke-width='2' stroke-dasharray='{dash}'/>\n",
            right + 10.0,
            right + 34.0
        );
        out += &format!("<text x='{}' y='{}'>{name}</text>\n", right + 40.0, legend + 4.0);
        legend += 18.0;
    };
    for (i, dirty) in DIRTY_PAGES.iter().enumerate() {
        let of = |f: fn(&Row) -> u64| {
            rows.iter().filter(|r| r.dirty_pages == *dirty).map(|r| (r.memory_bytes, f(r))).collect()
        };
        series(format!("restore, {dirty} dirty"), colors[i], "", of(|r| r.restore_ns));
        series(format!("fork, {dirty} dirty"), colors[i], "6 4", of(|r| r.fork_ns));
    }
    let copy = MEMORY_KIB
        .iter()
        .filter_map(|&kib| rows.iter().find(|r| r.memory_bytes == kib * 1024))
        .map(|r| (r.memory_bytes, r.full_copy_ns))
        .collect();
    series("full copy".into(), "#999", "2 2", copy);
    let new_instance =
        |f: fn(&Row) -> u64| rows.iter().filter(|r| r.dirty_pages == 1).map(|r| (r.memory_bytes, f(r))).collect();
    series("fork new, 1 dirty".into(), "#000", "1 3", new_instance(|r| r.fork_new_ns));
    series("(on demand), 1 dirty".into(), "#a6761d", "1 3", new_instance(|r| r.fork_new_on_demand_ns));
    series("(copying), 1 dirty".into(), "#e6ab02", "1 3", new_instance(|r| r.fork_new_copy_ns));
    out + "</svg>\n"
}
