//! Recipe experiments (`[teacher]`, arms with `recipe = {...}`): the teacher is trained first and
//! the distilling cells learn from its run directory; the report answers each lever and the
//! anti-scale question; the slope statistics match a hand computation.

use std::path::Path;

use crate::common::lab_in as lab;
use moe_lab::analysis::recipe::slope;

#[test]
fn slope_matches_a_hand_computed_regression() {
    // y on x for (1,1), (2,3), (3,2), (4,4): b = Sxy/Sxx = 4/5, a = 0.5, RSS = 1.8,
    // se = √(1.8 / 2 / 5), t(0.975, 2) = 4.302653, p = 0.2 (t = 1.8856, 2 df).
    let s = slope(&[(1.0, 1.0), (2.0, 3.0), (3.0, 2.0), (4.0, 4.0)]).unwrap();
    assert!((s.slope - 0.8).abs() < 1e-12 && (s.intercept - 0.5).abs() < 1e-12);
    assert!((s.se - 0.18f64.sqrt()).abs() < 1e-12);
    assert!((s.ci_low - (0.8 - 4.302653 * 0.18f64.sqrt())).abs() < 1e-5);
    assert!((s.p - 0.2).abs() < 1e-6, "p {}", s.p);
    assert!(
        slope(&[(1.0, 1.0), (1.0, 2.0), (1.0, 3.0)]).is_none(),
        "one distinct x"
    );
    assert!(
        slope(&[(1.0, 1.0), (2.0, 2.0)]).is_none(),
        "no residual degree of freedom"
    );
}

const TOY: &str = r#"
name = "recipe-toy"
description = "A toy recipe experiment for tests."
seeds = 2

[base]
n_heads = 2
seq_len = 16

[base.train]
batch_size = 4
eval_every = 20
eval_batches = 2
final_eval_tokens = 0
warmup_steps = 2
schedule = "wsd"
decay_fraction = 0.3

[base.data]
corpus_bytes = 100000

[budget]
tokens_per_active_param = 0.3
reference_arm = "baseline"

[teacher]
size = "m"
arm = "baseline"
tokens_per_active_param = 0.5

[[sizes]]
name = "xs"
d_model = 8
n_layers = 1
d_expert = 8
d_ff = 16

[[sizes]]
name = "s"
d_model = 16
n_layers = 1
d_expert = 16
d_ff = 32

[[sizes]]
name = "m"
d_model = 32
n_layers = 1
d_expert = 32
d_ff = 64

[arms.baseline]
kind = "dense"

[arms.anneal-avg]
kind = "dense"
recipe = { anneal = true, average_checkpoints = 2, aims_at = { streams = ["math", "code"], exact_match = ["math"] } }

[arms.distill]
kind = "dense"
recipe = { distill = true }

[presets.small]
sizes = ["xs", "s"]
"#;

#[test]
fn the_teacher_trains_first_and_the_report_answers_each_lever() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(tmp.path().join("toy.toml"), TOY).unwrap();
    let args = [
        "sweep",
        "toy.toml",
        "--preset",
        "small",
        "--devices",
        "flex",
        "--jobs",
        "2",
    ];
    let out = lab(
        &[&args[..], &["--out", "results", "--plots", "plots"]].concat(),
        tmp.path(),
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    // Two cells at a time share stderr: every line is whole (one write per line), never two
    // cells' pieces run together.
    for line in err.lines() {
        assert!(
            line.matches("ffn:").count() <= 1 && line.matches("training ").count() <= 1,
            "interleaved output: {line}"
        );
    }
    let root = tmp.path().join("results/recipe-toy-small");
    // The teacher ran before any student (the first cell started), and the distilling cells
    // name its run directory.
    let first = err.lines().find(|l| l.starts_with('[')).unwrap();
    assert!(first.contains("teacher-m"), "{first}");
    let summary: serde_json::Value =
        serde_json::from_slice(&std::fs::read(root.join("s-distill-s1/summary.json")).unwrap())
            .unwrap();
    let teacher = summary["distill"]["teacher"].as_str().unwrap();
    assert_eq!(
        Path::new(teacher),
        root.join("teacher-m")
            .canonicalize()
            .unwrap_or(root.join("teacher-m"))
    );
    assert!(
        summary["distill"]["teacher_forward_flops"]
            .as_f64()
            .unwrap()
            > 0.0
    );
    let avg: serde_json::Value =
        serde_json::from_slice(&std::fs::read(root.join("xs-anneal-avg-s0/summary.json")).unwrap())
            .unwrap();
    assert_eq!(avg["averaged_snapshots"], 2);
    assert!(avg["anneal_switch_step"].is_u64());
    let report = std::fs::read_to_string(root.join("report.md")).unwrap();
    for q in [
        "Does distill help small models?",
        "Does anneal-avg help math and code, its aim?",
        "Does anneal-avg help smaller models more?",
    ] {
        assert!(report.contains(q), "{q} missing:\n{report}");
    }
    assert!(report.contains("not charged to"), "{report}");
    // Every question is answered in the lab's words, each with its interval.
    let answers = [
        "**Yes**",
        "**No, it hurts**",
        "**No, the opposite**",
        "**No effect beyond",
        "**Inconclusive**",
        "Undetermined",
    ];
    let questions: Vec<&str> = report
        .lines()
        .filter(|l| l.starts_with("**Does ") || l.starts_with("- **Does "))
        .collect();
    assert_eq!(questions.len(), 4, "two per lever:\n{report}");
    for line in questions {
        let answer = line
            .split_once("?** ")
            .expect("a question, then its answer")
            .1;
        assert!(
            answers.iter().any(|a| answer.starts_with(a)),
            "not one of the lab's answers: {line}"
        );
        assert!(
            answer.starts_with("Undetermined") || answer.contains(" ["),
            "{line}"
        );
    }
    assert!(
        tmp.path()
            .join("plots/recipe-toy-small/recipe_gains.png")
            .exists()
    );
    // A rerun reuses the finished teacher and cells.
    let again = lab(
        &[&args[..], &["--out", "results", "--plots", "plots"]].concat(),
        tmp.path(),
    );
    assert!(String::from_utf8_lossy(&again.stderr).contains("13 of 13 cells already finished"));
}

#[test]
fn recipe_mistakes_exit_2_naming_the_field() {
    let tmp = tempfile::tempdir().unwrap();
    let cases = [
        (
            TOY.replace("size = \"m\"\narm", "size = \"xl\"\narm"),
            "teacher.size",
        ),
        (
            TOY.replace("recipe = { distill = true }", "recipe = { distil = true }"),
            "arms.distill.recipe",
        ),
        (
            TOY.replace(
                "[teacher]\nsize = \"m\"\narm = \"baseline\"\ntokens_per_active_param = 0.5\n",
                "",
            ),
            "arms.distill.recipe",
        ),
    ];
    for (text, field) in cases {
        std::fs::write(tmp.path().join("toy.toml"), &text).unwrap();
        let out = lab(
            &["sweep", "toy.toml", "--preset", "small", "--dry-run"],
            tmp.path(),
        );
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{field}: {err}");
        assert!(err.contains(field), "{field}: {err}");
    }
}

/// Runs of a recipe study made up from numbers: at sizes xs/s/m and 6 seeds, the lever
/// `anneal` loses `mix_cost` nats on the mixture but gains `aim_gain` on math and code and
/// `rate_gain` in math exact match; `distill` gains exactly nothing. Seed noise ±0.002.
fn recipe_runs(
    mix_cost: f64,
    aim_gain: f64,
    rate_gain: f64,
) -> Vec<moe_lab::analysis::load::RunData> {
    use crate::common::synthetic::run;
    let mut out = Vec::new();
    for (size, params) in [("xs", 1000u64), ("s", 3000), ("m", 9000)] {
        for seed in 0..6u64 {
            let noise = [0.002, -0.001, 0.0015, -0.002, 0.0005, -0.0005][seed as usize];
            for (arm, mix, aim, rate) in [
                ("baseline", 0.0, 0.0, 0.0),
                ("anneal", mix_cost, -aim_gain, rate_gain),
                ("distill", 0.0, 0.0, 0.0),
            ] {
                let n = if arm == "baseline" {
                    noise
                } else {
                    -noise * 0.5
                };
                let mut r = run(size, arm, seed, 2.0 + mix + n);
                r.summary.params.total = params;
                let by = &mut r.summary.final_val_loss_by_stream;
                by.insert("math".into(), 1.5 + aim + n);
                by.insert("code".into(), 1.8 + aim + n);
                by.insert("knowledge".into(), 2.5 + mix + n);
                let rate = 0.30 + rate + n;
                r.summary.final_exact_match_by_stream.insert(
                    "math".into(),
                    moe_lab::run::summary::ExactMatch {
                        exact: (rate * 100.0) as usize,
                        answers: 100,
                        rate,
                    },
                );
                out.push(r);
            }
        }
    }
    out
}

/// A lever is answered on what it aims at, with the mixture's loss as its cost: annealing
/// that costs 0.03 nats on the mixture but gains 0.05 on math and code and 10 points of math
/// exact match is a "Yes" that costs, not a "No, it hurts". A lever that changes nothing is
/// equivalent, and a lever without an aim is answered on the mixture as before.
#[test]
fn a_lever_is_answered_on_its_aim_with_the_mixture_loss_as_its_cost() {
    use moe_lab::analysis::recipe;
    use moe_lab::run::LeverAim;
    let runs = recipe_runs(0.03, 0.05, 0.10);
    let mut m = crate::common::synthetic::manifest(&runs, "baseline", "baseline", 0.01);
    m.aims.insert(
        "anneal".into(),
        LeverAim {
            streams: vec!["math".into(), "code".into()],
            exact_match: vec!["math".into()],
        },
    );
    let a = recipe::analyze(&m, &runs);
    let lines = moe_lab::analysis::recipe::report::verdicts(&a);
    let anneal = lines
        .iter()
        .find(|l| l.starts_with("**Does anneal help math and code, its aim?**"))
        .unwrap_or_else(|| panic!("no aim line: {lines:#?}"));
    assert!(
        anneal.contains("its aim?** **Yes**: gain +0.05"),
        "{anneal}"
    );
    assert!(
        anneal.contains("math answers exactly right: more (+10.0"),
        "{anneal}"
    );
    assert!(
        anneal.contains("its cost on the mixture's validation loss: -0.0")
            && anneal.contains("(it costs)"),
        "{anneal}"
    );
    let lever = a.levers.iter().find(|l| l.arm == "anneal").unwrap();
    let aim = lever.aim.as_ref().unwrap();
    let gain = aim.gain.as_ref().unwrap();
    assert!((gain.mean - 0.05).abs() < 0.002, "{gain:?}");
    assert!((lever.pooled.as_ref().unwrap().mean + 0.03).abs() < 0.002);
    let rate = aim.exact_match[0].1.as_ref().unwrap();
    assert!((rate.mean - 0.10).abs() < 0.002, "{rate:?}");
    let distill = lines
        .iter()
        .find(|l| l.starts_with("**Does distill help small models?**"))
        .unwrap();
    assert!(
        distill.contains("help small models?** **No effect beyond ±0.01 nats** (equivalent)"),
        "{distill}"
    );
    // Without the aim, the same data answer the mixture question: it hurts.
    m.aims.clear();
    let a = recipe::analyze(&m, &runs);
    let lines = moe_lab::analysis::recipe::report::verdicts(&a);
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("**Does anneal help small models?** **No, it hurts**")),
        "{lines:#?}"
    );
}
