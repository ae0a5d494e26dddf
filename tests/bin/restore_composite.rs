//! Restores a composite snapshot in a fresh process and prints what follows, for the test that
//! composite snapshots survive a process boundary.
//!
//! Usage: `restore-composite <builtin composite> <snapshot file> <action>...`
//! Prints one line per action: the agent's observation and the composite's state hash, in hex.

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [name, path, actions @ ..] = args.as_slice() else {
        eprintln!("usage: restore-composite <builtin composite> <snapshot file> <action>...");
        std::process::exit(2);
    };
    let bytes = std::fs::read(path).expect("reading the snapshot file");
    let snapshot = wasmgym_agent::CompositeSnapshot::from_bytes(&bytes).expect("decoding the snapshot");
    let wiring = wasmgym_agent::Wiring::builtin(name).expect("a built-in composite");
    let mut composite =
        wasmgym_tests::composite(wiring).instantiate(wasmgym::Limits::default()).expect("instantiating");
    composite.restore(&snapshot).expect("restoring");
    for action in actions {
        let step = composite.step(action).expect("stepping");
        let hash: String = composite.state_hash().expect("hashing").iter().map(|b| format!("{b:02x}")).collect();
        println!("{} {hash}", serde_json::to_string(&step.observation()).unwrap());
    }
}
