//! The dense SwiGLU feed-forward: `W2 (silu(x W1) ⊙ x W3)`.

use burn::module::Param;
use burn::prelude::*;
use burn::tensor::activation::silu;

use crate::compute::{FfnShape, relative_gap};
use crate::model::{flop_meter, init};
use crate::spec::{DenseSpec, DffSpec, FfnSpec, MATCH_TOLERANCE, MatchRule, RunSpec, model_shape};

#[derive(Module, Debug)]
pub struct SwiGlu {
    /// Gate projection `[d_model, d_ff]`.
    pub w1: Param<Tensor<2>>,
    /// Up projection `[d_model, d_ff]`.
    pub w3: Param<Tensor<2>>,
    /// Down projection `[d_ff, d_model]`.
    pub w2: Param<Tensor<2>>,
}

impl SwiGlu {
    pub fn new(d_model: usize, d_ff: usize, n_layers: usize, device: &Device) -> Self {
        SwiGlu {
            w1: init::normal([d_model, d_ff], init::INIT_STD, device),
            w3: init::normal([d_model, d_ff], init::INIT_STD, device),
            w2: init::normal([d_ff, d_model], init::residual_std(n_layers), device),
        }
    }

    /// Works on any rank: `[..., d_model]` → `[..., d_model]`.
    pub fn forward<const D: usize>(&self, x: Tensor<D>) -> Tensor<D> {
        let gate = silu(flop_meter::matmul(x.clone(), self.w1.val().unsqueeze()));
        let up = flop_meter::matmul(x, self.w3.val().unsqueeze());
        flop_meter::matmul(gate * up, self.w2.val().unsqueeze())
    }
}

impl DenseSpec {
    /// The hidden size once resolved (a derived rule counts as 0 until then).
    pub fn hidden(&self) -> usize {
        match self.d_ff {
            DffSpec::Size(n) => n,
            DffSpec::Rule(_) => 0,
        }
    }

    pub fn layer_shape(&self, d_model: usize) -> FfnShape {
        FfnShape::swiglu(d_model, self.hidden())
    }

    /// Check the arm against the MoE in `[ffn.match]` and derive `d_ff` from it where asked
    /// (`"match-active"`: equal forward FLOPs per token within 1%; `"match-total"`: equal total
    /// parameters); a stated `d_ff` with a match must agree within 1%. `spec` is the whole run
    /// spec (the attention and head count toward the match). Errors: (field, message).
    pub fn resolve(
        self,
        spec: &RunSpec,
        tokens_per_step: usize,
    ) -> Result<DenseSpec, (String, String)> {
        let err = |m: String| Err(("ffn.d_ff".to_string(), m));
        let matched = match &self.match_moe {
            Some(moe) => {
                moe.validate(spec.model.n_layers, tokens_per_step)
                    .map_err(|(f, m)| (format!("ffn.match.{f}"), m))?;
                let moe_model = RunSpec {
                    ffn: FfnSpec::Moe(moe.clone()),
                    ..spec.clone()
                };
                Some(model_shape(&moe_model, tokens_per_step))
            }
            None => None,
        };
        let probe = model_shape(
            &RunSpec {
                ffn: FfnSpec::Dense(DenseSpec {
                    d_ff: DffSpec::Size(1),
                    match_moe: None,
                }),
                ..spec.clone()
            },
            tokens_per_step,
        );
        let d_ff = match (&self.d_ff, &matched) {
            (DffSpec::Size(n), None) => *n,
            (DffSpec::Size(n), Some(target)) => {
                let ours = probe.with_dense_ffn(*n).flops().forward_per_token;
                let theirs = target.flops().forward_per_token;
                if relative_gap(ours, theirs) > MATCH_TOLERANCE {
                    let suggest = probe.dense_d_ff_matching_flops(target);
                    return err(format!(
                        "dense arm ({n}) has {ours:.0} forward FLOPs/token but the MoE in \
                         [ffn.match] has {theirs:.0} ({:+.2}%, over the 1% tolerance); \
                         d_ff = {suggest} or d_ff = \"match-active\" would match",
                        100.0 * (ours - theirs) / theirs
                    ));
                }
                *n
            }
            (DffSpec::Rule(_), None) => {
                return err(
                    "a derived d_ff (\"match-active\" / \"match-total\") needs an [ffn.match] \
                     table naming the MoE to match"
                        .into(),
                );
            }
            (DffSpec::Rule(MatchRule::MatchActive), Some(target)) => {
                let n = probe.dense_d_ff_matching_flops(target);
                let ours = probe.with_dense_ffn(n).flops().forward_per_token;
                let theirs = target.flops().forward_per_token;
                if relative_gap(ours, theirs) > MATCH_TOLERANCE {
                    return err(format!(
                        "no integer d_ff matches the MoE within 1%: the nearest, {n}, gives \
                         {ours:.0} vs {theirs:.0} forward FLOPs/token"
                    ));
                }
                n
            }
            (DffSpec::Rule(MatchRule::MatchTotal), Some(target)) => {
                probe.dense_d_ff_matching_params(target)
            }
        };
        if d_ff == 0 {
            return err("must be a positive integer, got 0".into());
        }
        // The resolved spec keeps [ffn.match] only where it states an active-FLOP match
        // (which a reload re-checks); a total-parameter match is recorded by its d_ff.
        let keep_match = !matches!(self.d_ff, DffSpec::Rule(MatchRule::MatchTotal));
        Ok(DenseSpec {
            d_ff: DffSpec::Size(d_ff),
            match_moe: self.match_moe.filter(|_| keep_match),
        })
    }
}
