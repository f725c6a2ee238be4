//! Figures of a sweep, drawn from its files by `plotters` as PNG and SVG under
//! `plots/<experiment>/`. One file per figure; the shared style lives in [`style`].

pub(crate) mod isoflop_frontiers;
mod isoflop_profiles;
pub(crate) mod loss_vs_flops;
mod lr_proxies;
mod lr_sensitivity;
pub(crate) mod memory;
mod paired_diff;
mod recipe_gains;
pub(crate) mod router_load;
pub(crate) mod router_maxvio;
pub(crate) mod router_state;
mod scaling;
pub(crate) mod spike_rate;
pub mod style;
pub(crate) mod training_loss;

use std::path::Path;

use anyhow::Result;

use crate::analysis::isoflop::IsoflopAnalysis;
use crate::analysis::load::RunData;
use crate::analysis::lr::LrAnalysis;
use crate::analysis::recipe::RecipeAnalysis;
use crate::analysis::scaling::Analysis;
use crate::run::Manifest;

/// What every figure may draw from.
pub struct PlotData<'a> {
    pub manifest: &'a Manifest,
    pub runs: &'a [RunData],
    pub analysis: &'a Analysis,
}

/// Figures by file stem.
type Figures<'a> = Vec<(&'static str, Box<dyn style::Figure + 'a>)>;

/// Write each figure into `dir` (created if needed). Returns the file stems written.
fn save_all(figures: Figures, dir: &Path) -> Result<Vec<String>> {
    std::fs::create_dir_all(dir)?;
    style::register_fonts();
    let mut written = Vec::new();
    for (stem, fig) in figures {
        style::save(fig.as_ref(), dir, stem)?;
        written.push(stem.to_string());
    }
    Ok(written)
}

/// Draw every figure into `dir` (created if needed). Returns the file stems written.
pub fn draw_all(data: &PlotData, dir: &Path) -> Result<Vec<String>> {
    let figures: Figures = vec![
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
    save_all(figures, dir)
}

/// What the figures of a learning-rate sweep draw from.
pub struct LrPlotData<'a> {
    pub manifest: &'a Manifest,
    pub analysis: &'a LrAnalysis,
}

impl LrPlotData<'_> {
    /// A curve's legend: its arm, and its size when the sweep has several.
    pub(crate) fn label(&self, c: &crate::analysis::lr::LrCurve) -> String {
        let curves = &self.analysis.curves;
        match curves.iter().any(|o| o.size != c.size) {
            true => format!("{} ({})", c.arm, c.size),
            false => c.arm.clone(),
        }
    }
}

/// Draw a learning-rate sweep's figures into `dir`. Returns the file stems written.
pub fn draw_lr(data: &LrPlotData, dir: &Path) -> Result<Vec<String>> {
    let figures: Figures = vec![
        (
            "lr_sensitivity",
            Box::new(lr_sensitivity::LrSensitivity(data)),
        ),
        ("lr_proxies", Box::new(lr_proxies::LrProxies(data))),
    ];
    save_all(figures, dir)
}

/// What the figure of a recipe experiment draws from.
pub struct RecipePlotData<'a> {
    pub manifest: &'a Manifest,
    pub analysis: &'a RecipeAnalysis,
}

/// Draw a recipe experiment's figure into `dir`. Returns the file stems written.
pub fn draw_recipe(data: &RecipePlotData, dir: &Path) -> Result<Vec<String>> {
    let figures: Figures = vec![("recipe_gains", Box::new(recipe_gains::RecipeGains(data)))];
    save_all(figures, dir)
}

/// What the figures of an IsoFLOP experiment draw from.
pub struct IsoflopPlotData<'a> {
    pub manifest: &'a Manifest,
    pub analysis: &'a IsoflopAnalysis,
}

/// Draw an IsoFLOP experiment's figures into `dir`. Returns the file stems written.
pub fn draw_isoflop(data: &IsoflopPlotData, dir: &Path) -> Result<Vec<String>> {
    let figures: Figures = vec![
        (
            "isoflop_profiles",
            Box::new(isoflop_profiles::IsoflopProfiles(data)),
        ),
        (
            "isoflop_frontiers",
            Box::new(isoflop_frontiers::IsoflopFrontiers(data)),
        ),
        (
            "isoflop_loss_frontier",
            Box::new(isoflop_frontiers::IsoflopLossFrontier(data)),
        ),
    ];
    save_all(figures, dir)
}
