//! The data-mix study's mathematics: how a target loss depends on the training mixture, fitted
//! from small runs at many mixtures, and the mixture that minimises it.
//!
//! - [`law`]: the data mixing law `L(r) = c + exp(b + Σ_j t_j r_j)` (Ye et al. 2024), and a
//!   linear baseline `L(r) = β₀ + Σ_j β_j r_j` (RegMix's simplest regression);
//! - [`loo`]: leave-one-mixture-out prediction error, beside predicting the mean;
//! - [`simplex`]: the minimum of a target over the mixtures with a floor on every weight.
//!
//! Mixtures are drawn by `sweep::mixtures`. The study that trains them, reads the runs and
//! reports is not built yet.

pub mod law;
pub mod linear;
pub mod loo;
pub mod simplex;
