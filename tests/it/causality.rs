//! Causal masking: changing the tokens after position t leaves the logits at positions ≤ t
//! unchanged, for a dense model and a dropless MoE. (A capacity-limited MoE is not causal
//! across a batch: which slots overflow depends on every token in it, as in Switch/GShard.)

use crate::common;

use burn::prelude::*;
use common::{DENSE, MOE, config, max_rel_diff, tiny_spec, to_vec};

fn check_causal(ffn: &str) {
    let device = crate::common::flex();
    device.seed(5);
    let cfg = config(&tiny_spec("causal", ffn, ""));
    let model = cfg.init_model(&device);
    let (b, t, cut) = (2, 16, 9);
    let tokens: Vec<i64> = (0..b * t).map(|i| ((i * 37 + 11) % 256) as i64).collect();
    let mut changed = tokens.clone();
    for row in 0..b {
        for pos in cut + 1..t {
            changed[row * t + pos] = (changed[row * t + pos] + 101) % 256;
        }
    }
    let run = |toks: Vec<i64>| {
        let x = Tensor::<2, Int>::from_data(TensorData::new(toks, [b, t]), &device);
        model.forward(x).logits
    };
    let (a, c) = (run(tokens), run(changed));
    let prefix = |l: Tensor<3>| to_vec(l.slice([0..b, 0..cut + 1, 0..256]));
    let suffix = |l: Tensor<3>| to_vec(l.slice([0..b, cut + 1..t, 0..256]));
    let diff_prefix = max_rel_diff(&prefix(a.clone()), &prefix(c.clone()));
    assert!(
        diff_prefix < 1e-6,
        "logits at positions ≤ {cut} changed by {diff_prefix}"
    );
    // The test can fail: the future did change, and the model sees it at later positions.
    assert!(max_rel_diff(&suffix(a), &suffix(c)) > 1e-4);
}

#[test]
fn dense_model_is_causal() {
    check_causal(DENSE);
}

#[test]
fn dropless_moe_model_is_causal() {
    check_causal(MOE);
}
