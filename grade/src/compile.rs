//! Source code to a WASI command: C and C++ solutions compiled by clang for `wasm32-wasi`, in a
//! sandbox, once per distinct source.
//!
//! The compiler is the host's (Debian's `clang-19`, `lld-19`, `wasi-libc` and `libc++-19-dev-wasm32`;
//! `scripts/install-toolchains.sh`), but the source is untrusted: `#include "/etc/passwd"` would put
//! the file in the error message, `#embed` or `.incbin` into the program, and `#include
//! "/dev/stdin"` would hang. So clang runs under bubblewrap in empty namespaces that hold only the
//! toolchain, the WASI sysroot and a scratch directory with the source, under a deadline, a CPU-time
//! limit, 2 GiB of address space and 64 MiB per file written; `-ftemplate-depth` and
//! `-fconstexpr-steps` stop compile-time recursion early. Measured in `docs/grading.md`.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::GradeError;

/// The language of a solution.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Lang {
    /// A WebAssembly module (binary or WAT): run as it is.
    Wasm,
    /// C (C17), compiled by clang.
    C,
    /// C++ (C++17, no exceptions: the WASI C++ runtime has none), compiled by clang.
    Cpp,
    /// Python 3, run by an interpreter ([`Grader::python`](crate::Grader::python)), not compiled.
    Python,
}

impl Lang {
    /// The language a `--lang` value names: `wasm`, `c`, `cpp` (or `c++`, `cxx`, `cc`), `python`
    /// (or `py`).
    pub fn from_name(name: &str) -> Option<Lang> {
        match name.to_ascii_lowercase().as_str() {
            "wasm" | "wat" => Some(Lang::Wasm),
            "c" => Some(Lang::C),
            "cpp" | "c++" | "cxx" | "cc" => Some(Lang::Cpp),
            "python" | "py" => Some(Lang::Python),
            _ => None,
        }
    }

    /// The language of a file, by its extension (`.c`, `.cpp`/`.cc`/`.cxx`/`.c++`, `.py`,
    /// `.wasm`/`.wat`).
    pub fn of_path(path: &Path) -> Option<Lang> {
        Lang::from_name(path.extension()?.to_str()?)
    }

    /// `wasm`, `c`, `cpp` or `python`.
    pub fn name(self) -> &'static str {
        match self {
            Lang::Wasm => "wasm",
            Lang::C => "c",
            Lang::Cpp => "cpp",
            Lang::Python => "python",
        }
    }
}

/// How solutions are compiled.
#[derive(Clone, Debug)]
pub struct CompileOptions {
    /// Where compiled modules are kept (`<hash>.wasm`, keyed by the source, the language and these
    /// options), so a solution is compiled once; and the precompiled `<bits/stdc++.h>` that makes
    /// a C++ compile about 5× shorter. `None`: always compile, without it.
    pub cache: Option<PathBuf>,
    /// Wall-clock time the compiler may take.
    pub deadline: Duration,
    /// Address space of the compiler, in bytes.
    pub memory_bytes: u64,
    /// The program's stack (in its linear memory), in bytes. Grading restores the program's whole
    /// initial memory for every test, so a larger stack makes every test slower.
    pub stack_bytes: u32,
}

impl Default for CompileOptions {
    fn default() -> Self {
        CompileOptions { cache: None, deadline: Duration::from_secs(20), memory_bytes: 2 << 30, stack_bytes: 1 << 20 }
    }
}

/// What a compile error message keeps of the compiler's output.
const MESSAGE_BYTES: usize = 4096;

/// The `<bits/stdc++.h>` that competitive C++ includes (libc++ has none).
const BITS_STDCXX: &str = include_str!("../shim/bits/stdc++.h");

/// The compiler and what it needs, found on this machine.
#[derive(Clone, Debug)]
pub struct Toolchain {
    /// `/usr/lib/llvm-N`: clang, clang++ and wasm-ld are in its `bin/`.
    llvm: PathBuf,
    /// bubblewrap.
    bwrap: PathBuf,
    /// The WASI sysroot's headers and libraries.
    sysroot: Vec<PathBuf>,
}

/// The LLVM versions looked for, newest first.
const LLVM_VERSIONS: std::ops::RangeInclusive<u32> = 17..=22;

impl Toolchain {
    /// Finds clang with its WASI sysroot and bubblewrap, or says how to install them.
    pub fn find() -> Result<Toolchain, GradeError> {
        let llvm = LLVM_VERSIONS.rev().map(|v| PathBuf::from(format!("/usr/lib/llvm-{v}"))).find(|dir| {
            dir.join("bin/clang").is_file()
                && dir.join("bin/wasm-ld").exists()
                && std::fs::read_dir(dir.join("lib/clang"))
                    .is_ok_and(|versions| versions.flatten().any(|v| v.path().join("lib/wasi").is_dir()))
        });
        let sysroot: Vec<PathBuf> =
            ["/usr/include/wasm32-wasi", "/usr/lib/wasm32-wasi"].iter().map(PathBuf::from).collect();
        let bwrap = PathBuf::from("/usr/bin/bwrap");
        let missing = match (&llvm, sysroot.iter().all(|d| d.is_dir()), bwrap.is_file()) {
            (None, _, _) => "clang with wasm-ld and the wasm32 builtins (clang-19 lld-19 libclang-rt-19-dev-wasm32)",
            (_, false, _) => "the WASI sysroot (wasi-libc libc++-19-dev-wasm32 libc++abi-19-dev-wasm32)",
            (_, _, false) => "bubblewrap, the sandbox the compiler runs in",
            (Some(llvm), true, true) => return Ok(Toolchain { llvm: llvm.clone(), bwrap, sysroot }),
        };
        Err(GradeError::Toolchain {
            message: format!(
                "C and C++ grading needs {missing}: run `scripts/install-toolchains.sh` (Debian or Ubuntu; \
                 it runs apt-get)"
            ),
        })
    }

    /// The command that compiles `main.c` or `main.cpp` in `work` into `main.wasm` there (with the
    /// precompiled `<bits/stdc++.h>` at `pch`, for C++), or for [`Step::Header`] precompiles the
    /// header into `std.pch` there.
    fn command(&self, step: Step<'_>, work: &Path, options: &CompileOptions) -> Command {
        let mut bwrap = Command::new(&self.bwrap);
        bwrap.args(["--unshare-all", "--die-with-parent", "--new-session", "--clearenv"]);
        bwrap.args(["--setenv", "PATH", "/usr/bin:/bin", "--tmpfs", "/tmp", "--dev-bind", "/dev/null", "/dev/null"]);
        bwrap.arg("--bind").arg(work).arg("/w").args(["--chdir", "/w"]);
        // The toolchain and the shared libraries it runs on, read-only; nothing else of the host.
        let mut read_only: Vec<PathBuf> = vec![self.llvm.clone()];
        read_only.extend(self.sysroot.iter().cloned());
        read_only.extend(
            ["/usr/lib/x86_64-linux-gnu", "/usr/lib/aarch64-linux-gnu", "/usr/lib64"]
                .iter()
                .map(PathBuf::from)
                .filter(|d| d.is_dir()),
        );
        for dir in &read_only {
            bwrap.arg("--ro-bind").arg(dir).arg(dir);
        }
        bwrap.args(["--symlink", "usr/lib", "/lib", "--symlink", "usr/lib64", "/lib64"]);
        // Debian's clang runs the linker by its versioned name from PATH (`wasm-ld-19`).
        let version = self.llvm.file_name().and_then(|n| n.to_str()).and_then(|n| n.strip_prefix("llvm-"));
        for name in ["wasm-ld".to_owned()].into_iter().chain(version.map(|v| format!("wasm-ld-{v}"))) {
            bwrap.arg("--ro-bind").arg(self.llvm.join("bin/wasm-ld")).arg(format!("/usr/bin/{name}"));
        }
        if let Step::Program { pch: Some(pch), .. } = step {
            bwrap.arg("--ro-bind").arg(pch).arg("/pch/std.pch");
        }
        let cpp = !matches!(step, Step::Program { lang: Lang::C, .. });
        bwrap.arg(self.llvm.join(if cpp { "bin/clang++" } else { "bin/clang" }));
        // The same compile flags for the header and the programs that use it (clang checks).
        bwrap.args(["--target=wasm32-wasi", "-O2", "-fno-color-diagnostics", "-fno-caret-diagnostics"]);
        bwrap.args(["-fno-crash-diagnostics", "-ferror-limit=5"]);
        if cpp {
            bwrap.args(["-std=c++17", "-fno-exceptions", "-ftemplate-depth=900", "-fconstexpr-steps=1048576"]);
            bwrap.args(["-fconstexpr-depth=512", "-isystem", "/w/.shim"]);
        } else {
            bwrap.arg("-std=gnu17");
        }
        match step {
            Step::Header => {
                bwrap.args(["-x", "c++-header", "/w/.shim/bits/stdc++.h", "-o", "std.pch"]);
            }
            Step::Program { lang, pch } => {
                bwrap.args(["-s", "-Wl,--stack-first"]).arg(format!("-Wl,-z,stack-size={}", options.stack_bytes));
                // Every C++ solution sees <bits/stdc++.h>, precompiled or not, so whether a cache
                // (and so the precompiled header) is there never changes what compiles.
                match (lang, pch) {
                    (Lang::Cpp, Some(_)) => bwrap.args(["-include-pch", "/pch/std.pch"]),
                    (Lang::Cpp, None) => bwrap.args(["-include", "bits/stdc++.h"]),
                    _ => &mut bwrap,
                };
                bwrap.args([if lang == Lang::Cpp { "main.cpp" } else { "main.c" }, "-o", "main.wasm"]);
            }
        }
        bwrap.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped());
        let (memory, cpu) = (options.memory_bytes, options.deadline.as_secs().max(1));
        #[cfg(unix)]
        {
            use std::os::unix::process::CommandExt;
            // SAFETY: only async-signal-safe calls (setrlimit) between fork and exec.
            unsafe {
                bwrap.pre_exec(move || {
                    for (resource, value) in
                        [(libc::RLIMIT_AS, memory), (libc::RLIMIT_CPU, cpu), (libc::RLIMIT_FSIZE, 64 << 20)]
                    {
                        let limit = libc::rlimit { rlim_cur: value, rlim_max: value };
                        if libc::setrlimit(resource, &limit) != 0 {
                            return Err(std::io::Error::last_os_error());
                        }
                    }
                    Ok(())
                });
            }
        }
        bwrap
    }

    /// What identifies this compiler in cache keys: its directory, and the size and time of its
    /// binary (an upgrade in place is another compiler).
    fn identity(&self) -> String {
        let clang = std::fs::metadata(self.llvm.join("bin/clang")).ok();
        let stamp =
            clang.map(|m| (m.len(), m.modified().ok().and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())));
        format!("{} {stamp:?}", self.llvm.display())
    }

    /// The precompiled `<bits/stdc++.h>` in `cache` (built there, in the sandbox, on first use):
    /// C++ compiles in a fraction of the time. `None` if it cannot be built.
    fn header(&self, cache: &Path, options: &CompileOptions) -> Option<PathBuf> {
        let mut key = blake3::Hasher::new();
        key.update(b"wasmgym stdc++.pch 1\0");
        key.update(self.identity().as_bytes());
        key.update(BITS_STDCXX.as_bytes());
        let path = cache.join(format!("stdc++-{}.pch", &key.finalize().to_hex()[..16]));
        if path.is_file() {
            return Some(path);
        }
        let work = ScratchDir::new().ok()?;
        write_file(&work.0.join(".shim/bits/stdc++.h"), BITS_STDCXX.as_bytes()).ok()?;
        let options = CompileOptions { deadline: options.deadline.max(Duration::from_secs(60)), ..options.clone() };
        let output = run(self.command(Step::Header, &work.0, &options), options.deadline).ok()?;
        let pch = std::fs::read(work.0.join("std.pch")).ok().filter(|_| output.status_ok)?;
        store(&path, &pch).ok()?;
        Some(path)
    }
}

/// What a sandboxed compiler run does.
#[derive(Clone, Copy)]
enum Step<'a> {
    /// Compile and link a solution.
    Program { lang: Lang, pch: Option<&'a Path> },
    /// Precompile `<bits/stdc++.h>`.
    Header,
}

/// Writes a file of the scratch directory, with a fixed modification time: clang refuses a
/// precompiled header whose source file changed time since, and every compile writes its own copy.
fn write_file(path: &Path, bytes: &[u8]) -> Result<(), GradeError> {
    let fixed = std::time::UNIX_EPOCH + Duration::from_secs(1_000_000_000);
    std::fs::create_dir_all(path.parent().expect("a file in the scratch dir"))
        .and_then(|()| std::fs::write(path, bytes))
        .and_then(|()| std::fs::File::options().write(true).open(path)?.set_modified(fixed))
        .map_err(|e| toolchain_error(format!("writing {}: {e}", path.display())))
}

/// Compiles a C or C++ solution to a WASI command module (from the cache when it was compiled
/// before). A source that does not compile is [`GradeError::CompileError`] with the compiler's
/// message (naming the file `main.c` or `main.cpp`); a missing toolchain is
/// [`GradeError::Toolchain`].
pub fn compile(source: &[u8], lang: Lang, options: &CompileOptions) -> Result<Vec<u8>, GradeError> {
    match lang {
        Lang::Wasm => return Ok(source.to_vec()),
        Lang::Python => {
            return Err(toolchain_error(
                "Python is interpreted, not compiled to a module: grade it with Grader::python".into(),
            ));
        }
        Lang::C | Lang::Cpp => {}
    }
    let toolchain = Toolchain::find()?;
    let cached =
        options.cache.as_ref().map(|dir| dir.join(format!("{}.wasm", cache_key(source, lang, options, &toolchain))));
    if let Some(path) = &cached
        && let Ok(bytes) = std::fs::read(path)
        && bytes.starts_with(b"\0asm")
    {
        return Ok(bytes);
    }
    let work = ScratchDir::new()?;
    write_file(&work.0.join(if lang == Lang::Cpp { "main.cpp" } else { "main.c" }), source)?;
    write_file(&work.0.join(".shim/bits/stdc++.h"), BITS_STDCXX.as_bytes())?;
    let pch = match (lang, &options.cache) {
        (Lang::Cpp, Some(cache)) => toolchain.header(cache, options),
        _ => None,
    };
    let mut output =
        run(toolchain.command(Step::Program { lang, pch: pch.as_deref() }, &work.0, options), options.deadline)?;
    if !output.status_ok && pch.is_some() && {
        let text = String::from_utf8_lossy(&output.text);
        text.contains("PCH file") || text.contains("precompiled header")
    } {
        // A header that no longer fits this compiler is no fault of the solution's: compile
        // without it, and drop it so that the next compile builds it again.
        let _ = std::fs::remove_file(pch.as_deref().expect("checked above"));
        output = run(toolchain.command(Step::Program { lang, pch: None }, &work.0, options), options.deadline)?;
    }
    let wasm = std::fs::read(work.0.join("main.wasm")).ok().filter(|_| output.status_ok);
    let Some(wasm) = wasm else {
        return Err(GradeError::CompileError { message: compiler_message(&output, options) });
    };
    if let Some(path) = &cached {
        let _ = store(path, &wasm);
    }
    Ok(wasm)
}

fn cache_key(source: &[u8], lang: Lang, options: &CompileOptions, toolchain: &Toolchain) -> String {
    let mut key = blake3::Hasher::new();
    key.update(b"wasmgym compile 1\0");
    key.update(lang.name().as_bytes());
    key.update(&options.stack_bytes.to_le_bytes());
    key.update(toolchain.identity().as_bytes());
    key.update(BITS_STDCXX.as_bytes());
    key.update(b"\0");
    key.update(source);
    key.finalize().to_hex().to_string()
}

/// Writes `bytes` to `path` through a temporary file, creating the directory (mode 0700).
fn store(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = path.parent().expect("a file in the cache");
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(dir)?;
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let temporary = path.with_extension(format!("{}-{n}.tmp", std::process::id()));
    std::fs::write(&temporary, bytes)?;
    std::fs::rename(&temporary, path).inspect_err(|_| {
        let _ = std::fs::remove_file(&temporary);
    })
}

/// What the compiler did.
struct Output {
    status_ok: bool,
    /// Killed by the deadline.
    timed_out: bool,
    /// Killed by a signal (the CPU-time or memory limit), if so.
    signal: Option<i32>,
    exit_code: Option<i32>,
    text: Vec<u8>,
}

/// Runs `command` to completion or until `deadline`, collecting stdout and stderr together.
fn run(mut command: Command, deadline: Duration) -> Result<Output, GradeError> {
    let mut child = command.spawn().map_err(|e| toolchain_error(format!("starting bubblewrap: {e}")))?;
    let readers: Vec<_> = [
        child.stdout.take().map(|s| Box::new(s) as Box<dyn Read + Send>),
        child.stderr.take().map(|s| Box::new(s) as Box<dyn Read + Send>),
    ]
    .into_iter()
    .flatten()
    .map(|mut pipe| {
        std::thread::spawn(move || {
            let mut text = Vec::new();
            let _ = pipe.by_ref().take(1 << 20).read_to_end(&mut text);
            // Drain the rest so the compiler never blocks on a full pipe.
            let _ = std::io::copy(&mut pipe, &mut std::io::sink());
            text
        })
    })
    .collect();
    let started = Instant::now();
    let mut timed_out = false;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if started.elapsed() >= deadline => {
                timed_out = true;
                let _ = child.kill();
                break child.wait().map_err(|e| toolchain_error(format!("waiting for the compiler: {e}")))?;
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(5)),
            Err(e) => return Err(toolchain_error(format!("waiting for the compiler: {e}"))),
        }
    };
    let mut text = Vec::new();
    for reader in readers {
        text.extend(reader.join().unwrap_or_default());
    }
    // bubblewrap exits with 128 + the signal that killed the compiler.
    #[cfg(unix)]
    let signal = std::os::unix::process::ExitStatusExt::signal(&status);
    #[cfg(not(unix))]
    let signal = None;
    let signal = signal.or(status.code().filter(|c| (129..=159).contains(c)).map(|c| c - 128));
    Ok(Output { status_ok: status.success(), timed_out, signal, exit_code: status.code(), text })
}

/// The compiler's message, clipped, or which limit stopped it.
fn compiler_message(output: &Output, options: &CompileOptions) -> String {
    let text = String::from_utf8_lossy(&output.text);
    let mut message: String = text.trim_end().chars().filter(|c| *c == '\n' || !c.is_control()).collect();
    if message.len() > MESSAGE_BYTES {
        let mut end = MESSAGE_BYTES;
        while !message.is_char_boundary(end) {
            end -= 1;
        }
        message.truncate(end);
        message.push_str("\n[... clipped]");
    }
    let limit = if output.timed_out {
        Some(format!("the compiler ran past its deadline ({} s)", options.deadline.as_secs_f64()))
    } else if output.signal == Some(SIGXCPU) {
        Some(format!("the compiler ran past its CPU time ({} s)", options.deadline.as_secs().max(1)))
    } else if output.signal.is_some() || output.exit_code == Some(254) || message.contains("out of memory") {
        Some(format!("the compiler was stopped (its memory limit is {} MiB)", options.memory_bytes >> 20))
    } else {
        None
    };
    match (limit, message.is_empty()) {
        (Some(limit), true) => limit,
        (Some(limit), false) => format!("{limit}:\n{message}"),
        (None, true) => "the compiler failed without a message".into(),
        (None, false) => message,
    }
}

#[cfg(unix)]
const SIGXCPU: i32 = libc::SIGXCPU;
#[cfg(not(unix))]
const SIGXCPU: i32 = -1;

fn toolchain_error(message: String) -> GradeError {
    GradeError::Toolchain { message }
}

/// A fresh directory under the system's temporary directory, removed on drop.
struct ScratchDir(PathBuf);

impl ScratchDir {
    fn new() -> Result<ScratchDir, GradeError> {
        static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("wasmgym-cc-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir(&dir).map_err(|e| toolchain_error(format!("creating {}: {e}", dir.display())))?;
        Ok(ScratchDir(dir))
    }
}

impl Drop for ScratchDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
