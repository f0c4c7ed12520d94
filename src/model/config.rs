//! Model configuration: plain serde data with `Default` (torchvision's `mobilenet_v2()`), validated
//! before anything is built. The TOML keys are the CLI flag names (`--stage-expansion` ↔
//! `stage-expansion`).

use serde::{Deserialize, Serialize};

use super::block_setting::{BlockSetting, MOBILENET_V1_TABLE1, MOBILENET_V2_TABLE2, STEM_STRIDE};
use crate::error::{Error, Result};
use crate::layers::{Activation, Padding};

/// Most weights a network may have (1 GiB of f32; the default network has 3.5M).
pub const MAX_PARAMS: u64 = 1 << 28;
/// Most values in one activation of one image (512 MiB of f32; the default network's widest is 1.2M).
pub const MAX_ACTIVATION: u64 = 1 << 27;

/// Which network.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Arch {
    #[default]
    MobilenetV2,
    /// Howard et al. 2017: the depthwise-separable baseline of the paper's Table 3.
    MobilenetV1,
    /// SSDLite on MobileNetV2 (paper §6.2): separable prediction layers and extra layers.
    SsdliteMobilenetV2,
    /// SSD with regular 3×3 convolutions on MobileNetV2 (Table 5's comparison).
    SsdMobilenetV2,
    /// SSDLite on MobileNetV1 (Table 6).
    SsdliteMobilenetV1,
}

impl Arch {
    /// The name as flags and configs spell it (`mobilenet_v2`, `ssdlite_mobilenet_v2`, …).
    pub fn name(self) -> &'static str {
        match self {
            Arch::MobilenetV2 => "mobilenet_v2",
            Arch::MobilenetV1 => "mobilenet_v1",
            Arch::SsdliteMobilenetV2 => "ssdlite_mobilenet_v2",
            Arch::SsdMobilenetV2 => "ssd_mobilenet_v2",
            Arch::SsdliteMobilenetV1 => "ssdlite_mobilenet_v1",
        }
    }

    /// Whether this is a detector (SSD/SSDLite) rather than a classifier.
    pub fn is_detector(self) -> bool {
        matches!(self, Arch::SsdliteMobilenetV2 | Arch::SsdMobilenetV2 | Arch::SsdliteMobilenetV1)
    }
    /// The classifier architecture under a detector (itself for classifiers).
    pub fn backbone(self) -> Arch {
        match self {
            Arch::SsdliteMobilenetV1 | Arch::MobilenetV1 => Arch::MobilenetV1,
            _ => Arch::MobilenetV2,
        }
    }
}

/// The activation after the projection BN, before the shortcut add. The paper's point: `linear`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BottleneckActivation {
    #[default]
    Linear,
    Relu6,
    Relu,
}

impl BottleneckActivation {
    pub fn activation(self) -> Activation {
        match self {
            BottleneckActivation::Linear => Activation::Identity,
            BottleneckActivation::Relu6 => Activation::Relu6,
            BottleneckActivation::Relu => Activation::Relu,
        }
    }
}

/// The activation of the stem, the expansion, the depthwise and the head layers.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum HiddenActivation {
    #[default]
    Relu6,
    Relu,
}

impl HiddenActivation {
    pub fn activation(self) -> Activation {
        match self {
            HiddenActivation::Relu6 => Activation::Relu6,
            HiddenActivation::Relu => Activation::Relu,
        }
    }
}

/// Where residual connections join (paper Fig. 6b).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Shortcut {
    /// Between thin bottlenecks, where stride 1 and in == out (the paper's design).
    #[default]
    Bottleneck,
    /// Between the wide tensors entering the projection, where width and resolution match.
    Expansion,
    /// No residual connections.
    None,
}

/// Everything that determines a model's structure. `Default` is torchvision's `mobilenet_v2()`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default, rename_all = "kebab-case")]
pub struct ModelConfig {
    pub arch: Arch,
    /// Width multiplier α.
    pub width: f64,
    /// Input resolution used for cost accounting and hook shapes (the forward pass takes any size).
    pub resolution: usize,
    pub classes: usize,
    pub bottleneck: BottleneckActivation,
    pub activation: HiddenActivation,
    pub shortcut: Shortcut,
    /// One expansion ratio t for every stage (overrides Table 2's t column).
    pub expansion: Option<f64>,
    /// Seven expansion ratios, one per Table 2 row.
    pub stage_expansion: Option<Vec<f64>>,
    /// Eight strides: the stem, then each Table 2 row's first block.
    pub strides: Option<Vec<usize>>,
    pub padding: Padding,
    pub bn_eps: f64,
    /// Dropout probability before the classifier (identity at inference).
    pub dropout: f64,
}

impl Default for ModelConfig {
    fn default() -> Self {
        ModelConfig {
            arch: Arch::MobilenetV2,
            width: 1.0,
            resolution: 224,
            classes: 1000,
            bottleneck: BottleneckActivation::Linear,
            activation: HiddenActivation::Relu6,
            shortcut: Shortcut::Bottleneck,
            expansion: None,
            stage_expansion: None,
            strides: None,
            padding: Padding::Torch,
            bn_eps: 1e-5,
            dropout: 0.2,
        }
    }
}

/// Smallest input resolution accepted (five stride-2 stages bring 32 down to 1×1).
pub const MIN_RESOLUTION: usize = 32;

/// Most classes accepted (ImageNet-21k has 21,841).
pub const MAX_CLASSES: usize = 100_000;

/// Most classes a detector accepts (its class predictors grow with anchors × classes).
pub const MAX_DETECTOR_CLASSES: usize = 1_000;

/// Largest input resolution accepted: one expansion tensor of a 2048² image already takes ~1.6 GB.
pub const MAX_RESOLUTION: usize = 2048;

impl ModelConfig {
    /// Checks every value; errors name the key, the value and the fix.
    ///
    /// # Errors
    /// A value out of range or a combination the network cannot build, naming the key and the fix.
    pub fn validate(&self) -> Result<()> {
        if !(self.width.is_finite() && self.width > 0.0 && self.width <= 10.0) {
            return Err(Error::config("width", self.width, "use a multiplier in (0, 10], e.g. 1.0 or 0.35"));
        }
        if !(MIN_RESOLUTION..=MAX_RESOLUTION).contains(&self.resolution) {
            return Err(Error::config("resolution", self.resolution, format!("use {MIN_RESOLUTION} to {MAX_RESOLUTION} pixels, e.g. 224")));
        }
        if !(1..=MAX_CLASSES).contains(&self.classes) {
            return Err(Error::config("classes", self.classes, format!("use 1 to {MAX_CLASSES} classes")));
        }
        if self.arch.is_detector() && self.classes > MAX_DETECTOR_CLASSES {
            return Err(Error::config(
                "classes",
                self.classes,
                format!("a detector predicts every class at every anchor; use 1 to {MAX_DETECTOR_CLASSES} classes (COCO has 90)"),
            ));
        }
        if self.expansion.is_some() && self.stage_expansion.is_some() {
            return Err(Error::config(
                "expansion",
                format!("{:?} together with stage-expansion", self.expansion.unwrap_or_default()),
                "give either one global expansion or a per-stage list, not both",
            ));
        }
        if let Some(t) = self.expansion {
            check_expansion("expansion", t)?;
        }
        if let Some(ts) = &self.stage_expansion {
            if ts.len() != MOBILENET_V2_TABLE2.len() {
                return Err(Error::config("stage-expansion", format!("{ts:?}"), format!("give {} values, one per Table 2 row", MOBILENET_V2_TABLE2.len())));
            }
            for &t in ts {
                check_expansion("stage-expansion", t)?;
            }
        }
        let v1 = self.arch.backbone() == Arch::MobilenetV1;
        if let Some(s) = &self.strides {
            let want = if v1 { MOBILENET_V1_TABLE1.len() + 1 } else { MOBILENET_V2_TABLE2.len() + 1 };
            if s.len() != want || s.iter().any(|&v| v != 1 && v != 2) {
                let fix = if v1 {
                    "give 14 strides of 1 or 2: the stem, then each of the 13 separable layers (default 2,1,2,1,2,1,2,1,1,1,1,1,2,1)"
                } else {
                    "give 8 strides of 1 or 2: the stem, then each of the 7 stages (default 2,1,2,2,2,1,2,1)"
                };
                return Err(Error::config("strides", format!("{s:?}"), fix));
            }
        }
        if v1 {
            let not_v1 = |key: &str, v: String| {
                Error::config(key, v, "mobilenet_v1 has no expansion, linear bottleneck or shortcut; drop the flag or use --arch mobilenet_v2")
            };
            if self.expansion.is_some() || self.stage_expansion.is_some() {
                return Err(not_v1("expansion", format!("{:?}", self.expansion.or(self.stage_expansion.as_ref().and_then(|v| v.first().copied())))));
            }
            if self.bottleneck != BottleneckActivation::Linear {
                return Err(not_v1("bottleneck", self.bottleneck.activation().name().to_string()));
            }
            if self.shortcut != Shortcut::Bottleneck {
                return Err(not_v1("shortcut", format!("{:?}", self.shortcut).to_lowercase()));
            }
        }
        if !(self.bn_eps.is_finite() && self.bn_eps > 0.0) {
            return Err(Error::config("bn-eps", self.bn_eps, "use a small positive value: 1e-5 (PyTorch) or 1e-3 (Keras)"));
        }
        if !(0.0..1.0).contains(&self.dropout) {
            return Err(Error::config("dropout", self.dropout, "use a probability in [0, 1)"));
        }
        self.check_size()
    }

    /// Keeps a network buildable and runnable in memory: at most [`MAX_PARAMS`] weights and
    /// [`MAX_ACTIVATION`] values in its widest activation (the default network: 3.5M and 1.2M), estimated
    /// from the plans before anything is allocated.
    fn check_size(&self) -> Result<()> {
        if self.arch.backbone() == Arch::MobilenetV1 {
            return Ok(());
        }
        let stem = super::block_setting::make_divisible(super::block_setting::STEM_CHANNELS as f64 * self.width, 8) as u64;
        let stem_stride = self.strides.as_ref().and_then(|s| s.first().copied()).unwrap_or(STEM_STRIDE) as u64;
        let mut side = (self.resolution as u64).div_ceil(stem_stride);
        let (mut params, mut widest) = (27 * stem, stem * side * side);
        let mut last = stem;
        for p in super::block_setting::expand_stages(&self.stages(), stem as usize, self.width) {
            let (i, h, o) = (p.in_channels as u64, p.hidden_channels as u64, p.out_channels as u64);
            widest = widest.max(h * side * side);
            side = side.div_ceil(p.stride as u64);
            params += i * h + 9 * h + h * o;
            last = o;
        }
        let head = super::block_setting::make_divisible(super::block_setting::HEAD_CHANNELS as f64 * self.width.max(1.0), 8) as u64;
        params += last * head + head * self.classes as u64;
        widest = widest.max(head * side * side);
        if params > MAX_PARAMS || widest > MAX_ACTIVATION {
            return Err(Error::config(
                "width/expansion/resolution/classes",
                format!(
                    "{}/{:?}/{}/{} ({params} weights, widest activation {widest} values)",
                    self.width,
                    self.expansion.or(self.stage_expansion.as_ref().and_then(|v| v.iter().copied().reduce(f64::max))),
                    self.resolution,
                    self.classes
                ),
                format!(
                    "keep a network under {MAX_PARAMS} weights and {MAX_ACTIVATION} values per activation: lower the width, expansion, resolution or classes"
                ),
            ));
        }
        Ok(())
    }

    /// Table 2 with this config's expansion and stride overrides applied.
    pub fn stages(&self) -> Vec<BlockSetting> {
        MOBILENET_V2_TABLE2
            .iter()
            .enumerate()
            .map(|(i, row)| BlockSetting {
                t: match (&self.expansion, &self.stage_expansion) {
                    (Some(t), _) => *t,
                    (None, Some(ts)) => ts[i],
                    (None, None) => row.t,
                },
                s: self.strides.as_ref().map_or(row.s, |s| s[i + 1]),
                ..*row
            })
            .collect()
    }

    /// Stride of the stem conv.
    pub fn stem_stride(&self) -> usize {
        self.strides.as_ref().map_or(STEM_STRIDE, |s| s[0])
    }

    /// A short, stable description for outputs, e.g. `mobilenet_v2 α=1 224px linear/relu6/bottleneck`.
    pub fn label(&self) -> String {
        if self.arch.is_detector() {
            let name = serde_json::to_value(self.arch).ok().and_then(|v| v.as_str().map(String::from)).unwrap_or_default();
            return format!("{name} width={} res={} classes={}", self.width, self.resolution, self.classes);
        }
        if self.arch == Arch::MobilenetV1 {
            return format!("mobilenet_v1 width={} res={} activation={}", self.width, self.resolution, self.activation.activation().name());
        }
        format!(
            "{} width={} res={} bottleneck={} activation={} shortcut={}",
            serde_json::to_value(self.arch).ok().and_then(|v| v.as_str().map(String::from)).unwrap_or_default(),
            self.width,
            self.resolution,
            self.bottleneck.activation().name(),
            self.activation.activation().name(),
            serde_json::to_value(self.shortcut).ok().and_then(|v| v.as_str().map(String::from)).unwrap_or_default()
        )
    }
}

fn check_expansion(key: &str, t: f64) -> Result<()> {
    if !(t.is_finite() && (1.0..=64.0).contains(&t)) {
        return Err(Error::config(key, t, "use an expansion ratio t in [1, 64] (Table 2 uses 6; fractional t gives round(t·n) channels)"));
    }
    Ok(())
}
