//! The sandbox's WASI preview 1: deterministic, and with all of its state in [`HostVars`] so that a
//! snapshot holds it.
//!
//! | call | behaviour |
//! |---|---|
//! | `random_get` | bytes from the host RNG, seeded by `reset(seed)` |
//! | `clock_time_get` | a virtual clock: starts at 0, advances 1 µs per read; no wall clock |
//! | `fd_write` to 1 / 2 | captured into bounded buffers, never printed; over `Limits::output_bytes` traps |
//! | `fd_read` from 0 | end of file |
//! | `args_*`, `environ_*` | empty |
//! | `fd_prestat_get` | no preopened directories, so no filesystem |
//! | `proc_exit` | stops the guest with [`Error::Exit`](crate::Error::Exit) |
//! | `sched_yield` | returns at once |
//! | every other preview 1 call | refused with `ERRNO_NOTCAPABLE` (76) |
//!
//! An import from any other module, or of a name preview 1 does not define, is refused at load time.

use wasmtime::{Caller, Extern, Linker, Memory, Module, Val, ValType};

use crate::error::{Error, HostTrap};
use crate::sandbox::HostState;
use crate::rewrite::MEMORY_EXPORT;

/// The WASI module name guests import from.
pub(crate) const WASI_MODULE: &str = "wasi_snapshot_preview1";

const ERRNO_SUCCESS: i32 = 0;
const ERRNO_BADF: i32 = 8;
const ERRNO_FAULT: i32 = 21;
const ERRNO_NOTCAPABLE: i32 = 76;

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
    linker.allow_shadowing(true); // a module may import the same function twice
    for import in module.imports() {
        let (m, name) = (import.module(), import.name());
        let refuse = |detail: &str| Error::UnknownImport { module: m.into(), name: name.into(), detail: detail.into() };
        if m != WASI_MODULE {
            return Err(refuse("the sandbox provides only wasi_snapshot_preview1 functions: remove the import"));
        }
        let Some(ty) = import.ty().func().cloned() else {
            return Err(refuse("only functions may be imported"));
        };
        let defined = match name {
            "args_get" | "environ_get" => linker.func_wrap(m, name, |_: i32, _: i32| ERRNO_SUCCESS),
            "args_sizes_get" | "environ_sizes_get" => linker.func_wrap(m, name, write_two_zeros),
            "clock_res_get" => linker.func_wrap(m, name, clock_res_get),
            "clock_time_get" => linker.func_wrap(m, name, clock_time_get),
            "fd_write" => linker.func_wrap(m, name, fd_write),
            "fd_read" => linker.func_wrap(m, name, fd_read),
            "fd_fdstat_get" => linker.func_wrap(m, name, fd_fdstat_get),
            "fd_close" => {
                linker.func_wrap(m, name, |fd: i32| if (0..3).contains(&fd) { ERRNO_SUCCESS } else { ERRNO_BADF })
            }
            // No preopened directories: the guest sees no filesystem.
            "fd_prestat_get" => linker.func_wrap(m, name, |_: i32, _: i32| ERRNO_BADF),
            "fd_prestat_dir_name" => linker.func_wrap(m, name, |_: i32, _: i32, _: i32| ERRNO_BADF),
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

/// The guest's memory 0 and the host state, for host calls that read or write guest memory.
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

fn write_bytes(mem: &mut [u8], ptr: i32, bytes: &[u8]) -> i32 {
    match slice_mut(mem, ptr, bytes.len()) {
        Some(dst) => {
            dst.copy_from_slice(bytes);
            ERRNO_SUCCESS
        }
        None => ERRNO_FAULT,
    }
}

fn write_two_zeros(mut caller: Caller<'_, HostState>, a: i32, b: i32) -> i32 {
    let Some((mem, _)) = memory(&mut caller) else { return ERRNO_FAULT };
    match write_bytes(mem, a, &0u32.to_le_bytes()) {
        ERRNO_SUCCESS => write_bytes(mem, b, &0u32.to_le_bytes()),
        errno => errno,
    }
}

/// The virtual clock advances this much per read.
const CLOCK_STEP_NS: u64 = 1_000;

fn clock_res_get(mut caller: Caller<'_, HostState>, _id: i32, out: i32) -> i32 {
    let Some((mem, _)) = memory(&mut caller) else { return ERRNO_FAULT };
    write_bytes(mem, out, &CLOCK_STEP_NS.to_le_bytes())
}

fn clock_time_get(mut caller: Caller<'_, HostState>, _id: i32, _precision: i64, out: i32) -> i32 {
    let Some((mem, host)) = memory(&mut caller) else { return ERRNO_FAULT };
    host.vars.clock_ns += CLOCK_STEP_NS;
    write_bytes(mem, out, &host.vars.clock_ns.to_le_bytes())
}

fn random_get(mut caller: Caller<'_, HostState>, ptr: i32, len: i32) -> i32 {
    let Some((mem, host)) = memory(&mut caller) else { return ERRNO_FAULT };
    match slice_mut(mem, ptr, len as u32 as usize) {
        Some(buf) => {
            host.vars.rng.fill_bytes(buf);
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
    Ok(write_bytes(mem, nwritten, &(total as u32).to_le_bytes()))
}

fn fd_read(mut caller: Caller<'_, HostState>, fd: i32, _iovs: i32, _iovs_len: i32, nread: i32) -> i32 {
    let Some((mem, _)) = memory(&mut caller) else { return ERRNO_FAULT };
    if fd != 0 {
        return ERRNO_BADF;
    }
    write_bytes(mem, nread, &0u32.to_le_bytes())
}

fn fd_fdstat_get(mut caller: Caller<'_, HostState>, fd: i32, out: i32) -> i32 {
    let Some((mem, _)) = memory(&mut caller) else { return ERRNO_FAULT };
    if !(0..3).contains(&fd) {
        return ERRNO_BADF;
    }
    // fdstat: filetype u8 (2 = character device), pad, flags u16, pad, rights_base u64, rights_inheriting u64.
    let mut stat = [0u8; 24];
    stat[0] = 2;
    let rights: u64 = if fd == 0 { 1 << 1 } else { 1 << 6 }; // fd_read or fd_write
    stat[8..16].copy_from_slice(&rights.to_le_bytes());
    write_bytes(mem, out, &stat)
}
