//! Whole training runs on flex: determinism, learning, divergence handling, the optimizer's
//! weight-decay groups and global clipping.

use crate::common;

use burn::module::{ModuleVisitor, Param};
use burn::optim::GradientsParams;
use burn::prelude::*;
use common::{DENSE, MOE, config, tiny_spec};
use moe_lab::kernels::clip;
use moe_lab::model::Transformer;
use moe_lab::run::{RunStatus, Summary};
use moe_lab::train::{optimizer, train};

fn run(text: &str, dir: &std::path::Path) -> Summary {
    let cfg = config(text);
    train(&cfg, common::flex_options(dir, false, None)).unwrap()
}

fn column(path: &std::path::Path, name: &str) -> Vec<String> {
    let mut r = csv::Reader::from_path(path).unwrap();
    let idx = r.headers().unwrap().iter().position(|h| h == name).unwrap();
    r.records()
        .map(|rec| rec.unwrap()[idx].to_string())
        .collect()
}

#[test]
fn same_seed_twice_gives_identical_runs() {
    let tmp = tempfile::tempdir().unwrap();
    let text = tiny_spec("det", MOE, "");
    let (a, b) = (tmp.path().join("a"), tmp.path().join("b"));
    run(&text, &a);
    run(&text, &b);
    for col in ["loss", "aux_loss", "z_loss", "grad_norm"] {
        let (x, y) = (
            column(&a.join("metrics.csv"), col),
            column(&b.join("metrics.csv"), col),
        );
        assert_eq!(x.len(), 20);
        assert_eq!(x, y, "column {col} differs between identical runs");
    }
    assert_eq!(
        column(&a.join("evals.csv"), "val_loss"),
        column(&b.join("evals.csv"), "val_loss")
    );
    // The test can fail: another seed gives other numbers.
    let c = tmp.path().join("c");
    run(&text.replace("seed = 7", "seed = 8"), &c);
    assert_ne!(
        column(&a.join("metrics.csv"), "loss"),
        column(&c.join("metrics.csv"), "loss")
    );
}

fn learning_spec(name: &str, ffn: &str) -> String {
    tiny_spec(name, ffn, "")
        .replace("steps = 20", "steps = 200")
        .replace("batch_size = 4", "batch_size = 8")
        .replace("eval_every = 10", "eval_every = 100")
        .replace("seq_len = 16", "seq_len = 32")
}

#[test]
fn tiny_dense_and_moe_runs_lower_validation_loss() {
    let tmp = tempfile::tempdir().unwrap();
    for (name, ffn) in [("dense", DENSE), ("moe", MOE)] {
        let s = run(&learning_spec(name, ffn), &tmp.path().join(name));
        assert_eq!(s.status, RunStatus::Complete);
        let uniform = (256f64).ln(); // 5.545 nats: loss of a model that knows nothing
        let final_loss = s.final_val_loss.unwrap();
        assert!(
            final_loss < 0.6 * uniform,
            "{name}: val loss {final_loss:.3} after 200 steps, not clearly below {uniform:.3}"
        );
        let files = [
            "config.toml",
            "metrics.csv",
            "evals.csv",
            "router.csv",
            "summary.json",
        ];
        for f in files {
            assert!(
                tmp.path().join(name).join(f).exists(),
                "{name}: {f} missing"
            );
        }
    }
    // The MoE's router statistics are logged: 2 layers × 4 experts per eval, 2 evals.
    let shares = column(&tmp.path().join("moe/router.csv"), "load_share");
    assert_eq!(shares.len(), 2 * 2 * 4);
}

#[test]
fn non_finite_loss_ends_the_run_as_diverged_with_files_intact() {
    let tmp = tempfile::tempdir().unwrap();
    let text = tiny_spec("boom", DENSE, "")
        .replace("lr = 3e-3", "lr = 1e30\ngrad_clip = 0.0")
        .replace("warmup_steps = 5", "warmup_steps = 0");
    let s = run(&text, tmp.path());
    assert_eq!(s.status, RunStatus::Diverged);
    let at = s.diverged_at_step.expect("step recorded");
    assert!(at < 20);
    let on_disk: Summary =
        serde_json::from_str(&std::fs::read_to_string(tmp.path().join("summary.json")).unwrap())
            .unwrap();
    assert_eq!(on_disk.status, RunStatus::Diverged);
    assert_eq!(
        column(&tmp.path().join("metrics.csv"), "step").len(),
        at + 1
    );
}

/// Register `value` as the gradient of every parameter.
fn constant_grads(model: &Transformer, value: f32) -> GradientsParams {
    struct Fill(GradientsParams, f32);
    impl ModuleVisitor for Fill {
        fn visit_float<const D: usize>(&mut self, p: &Param<Tensor<D>>) {
            let v = p.val();
            let g = Tensor::<D>::full(v.shape(), self.1, &v.device());
            self.0.register::<D>(p.id, g);
        }
    }
    let mut f = Fill(GradientsParams::new(), value);
    model.visit(&mut f);
    f.0
}

/// Every parameter's values, by rank.
fn params(model: &Transformer) -> Vec<(usize, Vec<f32>)> {
    struct Collect(Vec<(usize, Vec<f32>)>);
    impl ModuleVisitor for Collect {
        fn visit_float<const D: usize>(&mut self, p: &Param<Tensor<D>>) {
            self.0.push((D, p.val().into_data().try_to_vec().unwrap()));
        }
    }
    let mut c = Collect(vec![]);
    model.visit(&mut c);
    c.0
}

#[test]
fn weight_decay_applies_to_matrices_only() {
    let device = crate::common::flex().autodiff();
    device.seed(1);
    let cfg = config(&tiny_spec("wd", MOE, ""));
    let model = cfg.init_model(&device);
    let before = params(&model);
    let mut optim = optimizer(&cfg.spec.train); // weight decay 0.1
    // Zero gradients: AdamW's update is 0, so only decoupled decay moves weights.
    let grads = constant_grads(&model, 0.0);
    let model = optim.step(0.5, model, grads);
    let after = params(&model);
    let mut seen_gain = false;
    for ((rank, b), (_, a)) in before.iter().zip(&after) {
        for (x, y) in b.iter().zip(a) {
            if *rank == 1 {
                seen_gain = true;
                assert_eq!(x, y, "norm gains must not decay");
            } else {
                assert!((y - x * (1.0 - 0.5 * 0.1)).abs() <= 1e-6 * x.abs().max(1e-6));
            }
        }
    }
    assert!(seen_gain);
}

#[test]
fn clipping_scales_all_gradients_by_one_global_factor() {
    let device = crate::common::flex().autodiff();
    let cfg = config(&tiny_spec("clip", DENSE, ""));
    let model = cfg.init_model(&device);
    let grads = constant_grads(&model, 1.0);
    let n = cfg.params.total as f64;
    let norm = clip::global_norm(&model, &grads, &device);
    let got = norm.clone().into_scalar::<f32>() as f64;
    assert!(
        (got - n.sqrt()).abs() / n.sqrt() < 1e-5,
        "global norm {got} vs √{n}"
    );
    let clipped = clip::clip_to(&model, grads, norm, 1.0);
    let after = clip::global_norm(&model, &clipped, &device).into_scalar::<f32>() as f64;
    assert!((after - 1.0).abs() < 1e-4, "clipped norm {after}");
    // One factor for all: every entry is 1/√n.
    let first: Tensor<2> = clipped.get(model.embedding.weight.id).unwrap();
    let v: Vec<f32> = first.into_data().try_to_vec().unwrap();
    assert!(
        v.iter()
            .all(|x| ((*x as f64) - 1.0 / n.sqrt()).abs() < 1e-6)
    );
}

#[test]
fn the_annealing_mix_switches_where_the_wsd_decay_starts() {
    use moe_lab::train::schedule::learning_rate;
    // Ordinary, and a warmup reaching past the decay's nominal start.
    for (steps, warmup) in [(20, 5), (20, 18), (50, 3)] {
        let text = tiny_spec("anneal", DENSE, "anneal = true")
            .replace(
                "steps = 20",
                &format!("steps = {steps}\nschedule = \"wsd\""),
            )
            .replace("warmup_steps = 5", &format!("warmup_steps = {warmup}"));
        let cfg = config(&text);
        let t = &cfg.spec.train;
        let lr = |s: usize| learning_rate(t, s, steps);
        let switch = cfg.anneal_from().expect("annealing");
        // Flat at the peak from the end of warmup to the switch, falling right after it.
        for s in warmup.min(steps - 1)..=switch {
            assert_eq!(lr(s), t.lr, "steps {steps}, warmup {warmup}: lr at {s}");
        }
        assert!(
            lr(switch + 1) < t.lr,
            "steps {steps}, warmup {warmup}: switch {switch}"
        );
    }
}

#[test]
fn fields_without_effect_warn_at_start_and_in_the_summary() {
    let warned = |text: &str, what: &str| {
        let w = config(text).spec.warnings();
        assert!(
            w.iter().any(|x| x.contains(what)),
            "no warning on {what}: {w:?}"
        );
    };
    let text_file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(text_file.path(), "some text. ".repeat(2000)).unwrap();
    let text_source = format!("source = \"text\"\npath = {:?}", text_file.path());
    warned(
        &tiny_spec("w", DENSE, &text_source)
            .replace("corpus_bytes = 200000", "corpus_bytes = 5000"),
        "data.corpus_bytes",
    );
    warned(
        &tiny_spec("w", DENSE, "").replace(
            "lr = 3e-3",
            "lr = 3e-3\nschedule = \"wsd\"\nmin_lr_ratio = 0.3",
        ),
        "train.min_lr_ratio",
    );
    let hash = format!("{MOE}\nrenormalize = false\n[ffn.router]\nkind = \"hash\"");
    warned(&tiny_spec("w", &hash, ""), "ffn.renormalize");
    // Defaults, and fields that do act, warn of nothing.
    assert!(config(&tiny_spec("w", MOE, "")).spec.warnings().is_empty());
    let topk = format!("{MOE}\nrenormalize = false");
    assert!(
        config(&tiny_spec("w", &topk, ""))
            .spec
            .warnings()
            .is_empty()
    );
    // Kept in summary.json.
    let dir = tempfile::tempdir().unwrap();
    let text = tiny_spec("w", &hash, "").replace("steps = 20", "steps = 2");
    let summary = train(
        &config(&text),
        common::flex_options(dir.path(), false, None),
    )
    .unwrap();
    assert!(
        summary
            .warnings
            .iter()
            .any(|w| w.contains("ffn.renormalize"))
    );
}

#[test]
fn exact_match_judges_only_answers_the_window_holds_whole() {
    use moe_lab::train::evaluate::whole_answers;
    // Positions 0-1 continue an answer cut by the window's start, 4-6 and 8 are whole, 10-11
    // run into the window's end.
    let mask = [1., 1., 0., 0., 1., 1., 1., 0., 1., 0., 1., 1.];
    assert_eq!(whole_answers(&mask), vec![4..7, 8..9]);
    assert!(whole_answers(&[0.0; 5]).is_empty());
}

#[test]
fn the_final_evaluation_is_larger_and_reports_its_error_and_exact_matches() {
    let run = |final_tokens: usize| {
        let dir = tempfile::tempdir().unwrap();
        let text = tiny_spec("final", MOE, "")
            .replace("steps = 20", "steps = 4")
            .replace(
                "final_eval_tokens = 0",
                &format!("final_eval_tokens = {final_tokens}"),
            );
        let s = train(
            &config(&text),
            common::flex_options(dir.path(), false, None),
        )
        .unwrap();
        let evals = std::fs::read_to_string(dir.path().join("evals.csv")).unwrap();
        (s, evals.lines().next().unwrap().to_string())
    };
    let (small, _) = run(0);
    let (s, header) = run(2048);
    let se = s.final_val_loss_se.expect("a standard error");
    assert!(se > 0.0 && se < 0.5, "{se}");
    for col in [
        "exact_match_knowledge",
        "exact_match_math",
        "answer_loss_math",
    ] {
        assert!(header.contains(col), "{header}");
    }
    // 2048 tokens per stream in batches of 4 × 16: 32 batches, against eval_batches = 2.
    let (big, few) = (
        s.final_exact_match_by_stream["math"],
        small.final_exact_match_by_stream["math"],
    );
    assert!(big.answers > 8 * few.answers, "{big:?} vs {few:?}");
    assert!((0.0..=1.0).contains(&big.rate));
    assert!(s.final_val_loss_se.unwrap() < small.final_val_loss_se.unwrap());
    assert!(s.final_exact_match_by_stream.contains_key("knowledge"));
    assert!(!s.final_exact_match_by_stream.contains_key("code"));
}

#[test]
fn a_fresh_start_replaces_row_files_of_another_layout() {
    let dir = tempfile::tempdir().unwrap();
    // An evals.csv left by a run with other columns (say, an earlier version's).
    std::fs::write(
        dir.path().join("evals.csv"),
        "step,tokens,old_column\n0,64,1.0\n",
    )
    .unwrap();
    let text = tiny_spec("fresh", DENSE, "").replace("steps = 20", "steps = 2");
    train(
        &config(&text),
        common::flex_options(dir.path(), false, None),
    )
    .unwrap();
    let mut r = csv::Reader::from_path(dir.path().join("evals.csv")).unwrap();
    assert!(!r.headers().unwrap().iter().any(|h| h == "old_column"));
    assert!(
        r.records().all(|row| row.is_ok()),
        "every row fits the header"
    );
}

/// The one-pass Σ g² against burn's `powi` and `sum` (one element, a row, several parallel
/// chunks; contiguous and strided), and the skipped scaling: wherever `clip::scales` says a
/// step needs none, the scale `clip_to` would apply is exactly 1.
#[test]
fn the_sum_of_squares_equals_burns_and_clipping_is_skipped_only_at_a_scale_of_one() {
    use burn::tensor::Distribution;
    let device = crate::common::flex();
    for n in [1, 17, 100_003] {
        let x = Tensor::<2>::random([n, 3], Distribution::Normal(0.0, 2.0), &device);
        for (what, x) in [("contiguous", x.clone()), ("strided", x.transpose())] {
            let ours = clip::sum_squares(x.clone()).into_scalar::<f32>() as f64;
            let theirs = x.powi_scalar(2).sum().into_scalar::<f32>() as f64;
            assert!(
                (ours - theirs).abs() <= 1e-5 * theirs,
                "{n} × 3 {what}: {ours} vs {theirs}"
            );
        }
    }
    for max in [0.25, 1.0, 3.0] {
        let inside = max * (1.0 - 2.5e-6) - 1e-6;
        for norm in [inside, max * 0.5, 0.0] {
            assert!(!clip::scales(norm, max), "norm {norm}, limit {max}");
            let s = clip::scale(Tensor::from_floats([norm as f32], &device), max);
            assert_eq!(s.into_scalar::<f32>(), 1.0, "norm {norm}, limit {max}");
        }
        for norm in [max * (1.0 - 1e-7), max, max * 1.5] {
            assert!(clip::scales(norm, max), "norm {norm}, limit {max}");
        }
    }
}
