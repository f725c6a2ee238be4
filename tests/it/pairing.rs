//! Paired arms: at one seed, a dense and an MoE model start from the same embedding, attention
//! and head weights (only their feed-forwards differ), so a seed-pair's loss difference
//! isolates the feed-forward. Another seed gives other weights.

use crate::common;

use burn::prelude::*;
use common::{DENSE, MOE, config, tiny_spec, to_vec};
use moe_lab::model::Transformer;

fn model(ffn: &str, seed: u64) -> Transformer {
    let text = tiny_spec("pair", ffn, "").replace("seed = 7", &format!("seed = {seed}"));
    config(&text).init_model(&Device::flex())
}

/// The weights shared by every arm: embedding, each block's attention, the LM head.
fn shared(m: &Transformer) -> Vec<Vec<f32>> {
    let mut out = vec![to_vec(m.embedding.weight.val())];
    for b in &m.blocks {
        for w in [&b.attn.wq, &b.attn.wk, &b.attn.wv, &b.attn.wo] {
            out.push(to_vec(w.weight.val()));
        }
    }
    out.push(to_vec(m.lm_head.as_ref().expect("untied").weight.val()));
    out
}

#[test]
fn arms_at_one_seed_share_everything_but_the_feed_forward() {
    let (dense, moe) = (model(DENSE, 3), model(MOE, 3));
    let (a, b) = (shared(&dense), shared(&moe));
    assert_eq!(a.len(), b.len());
    for (i, (x, y)) in a.iter().zip(&b).enumerate() {
        assert_eq!(
            x, y,
            "shared tensor {i} differs between the dense and the MoE arm"
        );
    }
    // The draws are real: another seed changes every shared tensor.
    let other = shared(&model(DENSE, 4));
    for (i, (x, y)) in a.iter().zip(&other).enumerate() {
        assert_ne!(x, y, "shared tensor {i} is the same under another seed");
    }
}

#[test]
fn the_sequential_scheme_of_older_runs_shares_nothing_and_older_configs_differ() {
    let seq = |ffn: &str| {
        let text = tiny_spec("pair", ffn, "")
            .replace("seq_len = 16", "seq_len = 16\ninit = \"sequential\"");
        config(&text).init_model(&Device::flex())
    };
    let (a, b) = (shared(&seq(DENSE)), shared(&seq(MOE)));
    assert_ne!(
        a[0], b[0],
        "sequential draws: the embeddings of two arms differ"
    );
    // A resolved spec states its scheme, so a config.toml written before the field existed
    // (none stated) is another run for the sweep and for --resume.
    let cfg = config(&tiny_spec("pair", DENSE, ""));
    assert!(
        cfg.spec_toml().contains("init = \"per-part\""),
        "{}",
        cfg.spec_toml()
    );
    let old: moe_lab::spec::RunSpec =
        toml::from_str(&cfg.spec_toml().replace("init = \"per-part\"\n", "")).unwrap();
    assert_ne!(old, cfg.spec);
}
