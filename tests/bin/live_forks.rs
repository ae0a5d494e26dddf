//! Holds many live copy-on-write forks of the `dirty` test environment at once, steps each once,
//! and reports what they cost, measured in a process of its own so that nothing else moves the
//! kernel's count of its memory.
//!
//! Usage: `live-forks <forks> <memory KiB> <cap MiB>`
//! Prints one JSON object: per-fork proportional set size (the kernel's count), charge against the
//! cap, memory mappings, creation and step time; the state check; the account after dropping them.

use std::time::Instant;

use wasmgym::{Runtime, RuntimeConfig};

/// Proportional set size of this process in bytes (a page shared by n mappings counts 1/n in
/// each), and its number of memory mappings.
fn pss_and_mappings() -> (u64, usize) {
    let rollup = std::fs::read_to_string("/proc/self/smaps_rollup").expect("reading smaps_rollup");
    let kib = rollup.lines().find_map(|l| l.strip_prefix("Pss:")).expect("a Pss line");
    let kib: u64 = kib.trim().trim_end_matches("kB").trim().parse().expect("Pss in kB");
    let mappings = std::fs::read_to_string("/proc/self/maps").expect("reading maps").lines().count();
    (kib * 1024, mappings)
}

fn main() {
    let args: Vec<u64> = std::env::args().skip(1).map(|a| a.parse().expect("integer arguments")).collect();
    let &[forks, memory_kib, cap_mib] = args.as_slice() else {
        eprintln!("usage: live-forks <forks> <memory KiB> <cap MiB>");
        std::process::exit(2);
    };
    let config = RuntimeConfig { memory_cap: Some(cap_mib << 20), instance_pool: 0, ..Default::default() };
    let runtime = Runtime::with_config(config).expect("creating the runtime");
    let guest = wasmgym_builtin::find_test_guest("dirty").expect("the dirty test guest");
    let module = runtime.load(guest.bytes).expect("loading");
    let options = format!(r#"{{"memory_kib": {memory_kib}, "dirty_pages": 2}}"#);
    let mut parent = module.instantiate().expect("instantiating");
    parent.reset(Some(5), Some(&options)).expect("reset");
    let idle = runtime.memory_in_use();
    drop(parent.fork().expect("a first fork writes the image")); // the image's memfd, written once
    let with_image = runtime.memory_in_use();

    let (pss0, maps0) = pss_and_mappings();
    let start = Instant::now();
    let mut live = Vec::with_capacity(forks as usize);
    for _ in 0..forks {
        live.push(parent.fork().expect("forking"));
    }
    let create = start.elapsed();
    let (pss1, maps1) = pss_and_mappings();
    let charged1 = runtime.memory_in_use() - with_image;
    let start = Instant::now();
    for fork in &mut live {
        fork.step(0).expect("stepping a fork");
    }
    let step = start.elapsed();
    let (pss2, _) = pss_and_mappings();
    let charged2 = runtime.memory_in_use() - with_image;

    // Every fork is where replay from reset is after one step.
    let mut replay = module.instantiate().expect("instantiating");
    replay.reset(Some(5), Some(&options)).expect("reset");
    replay.step(0).expect("stepping");
    let want = replay.state_hash_full().expect("hashing");
    drop(replay);
    let checked =
        live.iter_mut().step_by(97).map(|f| f.state_hash_full().expect("hashing") == want).collect::<Vec<_>>();
    drop(live);
    let after_drop = runtime.memory_in_use();
    let memory_bytes = parent.memory_bytes();
    drop(parent); // and with it the image it keeps for its next forks
    let n = forks.max(1);
    let report = serde_json::json!({
        "forks": forks,
        "memory_bytes": memory_bytes,
        "cap_bytes": cap_mib << 20,
        "image_bytes": with_image - idle,
        "pss_bytes_per_fork_created": pss1.saturating_sub(pss0) / n,
        "pss_bytes_per_fork_stepped": pss2.saturating_sub(pss0) / n,
        "charged_bytes_per_fork_created": charged1 / n,
        "charged_bytes_per_fork_stepped": charged2 / n,
        "mappings_per_fork": (maps1 - maps0) as f64 / n as f64,
        "create_ns_per_fork": create.as_nanos() as u64 / n,
        "step_ns_per_fork": step.as_nanos() as u64 / n,
        "charged_bytes_stepped": charged2 + with_image,
        "forks_checked": checked.len(),
        "forks_exact": checked.iter().filter(|&&ok| ok).count(),
        "in_use_idle": idle,
        "in_use_with_image": with_image,
        "in_use_after_drop": after_drop,
        "in_use_at_end": runtime.memory_in_use(),
    });
    println!("{report}");
}
