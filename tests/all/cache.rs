//! The compile cache (`RuntimeConfig::compile_cache`): a module loaded again is deserialised from
//! the cache (its code, `.cwasm`, and what the rewrite learned, `.layout`), not rewritten or
//! compiled; a damaged cache file is compiled over, never trusted; the cache stays within its size.

use std::path::{Path, PathBuf};

use wasmgym::{Limits, RunInput, Runtime, RuntimeConfig};

fn cached_runtime(dir: &Path) -> Runtime {
    Runtime::with_config(RuntimeConfig { compile_cache: Some(dir.to_path_buf()), ..Default::default() }).unwrap()
}

fn fresh_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("wasmgym-cache-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

fn cache_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().path()).collect();
    files.sort();
    files
}

/// What `program` prints for `stdin`, loaded through a runtime caching in `dir`.
fn output(dir: &Path, program: &str, stdin: &str) -> String {
    let bytes = wasmgym_builtin::find_program(program).unwrap().bytes;
    let module = cached_runtime(dir).load_program(bytes).unwrap();
    let report = module
        .instantiate(Limits::default())
        .unwrap()
        .run(&RunInput { stdin: stdin.as_bytes().to_vec(), ..Default::default() })
        .unwrap();
    String::from_utf8_lossy(&report.stdout).into_owned()
}

#[test]
fn a_program_loaded_again_comes_from_the_cache() {
    let dir = fresh_dir("programs");
    assert_eq!(output(&dir, "sum", "1 2"), "3\n");
    let files = cache_files(&dir);
    assert_eq!(files.len(), 2, "{files:?}");
    assert!(files[0].extension().is_some_and(|e| e == "cwasm"), "{files:?}");
    assert_eq!(files[1], files[0].with_extension("layout"), "{files:?}");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(std::fs::metadata(&dir).unwrap().permissions().mode() & 0o777, 0o700);
    }

    // Another program's compiled code under sum's key, or sum's code with one byte flipped in the
    // middle (which wasmtime's own header checks would not notice), is detected by the hash the
    // entry records, compiled over and replaced: never run.
    let sum_key = files[0].clone();
    let pristine = std::fs::read(&sum_key).unwrap();
    let other = fresh_dir("programs-other");
    output(&other, "misbehave", "");
    let mut flipped = pristine.clone();
    let middle = flipped.len() / 2;
    flipped[middle] ^= 0x40;
    for damage in [std::fs::read(&cache_files(&other)[0]).unwrap(), flipped] {
        std::fs::write(&sum_key, damage).unwrap();
        assert_eq!(output(&dir, "sum", "1 2"), "3\n", "a damaged cache entry was used");
        assert_eq!(std::fs::read(&sum_key).unwrap(), pristine, "the damaged entry was not rewritten");
    }

    // Garbage, or a file cut short, is compiled over and replaced.
    let layout = sum_key.with_extension("layout");
    for (file, damage) in [
        (&sum_key, b"not a compiled module".to_vec()),
        (&sum_key, std::fs::read(&sum_key).unwrap()[..4096].to_vec()),
        (&layout, b"{\"exports\": 7}".to_vec()),
        (&layout, Vec::new()),
    ] {
        std::fs::write(file, damage).unwrap();
        assert_eq!(output(&dir, "sum", "1 2"), "3\n");
        assert_eq!(output(&dir, "sum", "40 2"), "42\n");
        assert_eq!(cache_files(&dir), vec![sum_key.clone(), layout.clone()]);
    }
    std::fs::remove_dir_all(&dir).unwrap();
    std::fs::remove_dir_all(&other).unwrap();
}

#[test]
fn environments_are_cached_too_and_an_unwritable_cache_is_no_error() {
    let dir = fresh_dir("envs");
    let bytes = wasmgym_builtin::find("connect_four").unwrap().bytes;
    let play = |runtime: &Runtime| {
        let mut env = runtime.load(bytes).unwrap().instantiate().unwrap();
        env.reset(Some(3), None).unwrap();
        env.step(3).unwrap();
        env.state_hash().unwrap()
    };
    let first = play(&cached_runtime(&dir));
    assert_eq!(cache_files(&dir).len(), 2);
    assert_eq!(play(&cached_runtime(&dir)), first);
    assert_eq!(play(&Runtime::new().unwrap()), first);

    // A cache path that cannot be a directory: loading still works, without a cache.
    let file = dir.join("a-file");
    std::fs::write(&file, b"").unwrap();
    assert_eq!(play(&cached_runtime(&file.join("cache"))), first);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn the_cache_keeps_to_its_size_dropping_the_least_recently_used() {
    let dir = fresh_dir("bounded");
    let bytes = |name: &str| wasmgym_builtin::find(name).unwrap().bytes;
    let runtime = |max: u64| {
        let config =
            RuntimeConfig { compile_cache: Some(dir.clone()), compile_cache_max_bytes: max, ..Default::default() };
        Runtime::with_config(config).unwrap()
    };
    runtime(u64::MAX).load(bytes("tic_tac_toe")).unwrap();
    let one: u64 = cache_files(&dir).iter().map(|f| std::fs::metadata(f).unwrap().len()).sum();
    std::thread::sleep(std::time::Duration::from_millis(20)); // distinct modification times
    // Room for about two entries: after a third, the oldest (tic_tac_toe) is gone.
    let bounded = runtime(one * 5 / 2);
    bounded.load(bytes("connect_four")).unwrap();
    std::thread::sleep(std::time::Duration::from_millis(20));
    bounded.load(bytes("cart_pole")).unwrap();
    let total: u64 = cache_files(&dir).iter().map(|f| std::fs::metadata(f).unwrap().len()).sum();
    assert!(total <= one * 5 / 2, "{total} bytes in a cache bounded to {}", one * 5 / 2);
    assert_eq!(cache_files(&dir).len(), 4, "{:?}", cache_files(&dir));
    // The dropped module still loads: compiled again.
    let mut env = bounded.load(bytes("tic_tac_toe")).unwrap().instantiate().unwrap();
    env.reset(Some(1), None).unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
}
