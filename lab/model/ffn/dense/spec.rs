//! `[ffn] kind = "dense"`: a SwiGLU's hidden size, stated or matched to an MoE (the match is
//! resolved where both arms' shapes are known: `ffn::matching`).

use serde::{Deserialize, Serialize};

use crate::compute::FfnShape;
use crate::model::ffn::moe::spec::MoeSpec;

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
}
