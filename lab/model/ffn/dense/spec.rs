//! `[ffn] kind = "dense"`: a SwiGLU's hidden size, stated or matched to an MoE.

use serde::{Deserialize, Serialize};

use crate::compute::{FfnShape, relative_gap};
use crate::error::{FieldError, at_most};
use crate::limits;
use crate::model::ffn::FfnSpec;
use crate::model::ffn::moe::MoeSpec;
use crate::model::shape::model_shape;
use crate::model::spec::ModelSpec;

/// Tolerance for matched arms: active FLOPs per token within 1%.
pub const MATCH_TOLERANCE: f64 = 0.01;

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct DenseSpec {
    /// Hidden size of the SwiGLU, or a rule that derives it from `[ffn.match]`.
    pub d_ff: DffSpec,
    /// The MoE feed-forward this dense arm is matched against (with `d_ff = "match-active"` or
    /// `"match-total"`, or a number that must then agree within 1%).
    #[serde(default, rename = "match", skip_serializing_if = "Option::is_none")]
    pub match_moe: Option<MoeSpec>,
}

/// `d_ff = 256`, or derived: `"match-active"` (equal active FLOPs per token to `[ffn.match]`) or
/// `"match-total"` (equal total parameters).
#[derive(Debug, Clone, Serialize, PartialEq)]
#[serde(untagged)]
pub enum DffSpec {
    Size(usize),
    Rule(MatchRule),
}

impl<'de> Deserialize<'de> for DffSpec {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Int(i64),
            Name(String),
            Other(toml::Value),
        }
        let bad = |got: String| {
            serde::de::Error::custom(format!(
                "d_ff must be a positive integer, \"match-active\" or \"match-total\"; got {got}"
            ))
        };
        match Raw::deserialize(d)? {
            Raw::Int(n) if n > 0 => Ok(DffSpec::Size(n as usize)),
            Raw::Int(n) => Err(bad(n.to_string())),
            Raw::Name(s) if s == "match-active" => Ok(DffSpec::Rule(MatchRule::MatchActive)),
            Raw::Name(s) if s == "match-total" => Ok(DffSpec::Rule(MatchRule::MatchTotal)),
            Raw::Name(s) => Err(bad(format!("{s:?}"))),
            Raw::Other(v) => Err(bad(v.to_string())),
        }
    }
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum MatchRule {
    MatchActive,
    MatchTotal,
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
    /// parameters); a stated `d_ff` with a match must agree within 1%. `model` is the rest of
    /// the model (the attention and head count toward the match). Error paths are relative to
    /// `[ffn]`.
    pub fn resolve(
        self,
        model: &ModelSpec,
        tokens_per_step: usize,
    ) -> Result<DenseSpec, FieldError> {
        let err = |m: String| Err(FieldError::new("d_ff", m));
        if let DffSpec::Size(n) = self.d_ff {
            at_most("d_ff", n, limits::HIDDEN)?;
        }
        let matched = match &self.match_moe {
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
