//! Suites (`kind = "suite"`, e.g. `quick.toml`): each part is a spec file (relative to the suite)
//! with its own `set = [...]` overrides; suite-level `--set` overrides reach every part that has the
//! key's section, and one that reaches none is an error.

use std::path::{Path, PathBuf};

use super::overrides::Override;
use super::spec::{one_line, Kind, RawSpec, Spec, PART_KEYS, SUITE_KEYS};
use crate::error::{Error, Result};

pub(super) fn resolve_suite(raw: RawSpec, base: &Path, overrides: &[Override], alpha: f64) -> Result<Spec> {
    let mut parts = Vec::new();
    let mut used = vec![false; overrides.len()];
    for (k, part) in raw.parts.iter().enumerate() {
        let path: PathBuf = base.join(&part.spec);
        let text = super::spec::read_spec_text(&path).map_err(|e| {
            Error::config(
                format!("parts[{k}].spec"),
                &part.spec,
                format!("no readable spec at {} ({e}); give a path relative to the suite file", path.display()),
            )
        })?;
        let table: toml::Table =
            toml::from_str(&text).map_err(|e| Error::config(format!("parts[{k}].spec"), &part.spec, format!("fix the TOML: {}", one_line(&e.to_string()))))?;
        let kind: Kind = table
            .get("kind")
            .cloned()
            .and_then(|v| v.try_into().ok())
            .ok_or_else(|| Error::config(format!("parts[{k}].spec"), &part.spec, "the part has no valid kind"))?;
        if kind == Kind::Suite {
            return Err(Error::config(format!("parts[{k}].spec"), &part.spec, "a suite cannot contain a suite; list its parts directly"));
        }
        // Suite overrides go to the parts that have the key's section (seeds and data go everywhere
        // they apply).
        let mut set = part.set.clone();
        for (i, o) in overrides.iter().enumerate() {
            if PART_KEYS.contains(&o.root()) || kind.own_keys().contains(&o.root()) {
                set.push(o.text.clone());
                used[i] = true;
            } else if SUITE_KEYS.contains(&o.root()) {
                used[i] = true;
            }
        }
        let part_base = path.parent().map(Path::to_path_buf).unwrap_or_default();
        let mut spec = Spec::parse(&text, &part_base, &set).map_err(|e| match e {
            Error::Config { key, value, fix } => Error::Config { key: format!("{key} (in part {})", part.spec), value, fix },
            other => other,
        })?;
        spec.preliminary |= raw.preliminary;
        if parts.iter().any(|p: &Spec| p.name == spec.name) {
            return Err(Error::config(format!("parts[{k}]"), &spec.name, "two parts have the same name; give one a set = [\"name=…\"]"));
        }
        parts.push(spec);
    }
    if let Some(i) = used.iter().position(|u| !u) {
        return Err(Error::config(
            "--set",
            &overrides[i].text,
            "no part of the suite has this key; check the section name (model., train., analysis., spiral., theory., data, seeds)",
        ));
    }
    Ok(Spec {
        name: raw.name,
        description: raw.description,
        kind: Kind::Suite,
        preliminary: raw.preliminary,
        seeds: Vec::new(),
        alpha,
        variants: Vec::new(),
        claims: Vec::new(),
        parts,
        overrides: Vec::new(),
        source: String::new(),
    })
}
