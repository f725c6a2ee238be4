//! IsoFLOP experiments: the parabola and its vertex against exact values, the analysis on
//! runs drawn from a known loss surface (its optimum, frontier exponent and multiplier known
//! in closed form), the edge warning, the windows of sizes, and a toy sweep end to end.

use crate::common::lab_in as lab;
use crate::common::synthetic::{manifest, run};
use moe_lab::analysis::isoflop::profile::Parabola;
use moe_lab::analysis::isoflop::{self, IsoflopAnalysis};
use moe_lab::analysis::load::RunData;
use moe_lab::sweep::isoflop::window;

#[test]
fn parabola_recovers_its_coefficients_and_vertex() {
    // L = 3 − 0.4 (x − 10) + 0.05 (x − 10)²: vertex at x = 14, L = 2.2.
    let f = |x: f64| 3.0 - 0.4 * (x - 10.0) + 0.05 * (x - 10.0).powi(2);
    let pts: Vec<(f64, f64)> = [9.0, 11.0, 12.5, 14.0, 16.0]
        .iter()
        .map(|&x| (x, f(x)))
        .collect();
    let p = Parabola::fit(&pts).unwrap();
    assert!((p.vertex().unwrap() - 14.0).abs() < 1e-9, "{p:?}");
    assert!((p.at(14.0) - 2.2).abs() < 1e-9);
    assert!((p.at(9.7) - f(9.7)).abs() < 1e-9);
    // Opening downward: no minimum. Two distinct x: no parabola.
    let down: Vec<(f64, f64)> = pts.iter().map(|&(x, y)| (x, -y)).collect();
    assert_eq!(Parabola::fit(&down).unwrap().vertex(), None);
    assert!(Parabola::fit(&[(1.0, 1.0), (2.0, 2.0), (2.0, 3.0)]).is_none());
}

/// Chinchilla's loss surface with E = 0 and α = β: `L(N, D) = A/N^α + B/D^α`, `D = C/(6N)`.
/// Its optimum is `N* = G·(C/6)^½` with `G = (A/B)^(1/(2α))`, so `a = ½` exactly, and
/// `L*(C) ∝ C^(−α/2)` is a power law.
const A: f64 = 400.0;
const B: f64 = 2000.0;
const ALPHA: f64 = 0.3;

fn surface(n: f64, d: f64) -> f64 {
    A / n.powf(ALPHA) + B / d.powf(ALPHA)
}

fn n_star(c: f64) -> f64 {
    (A / B).powf(1.0 / (2.0 * ALPHA)) * (c / 6.0).sqrt()
}

/// Runs of `arm` at `budget` over sizes `factors` × N*(budget), two seeds with ±`noise`;
/// `slow` > 1 makes the arm reach each loss with `slow`× the compute (it sees D/slow).
fn profile_runs(arm: &str, budget: f64, factors: &[f64], slow: f64, noise: f64) -> Vec<RunData> {
    let mut out = Vec::new();
    for (i, f) in factors.iter().enumerate() {
        let n = (n_star(budget / slow) * f).round();
        let d = budget / (6.0 * n);
        for (seed, e) in [(0u64, noise), (1, -noise)] {
            out.push(cell_run(arm, budget, i, n, seed, surface(n, d / slow) + e));
        }
    }
    out
}

/// The run of `arm` at `budget`, size `n{i}` of `n` parameters (6N FLOPs per token), `seed`.
fn cell_run(arm: &str, budget: f64, i: usize, n: f64, seed: u64, loss: f64) -> RunData {
    let mut r = run(&format!("n{i}"), arm, seed, loss);
    r.cell.budget = Some(budget);
    r.cell.name = format!("c{budget:e}-n{i}-{arm}-s{seed}");
    r.summary.params.active = n as u64;
    r.summary.params.total = n as u64;
    r.summary.flops_per_token.train_per_token = 6.0 * n;
    r.summary.train_flops = budget;
    r
}

fn analysis(runs: &[RunData]) -> IsoflopAnalysis {
    let mut m = manifest(runs, "moe", "dense", 0.01);
    // Size names repeat across budgets: the ladder is their union, in order.
    m.sizes = (0..5).map(|i| format!("n{i}")).collect();
    isoflop::analyze(&m, runs)
}

const FACTORS: [f64; 5] = [0.25, 0.5, 1.0, 2.0, 4.0];
const BUDGETS: [f64; 4] = [1e10, 3e10, 1e11, 3e11];

#[test]
fn optima_frontier_and_multiplier_match_the_closed_form() {
    let mut runs = Vec::new();
    for c in BUDGETS {
        runs.extend(profile_runs("moe", c, &FACTORS, 1.0, 1e-3));
        runs.extend(profile_runs("dense", c, &FACTORS, 2.0, 1e-3));
    }
    let a = analysis(&runs);
    assert!(a.warnings.is_empty(), "{:?}", a.warnings);
    for p in a.profiles.iter().filter(|p| p.arm == "moe") {
        let o = p.optimum.unwrap();
        let want = n_star(p.budget);
        // The profile is not exactly a parabola in ln N: its vertex sits within 5%.
        assert!(
            (o.params / want - 1.0).abs() < 0.05,
            "N* {} vs {want}",
            o.params
        );
        let l = surface(want, p.budget / (6.0 * want));
        assert!((o.loss / l - 1.0).abs() < 2e-3, "L* {} vs {l}", o.loss);
        let (lo, hi) = (p.params_ci.low.unwrap(), p.params_ci.high.unwrap());
        assert!(lo <= o.params && o.params <= hi, "{:?}", p.params_ci);
    }
    let moe = a.frontiers.iter().find(|f| f.arm == "moe").unwrap();
    let exponent = moe.frontier.as_ref().unwrap().params.slope;
    assert!((exponent - 0.5).abs() < 0.02, "a = {exponent}");
    let loss_slope = moe.frontier.as_ref().unwrap().loss.slope;
    assert!((loss_slope + ALPHA / 2.0).abs() < 0.01, "−β = {loss_slope}");
    // Dense needs exactly 2× along the frontiers; read where 2C lies inside dense's budgets.
    let read: Vec<_> = a
        .multipliers
        .iter()
        .filter(|m| m.multiplier.is_some())
        .collect();
    assert_eq!(read.len(), 3, "{:?}", a.multipliers);
    for m in read {
        let x = m.multiplier.unwrap();
        assert!((x - 2.0).abs() < 0.05, "multiplier {x} at {:e}", m.budget);
        assert!(
            m.ci.low.unwrap() <= x && x <= m.ci.high.unwrap(),
            "{:?}",
            m.ci
        );
    }
    // At the largest budget, dense would need 6e11: outside its budgets, so not read.
    let top = a.multipliers.iter().find(|m| m.budget == 3e11).unwrap();
    assert!(top.multiplier.is_none() && top.note.is_some(), "{top:?}");
    let answer = &moe_lab::analysis::isoflop::report::verdicts(&a)[0];
    assert!(
        answer.contains("**moe is better**") && answer.contains("2.0"),
        "{answer}"
    );
}

/// A surface of the lab's own scale (losses 1.6–2.0 nats, a profile's curvature ~0.08 nats
/// over 16× in N at each budget): `L = 1 + 10/N^0.3 + 16/D^0.3`, `D = C/(6N)`.
fn lab_scale_loss(n: f64, d: f64) -> f64 {
    1.0 + 10.0 / n.powf(0.3) + 16.0 / d.powf(0.3)
}

/// Both arms' runs drawn from one surface (no true difference), each run's loss moved by
/// independent N(0, `sigma`²) seed noise, at `budgets` over 5 sizes around the optimum.
fn null_runs(budgets: &[f64], seeds: u64, sigma: f64, rng: &mut impl rand::Rng) -> Vec<RunData> {
    let g = (10.0f64 / 16.0).powf(1.0 / 0.6);
    let mut out = Vec::new();
    for &budget in budgets {
        for arm in ["moe", "dense"] {
            for (i, f) in FACTORS.iter().enumerate() {
                let n = (g * (budget / 6.0).sqrt() * f).round();
                for seed in 0..seeds {
                    let loss = lab_scale_loss(n, budget / (6.0 * n))
                        + sigma * moe_lab::analysis::isoflop::noise::standard_normal(rng);
                    out.push(cell_run(arm, budget, i, n, seed, loss));
                }
            }
        }
    }
    out
}

/// With no true difference, the multiplier's verdict names a winner at most 5% of the time
/// (plus 2 simulation standard errors) at the bottom, middle and top budgets, with the small
/// preset's design (3 budgets, 5 sizes, 2 seeds) and 0.01-nat seed noise. Where the
/// reference's L* lies beyond the baseline's optima (half the draws at the end budgets), the
/// draw is censored, not dropped; dropping it cut the interval on one side and named the
/// baseline (top budget) or the reference (bottom) as the winner.
#[test]
fn with_no_true_difference_the_isoflop_verdict_names_a_winner_at_most_alpha_of_the_time() {
    use moe_lab::analysis::isoflop::MultiplierVerdict;
    use rand::SeedableRng;
    const SIMS: usize = 200;
    const BUDGETS3: [f64; 3] = [3e10, 1e11, 3e11];
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(7);
    let mut wrong = [0usize; 3];
    let mut read = [0usize; 3];
    let mut answered_wrong = 0;
    for _ in 0..SIMS {
        let a = analysis(&null_runs(&BUDGETS3, 2, 0.01, &mut rng));
        for m in &a.multipliers {
            let i = BUDGETS3.iter().position(|b| *b == m.budget).unwrap();
            read[i] += 1;
            if MultiplierVerdict::of(&m.ci) != MultiplierVerdict::NotDistinguishable {
                wrong[i] += 1;
            }
        }
        let answer = &moe_lab::analysis::isoflop::report::verdicts(&a)[0];
        answered_wrong += answer.contains("is better**") as usize;
    }
    let bound = 0.05 + 2.0 * (0.05f64 * 0.95 / SIMS as f64).sqrt();
    eprintln!(
        "winners named under the null, bottom/middle/top budget: {wrong:?} of {read:?}; answers {answered_wrong} of {SIMS}"
    );
    for i in 0..3 {
        // The reference's optimum is interior in nearly every simulation.
        assert!(read[i] >= SIMS * 9 / 10, "budget {}: {read:?}", BUDGETS3[i]);
        let rate = wrong[i] as f64 / read[i] as f64;
        assert!(
            rate <= bound,
            "budget {:e}: a winner named in {rate:.3} of {} null experiments (bound {bound:.3}); {wrong:?}",
            BUDGETS3[i],
            read[i]
        );
    }
    let rate = answered_wrong as f64 / SIMS as f64;
    assert!(
        rate <= bound,
        "the answer named a winner in {rate:.3} (bound {bound:.3})"
    );
}

#[test]
fn an_optimum_outside_the_sizes_is_warned_about_by_budget_and_left_out() {
    let mut runs = Vec::new();
    for c in BUDGETS {
        // At 3e10 every size is below the optimum: the vertex lies above the largest.
        let factors = if c == 3e10 {
            [0.05, 0.08, 0.12, 0.18, 0.25]
        } else {
            FACTORS
        };
        runs.extend(profile_runs("moe", c, &factors, 1.0, 1e-3));
        runs.extend(profile_runs("dense", c, &FACTORS, 2.0, 1e-3));
    }
    let a = analysis(&runs);
    assert_eq!(a.warnings.len(), 1, "{:?}", a.warnings);
    let w = &a.warnings[0];
    assert!(
        w.contains("moe at C = 3.00e10") && w.contains("larger"),
        "{w}"
    );
    let moe = a.frontiers.iter().find(|f| f.arm == "moe").unwrap();
    assert_eq!(moe.frontier.as_ref().unwrap().budgets, [1e10, 1e11, 3e11]);
    let lines = moe_lab::analysis::isoflop::report::verdicts(&a).join("\n");
    assert!(lines.contains("**Caveat**: moe at C = 3.00e10"), "{lines}");
}

#[test]
fn one_budget_gives_no_frontier_and_says_why() {
    let mut runs = profile_runs("moe", 1e11, &FACTORS, 1.0, 1e-3);
    runs.extend(profile_runs("dense", 1e11, &FACTORS, 2.0, 1e-3));
    let a = analysis(&runs);
    let answer = &moe_lab::analysis::isoflop::report::verdicts(&a)[0];
    assert!(
        answer.contains("Not answered") && answer.contains("2 or more budgets"),
        "{answer}"
    );
}

#[test]
fn windows_centre_on_the_predicted_optimum_and_stay_on_the_ladder() {
    // Sizes of 1k..256k active parameters at 6N FLOPs per token: at 20 tokens per parameter
    // the optimum of budget C is N = (C/120)^½.
    let counts: Vec<(u64, f64)> = (0..9)
        .map(|i| {
            let n = 1000u64 << i;
            (n, 6.0 * n as f64)
        })
        .collect();
    let c_for = |n: f64| 120.0 * n * n;
    assert_eq!(window(&counts, c_for(16_000.0), 5, 20.0), 2);
    assert_eq!(window(&counts, c_for(1000.0), 5, 20.0), 0);
    assert_eq!(window(&counts, c_for(256_000.0), 5, 20.0), 4);
    assert_eq!(window(&counts, c_for(64_000.0), 4, 20.0), 4);
}

const TOY: &str = r#"
name = "toy-isoflop"
seeds = 2

[base]
n_heads = 2
seq_len = 16

[base.train]
batch_size = 4
eval_every = 1000
eval_batches = 1
final_eval_tokens = 256
warmup_steps = 2

[base.data]
corpus_bytes = 100000

[budget]
reference_arm = "moe"

[isoflop]
budgets = [2e7, 6e7]
sizes_per_budget = 3

[[sizes]]
name = "d8"
d_model = 8
n_layers = 1
d_expert = 8

[[sizes]]
name = "d12"
d_model = 12
n_layers = 1
d_expert = 12

[[sizes]]
name = "d16"
d_model = 16
n_layers = 1
d_expert = 16

[[sizes]]
name = "d24"
d_model = 24
n_layers = 1
d_expert = 24

[arms.moe]
kind = "moe"
experts = 4
top_k = 2

[arms.dense]
kind = "dense"
d_ff = "match-active"
match = "moe"
"#;

/// `lab sweep` of an IsoFLOP experiment: cells per (budget, arm, size, seed), each spending
/// its budget; the report and both figures; bad budgets refused with the field named.
#[test]
fn a_toy_isoflop_sweep_runs_and_reports_its_optima() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(tmp.path().join("iso.toml"), TOY).unwrap();
    let out = crate::common::sweep_in("iso.toml", tmp.path());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let results = tmp.path().join("results/toy-isoflop");
    let manifest: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(results.join("sweep.json")).unwrap())
            .unwrap();
    let cells = manifest["cells"].as_array().unwrap();
    assert_eq!(cells.len(), 2 * 2 * 3 * 2);
    for c in cells {
        let name = c["name"].as_str().unwrap();
        let summary: serde_json::Value = serde_json::from_str(
            &std::fs::read_to_string(results.join(name).join("summary.json")).unwrap(),
        )
        .unwrap();
        let (spent, budget) = (
            summary["train_flops"].as_f64().unwrap(),
            c["budget"].as_f64().unwrap(),
        );
        // Whole steps: within one step's FLOPs of the budget.
        assert!(
            (spent / budget - 1.0).abs() < 0.1,
            "{name}: {spent:e} of {budget:e}"
        );
    }
    optima_match_a_hand_fit(&results);
    let report = std::fs::read_to_string(results.join("report.md")).unwrap();
    for section in [
        "## Compute-optimal size per arm and budget",
        "## Frontiers",
        "## Compute multiplier along the frontiers",
    ] {
        assert!(report.contains(section), "{section} missing:\n{report}");
    }
    assert!(
        report.contains("**At the same compute, each arm at its best size?**"),
        "{report}"
    );
    for stem in [
        "isoflop_profiles",
        "isoflop_frontiers",
        "isoflop_loss_frontier",
    ] {
        assert!(
            tmp.path()
                .join(format!("plots/toy-isoflop/{stem}.png"))
                .exists(),
            "{stem}"
        );
    }
    std::fs::write(
        tmp.path().join("bad.toml"),
        TOY.replace("budgets = [2e7, 6e7]", "budgets = [2e7, -1.0]"),
    )
    .unwrap();
    let bad = lab(&["sweep", "bad.toml", "--dry-run"], tmp.path());
    let stderr = String::from_utf8_lossy(&bad.stderr);
    assert_eq!(bad.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("isoflop.budgets") && stderr.contains("bad.toml"),
        "{stderr}"
    );
}

/// Every profile's optimum in `analysis.json` against a parabola fitted by hand through the
/// runs' own `summary.json`s: with 3 sizes the least-squares parabola through every seed's
/// point passes through the 3 seed means, so its vertex has a closed form.
fn optima_match_a_hand_fit(results: &std::path::Path) {
    use std::collections::BTreeMap;
    let read = |p: std::path::PathBuf| -> serde_json::Value {
        serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap()
    };
    let manifest = read(results.join("sweep.json"));
    // (arm, budget) → active params → (ln params, losses)
    type Sizes = BTreeMap<u64, (f64, Vec<f64>)>;
    let mut cells: BTreeMap<(String, u64), Sizes> = BTreeMap::new();
    for c in manifest["cells"].as_array().unwrap() {
        let s = read(
            results
                .join(c["name"].as_str().unwrap())
                .join("summary.json"),
        );
        let n = s["params"]["active"].as_u64().unwrap();
        let key = (
            c["arm"].as_str().unwrap().to_string(),
            c["budget"].as_f64().unwrap() as u64,
        );
        let e = cells
            .entry(key)
            .or_default()
            .entry(n)
            .or_insert(((n as f64).ln(), vec![]));
        e.1.push(s["final_val_loss"].as_f64().unwrap());
    }
    let analysis = read(results.join("analysis.json"));
    let mut checked = 0;
    for p in analysis["profiles"].as_array().unwrap() {
        let key = (
            p["arm"].as_str().unwrap().to_string(),
            p["budget"].as_f64().unwrap() as u64,
        );
        let pts: Vec<(f64, f64)> = (cells[&key].values())
            .map(|(x, l)| (*x, l.iter().sum::<f64>() / l.len() as f64))
            .collect();
        assert_eq!(pts.len(), 3, "{key:?}");
        let [(x1, y1), (x2, y2), (x3, y3)] = [pts[0], pts[1], pts[2]];
        let d = (x1 - x2) * (x1 - x3) * (x2 - x3);
        let a = (x3 * (y2 - y1) + x2 * (y1 - y3) + x1 * (y3 - y2)) / d;
        let b = (x3 * x3 * (y1 - y2) + x2 * x2 * (y3 - y1) + x1 * x1 * (y2 - y3)) / d;
        let c =
            (x2 * x3 * (x2 - x3) * y1 + x3 * x1 * (x3 - x1) * y2 + x1 * x2 * (x1 - x2) * y3) / d;
        let o = &p["optimum"];
        if a <= 0.0 {
            assert!(
                o.is_null(),
                "{key:?}: no minimum by hand, the lab found {o}"
            );
            continue;
        }
        let vertex = -b / (2.0 * a);
        let loss = c - b * b / (4.0 * a);
        let got = o["params"].as_f64().unwrap();
        assert!(
            (got.ln() - vertex).abs() < 1e-6,
            "{key:?}: N* {got} by hand {}",
            vertex.exp()
        );
        let got = o["loss"].as_f64().unwrap();
        assert!(
            (got - loss).abs() < 1e-9,
            "{key:?}: L* {got} by hand {loss}"
        );
        checked += 1;
    }
    assert!(checked >= 1, "no profile with an optimum to check");
}

/// The answer's figure marks each multiplier where it is read: a dashed line at L* from the
/// reference's budget C to the baseline's m·C, labelled "×m", on a log budget axis; Plotly
/// draws the same line.
#[test]
fn the_loss_frontier_marks_each_multiplier_where_it_is_read() {
    use moe_lab::analysis::figure::{Dash, Mark, Scale};
    let mut runs = Vec::new();
    for c in BUDGETS {
        runs.extend(profile_runs("moe", c, &FACTORS, 1.0, 1e-3));
        runs.extend(profile_runs("dense", c, &FACTORS, 2.0, 1e-3));
    }
    let a = analysis(&runs);
    let arms = ["dense".to_string(), "moe".to_string()];
    let figs = isoflop::figures::figures(&a, &arms);
    let fig = figs
        .iter()
        .find(|f| f.stem == "isoflop_loss_frontier")
        .unwrap();
    let panel = &fig.panels[0];
    assert_eq!(panel.x.scale, Scale::Log);
    let dashed: Vec<&Vec<(f64, f64)>> = (panel.marks.iter())
        .filter_map(|m| match m {
            Mark::Line {
                points,
                dash: Dash::Dashed,
                ..
            } => Some(points),
            _ => None,
        })
        .collect();
    let labels: Vec<&str> = (panel.marks.iter())
        .filter_map(|m| match m {
            Mark::Text { text, .. } => Some(text.as_str()),
            _ => None,
        })
        .collect();
    let read: Vec<_> = a
        .multipliers
        .iter()
        .filter(|m| m.multiplier.is_some())
        .collect();
    assert_eq!((dashed.len(), labels.len(), read.len()), (3, 3, 3));
    for (m, (line, label)) in read.iter().zip(dashed.iter().zip(&labels)) {
        let x = m.multiplier.unwrap();
        assert_eq!(
            **line,
            vec![(m.budget, m.target_loss), (x * m.budget, m.target_loss)]
        );
        assert_eq!(*label, format!("×{x:.2}"));
    }
    let c = moe_lab::page::chart::chart(fig);
    let first = (c.data.iter())
        .find(|t| t["line"]["dash"] == "dash")
        .unwrap();
    let x = read[0].multiplier.unwrap();
    assert_eq!(
        first["x"],
        serde_json::json!([read[0].budget, x * read[0].budget])
    );
    assert_eq!(c.layout["xaxis"]["type"], "log");
}

/// An IsoFLOP forecast: each arm's L* at a held-out budget from the line through the fitted
/// budgets' L* (here a power law in C exactly), scored against the held-out profile's own
/// optimum, which only the held-out runs give.
#[test]
fn a_held_out_budget_is_forecast_from_the_others_optima_and_scored_on_its_own() {
    use moe_lab::analysis::forecast::{Form, HeldOut, make::make, score::score};
    let mut runs = Vec::new();
    for &c in &BUDGETS {
        runs.extend(profile_runs("moe", c, &FACTORS, 1.0, 0.001));
        runs.extend(profile_runs("dense", c, &FACTORS, 2.0, 0.001));
    }
    for (i, r) in runs.iter_mut().enumerate() {
        r.summary.started_unix_s = Some(i as f64);
    }
    let held_budget = 3e11;
    let (fitted, _): (Vec<RunData>, Vec<RunData>) =
        (runs.iter().cloned()).partition(|r| r.cell.budget != Some(held_budget));
    let mut m = manifest(&fitted, "moe", "dense", 0.01);
    m.sizes = (0..5).map(|i| format!("n{i}")).collect();
    let held: Vec<HeldOut> = ["moe", "dense"]
        .map(|arm| HeldOut {
            size: "C=3e11".into(),
            arm: arm.into(),
            budget: held_budget,
            seeds: 1,
        })
        .to_vec();
    let f = make(&m, &fitted, &held, Form::Power);
    assert!(
        f.optima && f.fitted_sizes.len() == 3,
        "{:?}",
        f.fitted_sizes
    );
    let all = analysis(&runs);
    for a in &f.arms {
        let p = &a.at[0];
        // The fitted budgets' optima lie on a power law: the line reaches the truth's L*.
        let slow = if a.arm == "dense" { 2.0 } else { 1.0 };
        let n = n_star(held_budget / slow);
        let truth = surface(n, held_budget / (6.0 * n) / slow);
        assert!(
            (p.predicted.mean / truth - 1.0).abs() < 0.01,
            "{} vs {truth}",
            p.predicted.mean
        );
        assert!(p.predicted.low < p.predicted.mean && p.predicted.mean < p.predicted.high);
    }
    let mut full = manifest(&runs, "moe", "dense", 0.01);
    full.sizes = m.sizes.clone();
    let written = (runs.len() - 20) as f64 - 0.5;
    let s = score(&f, (written, "c0ffee"), &full, &runs);
    assert_eq!(s.before_every_run, Some(true));
    for p in &s.points {
        let profile = (all.profiles.iter())
            .find(|q| q.arm == p.what && q.budget == held_budget)
            .unwrap();
        let want = profile.optimum.as_ref().unwrap().loss;
        assert_eq!(p.observed, Some(want), "the held-out profile's own L*");
        assert_eq!(p.seeds, 2);
    }
    // The figure draws every budget's L*, the held-out one as a diamond per arm.
    assert_eq!(s.optima.len(), 2 * 4);
    let fig = moe_lab::analysis::forecast::figure::figure(&f, &s, &full, &runs);
    use moe_lab::analysis::figure::{Mark, Shape};
    let diamonds: usize = (fig.panels[0].marks.iter())
        .map(|m| match m {
            Mark::Points {
                points,
                shape: Shape::Diamond,
                ..
            } => points.len(),
            _ => 0,
        })
        .sum();
    assert_eq!(diamonds, 2);
}

#[test]
fn held_out_budget_mistakes_name_their_field() {
    let tmp = tempfile::tempdir().unwrap();
    let cases = [
        (
            "[forecast]\nhold_out_budgets = [6e7]\n",
            "forecast.hold_out_budgets",
        ),
        (
            "[forecast]\nhold_out_budgets = [5e7]\n",
            "forecast.hold_out_budgets",
        ),
        ("[forecast]\nhold_out = [\"d8\"]\n", "forecast.hold_out"),
    ];
    for (extra, field) in cases {
        // Two budgets: holding one out leaves one, and 5e7 is not a budget.
        let text = TOY.to_string() + extra;
        std::fs::write(tmp.path().join("bad.toml"), text).unwrap();
        let out = lab(&["sweep", "bad.toml", "--dry-run"], tmp.path());
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{stderr}");
        assert!(stderr.contains(field), "{field}: {stderr}");
    }
    // Four budgets, the last held out: the first phase is the other three's profiles.
    let text = TOY.replace("budgets = [2e7, 6e7]", "budgets = [2e7, 6e7, 2e8, 6e8]")
        + "[forecast]\nhold_out_budgets = [6e8]\n";
    std::fs::write(tmp.path().join("ok.toml"), text).unwrap();
    let path = tmp.path().join("ok.toml");
    let plan = moe_lab::sweep::plan(path.to_str().unwrap(), None).unwrap();
    let first = plan.first_phase();
    let held: Vec<_> = plan
        .cells
        .iter()
        .filter(|c| !first.cells.iter().any(|f| f.name() == c.name()))
        .collect();
    assert_eq!(held.len(), 2 * 3 * 2, "2 arms × 3 sizes × 2 seeds at 6e8");
    assert!(held.iter().all(|c| c.cell.budget == Some(6e8)));
    assert!(first.cells.iter().all(|c| c.cell.budget != Some(6e8)));
    let text = crate::common::toy_experiment(0.05) + "\n[forecast]\nhold_out_budgets = [1e9]\n";
    std::fs::write(tmp.path().join("bad.toml"), text).unwrap();
    let out = lab(&["sweep", "bad.toml", "--dry-run"], tmp.path());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("no [isoflop]"), "{stderr}");
}
