//! Forecasts that are scored: prediction intervals that cover held-out runs at their nominal
//! rate, a wrong law's miss reported, the sigmoid step against a reference fit, and the
//! forecast frozen before the held-out cells train.

use moe_lab::analysis::forecast::HeldOut;
use moe_lab::analysis::forecast::curve::{Form, fit};
use moe_lab::analysis::forecast::make::make;
use moe_lab::analysis::forecast::score::score;
use moe_lab::analysis::forecast::sigmoid::{Answered, fit_sigmoid};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

fn normal(rng: &mut ChaCha8Rng) -> f64 {
    let (u1, u2): (f64, f64) = (rng.random(), rng.random());
    (-2.0 * u1.max(1e-300).ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
}

/// The true law: a floor of 1.8 nats, and a power of compute above it.
fn truth(c: f64) -> f64 {
    1.8 + 3.0 * (c / 1e11).powf(-0.3)
}

/// Five fitted budgets, ×3 apart, and a held-out one ×3 past the largest.
const BUDGETS: [f64; 5] = [1e11, 3e11, 9e11, 2.7e12, 8.1e12];
const HELD: f64 = 2.43e13;

/// `seeds` runs per budget of `law` plus seed noise `sd`: (budgets, losses).
fn sample(
    law: fn(f64) -> f64,
    seeds: usize,
    sd: f64,
    rng: &mut ChaCha8Rng,
) -> (Vec<f64>, Vec<f64>) {
    let mut out = (Vec::new(), Vec::new());
    for c in BUDGETS {
        for _ in 0..seeds {
            out.0.push(c);
            out.1.push(law(c) + sd * normal(rng));
        }
    }
    out
}

/// 2 000 simulated sweeps: fit five sizes, forecast the sixth's 3-seed mean, draw it. The 95%
/// prediction interval covers it 95% ± 2 simulation standard errors of the time.
#[test]
fn prediction_intervals_cover_held_out_seed_means_at_their_nominal_rate() {
    let mut rng = ChaCha8Rng::seed_from_u64(1);
    let (n, seeds, sd) = (2000, 3, 0.02);
    let mut covered = 0;
    let mut failed = 0;
    for _ in 0..n {
        let (c, l) = sample(truth, seeds, sd, &mut rng);
        let Some(p) = fit(Form::Floor, &c, &l)
            .ok()
            .and_then(|f| f.interval(HELD, seeds))
        else {
            failed += 1;
            continue;
        };
        let observed = (0..seeds)
            .map(|_| truth(HELD) + sd * normal(&mut rng))
            .sum::<f64>()
            / seeds as f64;
        covered += (p.low <= observed && observed <= p.high) as usize;
    }
    let done = n - failed;
    let rate = covered as f64 / done as f64;
    let se = (0.95f64 * 0.05 / done as f64).sqrt();
    println!("95% prediction intervals covered {rate:.4} of {done} held-out means (±{se:.4})");
    assert!(failed < n / 100, "{failed} fits failed");
    assert!((rate - 0.95).abs() <= 2.0 * se, "covered {rate} (±{se})");
}

/// Synthetic runs of two arms at the five fitted budgets (sizes `s0`..`s4`) and at the held-out
/// one (`s5`), from `law` plus seed noise, the moe arm 0.02 nats lower.
fn runs(
    law: fn(f64) -> f64,
    seeds: u64,
    rng: &mut ChaCha8Rng,
) -> Vec<moe_lab::analysis::load::RunData> {
    use crate::common::synthetic::run;
    let mut out = Vec::new();
    let budgets = BUDGETS.iter().chain([&HELD]).enumerate();
    for (i, c) in budgets {
        for (arm, shift) in [("moe", -0.02), ("dense", 0.0)] {
            for seed in 0..seeds {
                let mut r = run(
                    &format!("s{i}"),
                    arm,
                    seed,
                    law(*c) + shift + 0.005 * normal(rng),
                );
                r.summary.train_flops = *c;
                r.summary.started_unix_s = Some(1000.0 + i as f64);
                out.push(r);
            }
        }
    }
    out
}

/// The runs below the held-out size `s5`, and their sweep's manifest.
fn fitted_of(
    all: &[moe_lab::analysis::load::RunData],
) -> (
    Vec<moe_lab::analysis::load::RunData>,
    moe_lab::run::Manifest,
) {
    let fitted: Vec<_> = all
        .iter()
        .filter(|r| r.cell.size != "s5")
        .cloned()
        .collect();
    let manifest = crate::common::synthetic::manifest(&fitted, "moe", "dense", 0.01);
    (fitted, manifest)
}

fn held() -> Vec<HeldOut> {
    ["moe", "dense"]
        .map(|arm| HeldOut {
            size: "s5".into(),
            arm: arm.into(),
            budget: HELD,
            seeds: 3,
        })
        .to_vec()
}

/// Data from a law with a floor, forecast by a law without one: the score reports the miss
/// (outside the interval, the error's sign and size), because it reads the held-out runs; the
/// right law, on the same runs, is scored inside.
#[test]
fn a_wrong_law_is_caught_by_the_held_out_runs() {
    let mut rng = ChaCha8Rng::seed_from_u64(3);
    let all = runs(truth, 3, &mut rng);
    let (fitted, manifest) = fitted_of(&all);
    for (form, inside) in [(Form::Power, false), (Form::Floor, true)] {
        let f = make(&manifest, &fitted, &held(), form);
        assert_eq!(f.fitted_sizes.len(), 5);
        let s = score(&f, (1004.5, "c0ffee"), &manifest, &all);
        assert_eq!(s.before_every_run, Some(true));
        for p in &s.points {
            assert_eq!(p.seeds, 3);
            assert_eq!(p.covered, Some(inside), "{form:?} {p:?}");
            if !inside {
                // A law without a floor keeps falling: the runs come out above it.
                assert!(
                    p.error.unwrap() > 0.02 && p.error_pct.unwrap() > 1.0,
                    "{p:?}"
                );
            }
        }
        let lines = moe_lab::analysis::forecast::report::verdicts(&f, &s);
        let outside = lines[0].contains("OUTSIDE the interval");
        assert_eq!(outside, !inside, "{lines:?}");
    }
    // Written after a held-out run started: said so.
    let f = make(&manifest, &fitted, &held(), Form::Floor);
    let late = score(&f, (1005.5, "c0ffee"), &manifest, &all);
    assert_eq!(late.before_every_run, Some(false));
}

/// The toy with five sizes of two arms, the largest held out.
fn held_out_toy() -> String {
    let mut text = crate::common::toy_experiment(0.5)
        .replace("seeds = 1", "seeds = 2\ndefault_preset = \"p\"");
    for (name, d) in [("s20", 20), ("s24", 24), ("s28", 28), ("s32", 32)] {
        text += &format!(
            "\n[[sizes]]\nname = \"{name}\"\nd_model = {d}\nn_layers = 1\nd_expert = {d}\n"
        );
    }
    text + "\n[presets.p]\narms = [\"moe\", \"dense\"]\n\n[forecast]\nhold_out = [\"s32\"]\n"
}

fn json(path: &std::path::Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

#[test]
fn the_forecast_is_frozen_before_the_held_out_cells_train_and_never_rewritten() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(tmp.path().join("f.toml"), held_out_toy()).unwrap();
    let out = crate::common::sweep_in("f.toml", tmp.path());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let results = tmp.path().join("results/toy");
    let path = results.join("forecast.json");
    let frozen = json(&path);
    let written = frozen["written_unix_s"].as_f64().unwrap();
    assert_eq!(frozen["inputs"].as_array().unwrap().len(), 4 * 2 * 2);
    for arm in ["moe", "dense"] {
        for seed in 0..2 {
            let s = json(&results.join(format!("s32-{arm}-s{seed}/summary.json")));
            assert!(
                s["started_unix_s"].as_f64().unwrap() > written,
                "{arm} {seed}"
            );
            let fitted = json(&results.join(format!("s28-{arm}-s{seed}/summary.json")));
            let end = fitted["started_unix_s"].as_f64().unwrap()
                + fitted["wall_time_s"].as_f64().unwrap();
            assert!(end < written, "a fitted run ends before the forecast");
        }
    }
    let report = std::fs::read_to_string(results.join("report.md")).unwrap();
    assert!(
        report.contains("Did the forecast for s32 hold?"),
        "{report}"
    );
    assert!(
        report.contains("stated before any of its runs started"),
        "{report}"
    );
    assert!(tmp.path().join("plots/toy/forecast.png").exists());

    // A held-out result edited: the forecast stays as it was; the score reads the edit.
    let before = std::fs::read(&path).unwrap();
    let edited = results.join("s32-moe-s0/summary.json");
    let mut s = json(&edited);
    s["final_val_loss"] = serde_json::json!(9.0);
    std::fs::write(&edited, serde_json::to_string(&s).unwrap()).unwrap();
    let out = crate::common::sweep_in("f.toml", tmp.path());
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(std::fs::read(&path).unwrap(), before);
    let score = json(&results.join("forecast-score.json"));
    let moe = (score["points"].as_array().unwrap().iter())
        .find(|p| p["what"] == "moe")
        .unwrap();
    assert_eq!(moe["covered"], false, "{moe}");

    // Fitted on other cells (another size held out): refused before anything trains.
    let text = held_out_toy()
        .replace("hold_out = [\"s32\"]", "hold_out = [\"s28\", \"s32\"]")
        .replace(
            "[presets.p]",
            "[[sizes]]\nname = \"s36\"\nd_model = 36\nn_layers = 1\nd_expert = 36\n\n[presets.p]",
        );
    std::fs::write(tmp.path().join("f.toml"), text).unwrap();
    let out = crate::common::sweep_in("f.toml", tmp.path());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("forecast.json") && stderr.contains("inputs"),
        "{stderr}"
    );
    assert!(!results.join("s36-moe-s0").exists(), "nothing trained");
}

#[test]
fn held_out_mistakes_name_their_field() {
    let tmp = tempfile::tempdir().unwrap();
    let cases = [
        (
            held_out_toy().replace("hold_out = [\"s32\"]", "hold_out = [\"s99\"]"),
            "forecast.hold_out",
        ),
        (
            held_out_toy().replace("hold_out = [\"s32\"]", "hold_out = [\"s28\", \"s32\"]"),
            "forecast.hold_out",
        ),
        (
            held_out_toy().replace(
                "arms = [\"moe\", \"dense\"]",
                "arms = [\"moe\", \"dense\"]\nhold_out = [\"xs\", \"s20\"]",
            ),
            "presets.p.hold_out",
        ),
    ];
    // A held-out cell alone, before its forecast exists: not a cell the sweep may run yet.
    std::fs::write(tmp.path().join("f.toml"), held_out_toy()).unwrap();
    let args = crate::common::sweep_args("f.toml", &["--cell", "s32-moe-s0"]);
    let out = crate::common::lab_in(&args, tmp.path());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("no cell `s32-moe-s0`"), "{stderr}");
    assert!(!tmp.path().join("results/toy/s32-moe-s0").exists());
    let args = crate::common::sweep_args("f.toml", &["--until-decisive"]);
    let out = crate::common::lab_in(&args, tmp.path());
    assert_eq!(out.status.code(), Some(2));
    for (text, field) in cases {
        std::fs::write(tmp.path().join("bad.toml"), text).unwrap();
        let out = crate::common::lab_in(&["sweep", "bad.toml", "--dry-run"], tmp.path());
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{stderr}");
        assert!(stderr.contains(field), "{field}: {stderr}");
    }
}

/// The sigmoid step against scipy: `scipy.optimize.minimize` (BFGS, gtol 1e-12) of the same
/// binomial negative log-likelihood, and the inverse Fisher information at its optimum
/// (scipy 1.17.1, numpy; the script is in the comment below).
///
/// ```python
/// nll = np.array([2.5, 2.0, 1.6, 1.3, 1.0, 0.8]); exact = np.array([1, 3, 8, 17, 30, 38])
/// negll = lambda t: -np.sum(exact*(t[0]+t[1]*nll) - 50*np.logaddexp(0, t[0]+t[1]*nll))
/// a, b = minimize(negll, [0, 0], method='BFGS', options={'gtol': 1e-12}).x
/// ```
#[test]
fn the_exact_match_sigmoid_matches_a_reference_fit() {
    let nll = [2.5, 2.0, 1.6, 1.3, 1.0, 0.8];
    let exact = [1, 3, 8, 17, 30, 38];
    let data: Vec<Answered> = (nll.iter().zip(exact))
        .map(|(l, e)| Answered {
            nll: *l,
            exact: e,
            answers: 50,
        })
        .collect();
    let s = fit_sigmoid(&data).unwrap();
    let (a, b) = (3.6531960417489144, -3.253179772464431);
    assert!((s.a - a).abs() < 1e-5 && (s.b - b).abs() < 1e-5, "{s:?}");
    let cov = [
        [0.2740401847172598, -0.20690883167981616],
        [-0.20690883167981614, 0.1705371627034976],
    ];
    let got = s.cov.iter().flatten().zip(cov.iter().flatten());
    assert!(
        got.into_iter().all(|(a, b)| (a - b).abs() < 1e-5),
        "{:?}",
        s.cov
    );
    assert!((s.at(1.1) - 0.5186658944325657).abs() < 1e-6);
    // No sigmoid where the data cannot pin one: every answer wrong.
    let none: Vec<Answered> = data.iter().map(|d| Answered { exact: 0, ..*d }).collect();
    assert!(fit_sigmoid(&none).is_none());
}

/// Exact match forecast both ways: two steps (answer loss, then the sigmoid) and directly (a
/// log–log line of the rate on compute); the direct fit is left out, not biased, where a
/// fitted run has no exact answer.
#[test]
fn exact_match_is_forecast_in_two_steps_and_directly() {
    let mut rng = ChaCha8Rng::seed_from_u64(9);
    let mut all = runs(truth, 3, &mut rng);
    for r in all.iter_mut() {
        let c = r.summary.train_flops;
        // The answers' loss falls with compute; exact match rises along a sigmoid of it.
        let nll = 0.5 + 20.0 * (c / 1e11).powf(-0.3) / 8.0;
        let rate = 1.0 / (1.0 + (-(4.0 - 3.0 * nll)).exp());
        let exact = (rate * 400.0).round() as usize;
        r.summary
            .final_answer_loss_by_stream
            .insert("math".into(), nll);
        let em = moe_lab::run::summary::ExactMatch {
            exact,
            answers: 400,
            rate: exact as f64 / 400.0,
        };
        r.summary
            .final_exact_match_by_stream
            .insert("math".into(), em);
    }
    let (fitted, manifest) = fitted_of(&all);
    let f = make(&manifest, &fitted, &held(), Form::Floor);
    let d = &f.downstream[0];
    assert_eq!(d.stream, "math");
    assert!(
        (d.sigmoid.a - 4.0).abs() < 0.5 && (d.sigmoid.b + 3.0).abs() < 0.5,
        "{:?}",
        d.sigmoid
    );
    for a in &d.arms {
        let direct = a.direct.expect("every fitted run has exact answers");
        assert!(direct.low < direct.mean && direct.mean < direct.high);
    }
    let s = score(&f, (1004.5, "c0ffee"), &manifest, &all);
    assert_eq!(s.exact_match.len(), 4, "two arms × two ways");
    assert!(
        s.exact_match
            .iter()
            .all(|p| p.observed.is_some() && p.error_pct.is_none())
    );

    // One fitted run with no exact answer: no direct fit for its arm.
    let mut zero = fitted.clone();
    let em = zero[0]
        .summary
        .final_exact_match_by_stream
        .get_mut("math")
        .unwrap();
    (em.exact, em.rate) = (0, 0.0);
    let f = make(&manifest, &zero, &held(), Form::Floor);
    let arm = &zero[0].cell.arm;
    let mine = f.downstream[0].arms.iter().find(|a| &a.arm == arm).unwrap();
    assert!(mine.direct.is_none());
}
