//! The oracles of the fuzz targets in `fuzz/fuzz_targets/`: one function per target, taking the
//! fuzzer's bytes, panicking when a property fails, and returning whether the input was accepted
//! (decoded, parsed, loaded). Errors returned by the code under test are fine; panics, and broken
//! round trips, are not.
//!
//! This file is included by path (`#[path = ".../tests/fuzz/oracles.rs"] mod oracles;`) from the
//! fuzz targets and from `tests/all/fuzz_regressions.rs`, so the oracle that libFuzzer runs is the
//! one `cargo test` runs over the saved inputs in `tests/fuzz/<target>/`. See `docs/fuzzing.md`.

use std::path::Path;
use std::time::Duration;

use wasmgym::{EnvModule, Limits, RunInput, Runtime, Snapshot, SnapshotKey};
use wasmgym_abi::wire::{Action, Observation, ResetRequest, Transition, decode_legal_actions, encode_legal_actions};
use wasmgym_abi::{Dtype, EnvSpec, Space};
use wasmgym_grade::parse_jsonl;

/// The fuzz targets, each a function below and a folder of saved inputs in `tests/fuzz/`.
pub const TARGETS: [&str; 5] = ["snapshot_bytes", "wire", "spec_json", "test_jsonl", "load_module"];

/// The key signed snapshots (format 5) are fuzzed with: seeds are signed with it and inputs that
/// claim format 5 are resealed with it (`fuzz/src/lib.rs`).
pub const FUZZ_KEY: SnapshotKey = SnapshotKey([0x5a; 32]);

/// `snapshot_bytes`: bytes that decode as a snapshot re-encode to bytes that decode again and
/// re-encode identically (the round trip is idempotent).
/// Bytes that name a built-in environment's module are decoded with it as well (format 3 needs
/// it): what decodes re-encodes against the module and plainly, and both agree. Bytes are also
/// decoded with [`FUZZ_KEY`] (format 5, or unsigned as `from_bytes` reads them): what decodes
/// re-encodes signed to bytes that decode again the same, and agrees with the unsigned decoding.
pub fn snapshot_bytes(data: &[u8]) -> bool {
    let plain = Snapshot::from_bytes(data).ok();
    let signed = Snapshot::from_bytes_signed(data, &FUZZ_KEY).ok();
    if let Some(signed) = &signed {
        let bytes = signed.to_bytes_signed(&FUZZ_KEY);
        let again = Snapshot::from_bytes_signed(&bytes, &FUZZ_KEY)
            .unwrap_or_else(|e| panic!("a snapshot signed again does not decode with its key: {e}"));
        assert!(again.to_bytes_signed(&FUZZ_KEY) == bytes, "signed bytes re-encode differently");
        assert!(again.to_bytes() == signed.to_bytes(), "decoding signed bytes changed the snapshot");
        if let Some(plain) = &plain {
            assert!(plain.to_bytes() == signed.to_bytes(), "decoding with a key and without disagree");
        }
    }
    assert!(plain.is_none() || signed.is_some(), "bytes that decode without a key do not decode with one");
    let module = data.get(12..44).and_then(|hash| builtin_modules().iter().find(|m| m.hash()[..] == *hash));
    let against = module.and_then(|m| m.snapshot_from_bytes(data).ok());
    if let (Some(plain), None) = (&plain, module) {
        round_trip(plain);
    }
    if let (Some(snapshot), Some(module)) = (&against, module) {
        let bytes = round_trip(snapshot);
        let compact = module.snapshot_to_bytes(snapshot).expect("a snapshot of the module encodes against it");
        let again = module
            .snapshot_from_bytes(&compact)
            .unwrap_or_else(|e| panic!("bytes written against the module do not decode with it: {e}"));
        assert!(again.to_bytes() == bytes, "decoding against the module changed the snapshot");
        assert!(module.snapshot_to_bytes(&again).unwrap() == compact, "bytes against the module re-encode differently");
        if let Some(plain) = &plain {
            assert!(plain.to_bytes() == bytes, "the module and `Snapshot::from_bytes` decode differently");
        }
    }
    plain.is_some() || against.is_some() || signed.is_some()
}

/// `snapshot` re-encoded decodes and re-encodes to the same bytes, which it returns.
fn round_trip(snapshot: &Snapshot) -> Vec<u8> {
    let bytes = snapshot.to_bytes();
    let again = Snapshot::from_bytes(&bytes)
        .unwrap_or_else(|e| panic!("a decoded snapshot re-encodes to bytes that do not decode: {e}"));
    assert!(again.to_bytes() == bytes, "decode(encode(snapshot)) encodes to other bytes");
    assert_eq!(again.module_hash(), snapshot.module_hash());
    assert_eq!(again.memory_bytes(), snapshot.memory_bytes());
    assert_eq!(again.steps(), snapshot.steps());
    bytes
}

/// The built-in environments' modules, in order, loaded once (on a runtime of their own). A fuzz
/// target loads them before fuzzing: compiling them in an instrumented build takes longer than one
/// input may.
pub fn builtin_modules() -> &'static [EnvModule] {
    static MODULES: std::sync::OnceLock<Vec<EnvModule>> = std::sync::OnceLock::new();
    MODULES.get_or_init(|| {
        let runtime = Runtime::new().expect("creating a runtime");
        wasmgym_builtin::ENVS.iter().map(|b| runtime.load(b.bytes).expect("a built-in environment loads")).collect()
    })
}

/// `wire`: the first byte picks a decoder of `wasmgym_abi::wire`, the rest is its input. What
/// decodes re-encodes to bytes that decode to the same value; canonical encodings (actions, legal
/// actions, observations) re-encode to exactly the input. Observations are decoded for a space
/// built from the first input bytes ([`space_from`]), then checked against it with `check_in`.
pub fn wire(data: &[u8]) -> bool {
    let Some((&selector, rest)) = data.split_first() else { return false };
    match selector % 5 {
        0 => {
            let Ok(t) = Transition::decode(rest) else { return false };
            let bytes = encode(|out| t.encode(out));
            let again = Transition::decode(&bytes).expect("a re-encoded transition decodes");
            // Debug equality treats every NaN reward alike; the bytes compare the bits.
            assert_eq!(format!("{again:?}"), format!("{t:?}"));
            assert!(encode(|out| again.encode(out)) == bytes, "transition re-encodes differently");
            assert!(bytes.len() <= rest.len(), "a transition re-encodes longer than its input");
        }
        1 => {
            let Ok(action) = Action::decode(rest) else { return false };
            assert!(encode(|out| action.encode(out)) == rest, "{action:?} re-encodes to other bytes");
        }
        2 => {
            let Ok(request) = ResetRequest::decode(rest) else { return false };
            let bytes = encode(|out| request.encode(out));
            assert_eq!(ResetRequest::decode(&bytes).as_ref(), Ok(&request));
            assert_eq!(bytes.len(), rest.len());
        }
        3 => {
            let Ok(actions) = decode_legal_actions(rest) else { return false };
            assert!(encode(|out| encode_legal_actions(out, &actions)) == rest, "legal actions re-encode differently");
        }
        _ => {
            let (space, body) = space_from(rest);
            if space.validate().is_err() {
                // The host validates every spec at load, so only valid spaces reach the decoder.
                return false;
            }
            let Ok(observation) = Observation::decode(&space, body) else { return false };
            let verdict = observation.check_in(&space);
            let bytes = encode(|out| observation.encode(out));
            assert!(bytes == body, "{observation:?} re-encodes to other bytes");
            let again = Observation::decode(&space, &bytes).expect("a re-encoded observation decodes");
            assert_eq!(format!("{again:?}"), format!("{observation:?}"));
            assert_eq!(again.check_in(&space), verdict, "check_in differs on the same observation");
            if let (Observation::Text(s), Space::Text { max_length, .. }) = (&observation, &space)
                && verdict.is_ok()
            {
                assert!(s.chars().count() <= *max_length as usize, "check_in let {s:?} past max_length");
            }
        }
    }
    true
}

fn encode(f: impl FnOnce(&mut Vec<u8>)) -> Vec<u8> {
    let mut out = Vec::new();
    f(&mut out);
    out
}

/// A space with small parameters drawn from the first bytes of `data`, and the bytes left: byte 0
/// picks the kind (Discrete, Box, MultiDiscrete, Text), the next bytes its parameters. Bounds and
/// sizes include the edge values (0, NaN, infinities, `u64::MAX`) that `Space::validate` must sort out.
pub fn space_from(data: &[u8]) -> (Space, &[u8]) {
    let mut bytes = Bytes(data);
    let kind = bytes.next();
    let space = match kind % 4 {
        0 => Space::Discrete { n: bytes.size() },
        1 => {
            let dtype = [Dtype::F32, Dtype::F64, Dtype::I32][bytes.next() as usize % 3];
            let shape: Vec<u32> = (0..bytes.next() % 4).map(|_| u32::from(bytes.next() % 5)).collect();
            let n: usize = shape.iter().map(|&d| d as usize).product();
            let low: Vec<f64> = (0..n).map(|_| bytes.bound()).collect();
            let high: Vec<f64> = (0..n).map(|_| bytes.bound()).collect();
            Space::Box { dtype, shape, low, high }
        }
        2 => Space::MultiDiscrete { nvec: (0..bytes.next() % 6).map(|_| bytes.size()).collect() },
        _ => {
            let max_length = u32::from(bytes.next());
            let charset = match bytes.next() % 3 {
                0 => None,
                1 => Some(String::new()),
                len => Some((0..len * 2).map(|_| char::from(b'a' + bytes.next() % 4)).chain(['é', '中']).collect()),
            };
            Space::Text { max_length, charset }
        }
    };
    (space, bytes.0)
}

/// Draws small parameters from the front of a byte slice (zeros once it is used up).
struct Bytes<'a>(&'a [u8]);

impl Bytes<'_> {
    fn next(&mut self) -> u8 {
        match self.0.split_first() {
            Some((&b, rest)) => {
                self.0 = rest;
                b
            }
            None => 0,
        }
    }

    /// A count for `Discrete` and `MultiDiscrete`: mostly small, sometimes an edge.
    fn size(&mut self) -> u64 {
        match self.next() {
            250 => 0,
            251 => i64::MAX as u64,
            252 => i64::MAX as u64 + 1,
            253 => u64::MAX,
            b => u64::from(b % 16) + 1,
        }
    }

    /// A `Box` bound: a small integer, a fraction or an edge value.
    fn bound(&mut self) -> f64 {
        match self.next() {
            250 => f64::NAN,
            251 => f64::INFINITY,
            252 => f64::NEG_INFINITY,
            253 => f64::MAX,
            254 => -0.0,
            255 => f32::MAX as f64 * 2.0,
            b => (f64::from(b) - 125.0) / 4.0,
        }
    }
}

/// `spec_json`: JSON that parses as an `EnvSpec` and validates serialises to JSON that parses
/// back to the same spec, which validates too. Compared through its JSON, so a NaN bound (which
/// `validate` allows in a `Box`) compares equal to itself.
pub fn spec_json(data: &[u8]) -> bool {
    let Ok(spec) = serde_json::from_slice::<EnvSpec>(data) else { return false };
    if spec.validate().is_err() {
        return false;
    }
    let json = serde_json::to_string(&spec).expect("a valid spec serialises");
    let back: EnvSpec = serde_json::from_str(&json).unwrap_or_else(|e| panic!("{json} does not parse back: {e}"));
    back.validate().unwrap_or_else(|m| panic!("{json} no longer validates after a round trip: {m}"));
    assert_eq!(serde_json::to_string(&back).expect("serialises"), json);
    if json_has_no_nan(&spec) {
        assert_eq!(back, spec);
    }
    true
}

fn json_has_no_nan(spec: &EnvSpec) -> bool {
    let space_ok = |s: &Space| match s {
        Space::Box { low, high, .. } => low.iter().chain(high).all(|x| !x.is_nan()),
        _ => true,
    };
    space_ok(&spec.observation_space) && space_ok(&spec.action_space)
}

/// `test_jsonl`: `grade::parse_jsonl` on the input as text (invalid UTF-8 replaced), as if read from
/// `fuzz.jsonl`. What parses has at most one test per non-blank line and unique names.
pub fn test_jsonl(data: &[u8]) -> bool {
    let text = String::from_utf8_lossy(data);
    let Ok(tests) = parse_jsonl(&text, Path::new("fuzz.jsonl")) else { return false };
    let lines = text.lines().filter(|l| !l.trim().is_empty()).count();
    assert_eq!(tests.len(), lines, "one test per non-blank line");
    let mut names: Vec<&str> = tests.iter().map(|t| t.name.as_str()).collect();
    names.sort_unstable();
    names.dedup();
    assert_eq!(names.len(), tests.len(), "test names must be unique");
    true
}

/// The limits fuzzed modules run under: a small fuel budget, a 100 ms deadline, 16 MiB of memory.
pub fn fuzz_limits() -> Limits {
    Limits {
        fuel_per_call: Some(2_000_000),
        deadline: Some(Duration::from_millis(100)),
        memory_bytes: 16 << 20,
        table_elements: 10_000,
        output_bytes: 64 << 10,
    }
}

/// `load_module`: the bytes loaded as an environment, else as a program, else as a checker (binary
/// or WAT; a module that loads as one kind is not tried as the others, which would only compile it
/// again to refuse it); what loads is instantiated under [`fuzz_limits`] and driven. Errors are
/// fine; panics, and these properties failing, are not: the incremental state hash agrees with the
/// full one, a restore gives back the hash of the state snapshotted, a fork has its parent's hash,
/// and a snapshot survives its byte round trip.
pub fn load_module(runtime: &Runtime, data: &[u8]) -> bool {
    if let Ok(module) = runtime.load(data) {
        drive_env(&module);
    } else if let Ok(program) = runtime.load_program(data) {
        if let Ok(mut program) = program.instantiate(fuzz_limits()) {
            let input = RunInput { args: vec!["1".into()], stdin: b"1 2\n".to_vec(), ..RunInput::default() };
            let _ = program.run(&input);
            let _ = program.run(&RunInput::default());
        }
    } else if let Ok(checker) = runtime.load_checker(data) {
        if let Ok(mut checker) = checker.instantiate(fuzz_limits()) {
            let _ = checker.check(b"1 2\n", b"3\n", b"3\n");
            let _ = checker.check(b"", b"", b"\xff");
        }
    } else {
        return false;
    }
    true
}

/// Steps the first legal action (or 0, or `"a"` in a text space) until the episode ends.
const STEPS: usize = 4;

fn drive_env(module: &EnvModule) {
    let Ok(mut env) = module.instantiate_with(fuzz_limits()) else { return };
    let _ = env.reset(Some(0), None);
    let start = env.snapshot().ok().map(|s| (s, hashes_agree(&mut env)));
    for _ in 0..STEPS {
        let action = match (env.legal_actions(), &module.spec().action_space) {
            (Ok(legal), _) if !legal.is_empty() => Action::Discrete(legal[0]),
            (_, Space::Text { .. }) => Action::Text("a".into()),
            _ => Action::Discrete(0),
        };
        match env.step(action) {
            Ok(t) if t.done() => break,
            Err(_) if env.is_poisoned() => break,
            _ => {}
        }
    }
    let here = hashes_agree(&mut env);
    let Ok(snapshot) = env.snapshot() else { return };
    let bytes = snapshot.to_bytes();
    let decoded = Snapshot::from_bytes(&bytes).unwrap_or_else(|e| panic!("a snapshot's own bytes do not decode: {e}"));
    assert!(decoded.to_bytes() == bytes, "a snapshot's bytes change in a round trip");
    if let Ok(mut fork) = env.fork() {
        same(hashes_agree(&mut fork), here, "a fork differs from its parent");
        let _ = fork.step(0);
    }
    if let Some((start, start_hash)) = &start
        && env.restore(start).is_ok()
    {
        same(hashes_agree(&mut env), *start_hash, "restoring the snapshot taken after reset");
        let _ = env.step(0);
    }
    if env.restore(&decoded).is_ok() {
        same(hashes_agree(&mut env), here, "restoring a snapshot decoded from its bytes");
    }
    if let Ok(mut fresh) = module.instantiate_with(fuzz_limits())
        && fresh.restore(&decoded).is_ok()
    {
        same(hashes_agree(&mut fresh), here, "restoring a snapshot into a new instance");
        let _ = fresh.render();
    }
}

/// The state hash, asserting that the incremental one (from the dirty-page record) equals the one
/// computed from live memory; `None` when the instance cannot say (poisoned).
fn hashes_agree(env: &mut wasmgym::Env) -> Option<[u8; 32]> {
    let full = env.state_hash_full().ok()?;
    let incremental = env.state_hash().ok()?;
    assert_eq!(incremental, full, "dirty-page tracking missed a write: state_hash differs from state_hash_full");
    Some(full)
}

/// Asserts two state hashes are equal when both are known.
fn same(found: Option<[u8; 32]>, want: Option<[u8; 32]>, what: &str) {
    if let (Some(found), Some(want)) = (found, want) {
        assert_eq!(found, want, "{what}: the state hash changed");
    }
}
