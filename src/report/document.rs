//! A report as a list of blocks, rendered twice: `report.md` (images linked) and `report.ipynb`
//! (nbformat 4.5: markdown cells, plots embedded as base64 PNG outputs of `Image(...)` cells, code
//! cells to load the CSVs with pandas). Both renderings are pure functions of the blocks and the PNG
//! files, so reruns give the same bytes.

use std::path::{Path, PathBuf};

use base64::Engine;
use serde_json::{json, Value};

use crate::error::{Error, Result};
use crate::io::atomic::write_atomic;

/// One piece of a report.
#[derive(Clone, Debug, PartialEq)]
pub enum Block {
    /// Markdown text (headings, paragraphs, tables).
    Markdown(String),
    /// A plot: `<stem>.png` next to the report (an `.svg` sits beside it), with a caption.
    Image { stem: String, caption: String },
    /// Python for the notebook; in the Markdown report a fenced code block.
    Code(String),
}

/// A report.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Document {
    pub blocks: Vec<Block>,
}

impl Document {
    pub fn md(&mut self, text: impl Into<String>) {
        self.blocks.push(Block::Markdown(text.into()));
    }
    pub fn image(&mut self, stem: impl Into<String>, caption: impl Into<String>) {
        self.blocks.push(Block::Image { stem: stem.into(), caption: caption.into() });
    }
    pub fn code(&mut self, text: impl Into<String>) {
        self.blocks.push(Block::Code(text.into()));
    }

    /// The Markdown rendering.
    pub fn to_markdown(&self) -> String {
        let mut s = String::new();
        for b in &self.blocks {
            match b {
                Block::Markdown(t) => s.push_str(t.trim_end()),
                Block::Image { stem, caption } => s.push_str(&format!("![{caption}]({stem}.png)\n\n*{caption}* ([SVG]({stem}.svg))")),
                Block::Code(c) => s.push_str(&format!("```python\n{}\n```", c.trim_end())),
            }
            s.push_str("\n\n");
        }
        s
    }

    /// The notebook (nbformat 4.5) with every image read from `dir` and embedded.
    ///
    /// # Errors
    /// A plot that cannot be read back for embedding.
    pub fn to_notebook(&self, dir: &Path) -> Result<Value> {
        let mut cells: Vec<Value> = Vec::new();
        let mut pending = String::new();
        let id = |cells: &Vec<Value>| format!("cell-{}", cells.len());
        let flush = |pending: &mut String, cells: &mut Vec<Value>| {
            if !pending.is_empty() {
                let cell = json!({"cell_type": "markdown", "id": format!("cell-{}", cells.len()), "metadata": {}, "source": source_lines(pending.trim_end())});
                cells.push(cell);
                pending.clear();
            }
        };
        for b in &self.blocks {
            match b {
                Block::Markdown(t) => {
                    pending.push_str(t.trim_end());
                    pending.push_str("\n\n");
                }
                Block::Image { stem, caption } => {
                    flush(&mut pending, &mut cells);
                    let png = dir.join(format!("{stem}.png"));
                    let bytes = std::fs::read(&png).map_err(|e| Error::io(&png, e))?;
                    let data = base64::engine::general_purpose::STANDARD.encode(bytes);
                    let code = format!("# {caption}\nfrom IPython.display import Image\nImage(filename=\"{stem}.png\")");
                    cells.push(json!({
                        "cell_type": "code",
                        "execution_count": null,
                        "id": id(&cells),
                        "metadata": {},
                        "outputs": [{"output_type": "display_data", "data": {"image/png": data, "text/plain": ["<IPython.core.display.Image object>"]}, "metadata": {}}],
                        "source": source_lines(&code),
                    }));
                }
                Block::Code(c) => {
                    flush(&mut pending, &mut cells);
                    cells.push(json!({"cell_type": "code", "execution_count": null, "id": id(&cells), "metadata": {}, "outputs": [], "source": source_lines(c.trim_end())}));
                }
            }
        }
        flush(&mut pending, &mut cells);
        Ok(json!({
            "cells": cells,
            "metadata": {
                "kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"},
                "language_info": {"name": "python"}
            },
            "nbformat": 4,
            "nbformat_minor": 5
        }))
    }

    /// Writes `report.md` and `report.ipynb` into `dir`.
    ///
    /// # Errors
    /// A file that cannot be written.
    pub fn write(&self, dir: &Path) -> Result<Vec<PathBuf>> {
        let md = dir.join("report.md");
        write_atomic(&md, self.to_markdown().as_bytes())?;
        let nb = dir.join("report.ipynb");
        let text = serde_json::to_string_pretty(&self.to_notebook(dir)?).map_err(|e| Error::internal("serialising the notebook", e))?;
        write_atomic(&nb, format!("{text}\n").as_bytes())?;
        Ok(vec![md, nb])
    }
}

/// Notebook `source`: lines keeping their newline, the last without.
fn source_lines(text: &str) -> Vec<String> {
    let lines: Vec<&str> = text.split('\n').collect();
    let last = lines.len() - 1;
    lines.iter().enumerate().map(|(i, l)| if i < last { format!("{l}\n") } else { l.to_string() }).collect()
}
