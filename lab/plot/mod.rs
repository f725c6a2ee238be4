//! Figures as files: each study's [`Figure`] descriptions drawn by plotters ([`render`]) as
//! PNG and SVG under `plots/<experiment>/`, in the shared look of [`style`].

pub mod render;
pub mod style;

use std::path::Path;

use anyhow::Result;

use crate::analysis::figure::Figure;

/// Write each figure into `dir` (created if needed) as `<stem>.png` and `<stem>.svg`. Returns
/// the file stems written.
pub fn save_all(figures: &[Figure], dir: &Path) -> Result<Vec<String>> {
    std::fs::create_dir_all(dir)?;
    style::register_fonts();
    let mut written = Vec::new();
    for fig in figures {
        style::save(fig, dir)?;
        written.push(fig.stem.clone());
    }
    Ok(written)
}
