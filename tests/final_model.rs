//! A completed run keeps its final model (`model/` in the run directory), and the model read
//! back is the one that was trained: evaluated on the run's own final evaluation, it gives
//! the run's final validation loss to the last digit.

mod common;

use burn::prelude::*;
use common::{DENSE, MOE, config, flex_options, tiny_spec};
use moe_lab::data::{Batches, source_for};
use moe_lab::run::RunDir;
use moe_lab::train::{evaluate::evaluate, train};

fn check(ffn: &str) {
    let tmp = tempfile::tempdir().unwrap();
    let cfg = config(&tiny_spec("kept", ffn, ""));
    let summary = train(&cfg, flex_options(tmp.path(), false, None)).unwrap();
    let device = Device::flex();
    let (loaded_cfg, model) = RunDir::new(tmp.path()).load_model(&device).unwrap();
    assert_eq!(loaded_cfg.spec, cfg.spec);
    // The trainer's final evaluation, rebuilt: same text, windows and count.
    let spec = &cfg.spec;
    let (t, tokens) = (spec.model.seq_len, spec.train.final_eval_tokens);
    let corpus = source_for(&spec.data, tokens * (t + 1) / t * 5 / 4)
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
