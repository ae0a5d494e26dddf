//! [`Budget`]: the memory a runtime's instances and copy-on-write images hold, under an optional
//! cap, so that running out is a typed error ([`Error::MemoryCap`]) rather than the kernel's OOM
//! killer.
//!
//! What is counted is what is resident, or may become resident without asking again: an instance
//! is charged a fixed overhead plus its linear memory, except that memory mapped copy-on-write
//! from a snapshot's image (`cow.rs`) counts only the pages the instance has written; an image is
//! charged its non-zero pages once, however many instances map it. Charges are [`Charge`] values
//! that give their bytes back when dropped, so memory returns to the budget exactly when the
//! instance or image holding it goes away. Pages of snapshots taken from instances are charged too
//! (each once, however many snapshots share it); snapshots decoded from bytes are not.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::error::Error;

/// A runtime's memory account: bytes in use and the cap (`u64::MAX` when there is none).
#[derive(Debug)]
pub(crate) struct Budget {
    cap: u64,
    used: AtomicU64,
}

impl Budget {
    pub fn new(cap: Option<u64>) -> Arc<Budget> {
        Arc::new(Budget { cap: cap.unwrap_or(u64::MAX), used: AtomicU64::new(0) })
    }

    pub fn used(&self) -> u64 {
        self.used.load(Ordering::Relaxed)
    }

    /// The error for a request of `bytes` that does not fit.
    pub fn exceeded(&self, bytes: u64) -> Error {
        Error::MemoryCap { requested: bytes, in_use: self.used(), cap: self.cap }
    }

    /// Whether `bytes` more would stay within the cap.
    pub fn fits(&self, bytes: u64) -> bool {
        self.used().saturating_add(bytes) <= self.cap
    }

    /// A charge of `bytes`, or [`Error::MemoryCap`] if they do not fit (nothing is charged then).
    pub fn charge(self: &Arc<Self>, bytes: u64) -> Result<Charge, Error> {
        self.used
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |used| {
                used.checked_add(bytes).filter(|&total| total <= self.cap)
            })
            .map_err(|_| self.exceeded(bytes))?;
        Ok(Charge { budget: self.clone(), bytes })
    }
}

impl Budget {
    /// A charge of `bytes` whether or not they fit: for memory already in use, which refusing to
    /// count would only hide. Check [`Budget::over`] afterwards.
    pub fn charge_anyway(self: &Arc<Self>, bytes: u64) -> Charge {
        self.used.fetch_add(bytes, Ordering::Relaxed);
        Charge { budget: self.clone(), bytes }
    }

    /// Whether more is in use than the cap allows.
    pub fn over(&self) -> bool {
        self.used() > self.cap
    }
}

/// Bytes charged to a [`Budget`], given back on drop.
#[derive(Debug)]
pub(crate) struct Charge {
    budget: Arc<Budget>,
    bytes: u64,
}

impl Charge {
    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    pub fn budget(&self) -> &Arc<Budget> {
        &self.budget
    }

    /// Sets the charge to `bytes`, whether or not that fits, and says whether the account is within
    /// the cap afterwards or the charge did not grow. Used where the memory is already in use (a
    /// guest wrote it), so refusing to count it would only hide it.
    pub fn set(&mut self, bytes: u64) -> bool {
        let grew = bytes > self.bytes;
        if grew {
            self.budget.used.fetch_add(bytes - self.bytes, Ordering::Relaxed);
        } else {
            self.budget.used.fetch_sub(self.bytes - bytes, Ordering::Relaxed);
        }
        self.bytes = bytes;
        !grew || self.budget.used() <= self.budget.cap
    }
}

impl Drop for Charge {
    fn drop(&mut self) {
        self.budget.used.fetch_sub(self.bytes, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn charges_fail_past_the_cap_and_return_on_drop() {
        let budget = Budget::new(Some(100));
        let a = budget.charge(60).unwrap();
        let err = budget.charge(50).unwrap_err();
        assert!(matches!(err, Error::MemoryCap { requested: 50, in_use: 60, cap: 100 }), "{err:?}");
        assert_eq!(budget.used(), 60, "a refused charge takes nothing");
        drop(a);
        assert_eq!(budget.used(), 0);
        let mut b = budget.charge(0).unwrap();
        assert!(b.set(90));
        assert!(!b.set(120), "over the cap after growing");
        assert_eq!(budget.used(), 120);
        assert!(b.set(10), "shrinking is always within bounds");
        drop(b);
        assert_eq!(budget.used(), 0);
        assert!(Budget::new(None).charge(u64::MAX / 2).is_ok());
    }
}
