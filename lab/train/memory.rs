//! Memory probes: the device allocator's bytes (wgpu), the process's resident set size (every
//! backend; the only figure on flex), and the analytic bytes of training state.

use burn::prelude::*;
use serde::{Deserialize, Serialize};

/// One reading of memory use.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize)]
pub struct MemoryReading {
    /// Device allocator bytes in use (`None` on CPU backends).
    pub bytes_in_use: Option<u64>,
    /// Device allocator bytes reserved (`None` on CPU backends).
    pub bytes_reserved: Option<u64>,
    /// Process resident set size in bytes (Linux `/proc/self/status`; `None` elsewhere).
    pub rss_bytes: Option<u64>,
}

pub fn read(device: &Device) -> MemoryReading {
    let pool = device.memory_pool_usage();
    MemoryReading {
        bytes_in_use: pool.as_ref().map(|p| p.bytes_in_use),
        bytes_reserved: pool.as_ref().map(|p| p.bytes_reserved),
        rss_bytes: rss_bytes(),
    }
}

/// Resident set size of this process.
pub fn rss_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}
