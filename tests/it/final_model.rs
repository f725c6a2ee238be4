//! A completed run keeps its final model (`model/` in the run directory), and the model read
//! back is the one that was trained: evaluated on the run's own final evaluation, it gives
//! the run's final validation loss to the last digit.

use crate::common;

use burn::prelude::*;
use common::{DENSE, MOE, config, flex_options, tiny_spec};
use moe_lab::data::{Batches, source_for};
use moe_lab::run::RunDir;
use moe_lab::train::{evaluate::evaluate, train};

fn check(ffn: &str) {
    let tmp = tempfile::tempdir().unwrap();
    let cfg = config(&tiny_spec("kept", ffn, ""));
    let summary = train(&cfg, flex_options(tmp.path(), false, None)).unwrap();
    let device = crate::common::flex();
    let (loaded_cfg, model) = RunDir::new(tmp.path()).load_model(&device).unwrap();
    assert_eq!(loaded_cfg.spec, cfg.spec);
    // The trainer's final evaluation, rebuilt: same text, windows and count.
    let spec = &cfg.spec;
    let (t, tokens) = (spec.model.seq_len, spec.train.final_eval_tokens);
    let corpus = source_for(&spec.data, tokens * (t + 1) / t * 5 / 4, 256)
        .load()
        .unwrap();
    let batches = Batches::new(
        corpus,
        t,
        spec.train.batch_size,
        spec.seed,
        cfg.anneal_from(),
    );
    let batches = batches.unwrap();
    let count = spec.train.final_eval_batches(cfg.tokens_per_step);
    let loss = |m| evaluate(m, &batches, count, &device).val_loss;
    assert_eq!(Some(loss(&model)), summary.final_val_loss, "{ffn}");
    // The test can fail: the untrained model of the same spec scores differently.
    assert_ne!(Some(loss(&cfg.init_model(&device))), summary.final_val_loss);
}

#[test]
fn dense_run_keeps_its_final_model() {
    check(DENSE);
}

#[test]
fn moe_run_keeps_its_final_model() {
    check(MOE);
}

/// Every float parameter of a model, flattened, in visiting order.
fn parameters(model: &moe_lab::model::Transformer) -> Vec<Vec<f32>> {
    use burn::module::{Module, ModuleVisitor, Param};
    struct Collect(Vec<Vec<f32>>);
    impl ModuleVisitor for Collect {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            self.0.push(common::to_vec(param.val()));
        }
    }
    let mut c = Collect(Vec::new());
    model.visit(&mut c);
    c.0
}

/// Checkpoint averaging: the average of two models is their parameters' mean, every
/// parameter tensor, element by element.
#[test]
fn the_average_of_two_models_is_their_mean() {
    use moe_lab::train::average::{add, mean};
    let device = crate::common::flex();
    let a = config(&tiny_spec("a", MOE, "")).init_model(&device);
    let b = config(&tiny_spec("b", MOE, "").replace("seed = 7", "seed = 8")).init_model(&device);
    let avg = mean(&add(Some(add(None, &a)), &b), 2);
    let (pa, pb, pavg) = (parameters(&a), parameters(&b), parameters(&avg));
    // Embedding, per block 4 attention projections, 2 norms, router and 3 expert tensors,
    // and the final norm and LM head.
    assert!(pa.len() >= 2 * 10 + 3, "{} tensors", pa.len());
    assert_eq!(pavg.len(), pa.len());
    for (i, ((x, y), got)) in pa.iter().zip(&pb).zip(&pavg).enumerate() {
        assert_eq!(got.len(), x.len(), "tensor {i}");
        let worst = x
            .iter()
            .zip(y)
            .zip(got)
            .map(|((x, y), g)| (g - (x + y) / 2.0).abs())
            .fold(0f32, f32::max);
        assert!(worst < 1e-7, "tensor {i}: {worst}");
    }
    assert!(
        pa.iter().zip(&pb).any(|(x, y)| x != y),
        "the test can fail: the models differ"
    );
}

/// Snapshots every other step over the last half; averaging one snapshot gives the last model,
/// and a run interrupted mid-anneal resumes to the same average.
#[test]
fn checkpoint_averaging_resumes_to_the_same_average() {
    let tmp = tempfile::tempdir().unwrap();
    let spec = |m: usize| {
        let extra = format!(
            "steps = 20\ndecay_fraction = 0.5\naverage_checkpoints = {m}\ncheckpoint_every = 2"
        );
        tiny_spec("avg", MOE, "").replace("steps = 20", &extra)
    };
    let one = train(
        &config(&spec(1)),
        flex_options(&tmp.path().join("one"), false, None),
    )
    .unwrap();
    assert_eq!(one.final_val_loss_averaged, one.final_val_loss);
    assert_eq!(one.averaged_snapshots, 1);
    let cfg = config(&spec(5));
    let whole = train(&cfg, flex_options(&tmp.path().join("whole"), false, None)).unwrap();
    assert_eq!(whole.averaged_snapshots, 5);
    assert_ne!(whole.final_val_loss_averaged, whole.final_val_loss);
    assert!(tmp.path().join("whole/model/averaged.bpk").exists());
    // Killed after 15 steps: the checkpoint at 14 holds the sum of the snapshots at 11 and 13.
    let cut = tmp.path().join("cut");
    train(&cfg, flex_options(&cut, true, Some(15))).unwrap();
    let resumed = train(&cfg, flex_options(&cut, true, None)).unwrap();
    assert_eq!(
        resumed.resumed_from,
        [14],
        "resumed mid-anneal, not restarted"
    );
    assert_eq!(
        resumed.final_val_loss_averaged,
        whole.final_val_loss_averaged
    );
    assert_eq!(resumed.averaged_snapshots, 5);
}
