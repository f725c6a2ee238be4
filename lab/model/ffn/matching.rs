//! An `[ffn]` resolved against the rest of the model: its fields checked, and a dense arm's
//! `d_ff` derived from, or checked against, the MoE it is matched to. Here, above both specs
//! and the model's shape, because matching counts both arms' FLOPs through `model_shape`.

use super::dense::spec::{DenseSpec, DffSpec, MATCH_TOLERANCE, MatchRule};
use super::spec::FfnSpec;
use crate::compute::relative_gap;
use crate::error::{FieldError, at_most};
use crate::limits;
use crate::model::shape::model_shape;
use crate::model::spec::ModelSpec;

impl FfnSpec {
    /// Check the fields (error paths relative to `[ffn]`) and fill in derived values, such
    /// as a dense arm's matched `d_ff`; `model` is the rest of the (validated) model.
    pub fn resolve(self, model: &ModelSpec, tokens_per_step: usize) -> Result<FfnSpec, FieldError> {
        match self {
            FfnSpec::Dense(dense) => {
                resolve_dense(dense, model, tokens_per_step).map(FfnSpec::Dense)
            }
            FfnSpec::Moe(moe) => {
                moe.validate(model.n_layers, tokens_per_step)?;
                Ok(FfnSpec::Moe(moe))
            }
        }
    }
}

/// Check the arm against the MoE in `[ffn.match]` and derive `d_ff` from it where asked
/// (`"match-active"`: equal forward FLOPs per token within 1%; `"match-total"`: equal total
/// parameters); a stated `d_ff` with a match must agree within 1%. `model` is the rest of
/// the model (the attention and head count toward the match). Error paths are relative to
/// `[ffn]`.
fn resolve_dense(
    dense: DenseSpec,
    model: &ModelSpec,
    tokens_per_step: usize,
) -> Result<DenseSpec, FieldError> {
    let err = |m: String| Err(FieldError::new("d_ff", m));
    if let DffSpec::Size(n) = dense.d_ff {
        at_most("d_ff", n, limits::HIDDEN)?;
    }
    let matched = match &dense.match_moe {
        Some(moe) => {
            moe.validate(model.n_layers, tokens_per_step)
                .map_err(|e| e.under("match"))?;
            let moe = FfnSpec::Moe(moe.clone());
            Some(model_shape(model, &moe, tokens_per_step))
        }
        None => None,
    };
    let probe_ffn = FfnSpec::Dense(DenseSpec {
        d_ff: DffSpec::Size(1),
        match_moe: None,
    });
    let probe = model_shape(model, &probe_ffn, tokens_per_step);
    let d_ff = match (&dense.d_ff, &matched) {
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
    let keep_match = !matches!(dense.d_ff, DffSpec::Rule(MatchRule::MatchTotal));
    Ok(DenseSpec {
        d_ff: DffSpec::Size(d_ff),
        match_moe: dense.match_moe.filter(|_| keep_match),
    })
}
