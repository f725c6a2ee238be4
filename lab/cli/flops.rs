//! `lab flops`: the counts of specs.

use std::path::PathBuf;

use super::text as cli_text;
use crate::spec;

/// `lab flops`: counts of each spec.
pub(super) fn flops_cmd(specs: &[PathBuf]) -> anyhow::Result<i32> {
    if specs.is_empty() {
        anyhow::bail!("lab flops: give at least one spec file");
    }
    for path in specs {
        let config = spec::resolve(path)?;
        println!("{}", cli_text::flops_table(path, &config));
    }
    Ok(0)
}
