//! [`Snapshot`]: the complete state of an instance as plain data, and its byte format.
//!
//! Format 2 (written), little-endian:
//!
//! ```text
//! magic      8 bytes  "wasmgym\0"
//! format     u32      2
//! module     32 bytes BLAKE3 of the module's bytes
//! body       zstd frame of:
//!   memories   u32 count, then per memory: u64 length (a multiple of 64 KiB, at most 4 GiB),
//!              a bitmap of its 4 KiB pages (bit p of byte p/8: page p is not all zeros), then
//!              the bytes of those pages in order (all-zero pages are written by reference only)
//!   globals    u32 count, then per global: u8 type (0 i32, 1 i64, 2 f32, 3 f64, 4 v128), 16 bytes
//!   host       rng 32 bytes, clock_ns u64, fuel_consumed u64, steps u64,
//!              episode u8 (0 not started, 1 running, 2 over), player u32,
//!              stdout u32 length + bytes, stderr u32 length + bytes
//! checksum   32 bytes BLAKE3 of everything before it
//! ```
//!
//! Format 3 (written by [`EnvModule::snapshot_to_bytes`](crate::EnvModule::snapshot_to_bytes), read
//! by [`EnvModule::snapshot_from_bytes`](crate::EnvModule::snapshot_from_bytes)) is format 2 with
//! each memory's pages written against the module's initial image (its memories as instantiated,
//! data segments included) instead of against zeros: the bitmap marks the pages that differ from
//! that image (zero past its length), and only those are written. Decoding needs the module.
//!
//! Format 4 is format 3 signed: its last 32 bytes are BLAKE3 keyed with the runtime's
//! [`RuntimeConfig::snapshot_key`](crate::RuntimeConfig::snapshot_key) instead of a plain hash. A
//! runtime with a key reads only format 4 (or 5) signed with it; one without refuses format 4.
//! Format 5 is format 2 signed the same way ([`Snapshot::to_bytes_signed`]): self-contained, for
//! snapshots that travel without their module (Python's pickling with a key).
//!
//! Format 1 (read, no longer written) had the same fields uncompressed, with every byte of every
//! memory. Other formats are refused with [`Error::BadSnapshot`] naming both versions.

use std::sync::Arc;

use wasmgym_abi::DecodeError;
use wasmgym_abi::rng::Rng;
use wasmgym_abi::wire::{Reader, Writer};

use crate::error::{Error, Result};
use crate::module::SnapshotKey;
use crate::pages::{MemoryImage, PAGE as IMAGE_PAGE};
use crate::sandbox::{Episode, HostVars};

const MAGIC: &[u8; 8] = b"wasmgym\0";
/// Version of the byte format [`Snapshot::to_bytes`] writes; bumped on any change to it.
/// [`Snapshot::from_bytes`] reads this one and format 1.
pub const SNAPSHOT_FORMAT: u32 = 2;
/// Version of the byte format written against the module's initial image
/// ([`EnvModule::snapshot_to_bytes`](crate::EnvModule::snapshot_to_bytes)).
pub const SNAPSHOT_FORMAT_AGAINST_MODULE: u32 = 3;
/// Format 3 signed with a [`RuntimeConfig::snapshot_key`](crate::RuntimeConfig::snapshot_key).
pub const SNAPSHOT_FORMAT_SIGNED: u32 = 4;
/// Format 2 signed with a snapshot key ([`Snapshot::to_bytes_signed`]).
pub const SNAPSHOT_FORMAT_SIGNED_SELF_CONTAINED: u32 = 5;
const PAGE: usize = 65536;
/// zstd level of format 2. On connect_four mid-game: level 1 gives 28.3 KB in about 0.2 ms, level 3
/// 26.9 KB in about 0.35 ms (format 1: 197 KB, uncompressed); most non-zero pages are the module's
/// data segments, which compress little.
const ZSTD_LEVEL: i32 = 1;
/// The largest memory a snapshot may hold (wasm32's address space); also the most that decoding
/// one snapshot may allocate for all its memories, whatever the bytes claim.
const MAX_MEMORY: u64 = 4 << 30;
/// The most bytes of globals and host state (captured output, mostly) decoding reads.
const MAX_REST: u64 = 256 << 20;

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
    /// Taken in this process, or decoded from bytes signed with the runtime's snapshot key; a
    /// runtime with a key restores no other.
    pub authentic: bool,
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

/// Appends `body` compressed as one zstd frame to `out`, with a compression context kept per thread
/// (making one costs more than compressing a small snapshot).
fn compress(body: &[u8], out: &mut Vec<u8>) {
    thread_local! {
        static COMPRESSOR: std::cell::RefCell<Option<zstd::bulk::Compressor<'static>>> = const { std::cell::RefCell::new(None) };
    }
    COMPRESSOR.with_borrow_mut(|slot| {
        let compressor = match slot {
            Some(c) => c,
            None => slot.insert(zstd::bulk::Compressor::new(ZSTD_LEVEL).expect("a zstd context")),
        };
        let start = out.len();
        out.resize(start + zstd::zstd_safe::compress_bound(body.len()), 0);
        let written = compressor.compress_to_buffer(body, &mut out[start..]).expect("the bound always fits");
        out.truncate(start + written);
    });
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

    /// Whether the two are one snapshot (clones of each other).
    pub(crate) fn same(&self, other: &Snapshot) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
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

    /// The snapshot in the byte format above (format 2: zero pages by reference, the rest
    /// compressed with zstd), with a checksum.
    pub fn to_bytes(&self) -> Vec<u8> {
        self.encode(SNAPSHOT_FORMAT, None, Self::stored_pages)
    }

    /// Format 5: [`Snapshot::to_bytes`] signed with `key` (BLAKE3 keyed, as format 4), so a runtime
    /// configured with that key restores what [`Snapshot::from_bytes_signed`] reads back.
    pub fn to_bytes_signed(&self, key: &SnapshotKey) -> Vec<u8> {
        self.encode(SNAPSHOT_FORMAT_SIGNED_SELF_CONTAINED, Some(&key.0), Self::stored_pages)
    }

    fn stored_pages(m: &MemoryImage) -> Vec<usize> {
        let mut stored = Vec::new();
        m.for_each_stored_page(|p, _| stored.push(p));
        stored
    }

    /// Format 3: the pages that differ from `initial` (the module's initial images, one per
    /// memory), the rest by reference to them; signed (format 4) with `key`, if given.
    pub(crate) fn to_bytes_against(&self, initial: &[MemoryImage], key: Option<&[u8; 32]>) -> Vec<u8> {
        let format = if key.is_some() { SNAPSHOT_FORMAT_SIGNED } else { SNAPSHOT_FORMAT_AGAINST_MODULE };
        let none = MemoryImage::from_bytes(&[]);
        let mut i = 0;
        self.encode(format, key, |m| {
            let reference = initial.get(i).unwrap_or(&none);
            i += 1;
            // Pages where the trees differ, kept where the bytes do too (a page written back to
            // what it was is a new page of equal bytes).
            let mut differing = Vec::new();
            m.diff(reference, |p| {
                if p < m.pages() && m.page(p) != reference.page(p) {
                    differing.push(p);
                }
            });
            differing
        })
    }

    /// Formats 2 to 4: per memory its length, a bitmap of the pages `written` lists (in order) and
    /// their bytes, then globals and host state, compressed, checksummed (keyed with `key`).
    fn encode(
        &self,
        format: u32,
        key: Option<&[u8; 32]>,
        mut written: impl FnMut(&MemoryImage) -> Vec<usize>,
    ) -> Vec<u8> {
        let d = &self.0;
        let mut body = Vec::with_capacity(4096);
        let mut w = Writer(&mut body);
        w.u32(d.memories.len() as u32);
        for m in &d.memories {
            w.u64(m.len() as u64);
            let pages = written(m);
            let mut bitmap = vec![0u8; m.pages().div_ceil(8)];
            pages.iter().for_each(|&p| bitmap[p / 8] |= 1 << (p % 8));
            w.0.extend_from_slice(&bitmap);
            for p in pages {
                w.0.extend_from_slice(&m.page(p)[..IMAGE_PAGE.min(m.len() - p * IMAGE_PAGE)]);
            }
        }
        Self::write_rest(d, &mut w);
        Self::finish(format, &d.module, &body, key)
    }

    /// Header, `body` compressed, then the checksum, or the keyed hash with `key`.
    fn finish(format: u32, module: &[u8; 32], body: &[u8], key: Option<&[u8; 32]>) -> Vec<u8> {
        let mut out = Vec::with_capacity(body.len() / 4 + 128);
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&format.to_le_bytes());
        out.extend_from_slice(module);
        compress(body, &mut out);
        let checksum = match key {
            Some(key) => blake3::keyed_hash(key, &out),
            None => blake3::hash(&out),
        };
        out.extend_from_slice(checksum.as_bytes());
        out
    }

    /// Globals and host state, the part formats 1 and 2 share.
    fn write_rest(d: &SnapshotData, w: &mut Writer<'_>) {
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
    }

    /// Parses bytes from [`Snapshot::to_bytes`] (format 2, or format 1 of earlier versions).
    /// Truncated, corrupted or foreign bytes, and other format versions, get
    /// [`Error::BadSnapshot`] saying which. Decoding allocates at most the memory the snapshot
    /// really holds, and never more than 4 GiB, whatever the bytes claim.
    pub fn from_bytes(bytes: &[u8]) -> Result<Snapshot> {
        Self::decode(bytes, None, None, false)
    }

    /// [`Snapshot::from_bytes`] that also reads format 5 signed with `key`: such a snapshot is
    /// authentic, so a runtime with that key restores it. Unsigned bytes (formats 1 and 2) are read
    /// as `from_bytes` reads them, and a runtime with a key refuses to restore them.
    pub fn from_bytes_signed(bytes: &[u8], key: &SnapshotKey) -> Result<Snapshot> {
        Self::decode(bytes, None, Some(&key.0), false)
    }

    /// [`Snapshot::from_bytes`] for a module whose hash is `module` and whose initial images are
    /// `initial`: reads format 3 as well, and refuses snapshots of other modules. With `key`, reads
    /// only format 4 signed with it.
    pub(crate) fn from_bytes_against(
        bytes: &[u8],
        module: &[u8; 32],
        initial: &[MemoryImage],
        key: Option<&[u8; 32]>,
    ) -> Result<Snapshot> {
        let snapshot = Self::decode(bytes, Some(initial), key, key.is_some())?;
        if snapshot.0.module != *module {
            return Err(Error::BadSnapshot {
                reason: "the snapshot belongs to another module (its module hash differs): decode it with the module \
                         it was taken from"
                    .into(),
            });
        }
        Ok(snapshot)
    }

    /// `initial`: decoding through a module with these initial images; `key`: the key signed
    /// formats are checked with; `signed_only`: unsigned formats are refused (a module of a
    /// runtime with a key).
    fn decode(
        bytes: &[u8],
        initial: Option<&[MemoryImage]>,
        key: Option<&[u8; 32]>,
        signed_only: bool,
    ) -> Result<Snapshot> {
        let bad = |reason: String| Error::BadSnapshot { reason };
        if bytes.len() < MAGIC.len() + 4 + 32 + 32 || &bytes[..MAGIC.len()] != MAGIC {
            return Err(bad("not a wasmgym snapshot (missing the \"wasmgym\\0\" magic, or too short)".into()));
        }
        let format = u32::from_le_bytes(bytes[8..12].try_into().expect("4 bytes"));
        let signed = format == SNAPSHOT_FORMAT_SIGNED || format == SNAPSHOT_FORMAT_SIGNED_SELF_CONTAINED;
        let against_module = format == SNAPSHOT_FORMAT_AGAINST_MODULE || format == SNAPSHOT_FORMAT_SIGNED;
        if !(1..=SNAPSHOT_FORMAT_SIGNED_SELF_CONTAINED).contains(&format) {
            return Err(bad(format!(
                "snapshot format {format}, this runtime reads formats 1 to {SNAPSHOT_FORMAT_SIGNED_SELF_CONTAINED}: \
                 take the snapshot again with this version"
            )));
        }
        if signed && key.is_none() {
            return Err(bad(format!(
                "the bytes are signed with a snapshot key (format {format}): read them with that key \
                 (`RuntimeConfig::snapshot_key` and `EnvModule::snapshot_from_bytes`, or \
                 `Snapshot::from_bytes_signed`; Python: `WASMGYM_SNAPSHOT_KEY`)"
            )));
        }
        if !signed && signed_only {
            return Err(bad(format!(
                "unsigned snapshot bytes (format {format}), and this runtime has a snapshot key: it accepts only \
                 bytes signed with it (`EnvModule::snapshot_to_bytes`, format 4, or `Snapshot::to_bytes_signed`, \
                 format 5)"
            )));
        }
        if against_module && initial.is_none() {
            return Err(bad(format!(
                "snapshot format {format} is written against its module's initial memory: decode it with \
                 `EnvModule::snapshot_from_bytes` (Python: `Env.snapshot_from_bytes`)"
            )));
        }
        let (body, checksum) = bytes.split_at(bytes.len() - 32);
        match key.filter(|_| signed) {
            Some(key) => {
                if blake3::keyed_hash(key, body).as_bytes() != checksum {
                    return Err(
                        bad("authentication failed: the bytes were changed, or signed with another key".into()),
                    );
                }
            }
            None => {
                if blake3::hash(body).as_bytes() != checksum {
                    return Err(bad("checksum mismatch: the bytes are truncated or corrupted".into()));
                }
            }
        }
        let module: [u8; 32] = body[12..44].try_into().expect("32 bytes");
        if format == 1 {
            let mut r = Reader::new(&body[44..], "snapshot");
            return Self::parse(module, &mut r).map_err(|e| bad(e.0));
        }
        let mut decoder = zstd::stream::read::Decoder::with_buffer(&body[44..])
            .map_err(|e| bad(format!("the compressed body does not decode: {e}")))?;
        let against = if against_module { initial } else { None };
        let memories = Self::read_memories(&mut decoder, against).map_err(|e| bad(e.0))?;
        // What is left is small (globals, host state, captured output), and decoding stops at
        // MAX_REST bytes however much the frame would expand to.
        let mut rest = Vec::new();
        std::io::Read::read_to_end(&mut std::io::Read::take(decoder, MAX_REST), &mut rest)
            .map_err(|e| bad(format!("the compressed body does not decode: {e}")))?;
        let mut r = Reader::new(&rest, "snapshot");
        let mut snapshot = Self::parse_rest(module, memories, &mut r).map_err(|e| bad(e.0))?;
        // The keyed hash was checked above.
        Arc::get_mut(&mut snapshot.0).expect("made just now").authentic = signed;
        Ok(snapshot)
    }

    /// Format 2's memories (3's, against `initial`), read page by page from the decompressed
    /// stream.
    fn read_memories(
        input: &mut impl std::io::Read,
        initial: Option<&[MemoryImage]>,
    ) -> std::result::Result<Vec<MemoryImage>, DecodeError> {
        let truncated = |e: std::io::Error| DecodeError(format!("the body ends early or does not decode: {e}"));
        let mut word = [0u8; 8];
        input.read_exact(&mut word[..4]).map_err(truncated)?;
        let count = u32::from_le_bytes(word[..4].try_into().expect("4 bytes"));
        let mut memories = Vec::new();
        let mut total = 0u64;
        for i in 0..count {
            input.read_exact(&mut word).map_err(truncated)?;
            let len = u64::from_le_bytes(word);
            total = total.saturating_add(len);
            if len % PAGE as u64 != 0 || total > MAX_MEMORY {
                return Err(DecodeError(format!(
                    "memory {i} of {len} bytes is not a whole number of 64 KiB pages, or the memories exceed 4 GiB"
                )));
            }
            // Format 3 starts from the module's image (sharing its pages), format 2 from zeros, as
            // does format 3 for memories the module does not have (as they were written; such a
            // snapshot restores nowhere, but decodes as it was encoded).
            let mut image = match initial.and_then(|initial| initial.get(i as usize)) {
                Some(image) => image.clone(),
                None => MemoryImage::from_bytes(&[]),
            };
            image.resize(len as usize);
            let mut bitmap = vec![0u8; image.pages().div_ceil(8)];
            input.read_exact(&mut bitmap).map_err(truncated)?;
            let mut page = [0u8; IMAGE_PAGE];
            for p in 0..image.pages() {
                if bitmap[p / 8] & (1 << (p % 8)) != 0 {
                    input.read_exact(&mut page).map_err(truncated)?;
                    image.set_page(p, &page);
                }
            }
            memories.push(image);
        }
        Ok(memories)
    }

    /// Format 1: memories uncompressed, every byte.
    fn parse(module: [u8; 32], r: &mut Reader<'_>) -> std::result::Result<Snapshot, DecodeError> {
        let fail = |m: String| DecodeError(m);
        let n = r.u32()?;
        let mut memories = Vec::new();
        for _ in 0..n {
            let len = usize::try_from(r.u64()?).map_err(|_| fail("memory too large".into()))?;
            if len % PAGE != 0 {
                return Err(fail(format!("memory of {len} bytes is not a whole number of 64 KiB pages")));
            }
            memories.push(MemoryImage::from_bytes(r.take(len)?));
        }
        Self::parse_rest(module, memories, r)
    }

    /// Globals and host state, then the end of the bytes.
    fn parse_rest(
        module: [u8; 32],
        memories: Vec<MemoryImage>,
        r: &mut Reader<'_>,
    ) -> std::result::Result<Snapshot, DecodeError> {
        let fail = |m: String| DecodeError(m);
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
        Ok(Snapshot::new(SnapshotData { module, memories, globals, vars, authentic: false }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> SnapshotData {
        let mut image = MemoryImage::from_bytes(&vec![0u8; 3 * PAGE]);
        image.set_page(1, &[7; IMAGE_PAGE]);
        image.set_page(40, b"partly written");
        let mut vars = HostVars {
            rng: Rng::seed_from_u64(9),
            clock_ns: 5,
            stdout: b"out".to_vec(),
            stderr: Vec::new(),
            fuel_consumed: 77,
            steps: 3,
            episode: Episode::Running { player: 1 },
        };
        vars.rng.next_u64();
        SnapshotData {
            module: [3; 32],
            memories: vec![image],
            globals: vec![GlobalValue::I32(65536), GlobalValue::F64(1.5f64.to_bits())],
            vars,
            authentic: true,
        }
    }

    /// Format 1 as earlier versions wrote it: every byte of every memory, uncompressed.
    fn format_1(d: &SnapshotData) -> Vec<u8> {
        let mut out = MAGIC.to_vec();
        let mut w = Writer(&mut out);
        w.u32(1);
        w.0.extend_from_slice(&d.module);
        w.u32(d.memories.len() as u32);
        for m in &d.memories {
            w.u64(m.len() as u64);
            w.0.extend_from_slice(&m.to_vec());
        }
        Snapshot::write_rest(d, &mut w);
        let checksum = blake3::hash(&out);
        out.extend_from_slice(checksum.as_bytes());
        out
    }

    fn same(a: &SnapshotData, b: &SnapshotData) -> bool {
        a.module == b.module
            && a.globals == b.globals
            && a.vars == b.vars
            && a.memories.len() == b.memories.len()
            && a.memories.iter().zip(&b.memories).all(|(x, y)| x.to_vec() == y.to_vec())
    }

    #[test]
    fn format_2_round_trips_and_format_1_is_still_read() {
        let data = sample();
        let bytes = Snapshot::new(sample()).to_bytes();
        assert_eq!(u32::from_le_bytes(bytes[8..12].try_into().unwrap()), SNAPSHOT_FORMAT);
        assert!(same(Snapshot::from_bytes(&bytes).unwrap().data(), &data));
        let old = format_1(&data);
        assert!(old.len() > 3 * PAGE && bytes.len() < 2 * IMAGE_PAGE, "{} vs {} bytes", old.len(), bytes.len());
        assert!(same(Snapshot::from_bytes(&old).unwrap().data(), &data));
        let mut future = bytes.clone();
        future[8] = 9;
        let e = Snapshot::from_bytes(&future).unwrap_err().to_string();
        assert!(e.contains("format 9") && e.contains("formats 1 to 5"), "{e}");
    }

    #[test]
    fn format_3_writes_only_what_differs_from_the_initial_image() {
        let data = sample();
        // An initial image that agrees with the sample on page 1, holds a page the sample has
        // zeroed (2), and is shorter than the sample's memory.
        let mut initial = MemoryImage::from_bytes(&vec![0u8; 2 * PAGE]);
        initial.set_page(1, &[7; IMAGE_PAGE]);
        initial.set_page(2, b"gone in the snapshot");
        let snapshot = Snapshot::new(sample());
        let bytes = snapshot.to_bytes_against(std::slice::from_ref(&initial), None);
        assert_eq!(u32::from_le_bytes(bytes[8..12].try_into().unwrap()), SNAPSHOT_FORMAT_AGAINST_MODULE);
        let decoded = Snapshot::from_bytes_against(&bytes, &data.module, std::slice::from_ref(&initial), None).unwrap();
        assert!(same(decoded.data(), &data));
        // Page 1 (a full page of 7s) is not written: the bytes are smaller than format 2's.
        assert!(bytes.len() < snapshot.to_bytes().len(), "{} bytes", bytes.len());
        assert!(!decoded.data().memories[0].differs_on_more_than(&initial, 2), "shares page 1 with the image");
        // Without the module, for another module, or against other images, it is refused or differs.
        let e = Snapshot::from_bytes(&bytes).unwrap_err().to_string();
        assert!(e.contains("EnvModule::snapshot_from_bytes"), "{e}");
        let e = Snapshot::from_bytes_against(&bytes, &[1; 32], std::slice::from_ref(&initial), None)
            .unwrap_err()
            .to_string();
        assert!(e.contains("another module"), "{e}");
        let other = MemoryImage::from_bytes(&vec![0u8; 2 * PAGE]);
        let wrong = Snapshot::from_bytes_against(&bytes, &data.module, &[other], None).unwrap();
        assert!(!same(wrong.data(), &data));

        // Signed (format 4): read with the key only, and marked authentic.
        let initial = [initial];
        let signed = snapshot.to_bytes_against(&initial, Some(&[5; 32]));
        assert_eq!(u32::from_le_bytes(signed[8..12].try_into().unwrap()), SNAPSHOT_FORMAT_SIGNED);
        let read =
            |bytes: &[u8], key: Option<&[u8; 32]>| Snapshot::from_bytes_against(bytes, &data.module, &initial, key);
        let decoded = read(&signed, Some(&[5; 32])).unwrap();
        assert!(same(decoded.data(), &data) && decoded.data().authentic);
        assert!(!read(&bytes, None).unwrap().data().authentic, "unsigned bytes are not authentic");
        let refused = |result: Result<Snapshot>, words: &str| match result {
            Err(Error::BadSnapshot { reason }) => assert!(reason.contains(words), "{reason}"),
            other => panic!("{:?}", other.map(|_| ())),
        };
        refused(read(&signed, Some(&[6; 32])), "authentication failed");
        refused(read(&signed, None), "signed with a snapshot key");
        refused(read(&bytes, Some(&[5; 32])), "unsigned");
        refused(Snapshot::from_bytes(&signed), "EnvModule::snapshot_from_bytes");
        // A forger without the key: the body changed and a plain checksum, or the signature moved.
        let mut forged = signed.clone();
        let n = forged.len();
        forged[n - 40] ^= 1;
        let plain = blake3::hash(&forged[..n - 32]);
        forged[n - 32..].copy_from_slice(plain.as_bytes());
        refused(read(&forged, Some(&[5; 32])), "authentication failed");

        // Signed and self-contained (format 5): read with the key, with or without the module.
        let key = SnapshotKey([5; 32]);
        let signed = snapshot.to_bytes_signed(&key);
        assert_eq!(u32::from_le_bytes(signed[8..12].try_into().unwrap()), SNAPSHOT_FORMAT_SIGNED_SELF_CONTAINED);
        let decoded = Snapshot::from_bytes_signed(&signed, &key).unwrap();
        assert!(same(decoded.data(), &data) && decoded.data().authentic);
        assert!(read(&signed, Some(&key.0)).unwrap().data().authentic);
        refused(Snapshot::from_bytes_signed(&signed, &SnapshotKey([6; 32])), "authentication failed");
        refused(Snapshot::from_bytes(&signed), "signed with a snapshot key");
        refused(read(&signed, None), "signed with a snapshot key");
        let plain = Snapshot::from_bytes_signed(&snapshot.to_bytes(), &key).unwrap();
        assert!(same(plain.data(), &data) && !plain.data().authentic, "unsigned bytes are read, not authentic");
    }

    /// A format 2 snapshot with a valid checksum around `body` (uncompressed).
    fn format_2_with(body: &[u8]) -> Vec<u8> {
        let mut out = MAGIC.to_vec();
        out.extend_from_slice(&2u32.to_le_bytes());
        out.extend_from_slice(&[0; 32]);
        zstd::stream::copy_encode(body, &mut out, 3).unwrap();
        let checksum = blake3::hash(&out);
        out.extend_from_slice(checksum.as_bytes());
        out
    }

    #[test]
    fn bytes_claiming_more_memory_than_wasm32_has_are_refused_before_allocating() {
        let mut body = 1u32.to_le_bytes().to_vec();
        body.extend_from_slice(&(8u64 << 30).to_le_bytes());
        let e = Snapshot::from_bytes(&format_2_with(&body)).unwrap_err().to_string();
        assert!(e.contains("exceed 4 GiB"), "{e}");
        // A bitmap that promises pages the body does not have.
        let mut body = 1u32.to_le_bytes().to_vec();
        body.extend_from_slice(&(PAGE as u64).to_le_bytes());
        body.extend_from_slice(&[0xff; 2]);
        let e = Snapshot::from_bytes(&format_2_with(&body)).unwrap_err().to_string();
        assert!(e.contains("ends early"), "{e}");
        // Not zstd at all, under a valid checksum.
        let mut junk = MAGIC.to_vec();
        junk.extend_from_slice(&2u32.to_le_bytes());
        junk.extend_from_slice(&[0; 40]);
        let checksum = blake3::hash(&junk);
        junk.extend_from_slice(checksum.as_bytes());
        assert!(matches!(Snapshot::from_bytes(&junk), Err(Error::BadSnapshot { .. })));
    }
}
