//! Memory probes: the device allocator's bytes (wgpu), the process's resident set size (every
//! backend; the only figure on flex), and the analytic bytes of training state.

use burn::prelude::*;
use serde::{Deserialize, Serialize};

use crate::compute::LargestTensor;

/// One reading of memory use.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize)]
pub struct MemoryReading {
    /// Device allocator bytes in use (`None` on CPU backends).
    pub bytes_in_use: Option<u64>,
    /// Device allocator bytes reserved (`None` on CPU backends).
    pub bytes_reserved: Option<u64>,
    /// Process resident set size in bytes (Linux `/proc/self/status`; `None` elsewhere).
    pub rss_bytes: Option<u64>,
    /// The process's largest resident set so far (`VmHWM`): the true peak, which falls inside
    /// a step's backward pass, between the readings above.
    #[serde(default)]
    pub rss_high_water_bytes: Option<u64>,
}

pub fn read(device: &Device) -> MemoryReading {
    let pool = device.memory_pool_usage();
    MemoryReading {
        bytes_in_use: pool.as_ref().map(|p| p.bytes_in_use),
        bytes_reserved: pool.as_ref().map(|p| p.bytes_reserved),
        rss_bytes: rss_bytes(),
        rss_high_water_bytes: status_bytes("VmHWM:"),
    }
}

/// The largest resident set this process has had (`VmHWM`).
pub fn read_peak_rss() -> Option<u64> {
    status_bytes("VmHWM:")
}

/// Resident set size of this process.
pub fn rss_bytes() -> Option<u64> {
    status_bytes("VmRSS:")
}

/// A `kB` line of Linux's `/proc/self/status`, in bytes.
fn status_bytes(key: &str) -> Option<u64> {
    proc_kb_line("/proc/self/status", key)
}

/// The `key: N kB` line of a Linux `/proc` file, in bytes.
fn proc_kb_line(file: &str, key: &str) -> Option<u64> {
    let text = std::fs::read_to_string(file).ok()?;
    let line = text.lines().find(|l| l.starts_with(key))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

/// Memory the machine has for a run on `device`: available host memory (Linux
/// `MemAvailable`) for flex and software wgpu adapters, which allocate from it; `None` for a
/// hardware GPU, whose free memory wgpu does not report.
pub fn available_bytes(device: &super::device::LabDevice) -> Option<u64> {
    if device.backend != "flex" && !device.software {
        return None;
    }
    host_available_bytes()
}

/// Host memory available for new allocations (Linux `MemAvailable`).
pub fn host_available_bytes() -> Option<u64> {
    proc_kb_line("/proc/meminfo", "MemAvailable:")
}

/// Whether the largest tensor of every step shape of `config` (a long-context stage's too)
/// fits in one buffer of `max_buffer` bytes (wgpu adapters bind each tensor as one buffer).
/// Err: the sizes, which tensor, and what would fit.
pub fn check_buffer(config: &crate::spec::RunConfig, max_buffer: u64) -> Result<(), String> {
    let memories = config.step_memories();
    let (shape, m) = memories
        .iter()
        .max_by_key(|(_, m)| m.largest_tensor)
        .expect("a run has at least its base shape");
    if m.largest_tensor <= max_buffer {
        return Ok(());
    }
    let mib = |b: u64| format!("{:.0} MiB", b as f64 / 1_048_576.0);
    let remedy = match (m.largest_kind, shape.seq_len == config.spec.model.seq_len) {
        (LargestTensor::Parameter, _) => {
            "a smaller model: fewer or narrower experts, or a smaller d_model".to_string()
        }
        (_, false) => "a shorter train.long_context.seq_len or a smaller batch_size".into(),
        (_, true) => match max_buffer / (m.largest_tensor / shape.batch as u64).max(1) {
            0 => "even one sequence does not fit: a shorter seq_len".into(),
            n => format!("batch_size = {n} would fit"),
        },
    };
    Err(format!(
        "the largest tensor of a step ({}) is {} at {} × {} tokens, but this adapter binds \
         buffers of at most {}; {remedy}",
        m.largest_kind.describe(),
        mib(m.largest_tensor),
        shape.batch,
        shape.seq_len,
        mib(max_buffer),
    ))
}

/// Before anything is allocated: whether a step of every shape of `config` (a long-context
/// stage's too) fits in `available` bytes (the estimate of `compute::TrainingMemory`, plus the
/// corpus held in memory and the process's own ≈ 64 MiB). Err: what the largest needs, what
/// there is, and what would fit.
pub fn check_fits(config: &crate::spec::RunConfig, available: u64) -> Result<(), String> {
    const PROCESS: u64 = 64 << 20;
    let memories = config.step_memories();
    let (shape, m) = memories
        .iter()
        .max_by_key(|(_, m)| m.total())
        .expect("a run has at least its base shape");
    let corpus = match config.spec.data.source {
        crate::data::SourceKind::Generated => config.spec.data.corpus_bytes as u64,
        crate::data::SourceKind::Text => config
            .spec
            .data
            .path
            .as_ref()
            .and_then(|p| std::fs::metadata(p).ok())
            .map_or(0, |m| m.len()),
        // Shards are memory-mapped: their pages are the page cache's, not the run's.
        crate::data::SourceKind::Prepared => 0,
    };
    let need = m.total() + corpus + PROCESS;
    if need <= available {
        return Ok(());
    }
    let fixed = m.params + m.grads + m.optimizer + corpus + PROCESS;
    let gib = |b: u64| format!("{:.2} GiB", b as f64 / (1u64 << 30) as f64);
    let remedy = match shape.seq_len == config.spec.model.seq_len {
        false => "a shorter train.long_context.seq_len or a smaller batch_size".into(),
        true => {
            let per_sequence = (m.activations / shape.batch as u64).max(1);
            match available.saturating_sub(fixed) / per_sequence {
                0 => "even one sequence per step does not fit: a smaller model or seq_len".into(),
                n => format!("batch_size = {n} would fit"),
            }
        }
    };
    Err(format!(
        "a step needs ≈ {} (weights, gradients and AdamW state {}, activations {} at {} × {} \
         tokens, corpus {}, the process ≈ 64 MiB) but {} is available; {remedy}",
        gib(need),
        gib(m.params + m.grads + m.optimizer),
        gib(m.activations),
        shape.batch,
        shape.seq_len,
        gib(corpus),
        gib(available),
    ))
}
