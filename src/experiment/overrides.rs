//! `--set key=value` overrides of a spec: a dotted key path (`train.epochs`, `model.width`, `data`)
//! and a TOML value (`3`, `0.5`, `[1, 2]`, `"0..5"`); a value that is not valid TOML is taken as a
//! string, so `--set data=cifar:/data/cifar` needs no quotes. A grid axis is `grid.model.expansion=[1, 6]`.

use std::str::FromStr;

use crate::error::{Error, Result};

/// One override.
#[derive(Clone, Debug, PartialEq)]
pub struct Override {
    /// As given (recorded in the resolved spec).
    pub text: String,
    pub path: Vec<String>,
    pub value: toml::Value,
}

impl Override {
    /// The top-level key.
    pub fn root(&self) -> &str {
        &self.path[0]
    }
}

impl FromStr for Override {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        let (key, value) = s.split_once('=').ok_or_else(|| Error::config("--set", s, "write key=value, e.g. --set train.epochs=3"))?;
        let mut path: Vec<String> = key.trim().split('.').map(str::to_string).collect();
        // Grid keys are themselves dotted ("model.expansion"): `grid.model.expansion=[1, 2]`.
        if path.len() > 2 && path[0] == "grid" {
            path = vec!["grid".into(), path[1..].join(".")];
        }
        if path.iter().any(|p| p.is_empty()) {
            return Err(Error::config("--set", s, "the key is a dotted path like model.width or data"));
        }
        let value = match toml::from_str::<toml::Table>(&format!("v = {}", value.trim())) {
            Ok(mut t) => t.remove("v").unwrap_or(toml::Value::String(value.trim().to_string())),
            Err(_) => toml::Value::String(value.trim().to_string()),
        };
        Ok(Override { text: s.to_string(), path, value })
    }
}

/// Sets each override in `table`, creating intermediate tables.
///
/// # Errors
/// A key that names no section, a value that is not TOML.
pub fn apply_overrides(table: &mut toml::Table, overrides: &[Override]) -> Result<()> {
    for o in overrides {
        let mut t = &mut *table;
        for (depth, part) in o.path[..o.path.len() - 1].iter().enumerate() {
            let entry = t.entry(part.clone()).or_insert_with(|| toml::Value::Table(toml::Table::new()));
            t = entry.as_table_mut().ok_or_else(|| Error::config("--set", &o.text, format!("{} is not a table", o.path[..=depth].join("."))))?;
        }
        t.insert(o.path[o.path.len() - 1].clone(), o.value.clone());
    }
    Ok(())
}

/// A value as it appears in a variant name: integers without a fraction, strings bare.
pub fn format_value(v: &toml::Value) -> String {
    match v {
        toml::Value::String(s) => s.clone(),
        toml::Value::Float(f) if f.fract() == 0.0 && f.abs() < 1e15 => format!("{}", *f as i64),
        toml::Value::Float(f) if *f != 0.0 && (f.abs() >= 1e15 || f.abs() < 1e-4) => format!("{f:e}"),
        toml::Value::Array(a) => a.iter().map(format_value).collect::<Vec<_>>().join("-"),
        other => other.to_string(),
    }
}
