//! Figures as files: each study's [`Figure`] descriptions drawn by plotters ([`render`]) as
//! PNG and SVG under `plots/<experiment>/`, in the shared look of [`style`].

pub mod render;
pub mod style;

use std::path::Path;

use anyhow::Result;
use plotters::prelude::*;

use crate::analysis::figure::Figure;

/// Write each figure into `dir` (created if needed) as `<stem>.png` and `<stem>.svg`. Returns
/// the file stems written.
pub fn save_all(figures: &[Figure], dir: &Path) -> Result<Vec<String>> {
    std::fs::create_dir_all(dir)?;
    style::register_fonts();
    let mut written = Vec::new();
    for fig in figures {
        save(fig, dir)?;
        written.push(fig.stem.clone());
    }
    Ok(written)
}

/// Write `<dir>/<stem>.png` and `.svg` (each through a temporary name, then renamed).
pub fn save(fig: &Figure, dir: &Path) -> Result<()> {
    let stem = &fig.stem;
    let png = dir.join(format!("{stem}.png"));
    let svg = dir.join(format!("{stem}.svg"));
    let png_tmp = dir.join(format!(".{stem}.tmp.png"));
    let svg_tmp = dir.join(format!(".{stem}.tmp.svg"));
    {
        let root = BitMapBackend::new(&png_tmp, (style::WIDTH, style::HEIGHT)).into_drawing_area();
        root.fill(&WHITE)
            .map_err(|e| anyhow::anyhow!("{stem}.png: {e}"))?;
        render::draw(fig, &root).map_err(|e| anyhow::anyhow!("{stem}.png: {e}"))?;
        root.present()
            .map_err(|e| anyhow::anyhow!("{stem}.png: {e}"))?;
    }
    {
        let root = SVGBackend::new(&svg_tmp, (style::WIDTH, style::HEIGHT)).into_drawing_area();
        root.fill(&WHITE)
            .map_err(|e| anyhow::anyhow!("{stem}.svg: {e}"))?;
        render::draw(fig, &root).map_err(|e| anyhow::anyhow!("{stem}.svg: {e}"))?;
        root.present()
            .map_err(|e| anyhow::anyhow!("{stem}.svg: {e}"))?;
    }
    std::fs::rename(&png_tmp, &png)?;
    std::fs::rename(&svg_tmp, &svg)?;
    Ok(())
}
