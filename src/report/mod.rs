//! The only file writers of analysis results: tables (polars CSV + `.meta.json` sidecars), plots
//! (plotters PNG + SVG with an embedded font), and experiment reports (Markdown + Jupyter notebook).

pub mod analyze;
pub mod document;
pub mod experiment;
pub mod figures;
pub mod meta;
pub mod plot;
pub mod table;

pub use meta::RunMeta;
pub use plot::{Band, LineChart, PanelGrid, ScatterPanel, Series};
pub use table::{ColumnData, Table};
