//! Copy-on-write forks (Linux): a snapshot's memory image written once into a memfd
//! ([`CowFile`]) and mapped privately (`MAP_PRIVATE | MAP_FIXED`) over the linear memory of each new
//! instance forked from it. A fork then costs one `mmap`, whatever the memory size; its pages are
//! the file's until it writes them, when the kernel copies just those pages. So a live fork holds
//! the pages it wrote, not the whole memory, and thousands of forks of a large environment fit in
//! memory together.
//!
//! The mapping replaces the accessible part of the reservation wasmtime made for the memory (its
//! size and place do not change, so wasmtime's bounds, guard pages and trap handling are as
//! before: no signal handler is ours); growth past it is wasmtime's own anonymous memory.
//! Dropping an instance created on demand unmaps everything with the reservation; an instance in a
//! pooled slot, which wasmtime resets and reuses, first gets back the mappings wasmtime left there
//! (see `SlotMemory` in `sandbox.rs`).

use std::sync::Arc;

use crate::budget::{Budget, Charge};
use crate::error::{Error, Result};
use crate::pages::{MemoryImage, PAGE};

/// A memory image in a memfd, charged to the budget for its non-zero pages while it lives.
pub(crate) struct CowFile {
    #[cfg(target_os = "linux")]
    fd: std::os::fd::OwnedFd,
    len: usize,
    _charge: Charge,
}

fn os_error(what: &str) -> Error {
    Error::Runtime { message: format!("{what}: {}", std::io::Error::last_os_error()) }
}

impl CowFile {
    /// Whether copy-on-write forks work on this platform.
    pub const SUPPORTED: bool = cfg!(target_os = "linux");

    /// Writes `image` into a new memfd. Zero pages stay holes (they read as zeros and take no
    /// memory), so the cost and the charge follow the non-zero pages.
    #[cfg(target_os = "linux")]
    pub fn new(image: &MemoryImage, budget: &Arc<Budget>) -> Result<CowFile> {
        use std::os::fd::{AsRawFd, FromRawFd};
        let charge = budget.charge((image.stored_pages() * PAGE) as u64)?;
        // SAFETY: plain system calls on a descriptor we own; the iovecs point into pages that
        // `image` keeps alive for the duration of the call.
        unsafe {
            let raw = libc::memfd_create(c"wasmgym-snapshot".as_ptr(), libc::MFD_CLOEXEC);
            if raw < 0 {
                return Err(os_error("memfd_create"));
            }
            let fd = std::os::fd::OwnedFd::from_raw_fd(raw);
            if libc::ftruncate(raw, image.len() as libc::off_t) != 0 {
                return Err(os_error("ftruncate of the snapshot memfd"));
            }
            // Runs of consecutive non-zero pages, each written with one pwritev per IOV_MAX pages.
            let mut run: Vec<libc::iovec> = Vec::with_capacity(1024);
            let mut run_start = 0usize;
            let flush = |run: &mut Vec<libc::iovec>, start: usize| -> Result<()> {
                let want: usize = run.iter().map(|v| v.iov_len).sum();
                let offset = (start * PAGE) as libc::off_t;
                let n = libc::pwritev(fd.as_raw_fd(), run.as_ptr(), run.len() as i32, offset);
                if n < 0 {
                    return Err(os_error("writing the snapshot memfd"));
                }
                if n as usize != want {
                    return Err(Error::Runtime { message: "short write to the snapshot memfd".into() });
                }
                run.clear();
                Ok(())
            };
            let mut failed = None;
            image.for_each_stored_page(|index, bytes| {
                if failed.is_some() {
                    return;
                }
                if !run.is_empty() && (run_start + run.len() != index || run.len() == 1024) {
                    failed = flush(&mut run, run_start).err();
                }
                if run.is_empty() {
                    run_start = index;
                }
                run.push(libc::iovec { iov_base: bytes.as_ptr() as *mut _, iov_len: bytes.len() });
            });
            if let Some(e) = failed {
                return Err(e);
            }
            flush(&mut run, run_start)?;
            Ok(CowFile { fd, len: image.len(), _charge: charge })
        }
    }

    #[cfg(not(target_os = "linux"))]
    pub fn new(_image: &MemoryImage, _budget: &Arc<Budget>) -> Result<CowFile> {
        Err(Error::Unsupported { message: "copy-on-write forks need Linux (memfd)".into() })
    }

    /// Length of the image, in bytes.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Maps the image privately over the `len()` bytes at `base`, replacing what was there.
    ///
    /// # Safety
    /// `base .. base + len()` must be page-aligned memory of ours, readable and writable, that no
    /// reference points into for the duration of the call (a linear memory between calls).
    #[cfg(target_os = "linux")]
    pub unsafe fn map_over(&self, base: *mut u8) -> Result<()> {
        use std::os::fd::AsRawFd;
        if self.len == 0 {
            return Ok(());
        }
        // SAFETY: the caller vouches for the range; MAP_FIXED replaces it atomically.
        let at = unsafe {
            libc::mmap(
                base.cast(),
                self.len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_FIXED,
                self.fd.as_raw_fd(),
                0,
            )
        };
        if at == libc::MAP_FAILED {
            return Err(os_error("mapping a snapshot copy-on-write"));
        }
        Ok(())
    }

    #[cfg(not(target_os = "linux"))]
    pub unsafe fn map_over(&self, _base: *mut u8) -> Result<()> {
        Err(Error::Unsupported { message: "copy-on-write forks need Linux (memfd)".into() })
    }
}

/// Maps fresh anonymous memory (zeros, readable and writable) over the `len` bytes at `base`.
///
/// # Safety
/// As [`CowFile::map_over`].
pub unsafe fn map_anonymous(base: *mut u8, len: usize) -> Result<()> {
    // SAFETY: as the caller vouches.
    unsafe { map_zeros(base, len, true) }
}

/// Maps fresh anonymous memory without access over the `len` bytes at `base` (as wasmtime leaves
/// a reservation past the memory's size).
///
/// # Safety
/// As [`CowFile::map_over`], except that the range need not be accessible.
pub unsafe fn map_inaccessible(base: *mut u8, len: usize) -> Result<()> {
    // SAFETY: as the caller vouches.
    unsafe { map_zeros(base, len, false) }
}

#[cfg(target_os = "linux")]
unsafe fn map_zeros(base: *mut u8, len: usize, accessible: bool) -> Result<()> {
    if len == 0 {
        return Ok(());
    }
    let protection = if accessible { libc::PROT_READ | libc::PROT_WRITE } else { libc::PROT_NONE };
    // SAFETY: the caller vouches for the range; MAP_FIXED replaces it atomically.
    let at = unsafe {
        libc::mmap(base.cast(), len, protection, libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_FIXED, -1, 0)
    };
    if at == libc::MAP_FAILED {
        return Err(os_error("mapping anonymous memory"));
    }
    Ok(())
}

#[cfg(not(target_os = "linux"))]
unsafe fn map_zeros(_base: *mut u8, _len: usize, _accessible: bool) -> Result<()> {
    Err(Error::Unsupported { message: "copy-on-write forks need Linux (mmap)".into() })
}

/// Drops the private copies of the `len` bytes at `base` (`MADV_DONTNEED`): a private file
/// mapping reads the file's bytes again, anonymous memory reads zeros.
///
/// # Safety
/// As [`CowFile::map_over`].
#[cfg(target_os = "linux")]
pub unsafe fn discard(base: *mut u8, len: usize) -> Result<()> {
    // SAFETY: the caller vouches for the range.
    if unsafe { libc::madvise(base.cast(), len, libc::MADV_DONTNEED) } != 0 {
        return Err(os_error("discarding pages"));
    }
    Ok(())
}

#[cfg(not(target_os = "linux"))]
pub unsafe fn discard(_base: *mut u8, _len: usize) -> Result<()> {
    Err(Error::Unsupported { message: "copy-on-write forks need Linux (madvise)".into() })
}
