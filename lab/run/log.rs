//! Typed CSV files: [`RowLog`] appends rows and flushes each as written (a killed run keeps
//! every finished row); [`read_rows`] reads them back with the same type.

use std::fs::{File, OpenOptions};
use std::io::BufWriter;
use std::marker::PhantomData;
use std::path::Path;

use anyhow::{Context, Result};

use super::rows::Row;

/// An append-only CSV file of `R` rows.
pub struct RowLog<R: Row> {
    writer: csv::Writer<BufWriter<File>>,
    row: PhantomData<R>,
}

impl<R: Row> RowLog<R> {
    /// Open `R::FILE` in `dir` for appending; write the header (`R`'s fields, then `extra`
    /// column names) if the file is new or empty.
    pub fn open(dir: &Path, extra: &[String]) -> Result<Self> {
        let path = dir.join(R::FILE);
        let exists = path.metadata().map(|m| m.len() > 0).unwrap_or(false);
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .with_context(|| format!("opening {}", path.display()))?;
        let mut writer = csv::WriterBuilder::new()
            .has_headers(false)
            .from_writer(BufWriter::new(file));
        if !exists {
            writer.write_record(columns::<R>().iter().chain(extra))?;
            writer.flush()?;
        }
        Ok(RowLog {
            writer,
            row: PhantomData,
        })
    }

    pub fn append(&mut self, row: &R) -> Result<()> {
        self.writer.serialize((row, row.extra_fields()))?;
        self.writer.flush()?;
        Ok(())
    }
}

/// The columns of `R`: its field names, as serde names them.
pub fn columns<R: Row>() -> Vec<String> {
    let mut w = csv::Writer::from_writer(Vec::new());
    w.serialize(R::default()).expect("a row type serialises");
    let bytes = w.into_inner().expect("an in-memory writer");
    let mut r = csv::ReaderBuilder::new()
        .has_headers(false)
        .from_reader(&bytes[..]);
    let header = r.records().next().expect("a header").expect("valid CSV");
    header.iter().map(str::to_string).collect()
}

/// Every `R` row in `dir` (none when the file does not exist); extra columns are ignored.
pub fn read_rows<R: Row>(dir: &Path) -> Result<Vec<R>> {
    let path = dir.join(R::FILE);
    if !path.exists() {
        return Ok(vec![]);
    }
    let mut r =
        csv::Reader::from_path(&path).with_context(|| format!("reading {}", path.display()))?;
    r.deserialize()
        .map(|row| row.with_context(|| format!("parsing {}", path.display())))
        .collect()
}
