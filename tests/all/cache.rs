//! The compile cache (`RuntimeConfig::compile_cache`): a module loaded again is deserialised from
//! the cache (its code, `.cwasm`, and what the rewrite learned, `.layout`), not rewritten or
//! compiled; a damaged cache file is compiled over, never trusted.

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

    // The second load reads the file: put another program's compiled code under sum's key and
    // the "sum" that loads is that program (which is why the directory must be this user's alone).
    let sum_key = files[0].clone();
    let other = fresh_dir("programs-other");
    output(&other, "misbehave", "");
    std::fs::copy(&cache_files(&other)[0], &sum_key).unwrap();
    assert_ne!(output(&dir, "sum", "1 2"), "3\n", "the cached file was not used");

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
