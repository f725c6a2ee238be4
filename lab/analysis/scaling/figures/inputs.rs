//! What the scaling study's figures draw from.

use crate::analysis::load::RunData;
use crate::analysis::scaling::Analysis;
use crate::run::Manifest;

/// What every figure of the study draws from.
pub struct Inputs<'a> {
    pub manifest: &'a Manifest,
    pub runs: &'a [RunData],
    pub analysis: &'a Analysis,
}
