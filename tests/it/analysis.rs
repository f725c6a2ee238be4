//! Statistics and fits against values computed independently (by hand / with mpmath), and the
//! scaling-law fit against known parameters.

use moe_lab::analysis::fit::{ArmRuns, compute_multiplier, fit_power_law};
use moe_lab::analysis::stats::{mean_ci, welch};
use rand::{Rng, SeedableRng};

fn close(got: f64, want: f64, tol: f64, what: &str) {
    assert!(
        (got - want).abs() <= tol,
        "{what}: got {got}, want {want} (±{tol})"
    );
}

// Reference values for these samples were computed with mpmath's regularised incomplete beta
// (t distribution) at 30 digits, not with statrs.
const A: [f64; 4] = [5.10, 5.32, 5.21, 5.05];
const B: [f64; 3] = [5.40, 5.61, 5.38];

#[test]
fn mean_and_ci_match_hand_values() {
    let m = mean_ci(&A);
    close(m.mean, 5.17, 1e-12, "mean");
    close(
        m.half_width,
        0.191388274347595,
        1e-9,
        "95% half-width (t_{0.975,3} = 3.18245)",
    );
}

#[test]
fn welch_test_matches_hand_values() {
    let w = welch(&A, &B).unwrap();
    close(w.diff, -0.293333333333334, 1e-12, "difference");
    close(w.t, -3.08724422796074, 1e-9, "t");
    close(w.df, 4.28947945517012, 1e-9, "Welch–Satterthwaite df");
    close(w.p, 0.0334024189762043, 1e-7, "two-sided p");
    close(w.ci_low, -0.550261237495520, 1e-7, "CI low");
    close(w.ci_high, -0.0364054291711474, 1e-7, "CI high");
    close(w.hedges_g, -2.00533668992725, 1e-9, "Hedges' g");
    assert!(welch(&A[..1], &B).is_none(), "one seed: no test");
}

#[test]
fn fit_recovers_known_parameters_from_noisy_points() {
    let (e, a, alpha) = (1.8, 2.0e3, 0.35);
    let mut rng = rand::rngs::StdRng::seed_from_u64(4);
    let mut cs = Vec::new();
    let mut ls = Vec::new();
    for i in 0..6 {
        let c = 1e10 * 4f64.powi(i);
        for _ in 0..3 {
            cs.push(c);
            ls.push(e + a * c.powf(-alpha) + rng.random_range(-0.003..0.003));
        }
    }
    let f = fit_power_law(&cs, &ls).unwrap();
    close(f.e, e, 0.05, "E");
    close(f.alpha, alpha, 0.03, "α");
    close(f.a.ln(), a.ln(), 0.3, "ln A");
    // Standard errors exist and cover the truth within 3σ.
    assert!((f.e - e).abs() < 3.0 * f.se_e.unwrap() + 1e-3);
    assert!((f.alpha - alpha).abs() < 3.0 * f.se_alpha.unwrap() + 1e-3);
    close(
        f.predict(1e12),
        e + a * 1e12f64.powf(-alpha),
        0.01,
        "prediction",
    );
}

/// One run per budget of `loss(c)` at each of `cs`.
fn runs_of(cs: &[f64], loss: impl Fn(f64) -> f64) -> ArmRuns {
    let size = |i: usize| format!("s{i}");
    ArmRuns {
        by_size: (cs.iter().enumerate())
            .map(|(i, c)| (size(i), vec![(1, *c, loss(*c))]))
            .collect(),
    }
}

#[test]
fn compute_multiplier_of_a_shifted_curve() {
    // B needs exactly 2× the compute of A for every loss: L_B(C) = L_A(C/2).
    let (e, a, alpha) = (2.0, 500.0, 0.3);
    let la = |c: f64| e + a * c.powf(-alpha);
    let cs: Vec<f64> = (0..8).map(|i| 1e9 * 3f64.powi(i)).collect();
    let m = compute_multiplier(&runs_of(&cs, la), &runs_of(&cs, |c| la(c / 2.0))).unwrap();
    close(m.multiplier.unwrap(), 2.0, 1e-3, "multiplier");
    // At A's largest budget B would need 2× its largest: the next budget down is the largest
    // whose doubled budget B ran inside.
    assert_eq!(m.budget, cs[6]);
    assert!(!m.extrapolated);
    // A ran only above B's data: no budget keeps B inside, so the number is extrapolated.
    let m =
        compute_multiplier(&runs_of(&cs[4..], la), &runs_of(&cs[..4], |c| la(c / 2.0))).unwrap();
    assert!(m.extrapolated);
    close(m.multiplier.unwrap(), 2.0, 1e-3, "extrapolated multiplier");
}

#[test]
fn multiplier_interval_is_a_bootstrap_over_seeds_and_counts_unreachable_draws() {
    let la = |c: f64| 2.0 + 500.0 * c.powf(-0.3);
    let mut rng = rand::rngs::StdRng::seed_from_u64(9);
    let mut noisy = |f: &dyn Fn(f64) -> f64, sizes: std::ops::Range<i32>| ArmRuns {
        by_size: sizes
            .map(|i| {
                let c = 1e9 * 4f64.powi(i);
                let runs = (0..3).map(|s| (s, c, f(c) + rng.random_range(-0.01..0.01)));
                (format!("s{i}"), runs.collect())
            })
            .collect(),
    };
    let (a, b) = (noisy(&la, 0..5), noisy(&|c| la(c / 2.0), 0..5));
    let m = compute_multiplier(&a, &b).unwrap();
    let (lo, hi) = (m.ci_low.unwrap(), m.ci_high.unwrap());
    assert!(lo < 2.0 && 2.0 < hi, "[{lo}, {hi}] should cover 2");
    assert!(hi / lo < 3.0, "[{lo}, {hi}] is too wide for ±0.01 noise");
    assert_eq!(m.draws, moe_lab::analysis::fit::BOOTSTRAP_DRAWS);
    // B lies 0.5 above A and ran only smaller budgets: A's losses there are below anything
    // B's curve reaches, so draws never reach the target; they count as +∞ (unbounded).
    let a = noisy(&la, 4..9);
    let b = noisy(&|c| la(c) + 0.5, 0..5);
    let m = compute_multiplier(&a, &b).unwrap();
    assert!(m.extrapolated);
    assert!(m.unreachable_share > 0.5, "{m:?}");
    assert_eq!(m.ci_high, None, "{m:?}");
}

#[test]
fn fit_refuses_fewer_than_four_budgets_and_keeps_its_bounds() {
    let cs: Vec<f64> = [1e10, 1e10, 4e10, 4e10, 1.6e11, 1.6e11].to_vec();
    let ls: Vec<f64> = cs.iter().map(|c| 2.0 + 1e3 * c.powf(-0.3)).collect();
    let err = fit_power_law(&cs, &ls).unwrap_err();
    assert!(err.contains("3 distinct budgets"), "{err}");
    // A loss linear in log C is a power law's α → 0, E → −∞ limit: an unbounded fit runs
    // off there; the bounded one stays at 0 ≤ E < min loss, α > 0.
    let cs: Vec<f64> = (0..6).map(|i| 1e10 * 4f64.powi(i)).collect();
    let ls: Vec<f64> = cs.iter().map(|c| 6.0 - 0.15 * c.ln()).collect();
    let f = fit_power_law(&cs, &ls).unwrap();
    let min = ls.iter().copied().fold(f64::MAX, f64::min);
    assert!(f.e >= 0.0 && f.e < min, "E = {} outside [0, {min})", f.e);
    assert!(f.alpha > 0.0 && f.a > 0.0, "{f:?}");
    // Losses that rise with compute have no power law at all.
    let rising: Vec<f64> = cs.iter().map(|c| 1.0 + 0.01 * c.ln()).collect();
    assert!(fit_power_law(&cs, &rising).is_err());
}

/// R's `sleep` data (Student 1908), group 2 − group 1 per patient. R's paired t-test on it
/// (`t.test(extra ~ group, data = sleep, paired = TRUE)`, group 1 − group 2) gives t = −4.0621,
/// df = 9, p = 0.002833, mean difference −1.58, 95% CI [−2.4598858, −0.7001142]; here the signs
/// are flipped.
const SLEEP_DIFFS: [f64; 10] = [1.2, 2.4, 1.3, 1.3, 0.0, 1.0, 1.8, 0.8, 4.6, 1.4];

#[test]
fn paired_t_matches_r_on_the_sleep_data() {
    use moe_lab::analysis::stats::{Verdict, paired};
    let p = paired(&[SLEEP_DIFFS.to_vec()], 0.5).unwrap();
    close(p.mean, 1.58, 1e-12, "mean");
    close(p.t, 4.0621, 1e-4, "t");
    close(p.df, 9.0, 0.0, "df");
    close(p.p, 0.002833, 1e-6, "p");
    close(p.ci_low, 0.7001142, 1e-6, "ci low");
    close(p.ci_high, 2.4598858, 1e-6, "ci high");
    assert_eq!(p.verdict(), Verdict::Higher);
    // Smallest detectable effect at 80% power: (t₀.₉₇₅,₉ + t₀.₈₀,₉) · se, with R's
    // qt(0.975, 9) = 2.262157 and qt(0.80, 9) = 0.8834039.
    close(
        p.min_detectable / p.se,
        2.262157 + 0.8834039,
        1e-5,
        "MDE / se",
    );
}

#[test]
fn tost_rejects_exactly_when_the_90_percent_interval_is_inside_the_margin() {
    use moe_lab::analysis::stats::{Verdict, paired};
    // Centred data: mean 0.
    let d: Vec<f64> = SLEEP_DIFFS.iter().map(|x| x - 1.58).collect();
    let probe = paired(std::slice::from_ref(&d), 1.0).unwrap();
    // The 90% interval's half-width: t₀.₉₅,₉ · se = 1.833113 · se.
    let half90 = 1.833113 * probe.se;
    let at = |m: f64| paired(std::slice::from_ref(&d), m).unwrap();
    close(
        at(half90).tost_p,
        0.05,
        1e-6,
        "TOST p at the 90% half-width",
    );
    assert!(at(half90 * 1.01).tost_p < 0.05);
    assert!(at(half90 * 0.99).tost_p > 0.05);
    assert_eq!(at(half90 * 1.01).verdict(), Verdict::Equivalent);
    assert_eq!(at(half90 * 0.99).verdict(), Verdict::Inconclusive);
}

#[test]
fn pooled_pairs_take_groups_as_fixed_effects() {
    use moe_lab::analysis::stats::paired;
    // Two sizes whose effects differ by 10; within each, deviations −1, 0, 1: s² = 4 / (6 − 2),
    // se = 1/√6, df = 4, mean 7. Without the fixed effect the spread would be ≈ 5.5.
    let p = paired(&[vec![1.0, 2.0, 3.0], vec![11.0, 12.0, 13.0]], 0.1).unwrap();
    close(p.mean, 7.0, 1e-12, "mean");
    close(p.df, 4.0, 0.0, "df");
    close(p.se, 1.0 / 6f64.sqrt(), 1e-12, "se");
    assert_eq!((p.n, p.groups), (6, 2));
    // No residual degree of freedom: one pair per group.
    assert!(paired(&[vec![1.0], vec![2.0]], 0.1).is_none());
}

#[test]
fn lr_sensitivity_is_the_mean_excess_over_the_best_rate() {
    // Wortsman et al. 2023 §3.1 by hand: best 2.0; excesses 1, 0, 0.5, 3.5 → mean 1.25.
    let s = moe_lab::analysis::lr::sensitivity(&[3.0, 2.0, 2.5, 5.5]);
    close(s, 1.25, 1e-12, "LR sensitivity");
    close(
        moe_lab::analysis::lr::sensitivity(&[2.0, 2.0]),
        0.0,
        1e-12,
        "flat curve",
    );
}
