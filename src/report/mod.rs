//! Rendering: plots (plotters PNG + SVG with an embedded font), the analyses' figures and the
//! Markdown/notebook documents of experiment reports. It renders what it is given and computes
//! nothing. Files are written atomically through [`crate::io::atomic`]; tables and their provenance
//! sidecars live in [`crate::io::table`] and [`crate::io::meta`] (re-exported here). Other writers:
//! weights and checkpoints (`model`, `train`), caches (`hooks`), run records (`experiment`).

pub mod analyze;
pub mod document;
pub mod figures;
pub mod plot;

pub use crate::io::meta::{self, RunMeta};
pub use crate::io::table::{self, ColumnData, Table};
pub use plot::{Band, LineChart, PanelGrid, ScatterPanel, Series};
