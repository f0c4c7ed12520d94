//! A spec's variants: the `[grid]` (Cartesian product of `"section.key" = [values…]`, named
//! `key=value`) times the `[[variants]]` list, each merged over the base sections and resolved into a
//! typed [`Setup`]. Two variants with the same name or the same resolved config are an error.

use super::overrides::format_value;
use super::setup::{MemorySetup, Setup, SpiralSetup, TheorySetup, TrainSetup};
use super::spec::{Kind, RawSpec, RawVariant, Variant};
use crate::error::{Error, Result};

/// Sections of a variant: the base sections with the variant's own tables merged over them.
fn merged(base: &Option<toml::Table>, over: &Option<toml::Table>) -> toml::Table {
    let mut t = base.clone().unwrap_or_default();
    if let Some(o) = over {
        for (k, v) in o {
            t.insert(k.clone(), v.clone());
        }
    }
    t
}

/// Most variants one spec's grid may expand to (with [`super::spec::MAX_SEEDS`] this bounds a plan).
pub const MAX_VARIANTS: usize = 10_000;

/// The grid: `"section.key" = [values…]`, expanded as a Cartesian product in key order.
fn grid_points(raw: &RawSpec) -> Result<Vec<Vec<(String, String, toml::Value)>>> {
    let mut points: Vec<Vec<(String, String, toml::Value)>> = vec![Vec::new()];
    for (path, values) in raw.grid.iter().flatten() {
        let (section, key) = path.split_once('.').ok_or_else(|| {
            Error::config(format!("grid.{path}"), path, format!("name a section and key, e.g. \"{}.{path}\"", raw.kind.sections().first().unwrap_or(&"model")))
        })?;
        if !raw.kind.sections().contains(&section) {
            return Err(Error::config(format!("grid.{path}"), section, format!("a {} spec varies {}", raw.kind.as_str(), raw.kind.sections().join(", "))));
        }
        let list = values
            .as_array()
            .filter(|a| !a.is_empty())
            .ok_or_else(|| Error::config(format!("grid.\"{path}\""), values, "give a non-empty list of values, e.g. [1, 2, 6]"))?;
        if points.len().checked_mul(list.len()).is_none_or(|n| n > MAX_VARIANTS) {
            return Err(Error::config(
                "grid",
                format!("more than {MAX_VARIANTS} variants"),
                "the grid's Cartesian product is too large; split the sweep into several specs",
            ));
        }
        points =
            points.into_iter().flat_map(|p| list.iter().map(move |v| [p.clone(), vec![(section.to_string(), key.to_string(), v.clone())]].concat())).collect();
    }
    Ok(points)
}

pub(super) fn resolve_variants(raw: &RawSpec) -> Result<Vec<Variant>> {
    let explicit: Vec<Option<&RawVariant>> = if raw.variants.is_empty() { vec![None] } else { raw.variants.iter().map(Some).collect() };
    let grid = grid_points(raw)?;
    let mut out: Vec<Variant> = Vec::new();
    for v in &explicit {
        if let Some(v) = v {
            for (section, present) in [
                ("model", v.model.is_some()),
                ("train", v.train.is_some()),
                ("analysis", v.analysis.is_some()),
                ("spiral", v.spiral.is_some()),
                ("theory", v.theory.is_some()),
                ("memory", v.memory.is_some()),
            ] {
                if present && !raw.kind.sections().contains(&section) {
                    return Err(Error::config(
                        format!("variants.{}.{section}", v.name),
                        section,
                        format!("a {} spec's variants set {}", raw.kind.as_str(), raw.kind.sections().join(", ")),
                    ));
                }
            }
        }
        for point in &grid {
            let get = |section: &str, base: &Option<toml::Table>, over: Option<&Option<toml::Table>>| {
                let mut t = merged(base, over.unwrap_or(&None));
                for (s, k, val) in point {
                    if s == section {
                        t.insert(k.clone(), val.clone());
                    }
                }
                t
            };
            let grid_name: Vec<String> = point.iter().map(|(_, k, val)| format!("{k}={}", format_value(val))).collect();
            let name = match (v, grid_name.is_empty()) {
                (Some(v), true) => v.name.clone(),
                (Some(v), false) => format!("{},{}", v.name, grid_name.join(",")),
                (None, false) => grid_name.join(","),
                (None, true) => "default".to_string(),
            };
            let setup = match raw.kind {
                Kind::Train => TrainSetup::resolve(
                    raw.data.as_deref().unwrap_or_default(),
                    get("model", &raw.model, v.map(|v| &v.model)),
                    get("train", &raw.train, v.map(|v| &v.train)),
                    get("analysis", &raw.analysis, v.map(|v| &v.analysis)),
                )
                .map(Setup::Train),
                Kind::Spiral => SpiralSetup::resolve(get("spiral", &raw.spiral, v.map(|v| &v.spiral))).map(Setup::Spiral),
                Kind::Theory => TheorySetup::resolve(get("theory", &raw.theory, v.map(|v| &v.theory))).map(Setup::Theory),
                Kind::Memory => MemorySetup::resolve(get("memory", &raw.memory, v.map(|v| &v.memory))).map(Setup::Memory),
                Kind::Suite => unreachable!("suites have no variants"),
            }
            .map_err(|e| match e {
                Error::Config { key, value, fix } if name != "default" => Error::Config { key, value: format!("{value} (variant {name})"), fix },
                other => other,
            })?;
            if let Some(prev) = out.iter().find(|p| p.name == name) {
                return Err(Error::config("variants", &prev.name, "two variants have the same name; rename one"));
            }
            if let Some(prev) = out.iter().find(|p| p.setup == setup) {
                return Err(Error::config("variants", format!("{} and {name}", prev.name), "the two variants resolve to the same config; change or drop one"));
            }
            out.push(Variant { name, setup });
        }
    }
    Ok(out)
}
