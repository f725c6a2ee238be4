//! Sweeps end to end on flex: stop and resume, a killed cell resuming from its checkpoint,
//! the lock, plots and report, and bad experiment specs.

use crate::common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use crate::common::lab_in as lab;
use common::{DENSE, MOE, config, sweep_args, tiny_spec, toy_experiment};
use moe_lab::train::train;

fn write_experiment(dir: &Path, text: &str) -> PathBuf {
    let p = dir.join("toy.toml");
    std::fs::write(&p, text).unwrap();
    p
}

fn snapshot(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_file())
        .map(|p| {
            (
                p.file_name().unwrap().to_string_lossy().to_string(),
                std::fs::read(&p).unwrap(),
            )
        })
        .collect();
    files.sort();
    files
}

#[test]
fn stopped_sweep_resumes_without_redoing_finished_cells_and_draws_its_report() {
    let tmp = tempfile::tempdir().unwrap();
    write_experiment(tmp.path(), &toy_experiment(0.05));
    let first = lab(&sweep_args("toy.toml", &["--max-cells", "1"]), tmp.path());
    assert!(
        first.status.success(),
        "{}",
        String::from_utf8_lossy(&first.stderr)
    );
    let results = tmp.path().join("results/toy");
    let cell = results.join("xs-dense-s0"); // arms run in name order: dense first
    let before = snapshot(&cell);
    assert!(before.iter().any(|(n, _)| n == "summary.json"));
    assert!(
        !results.join("xs-moe-s0/summary.json").exists(),
        "only one cell ran"
    );

    let second = lab(&sweep_args("toy.toml", &[]), tmp.path());
    let stderr = String::from_utf8_lossy(&second.stderr);
    assert!(second.status.success(), "{stderr}");
    assert!(stderr.contains("1 of 3 cells already finished"), "{stderr}");
    // (The sweep's generation measurement adds `generation.json` beside them.)
    let mut after = snapshot(&cell);
    after.retain(|(name, _)| name != "generation.json");
    assert!(after == before, "the finished cell's files are unchanged");
    for c in ["xs-dense-total-s0", "xs-moe-s0"] {
        assert!(results.join(c).join("summary.json").exists(), "{c} ran");
    }

    // The report names every run; the plots are real pictures.
    let report = std::fs::read_to_string(results.join("report.md")).unwrap();
    for c in ["xs-dense-s0", "xs-dense-total-s0", "xs-moe-s0"] {
        assert!(report.contains(c), "report names {c}");
    }
    assert!(report.contains("Lower loss at matched compute?"));
    // Each arm's final model generated text, measured in its own process.
    assert!(report.contains("## Inference"), "{report}");
    for c in ["xs-dense-s0", "xs-dense-total-s0", "xs-moe-s0"] {
        let g = std::fs::read_to_string(results.join(c).join("generation.json")).unwrap();
        assert!(g.contains("\"bytes\": 256"), "{c}: {g}");
    }
    // Every verdict is lower / higher / equivalent / inconclusive: never a bare "no
    // significant difference".
    assert!(
        !report.to_lowercase().contains("significant difference"),
        "{report}"
    );
    for stem in [
        "loss_vs_flops",
        "scaling",
        "training_loss",
        "spike_rate",
        "memory",
        "router_load",
        "router_maxvio",
        "router_state",
    ] {
        let png = tmp.path().join(format!("plots/toy/{stem}.png"));
        let img = image::open(&png)
            .unwrap_or_else(|e| panic!("{stem}.png: {e}"))
            .to_rgb8();
        assert_eq!(img.dimensions(), (960, 600), "{stem}.png size");
        let ink = img.pixels().filter(|p| p.0 != [255, 255, 255]).count();
        assert!(
            ink > 2000,
            "{stem}.png has only {ink} non-background pixels"
        );
        assert!(tmp.path().join(format!("plots/toy/{stem}.svg")).exists());
    }

    // A third run skips everything and redraws identical plots.
    let png = std::fs::read(tmp.path().join("plots/toy/scaling.png")).unwrap();
    let third = lab(&sweep_args("toy.toml", &[]), tmp.path());
    assert!(String::from_utf8_lossy(&third.stderr).contains("3 of 3 cells already finished"));
    assert_eq!(
        std::fs::read(tmp.path().join("plots/toy/scaling.png")).unwrap(),
        png
    );
}

#[test]
fn killed_cell_resumes_from_checkpoint_to_the_same_final_loss() {
    let tmp = tempfile::tempdir().unwrap();
    let text =
        tiny_spec("resume", MOE, "").replace("steps = 20", "steps = 24\ncheckpoint_every = 8");
    let cfg = config(&text);
    let opts = |dir: &Path, resume: bool, stop_after: Option<usize>| {
        common::flex_options(dir, resume, stop_after)
    };
    let whole = train(&cfg, opts(&tmp.path().join("whole"), false, None)).unwrap();
    let cut = tmp.path().join("cut");
    // "Killed" after 13 steps: the last checkpoint is at step 8.
    let partial = train(&cfg, opts(&cut, true, Some(13))).unwrap();
    assert_eq!(partial.steps_done, 13);
    assert!(cut.join("checkpoint").exists());
    let resumed = train(&cfg, opts(&cut, true, None)).unwrap();
    assert_eq!(
        resumed.resumed_from,
        [8],
        "resumed from the checkpoint, not restarted"
    );
    assert_eq!(resumed.final_val_loss, whole.final_val_loss);
    assert_eq!(resumed.final_train_loss, whole.final_train_loss);
    let losses = common::losses;
    assert_eq!(
        losses(&cut),
        losses(&tmp.path().join("whole")),
        "same loss at every step"
    );
}

#[test]
fn a_second_concurrent_sweep_gets_the_lock_error() {
    let tmp = tempfile::tempdir().unwrap();
    write_experiment(tmp.path(), &toy_experiment(3.0));
    let mut holder = Command::new(env!("CARGO_BIN_EXE_lab"))
        .args(sweep_args("toy.toml", &[]))
        .current_dir(tmp.path())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let lock = tmp.path().join("results/toy/.lock");
    let t0 = std::time::Instant::now();
    while !lock.exists() {
        assert!(
            t0.elapsed().as_secs() < 60,
            "first sweep never took the lock"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let second = lab(&sweep_args("toy.toml", &[]), tmp.path());
    let stderr = String::from_utf8_lossy(&second.stderr);
    holder.kill().ok();
    holder.wait().ok();
    assert_eq!(second.status.code(), Some(4), "{stderr}");
    assert!(
        stderr.contains(&format!("pid={}", holder.id())),
        "names the holder: {stderr}"
    );
}

fn refused(text: &str, expect: &str) {
    let tmp = tempfile::tempdir().unwrap();
    write_experiment(tmp.path(), text);
    let out = lab(&sweep_args("toy.toml", &[]), tmp.path());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{expect}: {stderr}");
    assert!(
        stderr.contains("toy.toml") && stderr.contains(expect),
        "names {expect}: {stderr}"
    );
    assert!(!tmp.path().join("results").exists(), "nothing written");
}

#[test]
fn bad_experiment_specs_are_refused() {
    let base = toy_experiment(0.05);
    refused(
        &base.replace("top_k = 2", "top_k = 2\ntop_p = 0.5"),
        "top_p",
    );
    refused(
        &base
            .replace(
                "[[sizes]]\nname = \"xs\"\nd_model = 16\nn_layers = 1\nd_expert = 16\n",
                "",
            )
            .replace("seeds = 1", "seeds = 1\nsizes = []"),
        "sizes",
    );
    refused(&base.replace("seeds = 1", "seeds = 0"), "seeds");
    for bad in ["[0.01]", "[0.01, -1.0]", "[0.01, 0.01]"] {
        let text = base.replace("seeds = 1", &format!("seeds = 1\nlearning_rates = {bad}"));
        refused(&text, "learning_rates");
    }
    let tmp = tempfile::tempdir().unwrap();
    write_experiment(tmp.path(), &base);
    let out = lab(&sweep_args("toy.toml", &["--preset", "huge"]), tmp.path());
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("huge"));
    assert!(!tmp.path().join("results").exists());
}

#[test]
fn variant_arms_sweep_and_the_report_states_expert_choice_caveat() {
    let tmp = tempfile::tempdir().unwrap();
    let text = toy_experiment(0.05).replace(
        "[arms.dense-total]\nkind = \"dense\"\nd_ff = \"match-total\"\nmatch = \"moe\"\n",
        r#"[arms.ec]
kind = "moe"
experts = 4
top_k = 2
router = { kind = "expert-choice" }

[arms.fine]
kind = "moe"
experts = 4
top_k = 2
granularity = 2
shared_experts = 1
router = { kind = "loss-free" }
aux_loss_coef = 0.0
"#,
    );
    write_experiment(tmp.path(), &text);
    let out = lab(&sweep_args("toy.toml", &[]), tmp.path());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let results = tmp.path().join("results/toy");
    let summary =
        |cell: &str| std::fs::read_to_string(results.join(cell).join("summary.json")).unwrap();
    assert!(summary("xs-ec-s0").contains("\"ffn_variant\": \"moe/expert-choice\""));
    assert!(summary("xs-fine-s0").contains("\"ffn_variant\": \"moe/loss-free\""));
    assert!(results.join("xs-fine-s0/router_state.csv").exists());
    assert!(tmp.path().join("plots/toy/router_state.png").exists());
    assert!(tmp.path().join("plots/toy/paired_diff.png").exists());
    let report = std::fs::read_to_string(results.join("report.md")).unwrap();
    assert!(
        report.contains("**Caveat** (ec)") && report.contains("not causal"),
        "the report must say plainly that expert choice sees the future:\n{report}"
    );
    assert!(report.contains("**moe vs fine?**"), "{report}");
    // The claims table leads the report; one seed per arm: (a) cannot be tested.
    assert!(report.contains("## The claims, answered"), "{report}");
    assert!(
        report.contains("| (a) at matched compute, MoE is not better per se | not tested"),
        "{report}"
    );
    // The final evaluation's table: each arm's loss SE and exact-match rates.
    assert!(
        report.contains("| size | arm | loss SE | knowledge |"),
        "{report}"
    );
    assert!(report.contains("| xs | ec | 0.0"), "{report}");
    assert!(!report.contains("**Caveat** (fine)"), "{report}");
}

#[test]
fn a_finished_cell_is_kept_across_versions_but_refused_when_the_spec_changed() {
    let tmp = tempfile::tempdir().unwrap();
    write_experiment(tmp.path(), &toy_experiment(0.05));
    let first = lab(&sweep_args("toy.toml", &["--max-cells", "1"]), tmp.path());
    assert!(first.status.success());
    let config = tmp.path().join("results/toy/xs-dense-s0/config.toml");
    // An older version wrote no `granularity` (its default): still the same run.
    let text = std::fs::read_to_string(&config).unwrap();
    assert!(text.contains("granularity = 1"), "{text}");
    std::fs::write(&config, text.replace("granularity = 1\n", "")).unwrap();
    let again = lab(&sweep_args("toy.toml", &["--max-cells", "0"]), tmp.path());
    let stderr = String::from_utf8_lossy(&again.stderr);
    assert!(again.status.success(), "{stderr}");
    assert!(stderr.contains("1 of 3 cells already finished"), "{stderr}");
    // An edited experiment (the MoE the dense arm is matched to) is refused for that cell.
    write_experiment(
        tmp.path(),
        &toy_experiment(0.05).replace("experts = 4", "experts = 2"),
    );
    let edited = lab(&sweep_args("toy.toml", &[]), tmp.path());
    let stderr = String::from_utf8_lossy(&edited.stderr);
    assert_eq!(edited.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("xs-dense-s0") && stderr.contains("different configuration"),
        "{stderr}"
    );
}

#[test]
fn resume_refuses_a_checkpoint_of_another_configuration() {
    let tmp = tempfile::tempdir().unwrap();
    let text =
        tiny_spec("resume", DENSE, "").replace("steps = 20", "steps = 24\ncheckpoint_every = 8");
    let dir = tmp.path().join("run");
    let partial = train(&config(&text), common::flex_options(&dir, true, Some(10))).unwrap();
    assert_eq!(partial.steps_done, 10);
    let before = std::fs::read_to_string(dir.join("config.toml")).unwrap();
    // The same run name and directory, another learning rate: refused, nothing touched.
    let edited = config(&text.replace("lr = 3e-3", "lr = 1e-3"));
    let err = train(&edited, common::flex_options(&dir, true, None)).unwrap_err();
    let spec_err = err
        .downcast_ref::<moe_lab::error::SpecError>()
        .expect("bad input (exit 2)");
    assert!(spec_err.to_string().contains("--resume"), "{spec_err}");
    assert_eq!(
        std::fs::read_to_string(dir.join("config.toml")).unwrap(),
        before
    );
    assert!(dir.join("checkpoint").exists());
    // The unchanged spec still resumes.
    let done = train(&config(&text), common::flex_options(&dir, true, None)).unwrap();
    assert_eq!(done.steps_done, 24);
}

#[test]
fn a_preset_runs_the_arms_it_names_and_refuses_unknown_ones() {
    let tmp = tempfile::tempdir().unwrap();
    let with_preset = |arms: &str| {
        let text = format!(
            "{}\n[presets.p]\narms = {arms}\nseeds = 2\n",
            toy_experiment(0.05)
        );
        let path = write_experiment(tmp.path(), &text);
        moe_lab::sweep::plan(path.to_str().unwrap(), Some("p"))
    };
    let plan = with_preset("[\"dense\", \"moe\"]").unwrap();
    assert_eq!(plan.arms, ["dense", "moe"]);
    let cells: Vec<&str> = plan.cells.iter().map(|c| c.name()).collect();
    assert_eq!(
        cells,
        ["xs-dense-s0", "xs-dense-s1", "xs-moe-s0", "xs-moe-s1"]
    );
    assert_eq!(plan.baseline_arm().as_deref(), Some("dense"));
    let err = with_preset("[\"moe\", \"sparse\"]")
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("presets.p.arms") && err.contains("sparse"),
        "{err}"
    );
    let err = with_preset("[\"dense\"]").unwrap_err().to_string();
    assert!(
        err.contains("presets.p.arms") && err.contains("reference"),
        "{err}"
    );
}

/// The toy experiment as `name`, two arms (moe, dense), two seeds, and `extra` at the top.
fn toy_named(name: &str, extra: &str) -> String {
    toy_experiment(0.05)
        .replace("name = \"toy\"", &format!("name = \"{name}\""))
        .replace("seeds = 1", &format!("seeds = 2\n{extra}"))
        .replace(
            "[arms.dense-total]\nkind = \"dense\"\nd_ff = \"match-total\"\nmatch = \"moe\"\n",
            "",
        )
}

#[test]
fn lr_sweep_answers_the_stability_question_and_feeds_the_flagship_claims() {
    let tmp = tempfile::tempdir().unwrap();
    let run = |file: &str, text: &str| {
        std::fs::write(tmp.path().join(file), text).unwrap();
        let out = lab(&sweep_args(file, &[]), tmp.path());
        let stderr = String::from_utf8_lossy(&out.stderr).to_string();
        assert!(out.status.success(), "{stderr}");
        stderr
    };
    let results = tmp.path().join("results");
    // Named anything: the flagship cites the learning-rate sweep by its `stability_from`.
    let flagship_text =
        toy_named("toy-flagship", "") + "\n[analysis]\nstability_from = \"lr-stability\"\n";
    run("flagship.toml", &flagship_text);
    let flagship = || std::fs::read_to_string(results.join("toy-flagship/report.md")).unwrap();
    assert!(
        flagship().contains("| (b) MoE trains less stably | not tested"),
        "{}",
        flagship()
    );

    let stderr = run(
        "lr.toml",
        &toy_named("lr-stability", "learning_rates = [30.0, 1e-3]"),
    );
    // Rates ascend in the grid; every (arm, rate, seed) is a cell trained at that rate.
    let cell = results.join("lr-stability/xs-moe-lr1e-3-s1");
    let config = std::fs::read_to_string(cell.join("config.toml")).unwrap();
    assert!(config.contains("lr = 0.001"), "{config}");
    assert!(cell.join("probes.csv").exists());
    let report = std::fs::read_to_string(results.join("lr-stability/report.md")).unwrap();
    assert!(
        report.contains("**Is moe less stable than dense?**"),
        "{report}"
    );
    assert!(report.contains("| xs | moe |"), "{report}");
    for stem in ["lr_sensitivity", "lr_proxies"] {
        let img = image::open(tmp.path().join(format!("plots/lr-stability/{stem}.png")))
            .unwrap()
            .to_rgb8();
        let ink = img.pixels().filter(|p| p.0 != [255, 255, 255]).count();
        assert!(
            ink > 2000,
            "{stem}.png has only {ink} non-background pixels"
        );
    }
    // At rate 30 the loss leaves ℓ0 behind: the divergence rule fires there, not at 1e-3.
    let analysis: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(results.join("lr-stability/analysis.json")).unwrap(),
    )
    .unwrap();
    let points = &analysis["curves"][0]["points"];
    assert_eq!(points[0]["diverged"], 0, "{points}");
    assert!(points[1]["diverged"].as_u64().unwrap() > 0, "{points}");
    // The flagship's claim (b) now cites the learning-rate sweep.
    assert!(stderr.contains("claims table updated"), "{stderr}");
    let text = flagship();
    assert!(text.contains("LR sensitivity moe − dense"), "{text}");
    assert!(text.contains("lr-stability/analysis.json"), "{text}");
}

/// `--until-decisive` adds a seed per look (2, then 3, then 4) until the stability comparison
/// is decided or the cap: every look's sweep keeps the finished cells, the record lists the
/// looks taken, and the report states them.
#[test]
fn until_decisive_adds_seeds_per_look_and_the_report_states_the_looks() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(
        tmp.path().join("lr.toml"),
        toy_named("lr-stability", "learning_rates = [30.0, 1e-3]"),
    )
    .unwrap();
    let bad = lab(
        &sweep_args("lr.toml", &["--until-decisive", "--max-seeds", "1"]),
        tmp.path(),
    );
    let stderr = String::from_utf8_lossy(&bad.stderr);
    assert_eq!(bad.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("--max-seeds") && stderr.contains("lr.toml"),
        "{stderr}"
    );
    let flags = ["--until-decisive", "--max-seeds", "4", "--seed-group", "1"];
    let out = lab(&sweep_args("lr.toml", &flags), tmp.path());
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(out.status.success(), "{stderr}");
    let results = tmp.path().join("results/lr-stability");
    let record: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(results.join("sequential.json")).unwrap())
            .unwrap();
    assert_eq!(record["planned_seeds"], serde_json::json!([2, 3, 4]));
    let looks = record["looks"].as_array().unwrap();
    let seeds: Vec<u64> = looks.iter().map(|l| l["seeds"].as_u64().unwrap()).collect();
    assert_eq!(seeds, [2, 3, 4][..seeds.len()], "{record}");
    let last = &looks[looks.len() - 1]["comparisons"][0];
    assert_eq!(
        last["name"], "LR sensitivity moe − dense (nats)",
        "{record}"
    );
    let decided = last["decision"] != "continue";
    assert!(
        decided || seeds.len() == 3,
        "stopped undecided before the cap: {record}"
    );
    // The cells of the last look, and none beyond it.
    let manifest = std::fs::read_to_string(results.join("sweep.json")).unwrap();
    let cells = serde_json::from_str::<serde_json::Value>(&manifest).unwrap()["cells"]
        .as_array()
        .unwrap()
        .len();
    assert_eq!(cells as u64, 2 * 2 * seeds[seeds.len() - 1], "{manifest}");
    let report = std::fs::read_to_string(results.join("report.md")).unwrap();
    assert!(report.contains("## Seeds until decisive"), "{report}");
    assert!(report.contains("repeated 95% CI"), "{report}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("**Seeds until decisive**"), "{stdout}");
}

#[test]
fn unreadable_run_files_are_left_out_of_the_analysis_and_rerun_by_the_sweep() {
    let tmp = tempfile::tempdir().unwrap();
    write_experiment(tmp.path(), &toy_experiment(0.05));
    let first = lab(&sweep_args("toy.toml", &[]), tmp.path());
    assert!(first.status.success());
    let results = tmp.path().join("results/toy");
    let loss = |cell: &str| {
        let s = std::fs::read_to_string(results.join(cell).join("summary.json")).unwrap();
        let v: serde_json::Value = serde_json::from_str(&s).unwrap();
        v["final_val_loss"].as_f64().unwrap()
    };
    let before = [loss("xs-moe-s0"), loss("xs-dense-s0")];
    // A metrics file cut mid-line, and a summary that does not parse.
    let metrics = results.join("xs-moe-s0/metrics.csv");
    let text = std::fs::read_to_string(&metrics).unwrap();
    let last_line = text[..text.len() - 1].rfind('\n').unwrap() + 1;
    let mid_line = last_line + (text.len() - last_line) / 3;
    std::fs::write(&metrics, &text[..mid_line]).unwrap();
    std::fs::write(
        results.join("xs-dense-s0/summary.json"),
        "{\"status\": \"compl",
    )
    .unwrap();

    let analyze = lab(&["analyze", "toy.toml", "--out", "results"], tmp.path());
    let stderr = String::from_utf8_lossy(&analyze.stderr);
    assert!(analyze.status.success(), "{stderr}");
    let report = std::fs::read_to_string(results.join("report.md")).unwrap();
    assert!(report.contains("## Runs left out"), "{report}");
    for (cell, file) in [
        ("xs-moe-s0", "metrics.csv"),
        ("xs-dense-s0", "summary.json"),
    ] {
        assert!(
            stderr.contains(cell) && stderr.contains(file),
            "the warning names {cell} and {file}:\n{stderr}"
        );
    }

    let rerun = lab(&sweep_args("toy.toml", &[]), tmp.path());
    let stderr = String::from_utf8_lossy(&rerun.stderr);
    assert!(rerun.status.success(), "{stderr}");
    assert!(stderr.contains("1 of 3 cells already finished"), "{stderr}");
    assert_eq!(
        [loss("xs-moe-s0"), loss("xs-dense-s0")],
        before,
        "reruns reproduce the runs"
    );
    let report = std::fs::read_to_string(results.join("report.md")).unwrap();
    assert!(!report.contains("## Runs left out"), "{report}");
}

#[test]
fn a_diverging_cell_is_reported_and_the_sweep_goes_on() {
    let tmp = tempfile::tempdir().unwrap();
    // At rate 1e30 the first update overflows the weights: a non-finite loss at step 1.
    let text = toy_named("toy", "learning_rates = [1e-3, 1e30]");
    write_experiment(tmp.path(), &text);
    let out = lab(&sweep_args("toy.toml", &[]), tmp.path());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("4 diverged (non-finite loss)"), "{stderr}");
    let results = tmp.path().join("results/toy");
    let summary = std::fs::read_to_string(results.join("xs-moe-lr1e30-s0/summary.json")).unwrap();
    assert!(summary.contains("\"status\": \"diverged\""), "{summary}");
    let fine = std::fs::read_to_string(results.join("xs-moe-lr1e-3-s0/summary.json")).unwrap();
    assert!(fine.contains("\"status\": \"complete\""), "{fine}");
    // The report counts them: 2 of each arm's 4 runs diverged.
    let report = std::fs::read_to_string(results.join("report.md")).unwrap();
    assert!(report.contains("| 2/4 | 1e30 |"), "{report}");
    // The cell's own process said so with exit 3.
    let cell = results.join("xs-dense-lr1e30-s1");
    let again = lab(
        &[
            "train",
            "--spec",
            cell.join("config.toml").to_str().unwrap(),
            "--run-dir",
            tmp.path().join("again").to_str().unwrap(),
            "--device",
            "flex",
            "--quiet",
        ],
        tmp.path(),
    );
    assert_eq!(again.status.code(), Some(3));
}

/// The command lines of the processes working in `dir` (a sweep's cells run in its directory).
fn processes_in(dir: &Path) -> Vec<String> {
    let dir = dir.canonicalize().unwrap();
    std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(|e| {
            let p = e.ok()?.path();
            (std::fs::read_link(p.join("cwd")).ok()? == dir).then_some(p)
        })
        .filter_map(|p| std::fs::read(p.join("cmdline")).ok())
        .map(|c| String::from_utf8_lossy(&c).replace('\0', " "))
        .collect()
}

#[test]
fn a_sweep_killed_mid_cell_resumes_to_an_uninterrupted_sweeps_losses() {
    let (whole, cut) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let text = toy_experiment(10.0);
    for dir in [whole.path(), cut.path()] {
        write_experiment(dir, &text);
    }
    // One cell at a time, so "the second cell" is running alone when the sweep is killed.
    let args = sweep_args("toy.toml", &["--checkpoint-every", "50", "--jobs", "1"]);
    assert!(lab(&args, whole.path()).status.success());

    // Kill -9 the sweep once the second cell has checkpointed and before it finishes.
    let mut sweep = Command::new(env!("CARGO_BIN_EXE_lab"))
        .args(&args)
        .current_dir(cut.path())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let cell = cut.path().join("results/toy/xs-dense-total-s0");
    let started = std::time::Instant::now();
    while !cell.join("checkpoint/loop_state.json").exists() {
        assert!(
            started.elapsed().as_secs() < 60,
            "the second cell never checkpointed"
        );
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    sweep.kill().unwrap();
    sweep.wait().unwrap();
    // The cell's own `lab train` notices its parent is gone and stops.
    let started = std::time::Instant::now();
    while !processes_in(cut.path()).is_empty() {
        // Well before the ≈ 1.5 s the rest of the cell would take.
        let left = processes_in(cut.path());
        assert!(
            started.elapsed().as_millis() < 500,
            "outlived the sweep: {left:?}"
        );
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    let summary = std::fs::read_to_string(cell.join("summary.json")).unwrap();
    assert!(
        summary.contains("\"status\": \"running\""),
        "killed mid-cell: {summary}"
    );

    let rerun = lab(&args, cut.path());
    let stderr = String::from_utf8_lossy(&rerun.stderr);
    assert!(rerun.status.success(), "{stderr}");
    assert!(stderr.contains("1 of 3 cells already finished"), "{stderr}");
    for c in ["xs-dense-s0", "xs-dense-total-s0", "xs-moe-s0"] {
        let read = |d: &Path| {
            let dir = d.join("results/toy").join(c);
            let s = std::fs::read_to_string(dir.join("summary.json")).unwrap();
            let v: serde_json::Value = serde_json::from_str(&s).unwrap();
            let m = std::fs::read_to_string(dir.join("evals.csv")).unwrap();
            (
                v["final_val_loss"].as_f64(),
                v["final_train_loss"].as_f64(),
                m,
            )
        };
        assert_eq!(read(cut.path()), read(whole.path()), "{c}");
    }
    // The killed cell resumed from a checkpoint (a multiple of 50), not from step 0.
    let s = std::fs::read_to_string(cell.join("summary.json")).unwrap();
    let v: serde_json::Value = serde_json::from_str(&s).unwrap();
    let from = v["resumed_from"].as_array().unwrap();
    assert_eq!(from.len(), 1, "{s}");
    let step = from[0].as_u64().unwrap();
    assert!(
        step > 0 && step.is_multiple_of(50),
        "resumed from step {step}"
    );
}

/// `--slurm --dry-run` writes (without sbatch) a job array over the unfinished cells only, each
/// task running `lab sweep --cell` with this binary and absolute paths, requeueable, with the
/// time-limit warning; `--cell` runs exactly one cell (and refuses an unknown one, exit 2);
/// `--status` reads the cells' states from their directories.
#[test]
fn slurm_scripts_cover_the_unfinished_cells_and_a_cell_runs_alone() {
    let tmp = tempfile::tempdir().unwrap();
    let spec = write_experiment(tmp.path(), &toy_experiment(0.05));
    let spec = spec.to_str().unwrap();
    let ok = |o: &Output| assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let out = lab(&sweep_args(spec, &["--cell", "xs-moe-s0"]), tmp.path());
    ok(&out);
    let status = lab(&sweep_args(spec, &["--status"]), tmp.path());
    ok(&status);
    let table = String::from_utf8_lossy(&status.stdout).to_string();
    assert!(table.contains("1 done, 2 pending"), "{table}");
    assert!(
        table
            .lines()
            .any(|l| l.starts_with("xs-moe-s0") && l.contains("done")),
        "{table}"
    );

    let dry = sweep_args(
        spec,
        &[
            "--slurm",
            "--dry-run",
            "--max-parallel",
            "2",
            "--time",
            "1:00:00",
        ],
    );
    ok(&lab(&dry, tmp.path()));
    let script =
        std::fs::read_to_string(tmp.path().join("results/toy/slurm/cells.sbatch")).unwrap();
    assert!(script.contains("#SBATCH --array=0-1%2\n"), "{script}");
    assert!(
        script.contains("cells=(xs-dense-s0 xs-dense-total-s0)\n"),
        "{script}"
    );
    for line in [
        "#SBATCH --requeue",
        "#SBATCH --signal=B:USR1@120",
        "#SBATCH --time=1:00:00",
    ] {
        assert!(script.contains(line), "{line} missing: {script}");
    }
    assert!(
        script.contains(&format!("{} sweep {spec} ", env!("CARGO_BIN_EXE_lab"))),
        "{script}"
    );
    assert!(script.contains("--cell \"$cell\""), "{script}");
    let analysis =
        std::fs::read_to_string(tmp.path().join("results/toy/slurm/analysis.sbatch")).unwrap();
    assert!(
        analysis.contains(" analyze ") && analysis.contains(" plot "),
        "{analysis}"
    );
    assert!(!tmp.path().join("results/toy/slurm/jobs.json").exists());

    let unknown = lab(&sweep_args(spec, &["--cell", "xs-nope-s0"]), tmp.path());
    assert_eq!(unknown.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&unknown.stderr).contains("--cell"));
}
