//! Restores a snapshot in a fresh process and prints the trajectory that follows, for the test
//! that snapshots survive a process boundary.
//!
//! Usage: `restore-snapshot <builtin env> <snapshot file> <action>...`
//! Prints one line per action: the transition's fingerprint and the state hash, in hex.

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [env, path, actions @ ..] = args.as_slice() else {
        eprintln!("usage: restore-snapshot <builtin env> <snapshot file> <action>...");
        std::process::exit(2);
    };
    let bytes = std::fs::read(path).expect("reading the snapshot file");
    // Any format: the module reads its own (format 3) as well as `Snapshot::to_bytes`'.
    let module = wasmgym_tests::module(env);
    let snapshot = module.snapshot_from_bytes(&bytes).expect("decoding the snapshot");
    let mut instance = module.instantiate().expect("instantiating");
    instance.restore(&snapshot).expect("restoring");
    for action in actions {
        let t = instance.step(action.parse::<i64>().expect("an integer action")).expect("stepping");
        println!("{} {}", hex(&wasmgym::check::fingerprint(&t)), hex(&instance.state_hash_full().expect("hashing")));
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
