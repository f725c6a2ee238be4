//! Figures of a sweep, drawn from its files by `plotters` as PNG and SVG under
//! `plots/<experiment>/`. One file per figure; the shared style lives in [`style`].

mod loss_vs_flops;
mod lr_proxies;
mod lr_sensitivity;
mod memory;
mod paired_diff;
mod router_load;
mod router_maxvio;
mod router_state;
mod scaling;
mod spike_rate;
pub mod style;
mod training_loss;

use std::path::Path;

use anyhow::Result;

use crate::analysis::Analysis;
use crate::analysis::load::RunData;
use crate::analysis::lr::LrAnalysis;
use crate::sweep::runner::Manifest;

/// What every figure may draw from.
pub struct PlotData<'a> {
    pub manifest: &'a Manifest,
    pub runs: &'a [RunData],
    pub analysis: &'a Analysis,
}

/// Draw every figure into `dir` (created if needed). Returns the file stems written.
pub fn draw_all(data: &PlotData, dir: &Path) -> Result<Vec<String>> {
    std::fs::create_dir_all(dir)?;
    style::register_fonts();
    let figures: Vec<(&str, Box<dyn style::Figure + '_>)> = vec![
        ("loss_vs_flops", Box::new(loss_vs_flops::LossVsFlops(data))),
        ("paired_diff", Box::new(paired_diff::PairedDiff(data))),
        ("scaling", Box::new(scaling::Scaling(data))),
        ("training_loss", Box::new(training_loss::TrainingLoss(data))),
        ("spike_rate", Box::new(spike_rate::SpikeRate(data))),
        ("memory", Box::new(memory::Memory(data))),
        ("router_load", Box::new(router_load::RouterLoad(data))),
        ("router_maxvio", Box::new(router_maxvio::RouterMaxVio(data))),
        ("router_state", Box::new(router_state::RouterState(data))),
    ];
    let mut written = Vec::new();
    for (stem, fig) in figures {
        style::save(fig.as_ref(), dir, stem)?;
        written.push(stem.to_string());
    }
    Ok(written)
}

/// What the figures of a learning-rate sweep draw from.
pub struct LrPlotData<'a> {
    pub manifest: &'a Manifest,
    pub analysis: &'a LrAnalysis,
}

/// Draw a learning-rate sweep's figures into `dir`. Returns the file stems written.
pub fn draw_lr(data: &LrPlotData, dir: &Path) -> Result<Vec<String>> {
    std::fs::create_dir_all(dir)?;
    style::register_fonts();
    let figures: Vec<(&str, Box<dyn style::Figure + '_>)> = vec![
        (
            "lr_sensitivity",
            Box::new(lr_sensitivity::LrSensitivity(data)),
        ),
        ("lr_proxies", Box::new(lr_proxies::LrProxies(data))),
    ];
    let mut written = Vec::new();
    for (stem, fig) in figures {
        style::save(fig.as_ref(), dir, stem)?;
        written.push(stem.to_string());
    }
    Ok(written)
}
