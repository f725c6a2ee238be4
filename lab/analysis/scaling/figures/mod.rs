//! The scaling study's figures, each described once ([`Figure`]) and drawn by both renderers:
//! loss against compute and the paired difference (`loss.rs`), stability and memory
//! (`costs.rs`), and the router (`router.rs`).

mod costs;
mod inputs;
mod loss;
mod router;

pub use costs::{MEMORY, SPIKE_RATE};
pub use inputs::Inputs;
pub use loss::{LOSS_VS_FLOPS, PAIRED_DIFF, SCALING, TRAINING_LOSS};
pub use router::{ROUTER_LOAD, ROUTER_MAXVIO, ROUTER_STATE};

use crate::analysis::figure::Figure;

pub fn figures(d: &Inputs) -> Vec<Figure> {
    vec![
        loss::loss_vs_flops(d).captioned(LOSS_VS_FLOPS),
        loss::paired_diff(d).captioned(PAIRED_DIFF),
        loss::scaling(d).captioned(SCALING),
        loss::training_loss(d).captioned(TRAINING_LOSS),
        costs::spike_rate(d).captioned(SPIKE_RATE),
        costs::memory(d).captioned(MEMORY),
        router::load(d).captioned(ROUTER_LOAD),
        router::maxvio(d).captioned(ROUTER_MAXVIO),
        router::state(d).captioned(ROUTER_STATE),
    ]
}
