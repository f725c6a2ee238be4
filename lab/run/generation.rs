//! `generation.json` in a run directory: what generating text from the run's final model cost
//! (`lab sample --stats`; the sweep measures one run per arm at its largest size), for the
//! report's inference table: MoE computes with k experts per token but holds all of them.

use anyhow::Result;
use serde::{Deserialize, Serialize};

use super::dir::{RunDir, write_atomic};

pub const GENERATION: &str = "generation.json";

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Generation {
    /// Bytes generated (greedy, after a newline prompt when measured by a sweep).
    pub bytes: usize,
    pub seconds: f64,
    pub bytes_per_s: f64,
    /// The `lab sample` process's peak resident set (`VmHWM`): weights, cache and runtime.
    pub peak_rss_bytes: Option<u64>,
    pub device: String,
    /// Parameters the model holds (f32 bytes): every expert, whatever a token uses.
    pub params_bytes: u64,
    /// Forward FLOPs per generated token at the full context (active experts only).
    pub forward_flops_per_token: f64,
}

impl RunDir {
    pub fn write_generation(&self, g: &Generation) -> Result<()> {
        write_atomic(
            &self.file(GENERATION),
            serde_json::to_string_pretty(g)?.as_bytes(),
        )
    }

    /// `None` when never measured (or unreadable: the report then leaves the run out).
    pub fn read_generation(&self) -> Option<Generation> {
        let text = std::fs::read_to_string(self.file(GENERATION)).ok()?;
        serde_json::from_str(&text).ok()
    }
}
