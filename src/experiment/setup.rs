//! What one variant of an experiment is, fully resolved and typed: the model, training and analysis
//! settings of a `train` experiment, or the parameters of a `spiral` / `theory` cell. A run is a
//! setup and a seed.

use serde::{Deserialize, Serialize};

use crate::analysis::manifold::MAX_SPIRAL_POINTS;
use crate::analysis::RANK_EPS;
use crate::data::{DataSpec, Split};
use crate::error::{Error, Result};
use crate::model::{Arch, ModelConfig};
use crate::train::settings::TrainSettings;

/// One variant's settings.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum Setup {
    Train(TrainSetup),
    Spiral(SpiralSetup),
    Theory(TheorySetup),
    Memory(MemorySetup),
}

/// Analyses run on each trained network (and, with `at-init`, on the network at initialisation),
/// over the first `images` validation images.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default, rename_all = "kebab-case")]
pub struct AnalysisSpec {
    pub images: usize,
    /// Activation patterns at every `.post` site (Fig. 7).
    pub patterns: bool,
    /// Lemma 2 at every position of every expansion layer.
    pub lemma2: bool,
    /// Rank of every block's Jacobian on a `jacobian-crop`² crop of the first image.
    pub jacobian: bool,
    pub jacobian_crop: usize,
    /// Also analyse the network at initialisation (metrics prefixed `init_`).
    pub at_init: bool,
    /// Keep the trained weights (`weights.safetensors`) in the run folder.
    pub keep_weights: bool,
}

impl Default for AnalysisSpec {
    fn default() -> Self {
        AnalysisSpec { images: 256, patterns: true, lemma2: false, jacobian: false, jacobian_crop: 4, at_init: false, keep_weights: false }
    }
}

/// A `train` variant.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct TrainSetup {
    pub data: String,
    pub model: ModelConfig,
    pub train: TrainSettings,
    pub analysis: AnalysisSpec,
}

fn section<T: serde::de::DeserializeOwned>(table: toml::Table, key: &str) -> Result<T> {
    toml::Value::Table(table).try_into().map_err(|e: toml::de::Error| {
        let msg = e.message().split_whitespace().collect::<Vec<_>>().join(" ");
        match msg.strip_prefix("unknown field `").and_then(|m| m.split_once("`, ")) {
            Some((field, rest)) => Error::config(format!("{key}.{field}"), "an unknown key", format!("{rest} (see the README's experiment-spec section)")),
            None => Error::config(key, "a value", msg),
        }
    })
}

impl TrainSetup {
    /// Resolves the sections of one variant.
    ///
    /// # Errors
    /// An unknown data spec or unreadable data, unknown keys, values out of range, combinations the model cannot build.
    pub fn resolve(data: &str, mut model: toml::Table, train: toml::Table, analysis: toml::Table) -> Result<TrainSetup> {
        let spec: DataSpec = data.parse()?;
        // 32×32 inputs unless the spec says otherwise; classes from the data set.
        model.entry("resolution").or_insert(toml::Value::Integer(32));
        let resolution = model.get("resolution").and_then(|v| v.as_integer()).unwrap_or(32).max(1) as usize;
        if !model.contains_key("classes") {
            let classes = spec.open(Split::Test, resolution, 0)?.classes();
            model.insert("classes".into(), toml::Value::Integer(classes as i64));
        }
        let model: ModelConfig = section(model, "model")?;
        model.validate().map_err(|e| prefix(e, "model"))?;
        if model.arch.is_detector() {
            return Err(Error::config("model.arch", format!("{:?}", model.arch), "train experiments train classifiers; use mobilenet_v2 or mobilenet_v1"));
        }
        let train: TrainSettings = section(train, "train")?;
        train.resolve(data, 0).map_err(|e| prefix(e, "train"))?;
        let analysis: AnalysisSpec = section(analysis, "analysis")?;
        if analysis.images == 0 {
            return Err(Error::config("analysis.images", 0, "analyse at least 1 validation image"));
        }
        if analysis.jacobian && !(1..=16).contains(&analysis.jacobian_crop) {
            return Err(Error::config("analysis.jacobian-crop", analysis.jacobian_crop, "use a crop of 1 to 16 positions per side"));
        }
        if analysis.lemma2 && model.arch == Arch::MobilenetV1 {
            return Err(Error::config("analysis.lemma2", true, "MobileNetV1 has no expansion layers; set analysis.lemma2 = false"));
        }
        Ok(TrainSetup { data: data.to_string(), model, train, analysis })
    }
}

fn prefix(e: Error, ctx: &str) -> Error {
    match e {
        Error::Config { key, value, fix } => Error::Config { key: format!("{ctx}.{key}"), value, fix },
        other => other,
    }
}

/// A `spiral` cell: the embedding dimension n.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default, rename_all = "kebab-case")]
pub struct SpiralSetup {
    pub n: usize,
    pub points: usize,
    pub turns: f64,
    pub collapse_ratio: f64,
    pub neighbour_window: usize,
    pub rank_eps: f64,
}

impl Default for SpiralSetup {
    fn default() -> Self {
        SpiralSetup { n: 2, points: 600, turns: 2.0, collapse_ratio: 0.05, neighbour_window: 5, rank_eps: RANK_EPS }
    }
}

impl SpiralSetup {
    /// # Errors
    /// Unknown keys, values out of range.
    pub fn resolve(table: toml::Table) -> Result<SpiralSetup> {
        let s: SpiralSetup = section(table, "spiral")?;
        if s.n < 1 || s.n > 4096 {
            return Err(Error::config("spiral.n", s.n, "use an embedding dimension from 1 to 4096"));
        }
        if s.points < 2 || s.points > MAX_SPIRAL_POINTS || s.neighbour_window.saturating_mul(2) >= s.points {
            return Err(Error::config(
                "spiral.points",
                s.points,
                format!("use at least 2 and at most {MAX_SPIRAL_POINTS} points, and more than twice neighbour-window"),
            ));
        }
        if !(s.turns > 0.0 && s.turns <= 100.0 && s.collapse_ratio > 0.0 && s.collapse_ratio < 1.0 && s.rank_eps > 0.0) {
            return Err(Error::config("spiral", "turns/collapse-ratio/rank-eps", "use turns in (0, 100], collapse-ratio in (0, 1) and rank-eps > 0"));
        }
        crate::analysis::invertibility::check_rank_eps(s.rank_eps).map_err(|e| prefix(e, "spiral"))?;
        Ok(s)
    }
}

/// A `theory` cell: input width n and expansion ratio t (m = round(t·n)).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default, rename_all = "kebab-case")]
pub struct TheorySetup {
    pub n: usize,
    pub t: f64,
    /// Random layers per seed (one Gaussian input each).
    pub samples: usize,
    pub rank_eps: f64,
}

impl Default for TheorySetup {
    fn default() -> Self {
        TheorySetup { n: 16, t: 6.0, samples: 400, rank_eps: RANK_EPS }
    }
}

impl TheorySetup {
    /// # Errors
    /// Unknown keys, values out of range.
    pub fn resolve(table: toml::Table) -> Result<TheorySetup> {
        let s: TheorySetup = section(table, "theory")?;
        if s.n == 0 || s.n > 1024 {
            return Err(Error::config("theory.n", s.n, "use an input width from 1 to 1024"));
        }
        if !(s.t >= 1.0 && s.t <= 64.0) {
            return Err(Error::config("theory.t", s.t, "use an expansion ratio from 1 to 64"));
        }
        if !(1..=1_000_000).contains(&s.samples) {
            return Err(Error::config("theory.samples", s.samples, "draw 1 to 1000000 layers per seed"));
        }
        crate::analysis::invertibility::check_rank_eps(s.rank_eps).map_err(|e| prefix(e, "theory"))?;
        Ok(s)
    }
}

/// A `memory` cell (Table 3, §5.1): a network's materialised-memory accounting and, with `splits`,
/// the measured peak heap of one image's forward pass run that way (`unsplit`, `1`…`k`, or `C` — one
/// channel per split; MobileNetV2 only).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default, rename_all = "kebab-case")]
pub struct MemorySetup {
    pub arch: Arch,
    pub width: f64,
    pub resolution: usize,
    pub bytes_per_element: usize,
    pub splits: Option<String>,
}

impl Default for MemorySetup {
    fn default() -> Self {
        MemorySetup { arch: Arch::MobilenetV2, width: 1.0, resolution: 224, bytes_per_element: 2, splits: None }
    }
}

impl MemorySetup {
    /// The model config (1000 classes, as in Table 3).
    pub fn model(&self) -> ModelConfig {
        ModelConfig { arch: self.arch, width: self.width, resolution: self.resolution, ..Default::default() }
    }

    /// # Errors
    /// Unknown keys, values out of range, splits for a network that cannot run them.
    pub fn resolve(table: toml::Table) -> Result<MemorySetup> {
        let s: MemorySetup = section(table, "memory")?;
        s.model().validate().map_err(|e| prefix(e, "memory"))?;
        if s.arch.is_detector() {
            return Err(Error::config("memory.arch", format!("{:?}", s.arch), "use mobilenet_v2 or mobilenet_v1 (Table 3's networks)"));
        }
        if !(1..=8).contains(&s.bytes_per_element) {
            return Err(Error::config("memory.bytes-per-element", s.bytes_per_element, "use 1 to 8 bytes (2 for Table 3's 16-bit figures)"));
        }
        if let Some(k) = &s.splits {
            if s.arch != Arch::MobilenetV2 {
                return Err(Error::config("memory.splits", k, "split execution is MobileNetV2's (§5.1); drop splits for other networks"));
            }
            if k != "unsplit" {
                k.parse::<crate::model::split::Splits>().map_err(|e| prefix(e, "memory"))?;
            }
        }
        Ok(s)
    }
}
