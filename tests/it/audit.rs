//! The analysis audit's findings (issue 24, item 3), one test each, on runs made up from
//! numbers ([`synthetic`]) so each expected value is a hand value. Every test here failed on
//! the code before its fix.

use crate::common::synthetic::{diverged, manifest, metric, run, run_at};
use moe_lab::analysis::fit::{ArmRuns, Draw, compute_multiplier, multiplier_interval};
use moe_lab::analysis::load::RunData;
use moe_lab::analysis::scaling::{analyze, report};
use moe_lab::analysis::stats::{Verdict, paired};
use moe_lab::analysis::{lr, recipe};
use moe_lab::run::rows::peak;
use rand::{Rng, SeedableRng};
use statrs::distribution::{ContinuousCDF, StudentsT};

/// A diverged run counts as no better than an untrained one: its loss is ℓ0, not the last
/// evaluation before it diverged.
#[test]
fn lr_sensitivity_scores_a_diverged_run_at_its_loss_at_init() {
    // ℓ0 = 5.5 (the template's first-step loss). Rate 0.01 reaches 2.0; rate 1.0 diverged
    // after an evaluation at 3.0.
    let runs = vec![
        run_at("d", "moe", 1, 0.01, 2.0),
        diverged(run_at("d", "moe", 1, 1.0, 4.0), 3.0),
    ];
    let m = manifest(&runs, "moe", "moe", 0.05);
    let a = lr::analyze(&m, &runs);
    let s = a.curves[0].sensitivity_by_seed[&1];
    // Mean excess over the best: (0 + (5.5 − 2.0)) / 2.
    assert!((s - 1.75).abs() < 1e-12, "sensitivity {s}, want 1.75");
    assert_eq!(a.curves[0].points[1].losses, vec![5.5]);
}

/// A probe that turned NaN peaks at NaN: `f64::max` would drop it and report the finite rest.
#[test]
fn probe_peaks_keep_nan() {
    assert!(peak([1.0, f64::NAN, 2.0]).unwrap().is_nan());
    assert_eq!(peak([1.0, 3.0, 2.0]), Some(3.0));
    assert_eq!(peak(std::iter::empty()), None);
    let mut r = run_at("d", "moe", 1, 0.01, 2.0);
    r.metrics = vec![
        metric(0, Some(1.0)),
        metric(1, Some(f64::NAN)),
        metric(2, Some(2.0)),
    ];
    let a = lr::analyze(&manifest(&[r.clone()], "moe", "moe", 0.05), &[r]);
    let got = a.curves[0].points[0].attn_logit_peak;
    assert!(got.is_some_and(f64::is_nan), "attention-logit peak {got:?}");
}

/// `moe − dense` differences per seed at one size: `mean + offsets`.
fn paired_runs(mean: f64, offsets: &[f64]) -> Vec<RunData> {
    offsets
        .iter()
        .enumerate()
        .flat_map(|(i, o)| {
            let seed = i as u64 + 1;
            let base = 2.0 + 0.01 * i as f64;
            [
                run("d", "moe", seed, base + mean + o),
                run("d", "dense", seed, base),
            ]
        })
        .collect()
}

fn claim_row(report: &str, claim: &str) -> String {
    let line = report
        .lines()
        .find(|l| l.starts_with(&format!("| {claim}")));
    line.unwrap_or_else(|| panic!("no claim {claim} in\n{report}"))
        .to_string()
}

/// A significant difference inside the equivalence margin reads "equivalent within m" in
/// claim (a), as in every other line: practically no difference, not a refutation.
#[test]
fn claim_a_calls_a_significant_difference_inside_the_margin_equivalent() {
    let runs = paired_runs(-0.003, &[0.0005, -0.0005, 0.0003, -0.0003, 0.0001, -0.0001]);
    let m = manifest(&runs, "moe", "dense", 0.01);
    let a = analyze(&m, &runs);
    let p = a.pooled["dense"];
    assert!(p.p < 0.05 && p.tost_p < 0.05, "{p:?}");
    let text = report::render(&a, &m, &runs, "plots");
    let row = claim_row(&text, "(a)");
    assert!(row.contains("equivalent within ±0.01"), "{row}");
    assert!(!row.contains("refuted"), "{row}");
}

/// Claim (d) is refuted when the whole interval of the multiplier lies below 1×: the baseline
/// reaches the MoE's loss with less compute.
#[test]
fn claim_d_can_be_refuted() {
    let runs = paired_runs(0.0, &[0.001, -0.001, 0.002]);
    let m = manifest(&runs, "moe", "dense", 0.01);
    let mut a = analyze(&m, &runs);
    a.multipliers.insert(
        "dense".into(),
        moe_lab::analysis::fit::ComputeMultiplier {
            budget: 1e12,
            target_loss: 2.0,
            multiplier: Some(0.7),
            ci_low: Some(0.6),
            ci_high: Some(0.8),
            extrapolated: false,
            unreachable_share: 0.0,
            failed_share: 0.0,
            draws: 1000,
        },
    );
    let row = claim_row(&report::render(&a, &m, &runs, "plots"), "(d)");
    assert!(row.contains("| refuted"), "{row}");
}

/// Four sizes on one loss curve at budgets `shift` × 1e11..1e14; seed `s` adds `noise[s]`
/// (scaled per size) to every size's loss. An arm at `shift` = 2 reaches each loss of the
/// arm at 1 with twice its compute, seed by seed.
fn arm(shift: f64, noise: &[f64]) -> ArmRuns {
    let mut a = ArmRuns::default();
    for (i, c) in [1e11f64, 1e12, 1e13, 1e14].into_iter().enumerate() {
        let runs = noise.iter().enumerate().map(|(s, n)| {
            let loss = 1.5 + 40.0 * c.powf(-0.15) + n * (1.0 + 0.3 * i as f64);
            (s as u64, c * shift, loss)
        });
        a.by_size.insert(format!("s{i}"), runs.collect());
    }
    a
}

/// Paired arms share seeds: a draw takes a seed's runs of both arms together. With the seed's
/// noise common to both arms and the baseline needing exactly twice the compute for each of
/// the reference's losses, every joint draw gives 2×; independent draws would spread it.
#[test]
fn multiplier_bootstrap_resamples_paired_seeds_jointly() {
    let noise = [0.08, -0.05, 0.02, -0.09, 0.06];
    let (moe, dense) = (arm(1.0, &noise), arm(2.0, &noise));
    let m = compute_multiplier(&moe, &dense).unwrap();
    let (lo, hi) = (m.ci_low.unwrap(), m.ci_high.unwrap());
    assert!((m.multiplier.unwrap() - 2.0).abs() < 1e-3, "{m:?}");
    assert!(
        lo > 1.99 && hi < 2.01,
        "interval [{lo}, {hi}]: seeds not paired"
    );
}

/// A draw whose fit fails is no evidence about the multiplier: it is reported apart, not
/// counted as +∞ (unreachable) on one side of the interval.
#[test]
fn failed_fits_are_reported_apart_from_unreachable_draws() {
    let mut draws: Vec<Draw> = (0..80)
        .map(|i| Draw::Ratio(1.5 + i as f64 / 100.0))
        .collect();
    draws.extend((0..10).map(|_| Draw::FitFailed));
    draws.extend((0..10).map(|_| Draw::Unreachable));
    let i = multiplier_interval(&draws);
    assert_eq!((i.failed_share, i.unreachable_share), (0.1, 10.0 / 90.0));
    // Over the 90 draws with fits: 80 finite ratios, then 10 at +∞ (above 97.5%).
    assert_eq!(i.ci_low, Some(1.5 + 2.0 / 100.0));
    assert_eq!(i.ci_high, None);
    let only_failures: Vec<Draw> = (0..90)
        .map(|i| match i {
            0..80 => Draw::Ratio(2.0),
            _ => Draw::FitFailed,
        })
        .collect();
    let i = multiplier_interval(&only_failures);
    assert_eq!((i.ci_low, i.ci_high), (Some(2.0), Some(2.0)));
}

/// Spikes cluster in runs: 20 spikes in one of eight MoE runs is one unlucky seed, not a
/// rate 20× the dense arm's. Compared per run, paired by seed, it is not significant (the
/// pooled Poisson test called it "Higher", p < 1e-5).
#[test]
fn spike_rates_are_compared_per_run_paired_by_seed() {
    let mut runs = paired_runs(0.0, &[0.01, -0.01, 0.02, -0.02, 0.0, 0.01, -0.01, 0.0]);
    for r in runs
        .iter_mut()
        .filter(|r| r.cell.arm == "moe" && r.cell.seed == 3)
    {
        r.summary.spikes.loss_spikes = 20;
    }
    for r in runs
        .iter_mut()
        .filter(|r| r.cell.arm == "dense" && r.cell.seed == 5)
    {
        r.summary.spikes.loss_spikes = 1;
    }
    let m = manifest(&runs, "moe", "dense", 0.01);
    let a = analyze(&m, &runs);
    let p = a.spikes_paired["dense"];
    // Per 1k steps: moe − dense = +200 at seed 3, −10 at seed 5, 0 elsewhere.
    assert_eq!(p.n, 8);
    assert!((p.mean - 190.0 / 8.0).abs() < 1e-9, "{p:?}");
    assert!(p.p > 0.05, "{p:?}");
    let text = moe_lab::analysis::scaling::report::verdicts(&a).join("\n");
    let line = text
        .lines()
        .find(|l| l.contains("More loss spikes?"))
        .unwrap();
    assert!(line.contains("**Inconclusive**"), "{line}");
}

/// The anti-scale slope is a line through the size means: with three sizes it has 1 degree
/// of freedom however many seeds each size ran (per-seed points would claim 3·8 − 2 = 22).
#[test]
fn recipe_slope_fits_size_means() {
    let params = [1000u64, 4000, 16000];
    let mut runs = Vec::new();
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(7);
    for (i, p) in params.iter().enumerate() {
        for seed in 1..=8 {
            let base = 3.0 - 0.1 * i as f64;
            let gain = 0.02 + 0.01 * i as f64 + if i == 1 { 0.004 } else { 0.0 };
            let noise = rng.random_range(-0.002..0.002);
            let mut b = run(&format!("s{i}"), "baseline", seed, base);
            let mut l = run(&format!("s{i}"), "lever", seed, base - gain + noise);
            b.summary.params.total = *p;
            l.summary.params.total = *p;
            runs.extend([b, l]);
        }
    }
    let m = manifest(&runs, "baseline", "lever", 0.01);
    let a = recipe::analyze(&m, &runs);
    let s = a.levers[0].slope.expect("a slope");
    assert_eq!(s.n, 3, "points: one per size");
    // By hand: the OLS line through the three (ln params, mean gain) points.
    let means: Vec<(f64, f64)> = params
        .iter()
        .map(|p| {
            let size = format!("s{}", params.iter().position(|q| q == p).unwrap());
            let gains: Vec<f64> = (1..=8)
                .map(|seed| {
                    let loss = |arm: &str| {
                        let r = runs.iter().find(|r| {
                            r.cell.size == size && r.cell.arm == arm && r.cell.seed == seed
                        });
                        r.unwrap().summary.final_val_loss.unwrap()
                    };
                    loss("baseline") - loss("lever")
                })
                .collect();
            ((*p as f64).ln(), gains.iter().sum::<f64>() / 8.0)
        })
        .collect();
    let want = recipe::slope(&means).unwrap();
    assert!((s.slope - want.slope).abs() < 1e-12 && (s.se - want.se).abs() < 1e-12);
    assert!((s.ci_high - s.ci_low - (want.ci_high - want.ci_low)).abs() < 1e-12);
}

/// Pooled over sizes whose pairs spread differently, the interval's degrees of freedom come
/// from each size's own variance (Satterthwaite), not a pooled one: with one noisy size among
/// four, the pooled variance's N − G degrees of freedom undercover.
#[test]
fn pooled_paired_interval_covers_with_unequal_spread_across_sizes() {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(11);
    let sds = [0.001, 0.001, 0.001, 0.05];
    let sims = 20_000;
    let (mut covered, mut pooled_covered) = (0, 0);
    // The pooled within-size variance with N − G = 16 degrees of freedom (the old interval).
    let t16 = StudentsT::new(0.0, 1.0, 16.0).unwrap().inverse_cdf(0.975);
    for _ in 0..sims {
        let groups: Vec<Vec<f64>> = sds
            .iter()
            .map(|sd| (0..5).map(|_| sd * normal(&mut rng)).collect())
            .collect();
        let p = paired(&groups, 0.01).unwrap();
        covered += usize::from(p.ci_low <= 0.0 && 0.0 <= p.ci_high);
        let ss: f64 = (groups.iter())
            .map(|g| {
                let m = g.iter().sum::<f64>() / 5.0;
                g.iter().map(|d| (d - m).powi(2)).sum::<f64>()
            })
            .sum();
        let se = (ss / 16.0 / 20.0).sqrt();
        pooled_covered += usize::from(p.mean.abs() <= t16 * se);
    }
    let coverage = covered as f64 / sims as f64;
    let pooled = pooled_covered as f64 / sims as f64;
    eprintln!("coverage of a nominal 95%: per-size {coverage:.4}, pooled {pooled:.4}");
    // ± 3 binomial standard errors of 0.95 at 20 000 draws is ± 0.0046.
    assert!(coverage > 0.945, "coverage {coverage}");
    assert!(
        pooled < 0.93,
        "the pooled interval should undercover here: {pooled}"
    );
}

/// With equal spread the per-size interval is the pooled one's to within its df.
#[test]
fn pooled_paired_with_one_size_is_the_paired_t_test() {
    let d = vec![vec![0.1, 0.3, 0.2, 0.4]];
    let p = paired(&d, 0.01).unwrap();
    assert_eq!(p.df, 3.0);
    assert_eq!(p.verdict(), Verdict::Higher);
}

fn normal(rng: &mut rand_chacha::ChaCha8Rng) -> f64 {
    let (u, v): (f64, f64) = (rng.random(), rng.random());
    (-2.0 * (1.0 - u).ln()).sqrt() * (std::f64::consts::TAU * v).cos()
}
