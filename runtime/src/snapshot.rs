//! [`Snapshot`]: the complete state of an instance as plain data, and its byte format.
//!
//! ```text
//! magic      8 bytes  "wasmgym\0"
//! format     u32      SNAPSHOT_FORMAT
//! module     32 bytes BLAKE3 of the module's bytes
//! memories   u32 count, then per memory: u64 length (a multiple of 64 KiB), bytes
//! globals    u32 count, then per global: u8 type (0 i32, 1 i64, 2 f32, 3 f64, 4 v128), 16 bytes LE
//! host       rng 32 bytes, clock_ns u64, fuel_consumed u64, steps u64,
//!            episode u8 (0 not started, 1 running, 2 over), player u32,
//!            stdout u32 length + bytes, stderr u32 length + bytes
//! checksum   32 bytes BLAKE3 of everything before it
//! ```

use std::sync::Arc;

use wasmgym_abi::rng::Rng;
use wasmgym_abi::wire::{Reader, Writer};

use crate::error::{Error, Result};
use crate::pages::{MemoryImage, PAGE as IMAGE_PAGE};
use crate::sandbox::{Episode, HostVars};

const MAGIC: &[u8; 8] = b"wasmgym\0";
/// Version of the byte format; bumped on any change to it.
pub const SNAPSHOT_FORMAT: u32 = 1;
const PAGE: usize = 65536;

/// The complete state of an instance at one point: plain data, cheap to clone (shared), and
/// restorable into any instance of the same module, in this process or, through
/// [`Snapshot::to_bytes`], another.
#[derive(Clone)]
pub struct Snapshot(Arc<SnapshotData>);

pub(crate) struct SnapshotData {
    pub module: [u8; 32],
    /// One image per linear memory; images share unchanged pages with other snapshots.
    pub memories: Vec<MemoryImage>,
    pub globals: Vec<GlobalValue>,
    pub vars: HostVars,
}

/// The value of one mutable global, as bits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum GlobalValue {
    I32(u32),
    I64(u64),
    F32(u32),
    F64(u64),
    V128(u128),
}

impl GlobalValue {
    pub(crate) fn to_bits(self) -> u128 {
        match self {
            GlobalValue::I32(x) | GlobalValue::F32(x) => x as u128,
            GlobalValue::I64(x) | GlobalValue::F64(x) => x as u128,
            GlobalValue::V128(x) => x,
        }
    }

    fn tag(self) -> u8 {
        match self {
            GlobalValue::I32(_) => 0,
            GlobalValue::I64(_) => 1,
            GlobalValue::F32(_) => 2,
            GlobalValue::F64(_) => 3,
            GlobalValue::V128(_) => 4,
        }
    }
}

impl std::fmt::Debug for Snapshot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Snapshot")
            .field("module", &crate::module::hex(&self.0.module[..8]))
            .field("memory_bytes", &self.memory_bytes())
            .field("globals", &self.0.globals.len())
            .field("steps", &self.0.vars.steps)
            .finish()
    }
}

impl Snapshot {
    pub(crate) fn new(data: SnapshotData) -> Self {
        Snapshot(Arc::new(data))
    }

    pub(crate) fn data(&self) -> &SnapshotData {
        &self.0
    }

    /// BLAKE3 hash of the module this snapshot belongs to.
    pub fn module_hash(&self) -> [u8; 32] {
        self.0.module
    }

    /// Total bytes of linear memory held.
    pub fn memory_bytes(&self) -> usize {
        self.0.memories.iter().map(MemoryImage::len).sum()
    }

    /// Steps taken in the episode at the time of the snapshot.
    pub fn steps(&self) -> u64 {
        self.0.vars.steps
    }

    /// The snapshot in the byte format above, with a checksum.
    pub fn to_bytes(&self) -> Vec<u8> {
        let d = &self.0;
        let mut out = Vec::with_capacity(self.memory_bytes() + 256);
        out.extend_from_slice(MAGIC);
        let mut w = Writer(&mut out);
        w.u32(SNAPSHOT_FORMAT);
        w.0.extend_from_slice(&d.module);
        w.u32(d.memories.len() as u32);
        for m in &d.memories {
            w.u64(m.len() as u64);
            for page in 0..m.pages() {
                let bytes = m.page(page);
                w.0.extend_from_slice(&bytes[..IMAGE_PAGE.min(m.len() - page * IMAGE_PAGE)]);
            }
        }
        w.u32(d.globals.len() as u32);
        for g in &d.globals {
            w.u8(g.tag());
            w.0.extend_from_slice(&g.to_bits().to_le_bytes());
        }
        let v = &d.vars;
        w.0.extend_from_slice(&v.rng.state_bytes());
        w.u64(v.clock_ns);
        w.u64(v.fuel_consumed);
        w.u64(v.steps);
        let (episode, player) = match v.episode {
            Episode::NotStarted => (0, 0),
            Episode::Running { player } => (1, player),
            Episode::Over => (2, 0),
        };
        w.u8(episode);
        w.u32(player);
        w.bytes(&v.stdout);
        w.bytes(&v.stderr);
        let checksum = blake3::hash(&out);
        out.extend_from_slice(checksum.as_bytes());
        out
    }

    /// Parses bytes from [`Snapshot::to_bytes`]. Truncated, corrupted or foreign bytes, and other
    /// format versions, get [`Error::BadSnapshot`] saying which.
    pub fn from_bytes(bytes: &[u8]) -> Result<Snapshot> {
        let bad = |reason: String| Error::BadSnapshot { reason };
        if bytes.len() < MAGIC.len() + 4 + 32 + 32 || &bytes[..MAGIC.len()] != MAGIC {
            return Err(bad("not a wasmgym snapshot (missing the \"wasmgym\\0\" magic, or too short)".into()));
        }
        let format = u32::from_le_bytes(bytes[8..12].try_into().expect("4 bytes"));
        if format != SNAPSHOT_FORMAT {
            return Err(bad(format!(
                "snapshot format {format}, this runtime reads format {SNAPSHOT_FORMAT}: take the snapshot again"
            )));
        }
        let (body, checksum) = bytes.split_at(bytes.len() - 32);
        if blake3::hash(body).as_bytes() != checksum {
            return Err(bad("checksum mismatch: the bytes are truncated or corrupted".into()));
        }
        let mut r = Reader::new(&body[12..], "snapshot");
        let module: [u8; 32] = r.take(32).map_err(|e| bad(e.0))?.try_into().expect("32 bytes");
        Self::parse(module, &mut r).map_err(|e| bad(e.0))
    }

    fn parse(module: [u8; 32], r: &mut Reader<'_>) -> std::result::Result<Snapshot, wasmgym_abi::DecodeError> {
        let fail = |m: String| wasmgym_abi::DecodeError(m);
        let n = r.u32()?;
        let mut memories = Vec::new();
        for _ in 0..n {
            let len = usize::try_from(r.u64()?).map_err(|_| fail("memory too large".into()))?;
            if len % PAGE != 0 {
                return Err(fail(format!("memory of {len} bytes is not a whole number of 64 KiB pages")));
            }
            memories.push(MemoryImage::from_bytes(r.take(len)?));
        }
        let n = r.u32()?;
        let mut globals = Vec::new();
        for _ in 0..n {
            let tag = r.u8()?;
            let bits = u128::from_le_bytes(r.take(16)?.try_into().expect("16 bytes"));
            globals.push(match tag {
                0 => GlobalValue::I32(bits as u32),
                1 => GlobalValue::I64(bits as u64),
                2 => GlobalValue::F32(bits as u32),
                3 => GlobalValue::F64(bits as u64),
                4 => GlobalValue::V128(bits),
                t => return Err(fail(format!("unknown global type {t}"))),
            });
        }
        let rng = Rng::from_state_bytes(r.take(32)?.try_into().expect("32 bytes"));
        let clock_ns = r.u64()?;
        let fuel_consumed = r.u64()?;
        let steps = r.u64()?;
        let episode = match (r.u8()?, r.u32()?) {
            (0, _) => Episode::NotStarted,
            (1, player) => Episode::Running { player },
            (2, _) => Episode::Over,
            (t, _) => return Err(fail(format!("unknown episode status {t}"))),
        };
        let stdout = r.bytes()?.to_vec();
        let stderr = r.bytes()?.to_vec();
        let vars = HostVars { rng, clock_ns, stdout, stderr, fuel_consumed, steps, episode };
        Ok(Snapshot::new(SnapshotData { module, memories, globals, vars }))
    }
}
