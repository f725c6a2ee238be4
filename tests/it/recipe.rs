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
recipe = { anneal = true, average_checkpoints = 2 }

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
