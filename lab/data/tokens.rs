//! A stream's tokens: bytes held in memory (the generated corpus, a text file), or a sequence
//! of token shards read through memory maps (a prepared corpus, llm.c's shards).
//!
//! Both read as one sequence of token ids: windows are copied out by position, so the
//! samplers in `batches` need not know where the tokens live.

use super::shard::Shard;

pub enum Tokens {
    /// Byte-level tokens (token id = byte value).
    Bytes(Vec<u8>),
    /// Shards in order, read as their concatenation.
    Shards(ShardSeq),
}

impl Tokens {
    pub fn len(&self) -> usize {
        match self {
            Tokens::Bytes(b) => b.len(),
            Tokens::Shards(s) => s.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Append tokens `start..start + len` to `out` as ids.
    pub fn copy_into(&self, start: usize, len: usize, out: &mut Vec<i64>) {
        match self {
            Tokens::Bytes(b) => out.extend(b[start..start + len].iter().map(|&x| x as i64)),
            Tokens::Shards(s) => s.copy_into(start, len, out),
        }
    }

    /// The bytes, for byte-level streams (line-aligned validation scans them for newlines).
    pub fn as_bytes(&self) -> Option<&[u8]> {
        match self {
            Tokens::Bytes(b) => Some(b),
            Tokens::Shards(_) => None,
        }
    }
}

impl From<Vec<u8>> for Tokens {
    fn from(bytes: Vec<u8>) -> Self {
        Tokens::Bytes(bytes)
    }
}

/// Shards read as one sequence: position p lies in the shard whose cumulative range holds it.
pub struct ShardSeq {
    shards: Vec<Shard>,
    /// `starts[i]`: the position of shard i's first token; one more entry, the total.
    starts: Vec<usize>,
}

impl ShardSeq {
    pub fn new(shards: Vec<Shard>) -> ShardSeq {
        let mut starts = vec![0];
        for s in &shards {
            starts.push(starts.last().unwrap() + s.len());
        }
        ShardSeq { shards, starts }
    }

    pub fn len(&self) -> usize {
        *self.starts.last().unwrap()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn shards(&self) -> &[Shard] {
        &self.shards
    }

    fn copy_into(&self, mut start: usize, mut len: usize, out: &mut Vec<i64>) {
        while len > 0 {
            // The last shard whose first position is ≤ start (empty shards are skipped over).
            let i = self.starts.partition_point(|&s| s <= start) - 1;
            let at = start - self.starts[i];
            let n = len.min(self.shards[i].len() - at);
            self.shards[i].copy_into(at, n, out);
            start += n;
            len -= n;
        }
    }
}
