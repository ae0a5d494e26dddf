//! [`MemoryImage`]: a linear memory's bytes as a persistent tree of 4 KiB pages.
//!
//! Snapshots share every page they have in common: a snapshot taken from an instance whose earlier
//! snapshot is known copies only the pages written since (path copying), and the pages on which two
//! images differ are found in time proportional to their number, because identical subtrees are the
//! same allocation (`Arc::ptr_eq`) and are skipped whole. All-zero pages and subtrees take no memory.
//!
//! Each page and node caches its BLAKE3 hash once computed (a Merkle tree), so hashing an image costs
//! the pages and nodes created since the images it shares them with were hashed. The hash depends on
//! the bytes only, not on how the tree was built (a zero subtree hashes like explicit zeros).
//!
//! ```text
//! root ─┬─ node (16⁴ pages = 256 MiB) ─┬─ node (16 MiB) ─┬─ node (1 MiB) ─┬─ node (64 KiB) ─┬─ page 4 KiB
//!       └─ ... 16 children, 4 GiB in all └─ ...            └─ ...           └─ ...            └─ Zero
//! ```
//!
//! A fan-out of 16 (measured against 8 and 32): a changed page copies 5 nodes of 16 pointers, and
//! a diff checks 16 children per level it descends; both touch reference counts, which dominated.

use std::sync::{Arc, OnceLock};

use crate::budget::{Budget, Charge};
use crate::copy::copy;
use crate::cow::CowFile;
use crate::error::Error;

/// Bytes per page of an image (the kernel's page size, not wasm's 64 KiB).
pub(crate) const PAGE: usize = 4096;
const FAN: usize = 16;
const LEVELS: u32 = 5; // 16^5 pages of 4 KiB = 4 GiB, all of wasm32's address space
const ZERO: [u8; PAGE] = [0; PAGE];

#[derive(Clone)]
enum Node {
    /// A page or subtree of zeros.
    Zero,
    Page(Arc<PageBuf>),
    Inner(Arc<InnerNode>),
}

struct PageBuf {
    bytes: [u8; PAGE],
    hash: OnceLock<[u8; 32]>,
    /// What the page is charged against a runtime's memory cap (pages captured from instances).
    _charge: Option<Charge>,
}

impl PageBuf {
    /// A page holding `bytes` (at most a page; the rest is zero), made in place on the heap: a
    /// page built on the stack and moved would be copied with `memcpy` (see `copy.rs` for what
    /// that can cost).
    fn new(bytes: &[u8], charge: Option<Charge>) -> Arc<PageBuf> {
        let mut page = Arc::<PageBuf>::new_uninit();
        let slot = Arc::get_mut(&mut page).expect("made above").as_mut_ptr();
        // SAFETY: `slot` points to an uninitialised `PageBuf` we own alone; the page's bytes are
        // zeroed in place before a slice of them is made, and every field is written before
        // `assume_init`.
        unsafe {
            let buf = &raw mut (*slot).bytes;
            buf.write_bytes(0, 1);
            copy(&mut (&mut *buf)[..bytes.len()], bytes);
            (&raw mut (*slot).hash).write(OnceLock::new());
            (&raw mut (*slot)._charge).write(charge);
            page.assume_init()
        }
    }
}

/// What a stored page is charged: its bytes and a share of the tree nodes above it.
pub(crate) const PAGE_CHARGE: u64 = PAGE as u64 + 512;

#[derive(Clone)]
struct InnerNode {
    children: [Node; FAN],
    /// Cleared whenever a child changes.
    hash: OnceLock<[u8; 32]>,
}

/// The bytes of one linear memory: its length and a tree of pages. Cloning shares every page.
#[derive(Clone)]
pub(crate) struct MemoryImage {
    len: usize,
    root: Node,
    /// The image written to a memfd for copy-on-write forks, made on first use and shared by
    /// clones; any change to the image starts a new cell.
    file: Arc<OnceLock<Arc<CowFile>>>,
}

impl MemoryImage {
    /// An image of `bytes`; zero pages take no space.
    pub fn from_bytes(bytes: &[u8]) -> MemoryImage {
        let mut image = MemoryImage { len: bytes.len(), root: Node::Zero, file: Default::default() };
        for (i, page) in bytes.chunks(PAGE).enumerate() {
            if page.iter().any(|&b| b != 0) {
                image.set_page(i, page);
            }
        }
        image
    }

    /// Length in bytes.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Number of pages (the last may be partial, though wasm memories are whole pages).
    pub fn pages(&self) -> usize {
        self.len.div_ceil(PAGE)
    }

    /// The bytes of page `index` (zeros past the stored pages).
    pub fn page(&self, index: usize) -> &[u8] {
        let mut node = &self.root;
        for level in (0..LEVELS).rev() {
            match node {
                Node::Zero => return &ZERO,
                Node::Page(p) => return &p.bytes[..],
                Node::Inner(inner) => node = &inner.children[(index >> (level * FAN.ilog2())) % FAN],
            }
        }
        match node {
            Node::Page(p) => &p.bytes[..],
            _ => &ZERO,
        }
    }

    /// Sets page `index` to `bytes` (at most a page; the rest of the page is zero), copying only the
    /// path to it when it is shared with other images.
    pub fn set_page(&mut self, index: usize, bytes: &[u8]) {
        self.set_page_charged(index, bytes, None);
    }

    /// [`MemoryImage::set_page`], charging a stored page to `budget` (whether or not it fits) for as
    /// long as any image holds it.
    pub fn set_page_charged(&mut self, index: usize, bytes: &[u8], budget: Option<&Arc<Budget>>) {
        let leaf = if *bytes == ZERO[..bytes.len()] {
            Node::Zero
        } else {
            let charge = budget.map(|b| b.charge_anyway(PAGE_CHARGE));
            Node::Page(PageBuf::new(bytes, charge))
        };
        self.file = Default::default();
        let mut node = &mut self.root;
        for level in (0..LEVELS).rev() {
            if !matches!(node, Node::Inner(_)) {
                let children = std::array::from_fn(|_| Node::Zero);
                *node = Node::Inner(Arc::new(InnerNode { children, hash: OnceLock::new() }));
            }
            let Node::Inner(inner) = node else { unreachable!("made inner above") };
            let inner = Arc::make_mut(inner);
            inner.hash = OnceLock::new();
            node = &mut inner.children[(index >> (level * FAN.ilog2())) % FAN];
        }
        *node = leaf;
    }

    /// Changes the length; pages past a shorter length are dropped.
    pub fn resize(&mut self, len: usize) {
        let keep = len.div_ceil(PAGE);
        for i in keep..self.pages() {
            self.set_page(i, &[]);
        }
        self.len = len;
        self.file = Default::default();
    }

    /// Calls `f` with the index of every page on which `self` and `other` may differ, within the
    /// longer of the two. Shared subtrees are skipped whole, so the cost follows the number of
    /// differing pages, not the size of the memories.
    pub fn diff(&self, other: &MemoryImage, mut f: impl FnMut(usize)) {
        let pages = self.pages().max(other.pages());
        diff_nodes(&self.root, &other.root, LEVELS, 0, pages, &mut |p| {
            f(p);
            true
        });
    }

    /// Whether the two are one image (clones of each other, sharing every page): equal then, and
    /// cheap to tell.
    pub fn same(&self, other: &MemoryImage) -> bool {
        self.len == other.len
            && match (&self.root, &other.root) {
                (Node::Zero, Node::Zero) => true,
                (Node::Page(x), Node::Page(y)) => Arc::ptr_eq(x, y),
                (Node::Inner(x), Node::Inner(y)) => Arc::ptr_eq(x, y),
                _ => false,
            }
    }

    /// Whether `self` and `other` may differ on more than `n` pages (as [`MemoryImage::diff`]
    /// counts them); stops looking past `n`.
    pub fn differs_on_more_than(&self, other: &MemoryImage, n: usize) -> bool {
        let pages = self.pages().max(other.pages());
        let mut count = 0;
        diff_nodes(&self.root, &other.root, LEVELS, 0, pages, &mut |_| {
            count += 1;
            count <= n
        });
        count > n
    }

    /// Number of pages stored (not zero).
    pub fn stored_pages(&self) -> usize {
        let mut n = 0;
        self.for_each_stored_page(|_, _| n += 1);
        n
    }

    /// Calls `f` with the index and bytes of every stored (non-zero) page, in order.
    pub fn for_each_stored_page(&self, mut f: impl FnMut(usize, &[u8; PAGE])) {
        fn walk(node: &Node, level: u32, first: usize, f: &mut impl FnMut(usize, &[u8; PAGE])) {
            match node {
                Node::Zero => {}
                Node::Page(p) => f(first, &p.bytes),
                Node::Inner(inner) => {
                    let span = FAN.pow(level - 1);
                    for (i, child) in inner.children.iter().enumerate() {
                        walk(child, level - 1, first + i * span, f);
                    }
                }
            }
        }
        walk(&self.root, LEVELS, 0, &mut f);
    }

    /// The image in a memfd for copy-on-write mapping, written on the first call and shared by
    /// every clone of this image (charged to `budget` while any holds it).
    pub fn cow_file(&self, budget: &Arc<Budget>) -> Result<Arc<CowFile>, Error> {
        if let Some(file) = self.file.get() {
            return Ok(file.clone());
        }
        let file = Arc::new(CowFile::new(self, budget)?);
        Ok(self.file.get_or_init(|| file).clone())
    }

    /// The memfd of this image, if [`MemoryImage::cow_file`] made it already.
    pub fn cached_file(&self) -> Option<Arc<CowFile>> {
        self.file.get().cloned()
    }

    /// BLAKE3 of the length and the bytes, from the cached hashes of shared pages and nodes.
    pub fn hash(&self) -> [u8; 32] {
        let mut h = blake3::Hasher::new();
        h.update(&(self.len as u64).to_le_bytes());
        h.update(&node_hash(&self.root, LEVELS));
        *h.finalize().as_bytes()
    }

    /// The image's bytes, contiguous.
    #[cfg(test)]
    pub fn to_vec(&self) -> Vec<u8> {
        let mut out = vec![0; self.len];
        for (i, chunk) in out.chunks_mut(PAGE).enumerate() {
            copy(chunk, &self.page(i)[..chunk.len()]);
        }
        out
    }
}

/// The hash of a subtree at `level` (0 = a page), computed once per node.
fn node_hash(node: &Node, level: u32) -> [u8; 32] {
    match node {
        Node::Zero => zero_hash(level),
        Node::Page(p) => *p.hash.get_or_init(|| *blake3::hash(&p.bytes).as_bytes()),
        Node::Inner(inner) => *inner.hash.get_or_init(|| {
            let mut h = blake3::Hasher::new();
            for child in &inner.children {
                h.update(&node_hash(child, level - 1));
            }
            *h.finalize().as_bytes()
        }),
    }
}

/// The hash of an all-zero subtree at `level`, as if every page were stored.
fn zero_hash(level: u32) -> [u8; 32] {
    static ZEROS: OnceLock<[[u8; 32]; LEVELS as usize + 1]> = OnceLock::new();
    ZEROS.get_or_init(|| {
        let mut hashes = [[0u8; 32]; LEVELS as usize + 1];
        hashes[0] = *blake3::hash(&ZERO).as_bytes();
        for level in 1..=LEVELS as usize {
            let mut h = blake3::Hasher::new();
            for _ in 0..FAN {
                h.update(&hashes[level - 1]);
            }
            hashes[level] = *h.finalize().as_bytes();
        }
        hashes
    })[level as usize]
}

/// Calls `f` with each page on which the two subtrees may differ, until it returns `false`;
/// returns `false` if it was stopped.
fn diff_nodes(a: &Node, b: &Node, level: u32, first: usize, pages: usize, f: &mut impl FnMut(usize) -> bool) -> bool {
    if first >= pages {
        return true;
    }
    match (a, b) {
        (Node::Zero, Node::Zero) => true,
        (Node::Page(x), Node::Page(y)) if Arc::ptr_eq(x, y) => true,
        (Node::Inner(x), Node::Inner(y)) if Arc::ptr_eq(x, y) => true,
        _ if level == 0 => f(first),
        _ => {
            // Borrowed, not cloned: cloning would touch two reference counts per child.
            fn child(n: &Node, i: usize) -> &Node {
                static ZERO_NODE: Node = Node::Zero;
                match n {
                    Node::Inner(inner) => &inner.children[i],
                    // A page at an inner level cannot happen; zeros stand for a zero subtree.
                    _ => &ZERO_NODE,
                }
            }
            // Children cover FAN^(level-1) pages each; none starts past the last page.
            let span = FAN.pow(level - 1);
            let children = (pages - first).div_ceil(span).min(FAN);
            (0..children).all(|i| diff_nodes(child(a, i), child(b, i), level - 1, first + i * span, pages, f))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn memory(len: usize, seed: u8) -> Vec<u8> {
        (0..len).map(|i| if i % 5000 < 7 { (i as u8).wrapping_mul(seed) } else { 0 }).collect()
    }

    #[test]
    fn round_trips_bytes_and_skips_zero_pages() {
        for len in [0, PAGE, 65536, 3 * 65536 + 17] {
            let bytes = memory(len, 3);
            assert_eq!(MemoryImage::from_bytes(&bytes).to_vec(), bytes);
        }
    }

    #[test]
    fn diff_finds_exactly_the_changed_pages_and_shares_the_rest() {
        let base = MemoryImage::from_bytes(&memory(1 << 20, 5));
        let mut next = base.clone();
        for page in [0, 7, 200, 255] {
            next.set_page(page, &[9; 100]);
        }
        let mut changed = Vec::new();
        base.diff(&next, |p| changed.push(p));
        assert_eq!(changed, vec![0, 7, 200, 255]);
        // Unchanged pages are the very same allocation.
        assert!(std::ptr::eq(base.page(100).as_ptr(), next.page(100).as_ptr()));
        let mut none = Vec::new();
        next.diff(&next.clone(), |p| none.push(p));
        assert!(none.is_empty());
        for (n, more) in [(0, true), (3, true), (4, false), (100, false)] {
            assert_eq!(base.differs_on_more_than(&next, n), more, "more than {n}");
        }
        assert!(!next.differs_on_more_than(&next.clone(), 0));
    }

    #[test]
    fn diff_covers_growth_and_resize_drops_pages() {
        let small = MemoryImage::from_bytes(&vec![1; 2 * PAGE]);
        let mut big = small.clone();
        big.resize(4 * PAGE);
        big.set_page(3, &[2; PAGE]);
        let mut changed = Vec::new();
        small.diff(&big, |p| changed.push(p));
        assert_eq!(changed, vec![3]);
        big.resize(PAGE);
        assert_eq!(big.to_vec(), vec![1; PAGE]);
        assert_eq!(big.page(1), &ZERO[..]);
    }

    #[test]
    fn stored_pages_are_visited_in_order_with_their_bytes() {
        let bytes = memory(1 << 20, 3);
        let image = MemoryImage::from_bytes(&bytes);
        let mut seen = Vec::new();
        image.for_each_stored_page(|i, page| {
            assert_eq!(page[..], bytes[i * PAGE..(i + 1) * PAGE]);
            seen.push(i);
        });
        let expected: Vec<usize> =
            (0..bytes.len() / PAGE).filter(|&i| bytes[i * PAGE..(i + 1) * PAGE].iter().any(|&b| b != 0)).collect();
        assert!(!expected.is_empty() && expected.len() < bytes.len() / PAGE, "the test needs zero and non-zero pages");
        assert_eq!(seen, expected);
        assert_eq!(image.stored_pages(), expected.len());
    }

    #[test]
    fn hashes_depend_on_the_bytes_only_and_follow_changes() {
        let bytes = memory(1 << 20, 3);
        let direct = MemoryImage::from_bytes(&bytes);
        let mut built = MemoryImage::from_bytes(&vec![0; 1 << 20]);
        for (i, page) in bytes.chunks(PAGE).enumerate() {
            built.set_page(i, page);
        }
        assert_eq!(direct.hash(), built.hash());
        let before = built.hash();
        built.set_page(9, &[1; 8]);
        assert_ne!(built.hash(), before, "a cached hash survived a change");
        assert_eq!(direct.hash(), before, "a change to a clone changed the original's hash");
        built.set_page(9, &bytes[9 * PAGE..10 * PAGE]);
        assert_eq!(built.hash(), before);
        // Zeros stored page by page hash like a zero subtree; the length counts.
        let mut zeros = MemoryImage::from_bytes(&[]);
        zeros.resize(1 << 20);
        let mut written = zeros.clone();
        written.set_page(3, &[1]);
        written.set_page(3, &[0]);
        assert_eq!(written.hash(), zeros.hash());
        assert_ne!(MemoryImage::from_bytes(&vec![0; PAGE]).hash(), MemoryImage::from_bytes(&vec![0; 2 * PAGE]).hash());
    }

    #[test]
    fn pages_at_the_top_of_a_4_gib_memory_are_addressable() {
        let mut image = MemoryImage { len: 1 << 32, root: Node::Zero, file: Default::default() };
        let last = (1usize << 32) / PAGE - 1;
        image.set_page(last, &[7; PAGE]);
        assert_eq!(image.page(last)[0], 7);
        assert_eq!(image.page(last - 1)[0], 0);
        let mut changed = Vec::new();
        MemoryImage { len: 1 << 32, root: Node::Zero, file: Default::default() }.diff(&image, |p| changed.push(p));
        assert_eq!(changed, vec![last]);
    }
}
