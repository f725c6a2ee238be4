//! Routers: which experts each token goes to, and with what gate weight.
//!
//! Every router variant is one file in this folder with two parts:
//! - a **spec** (what users write under `[ffn.router]`, with `kind = "<name>"`) implementing
//!   [`RouterKind`]: how to build the router, and its parameter and FLOP counts;
//! - a **module** (burn `#[derive(Module)]`) implementing [`RouterForward`]: the routing itself,
//!   and an optional update after each optimizer step.
//!
//! plus, at the bottom of this file, its `pub mod` line and one registration line in the
//! `routers!` list. The MoE layer,
//! the FLOP counter, logging, sweeps and the conformance suite (`tests/it/conformance.rs`) reach
//! routers only through the generated [`RouterSpec`] / [`Router`] enums, so a new line there is
//! all it takes for a variant to be selectable, counted, logged and tested.
//! `docs/adding-a-variant.md` walks through adding one.

use burn::prelude::*;
use serde::{Deserialize, Serialize};

mod interface;

pub use interface::{
    Assignment, Choice, FieldError, RouterForward, RouterInput, RouterKind, RouterParams, Routing,
    Scores, top_k_choice, top_k_indices,
};

/// Generates [`RouterSpec`] (the serde enum users select with `kind`) and [`Router`] (the
/// module enum), and forwards every trait method through them.
macro_rules! routers {
    ($($variant:ident = $name:literal in $file:ident => $spec:ident, $module:ident;)+) => {

        /// `[ffn.router]`: one of the registered router variants, chosen by `kind`.
        #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
        #[serde(tag = "kind")]
        pub enum RouterSpec {
            $( #[serde(rename = $name)] $variant($file::$spec), )+
        }

        #[derive(Module, Debug)]
        pub enum Router {
            $( $variant($file::$module), )+
        }

        impl RouterSpec {
            /// Every registered `kind`.
            pub const NAMES: &'static [&'static str] = &[$($name),+];

            pub fn name(&self) -> &'static str {
                match self { $( Self::$variant(_) => $name, )+ }
            }
            pub fn init(&self, d_model: usize, experts: usize, device: &Device) -> Router {
                match self { $( Self::$variant(s) => Router::$variant(s.init(d_model, experts, device)), )+ }
            }
            pub fn params(&self, d_model: usize, experts: usize) -> RouterParams {
                match self { $( Self::$variant(s) => s.params(d_model, experts), )+ }
            }
            pub fn flops_per_token(&self, d_model: usize, experts: usize) -> f64 {
                match self { $( Self::$variant(s) => s.flops_per_token(d_model, experts), )+ }
            }
            pub fn choice(&self) -> Choice {
                match self { $( Self::$variant(s) => s.choice(), )+ }
            }
            pub fn causal(&self) -> bool {
                match self { $( Self::$variant(s) => s.causal(), )+ }
            }
            pub fn validate(&self) -> Result<(), FieldError> {
                match self { $( Self::$variant(s) => s.validate(), )+ }
            }
            pub fn warning(&self) -> Option<String> {
                match self { $( Self::$variant(s) => s.warning(), )+ }
            }
            pub fn uses_renormalize(&self) -> bool {
                match self { $( Self::$variant(s) => s.uses_renormalize(), )+ }
            }
            /// The conformance suite's examples of every registered router.
            pub fn examples() -> Vec<RouterSpec> {
                let mut all = Vec::new();
                $( all.extend(<$file::$spec as RouterKind>::examples().into_iter().map(Self::$variant)); )+
                all
            }
        }

        impl Router {
            pub fn route(&self, input: &RouterInput) -> Routing {
                match self { $( Self::$variant(r) => r.route(input), )+ }
            }
            pub fn after_step(self, load: Tensor<1>) -> Self {
                match self { $( Self::$variant(r) => Self::$variant(r.after_step(load)), )+ }
            }
            pub fn state(&self) -> Vec<(&'static str, Tensor<1>)> {
                match self { $( Self::$variant(r) => r.state(), )+ }
            }
        }
    };
}

// The variants' files. Declared here, outside the macro, so that rustfmt (which does not look
// inside macro invocations) formats them.
pub mod expert_choice;
pub mod hash;
pub mod loss_free;
pub mod sigmoid;
pub mod top_k;

// The registry: one line per router variant, `Variant = "kind" in file => Spec, Module;`,
// where "kind" is the name specs use and `file` is the module declared above.
routers! {
    TopK = "top-k" in top_k => TopKSpec, TopKRouter;
    Sigmoid = "sigmoid" in sigmoid => SigmoidSpec, SigmoidRouter;
    LossFree = "loss-free" in loss_free => LossFreeSpec, LossFreeRouter;
    ExpertChoice = "expert-choice" in expert_choice => ExpertChoiceSpec, ExpertChoiceRouter;
    Hash = "hash" in hash => HashSpec, HashRouter;
}

impl Default for RouterSpec {
    /// Softmax top-k, the Switch / Mixtral router.
    fn default() -> Self {
        RouterSpec::TopK(top_k::TopKSpec::default())
    }
}
