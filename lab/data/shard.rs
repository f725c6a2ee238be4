//! One token shard in llm.c's `.bin` format, read through a memory map, and its writer.
//!
//! Layout: a header of 256 little-endian int32 (`[0]` magic, `[1]` version, `[2]` token count,
//! the rest zero), then the tokens, little endian, from byte 1024. llm.c's
//! `dev/data/data_common.py` writes two kinds, and the lab reads and writes both: GPT-2's
//! (magic 20240520, version 1, uint16 tokens) and LLaMA-3's (magic 20240801, version 7, uint32
//! tokens, for vocabularies over 65 536). llm.c's and modded-nanogpt's shards train here as
//! they are; a shard the lab prepares trains there.

use std::fs::File;
use std::io::{BufWriter, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use memmap2::{Advice, Mmap, UncheckedAdvice};
use sha2::{Digest, Sha256};

use crate::error::SpecError;

pub const HEADER_BYTES: usize = 256 * 4;

/// Bytes per token, and the header kind that says so: GPT-2's uint16 (vocabularies up to
/// 65 536) or LLaMA-3's uint32.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Width {
    U16,
    U32,
}

impl Width {
    /// The narrowest width that holds every id of a vocabulary of `vocab_size`.
    pub fn for_vocab(vocab_size: usize) -> Width {
        if vocab_size <= 1 << 16 {
            Width::U16
        } else {
            Width::U32
        }
    }
    pub fn bytes(self) -> usize {
        match self {
            Width::U16 => 2,
            Width::U32 => 4,
        }
    }
    /// The header's (magic, version) of llm.c's shards of this width.
    pub fn header(self) -> (i32, i32) {
        match self {
            Width::U16 => (20240520, 1),
            Width::U32 => (20240801, 7),
        }
    }
    /// The token ids of little-endian `bytes` of this width.
    fn decode(self, bytes: &[u8]) -> impl Iterator<Item = u32> + '_ {
        bytes.chunks_exact(self.bytes()).map(move |c| match self {
            Width::U16 => u16::from_le_bytes([c[0], c[1]]) as u32,
            Width::U32 => u32::from_le_bytes([c[0], c[1], c[2], c[3]]),
        })
    }
    fn of_header(magic: i32, version: i32) -> Option<Width> {
        [Width::U16, Width::U32]
            .into_iter()
            .find(|w| w.header() == (magic, version))
    }
}

fn bad(path: &Path, field: &str, message: impl Into<String>) -> SpecError {
    SpecError::field(path, field, message)
}

fn io(path: &Path, e: std::io::Error) -> SpecError {
    SpecError::Io {
        file: path.to_path_buf(),
        message: e.to_string(),
    }
}

/// The header's width and token count, checked against the file's size.
fn read_header(path: &Path, file: &mut File) -> Result<(Width, usize), SpecError> {
    let size = file.metadata().map_err(|e| io(path, e))?.len() as usize;
    if size < HEADER_BYTES {
        let m = format!("{size} bytes, shorter than the 1024-byte header");
        return Err(bad(path, "header", m));
    }
    let mut header = [0u8; 12];
    file.read_exact(&mut header).map_err(|e| io(path, e))?;
    let int = |i: usize| i32::from_le_bytes(header[4 * i..4 * i + 4].try_into().unwrap());
    let width = Width::of_header(int(0), int(1)).ok_or_else(|| {
        let m = format!(
            "magic {}, version {}: not an llm.c token shard (GPT-2: magic 20240520, version 1, \
             uint16 tokens; LLaMA-3: magic 20240801, version 7, uint32 tokens)",
            int(0),
            int(1)
        );
        bad(path, "header", m)
    })?;
    let count = usize::try_from(int(2)).map_err(|_| bad(path, "header.tokens", "negative"))?;
    let expected = HEADER_BYTES + count * width.bytes();
    if size != expected {
        let m = format!(
            "the header says {count} tokens ({expected} bytes with the header), the file has \
             {size} bytes (truncated or not a shard)"
        );
        return Err(bad(path, "header.tokens", m));
    }
    Ok((width, count))
}

/// A shard opened for reading: checked header, tokens behind a memory map.
pub struct Shard {
    pub path: PathBuf,
    map: Mmap,
    width: Width,
    count: usize,
}

impl Shard {
    /// Open and check the header against the file's size (no token is read).
    pub fn open(path: &Path) -> Result<Shard, SpecError> {
        let mut file = File::open(path).map_err(|e| io(path, e))?;
        let (width, count) = read_header(path, &mut file)?;
        // SAFETY: the lab only reads the map; a shard changed under a running job is the
        // user's error, as with any memory-mapped data loader.
        let map = unsafe { Mmap::map(&file) }.map_err(|e| io(path, e))?;
        // Windows are drawn at random: read-ahead would fault in pages no window uses and
        // grow resident memory with the corpus.
        map.advise(Advice::Random).map_err(|e| io(path, e))?;
        Ok(Shard {
            path: path.to_path_buf(),
            map,
            width,
            count,
        })
    }

    pub fn len(&self) -> usize {
        self.count
    }

    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    pub fn width(&self) -> Width {
        self.width
    }

    /// Append tokens `start..start + len` to `out`, then drop their pages from this process's
    /// resident set (they stay in the page cache): resident memory stays flat however large
    /// the corpus.
    pub fn copy_into(&self, start: usize, len: usize, out: &mut Vec<i64>) {
        let w = self.width.bytes();
        let from = HEADER_BYTES + start * w;
        let bytes = &self.map[from..from + len * w];
        out.extend(self.width.decode(bytes).map(i64::from));
        self.release(from, len * w);
    }

    /// Unmap the pages around bytes `from..from + len`. A read fault maps more than the page
    /// it needs (the kernel's fault-around maps cached pages nearby, whole large folios with
    /// them), so the whole 2 MiB-aligned span of virtual memory around the window goes: on
    /// ext4 with the corpus in the page cache, releasing only the window's own pages let the
    /// resident memory grow with the corpus (docs/performance.md, "Real corpora": flat now).
    fn release(&self, from: usize, len: usize) {
        const SPAN: usize = 2 << 20;
        let base = self.map.as_ptr() as usize;
        let start = ((base + from) / SPAN * SPAN).max(base) - base;
        let end = ((base + from + len).div_ceil(SPAN) * SPAN - base).min(self.map.len());
        // SAFETY: the map is read-only; after DONTNEED a read faults the pages back in from
        // the file, so no data is lost or changed.
        let _ = unsafe {
            self.map
                .unchecked_advise_range(UncheckedAdvice::DontNeed, start, end - start)
        };
    }
}

/// A shard's contents: the SHA-256 of its token bytes (everything after the header) and its
/// largest token, read with plain reads (not the map, so checking a large corpus does not grow
/// resident memory).
pub struct Scan {
    pub sha256: String,
    pub tokens: usize,
    pub max_token: Option<u32>,
}

/// Check the header and read every token once.
pub fn scan(path: &Path) -> Result<Scan, SpecError> {
    let mut file = File::open(path).map_err(|e| io(path, e))?;
    let (width, count) = read_header(path, &mut file)?;
    file.seek(SeekFrom::Start(HEADER_BYTES as u64))
        .map_err(|e| io(path, e))?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut max: Option<u32> = None;
    let mut left = count * width.bytes();
    while left > 0 {
        let n = left.min(buf.len());
        file.read_exact(&mut buf[..n]).map_err(|e| io(path, e))?;
        hasher.update(&buf[..n]);
        max = max.max(width.decode(&buf[..n]).max());
        left -= n;
    }
    Ok(Scan {
        sha256: format!("{:x}", hasher.finalize()),
        tokens: count,
        max_token: max,
    })
}

/// Writes one shard: to `<path>.tmp`, renamed into place only by [`ShardWriter::finish`], so
/// a killed writer leaves no file a reader would take for a shard.
pub struct ShardWriter {
    path: PathBuf,
    tmp: PathBuf,
    out: BufWriter<File>,
    width: Width,
    count: usize,
    hasher: Sha256,
}

impl ShardWriter {
    pub fn create(path: &Path, width: Width) -> std::io::Result<ShardWriter> {
        let tmp = path.with_extension("bin.tmp");
        let mut out = BufWriter::with_capacity(1 << 20, File::create(&tmp)?);
        out.write_all(&[0u8; HEADER_BYTES])?;
        Ok(ShardWriter {
            path: path.to_path_buf(),
            tmp,
            out,
            width,
            count: 0,
            hasher: Sha256::new(),
        })
    }

    pub fn len(&self) -> usize {
        self.count
    }

    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    pub fn push(&mut self, tokens: &[u32]) -> std::io::Result<()> {
        let mut bytes = Vec::with_capacity(tokens.len() * self.width.bytes());
        for &t in tokens {
            match self.width {
                Width::U16 => bytes.extend((t as u16).to_le_bytes()),
                Width::U32 => bytes.extend(t.to_le_bytes()),
            }
        }
        self.hasher.update(&bytes);
        self.out.write_all(&bytes)?;
        self.count += tokens.len();
        Ok(())
    }

    /// Write the header, flush to disk and rename into place; returns the tokens' SHA-256.
    pub fn finish(self) -> std::io::Result<String> {
        let ShardWriter {
            path,
            tmp,
            out,
            width,
            count,
            hasher,
        } = self;
        let count32 = i32::try_from(count).map_err(|_| {
            std::io::Error::other(format!("{count} tokens overflow the header's int32"))
        })?;
        let mut header = [0u8; HEADER_BYTES];
        let (magic, version) = width.header();
        header[0..4].copy_from_slice(&magic.to_le_bytes());
        header[4..8].copy_from_slice(&version.to_le_bytes());
        header[8..12].copy_from_slice(&count32.to_le_bytes());
        let mut file = out.into_inner().map_err(|e| e.into_error())?;
        file.seek(SeekFrom::Start(0))?;
        file.write_all(&header)?;
        file.sync_all()?;
        drop(file);
        std::fs::rename(&tmp, &path)?;
        Ok(format!("{:x}", hasher.finalize()))
    }
}
