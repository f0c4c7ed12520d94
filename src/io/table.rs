//! Tables: plain named columns built by the analyses, written as CSV by polars (atomically, with a
//! `.meta.json` sidecar). Float columns are written with full round-trip precision so reruns are
//! byte-identical and pandas reads the exact values.

use std::path::Path;

use polars::prelude::*;

use super::meta::RunMeta;
use crate::error::{Error, Result};
use crate::io::atomic::write_atomic;

/// One column.
#[derive(Clone, Debug, PartialEq)]
pub enum ColumnData {
    F64(Vec<f64>),
    U64(Vec<u64>),
    I64(Vec<i64>),
    Str(Vec<String>),
    Bool(Vec<bool>),
}

impl ColumnData {
    pub fn len(&self) -> usize {
        match self {
            ColumnData::F64(v) => v.len(),
            ColumnData::U64(v) => v.len(),
            ColumnData::I64(v) => v.len(),
            ColumnData::Str(v) => v.len(),
            ColumnData::Bool(v) => v.len(),
        }
    }
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// A table of equally long named columns.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Table {
    pub columns: Vec<(String, ColumnData)>,
}

impl Table {
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends a column (builder style).
    pub fn with(mut self, name: &str, data: ColumnData) -> Self {
        self.columns.push((name.to_string(), data));
        self
    }

    pub fn f64(self, name: &str, v: Vec<f64>) -> Self {
        self.with(name, ColumnData::F64(v))
    }
    pub fn u64(self, name: &str, v: Vec<u64>) -> Self {
        self.with(name, ColumnData::U64(v))
    }
    pub fn str(self, name: &str, v: Vec<String>) -> Self {
        self.with(name, ColumnData::Str(v))
    }
    pub fn bool(self, name: &str, v: Vec<bool>) -> Self {
        self.with(name, ColumnData::Bool(v))
    }

    pub fn rows(&self) -> usize {
        self.columns.first().map_or(0, |(_, c)| c.len())
    }

    /// The column `name`, if present.
    pub fn column(&self, name: &str) -> Option<&ColumnData> {
        self.columns.iter().find(|(n, _)| n == name).map(|(_, c)| c)
    }

    /// As a polars DataFrame.
    ///
    /// # Errors
    /// Columns of different lengths.
    pub fn to_dataframe(&self) -> Result<DataFrame> {
        let cols: Vec<Column> = self
            .columns
            .iter()
            .map(|(name, data)| {
                let n = PlSmallStr::from(name.as_str());
                match data {
                    ColumnData::F64(v) => Column::new(n, v),
                    ColumnData::U64(v) => Column::new(n, v),
                    ColumnData::I64(v) => Column::new(n, v),
                    ColumnData::Str(v) => Column::new(n, v),
                    ColumnData::Bool(v) => Column::new(n, v),
                }
            })
            .collect();
        DataFrame::new_infer_height(cols).map_err(|e| Error::input("table", e))
    }

    /// CSV bytes (header + rows).
    ///
    /// # Errors
    /// As [`Table::to_dataframe`].
    pub fn to_csv(&self) -> Result<Vec<u8>> {
        let mut df = self.to_dataframe()?;
        let mut buf = Vec::new();
        CsvWriter::new(&mut buf).include_header(true).finish(&mut df).map_err(|e| Error::input("csv", e))?;
        Ok(buf)
    }

    /// Writes `path` atomically and its `.meta.json` sidecar.
    ///
    /// # Errors
    /// The CSV or its metadata sidecar cannot be written.
    pub fn write_csv(&self, path: &Path, meta: &RunMeta) -> Result<()> {
        write_atomic(path, &self.to_csv()?)?;
        meta.write_sidecar(path)?;
        Ok(())
    }

    /// Reads a CSV written by [`Table::write_csv`] back as a polars DataFrame.
    ///
    /// # Errors
    /// An unreadable or malformed CSV.
    pub fn read_csv(path: &Path) -> Result<DataFrame> {
        CsvReadOptions::default()
            .with_has_header(true)
            .try_into_reader_with_file_path(Some(path.to_path_buf()))
            .and_then(|r| r.finish())
            .map_err(|e| Error::file("csv file", path, e))
    }

    /// Markdown rendering (for reports).
    pub fn to_markdown(&self) -> String {
        let mut s = String::new();
        s.push('|');
        for (n, _) in &self.columns {
            s.push_str(&format!(" {n} |"));
        }
        s.push_str("\n|");
        for _ in &self.columns {
            s.push_str("---|");
        }
        s.push('\n');
        for r in 0..self.rows() {
            s.push('|');
            for (_, c) in &self.columns {
                let cell = match c {
                    ColumnData::F64(v) => format_float(v[r]),
                    ColumnData::U64(v) => v[r].to_string(),
                    ColumnData::I64(v) => v[r].to_string(),
                    ColumnData::Str(v) => v[r].clone(),
                    ColumnData::Bool(v) => v[r].to_string(),
                };
                s.push_str(&format!(" {cell} |"));
            }
            s.push('\n');
        }
        s
    }
}

/// Four significant digits for reports.
pub fn format_float(v: f64) -> String {
    if v == 0.0 || !v.is_finite() {
        return format!("{v}");
    }
    let mag = v.abs().log10().floor() as i32;
    if (-3..5).contains(&mag) {
        format!("{:.*}", (3 - mag).max(0) as usize, v)
    } else {
        format!("{v:.3e}")
    }
}
