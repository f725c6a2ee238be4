//! The router's figures: expert load at the end, imbalance over training, and the state a
//! router keeps (loss-free balancing's bias).

use std::collections::BTreeMap;

use super::inputs::Inputs;
use crate::analysis::figure::{Axis, Color, Figure, Mark, Panel, Series};
use crate::analysis::load::RunData;
use crate::run::RouterStateRow;

/// How to read the figure (its caption).
pub const ROUTER_STATE: &str = "Router state per expert over training (e.g. loss-free balancing's bias), one run per arm that keeps any";

/// How to read the figure (its caption).
pub const ROUTER_MAXVIO: &str = "Router load imbalance (MaxVio) over training, MoE runs. Look for curves that settle low; a curve that climbs means balancing is losing";

/// How to read the figure (its caption).
pub const ROUTER_LOAD: &str = "Expert load share per layer (MoE arm, largest size, last evaluation). Look for experts far from an equal share: imbalance that capacity limits would turn into dropped tokens";

/// Expert-load heatmap (layer × expert) of the reference MoE arm at the largest size with
/// router statistics, last evaluation, averaged over seeds. Uniform load is 1/K per cell.
pub fn load(d: &Inputs) -> Figure {
    let title = "Expert load share at the last evaluation (mean over seeds)";
    let arm = &d.manifest.reference_arm;
    let size = d.manifest.sizes.iter().rev().find(|s| {
        (d.runs.iter()).any(|r| &r.cell.size == *s && &r.cell.arm == arm && !r.router.is_empty())
    });
    let Some(size) = size else {
        return Figure::empty("router_load", title, "no MoE router statistics");
    };
    let cells = last_shares(d, size, arm);
    let mut layers: Vec<usize> = cells.keys().map(|k| k.0).collect();
    layers.dedup();
    let experts = cells.keys().map(|k| k.1).max().unwrap_or(0) + 1;
    let mean = |l: usize, e: usize| {
        (cells.get(&(l, e))).map_or(0.0, |s| s.iter().sum::<f64>() / s.len() as f64)
    };
    let z = (layers.iter())
        .map(|l| (0..experts).map(|e| mean(*l, e)).collect())
        .collect();
    let uniform = 1.0 / experts as f64;
    let columns: Vec<String> = (0..experts).map(|e| e.to_string()).collect();
    let rows: Vec<String> = layers.iter().map(|l| format!("block {l}")).collect();
    let mut p = Panel::new(
        Axis::categories("expert", columns.clone()),
        Axis::categories("layer", rows.clone()),
    );
    p.push(Mark::Heatmap {
        columns,
        rows,
        z,
        zmax: 2.0 * uniform,
        value: "load share".into(),
    });
    let title = format!("{title}: {arm} at size {size} (uniform = {uniform:.3})");
    Figure::new("router_load", &title, vec![p])
}

/// (layer, expert) → the load shares over seeds at each run's last evaluation, for `arm` at
/// `size`.
fn last_shares(d: &Inputs, size: &str, arm: &str) -> BTreeMap<(usize, usize), Vec<f64>> {
    let mut cells: BTreeMap<(usize, usize), Vec<f64>> = BTreeMap::new();
    for r in (d.runs.iter()).filter(|r| r.cell.size == size && r.cell.arm == arm) {
        let Some(last) = r.router.iter().map(|x| x.step).max() else {
            continue;
        };
        for x in r.router.iter().filter(|x| x.step == last) {
            let at = cells.entry((x.layer, x.expert)).or_default();
            at.push(x.load_share);
        }
    }
    cells
}

/// Router load imbalance over training: MaxVio (max load / mean load − 1, mean over MoE
/// layers) at each evaluation, one line per arm and size (the seeds' mean, thicker for larger
/// sizes) with the seeds' range as a band; each run is one click away in the run browser.
pub fn maxvio(d: &Inputs) -> Figure {
    let title =
        "Router imbalance (MaxVio, mean over MoE layers): seed mean and range per arm and size";
    let mut p = Panel::new(
        Axis::linear("step"),
        Axis::linear("MaxVio = max load / mean load − 1"),
    );
    let arms = &d.manifest.arms;
    for b in seed_bands(d) {
        let s = Series::arm(arms, &b.label(), &b.arm, true);
        let col = |i: usize| b.points.iter().map(|p| p[i]).collect::<Vec<_>>();
        let fill = s.clone().colored(s.color.alpha(0.15));
        p.push(Mark::Band {
            series: fill,
            x: col(0),
            lo: col(2),
            hi: col(3),
        });
        let line: Vec<(f64, f64)> = col(0).into_iter().zip(col(1)).collect();
        // The size at the line's end: the arm's lines share its colour.
        if let Some(&(x, y)) = line.last() {
            p.push(Mark::line(s, line, 1.5 + b.size_rank as f64));
            p.push(Mark::Text {
                x,
                y,
                text: b.size.clone(),
            });
        }
    }
    Figure::new("router_maxvio", title, vec![p]).or_empty("no MoE router statistics")
}

/// One arm at one size: per evaluation step, the mean, least and largest MaxVio of its seeds.
struct SeedBand {
    arm: String,
    size: String,
    /// The size's place in the ladder (thicker lines for larger sizes).
    size_rank: usize,
    seeds: usize,
    /// `[step, mean, min, max]`.
    points: Vec<[f64; 4]>,
}

impl SeedBand {
    fn label(&self) -> String {
        format!("{} {} ({} seeds)", self.arm, self.size, self.seeds)
    }
}

/// Each (arm, size) with router statistics, in the manifest's order.
fn seed_bands(d: &Inputs) -> Vec<SeedBand> {
    let mut out = Vec::new();
    for arm in &d.manifest.arms {
        for (rank, size) in d.manifest.sizes.iter().enumerate() {
            let runs: Vec<_> = (d.runs.iter())
                .filter(|r| &r.cell.arm == arm && &r.cell.size == size && !r.router.is_empty())
                .collect();
            if runs.is_empty() {
                continue;
            }
            let mut by_step: BTreeMap<u64, Vec<f64>> = BTreeMap::new();
            for (step, v) in runs.iter().flat_map(|r| mean_over_layers(r)) {
                by_step.entry(step as u64).or_default().push(v);
            }
            let points = (by_step.into_iter())
                .map(|(step, v)| {
                    let mean = v.iter().sum::<f64>() / v.len() as f64;
                    let lo = v.iter().copied().fold(f64::INFINITY, f64::min);
                    let hi = v.iter().copied().fold(f64::NEG_INFINITY, f64::max);
                    [step as f64, mean, lo, hi]
                })
                .collect();
            let (arm, size, seeds) = (arm.clone(), size.clone(), runs.len());
            out.push(SeedBand {
                arm,
                size,
                size_rank: rank,
                seeds,
                points,
            });
        }
    }
    out
}

/// A run's MaxVio at each evaluation, the mean over its MoE layers: `(step, MaxVio)`.
fn mean_over_layers(r: &RunData) -> Vec<(f64, f64)> {
    let mut by_step: BTreeMap<usize, BTreeMap<usize, f64>> = BTreeMap::new();
    for x in &r.router {
        by_step
            .entry(x.step)
            .or_default()
            .insert(x.layer, x.max_vio);
    }
    let mean = |layers: &BTreeMap<usize, f64>| layers.values().sum::<f64>() / layers.len() as f64;
    (by_step.iter())
        .map(|(s, layers)| (*s as f64, mean(layers)))
        .collect()
}

/// Router state over training, for routers that keep one (loss-free balancing's per-expert
/// selection bias): one line per expert of the first MoE layer, for one run of each arm that
/// has state (its largest size, first seed); the arms side by side.
pub fn state(d: &Inputs) -> Figure {
    let title = "Router state over training (first MoE layer, one run per arm)";
    let mut panels = Vec::new();
    for run in shown_runs(d) {
        let (layer, rows) = first_layer(run);
        let quantity = rows.first().map_or("", |x| x.quantity.as_str());
        let experts = rows.iter().map(|x| x.expert).max().unwrap_or(0) + 1;
        let mut p = Panel::new(
            Axis::linear("step"),
            Axis::linear(&format!("{quantity} per expert")),
        )
        .titled(&format!("{}: {quantity}, layer {layer}", run.cell.name));
        for e in 0..experts {
            let mine = rows.iter().filter(|x| x.expert == e);
            let line = mine.map(|x| (x.step as f64, x.value)).collect();
            let name = format!("{} expert {e}", run.cell.name);
            let s = Series::arm(&d.manifest.arms, &name, &run.cell.arm, true);
            p.push(Mark::line(s.colored(Color::hue(e, experts)), line, 2.0));
        }
        panels.push(p);
    }
    let why = "no run keeps router state (e.g. loss-free balancing's bias)";
    Figure::new("router_state", title, panels).or_empty(why)
}

/// The run shown for each arm with router state: its largest size's seed 0 (runs are in plan
/// order, sizes ascending), else its last run with state.
fn shown_runs<'a>(d: &Inputs<'a>) -> Vec<&'a RunData> {
    let mut shown = Vec::new();
    for arm in &d.manifest.arms {
        let mut with_state =
            (d.runs.iter()).filter(|r| &r.cell.arm == arm && !r.router_state.is_empty());
        if let Some(r) = with_state.clone().rfind(|r| r.cell.seed == 0) {
            shown.push(r);
        } else if let Some(r) = with_state.next_back() {
            shown.push(r);
        }
    }
    shown
}

/// A run's first MoE layer with state, and that layer's rows.
fn first_layer(run: &RunData) -> (usize, Vec<&RouterStateRow>) {
    let layer = run.router_state.iter().map(|x| x.layer).min().unwrap_or(0);
    let rows = run.router_state.iter().filter(|x| x.layer == layer);
    (layer, rows.collect())
}
