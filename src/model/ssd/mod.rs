//! SSD and SSDLite detection heads on MobileNetV2 / MobileNetV1 (paper §6.2, Tables 5 and 6).
//!
//! **Configuration** (the standard `ssdlite_mobilenet_v2` of the TensorFlow Object Detection API):
//! - Feature maps: MobileNetV2's `blocks.14.expand.post` (576·α channels, output stride 16: 20×20 at
//!   320) and `head.post` (1280, stride 32); MobileNetV1's `blocks.11.project` (conv11, 512·α, stride
//!   16) and `blocks.13.project` (conv13, 1024·α, stride 32). Then four extra layers down to 1×1, each
//!   `1×1 conv to d/2 → 3×3 stride 2 → 1×1 conv to d` with d = 512, 256, 256, 128 (SSDLite: the 3×3 is
//!   depthwise; SSD: `1×1 to d/2 → 3×3 full conv stride 2 to d`); every conv has BatchNorm + ReLU6.
//! - Predictors, per feature map: class logits `anchors·(C + 1)` (the extra logit is background) and
//!   box deltas `anchors·4`. SSDLite: `3×3 depthwise + BN + ReLU6 → 1×1 conv with bias`; SSD: one
//!   3×3 conv with bias.
//! - Anchors (`ssd_anchor_generator`, 6 layers, scales 0.2 … 0.95, aspect ratios 1, 2, ½, 3, ⅓,
//!   `reduce_boxes_in_lowest_layer`): 3 on the first map — (0.1, 1), (0.2, 2), (0.2, ½) — and 6 on the
//!   others: the five ratios at scale s_k plus ratio 1 at √(s_k·s_{k+1}). 2034 anchors at 320×320.
//!   Boxes are `[cy, cx, h, w]` in [0, 1], centred on each cell.
//!
//! **Weights** (safetensors, `__metadata__` holds the config): the backbone under `backbone.` with its
//! classifier names (`backbone.features.0.0.weight`, …; no classifier); extra layer j as
//! `extras.{j}.{u}.0.weight` (conv) and `extras.{j}.{u}.1.{weight,bias,running_mean,running_var}` (BN),
//! u = 0 reduce, 1 spatial, 2 expand; predictors `head.{class|box}.{k}.0.0.weight` /
//! `head.{class|box}.{k}.0.1.*` (SSDLite depthwise + BN) and `head.{class|box}.{k}.1.{weight,bias}`
//! (the final conv; SSD has only this one, at `head.{class|box}.{k}.1`).
//!
//! **Hooks**: the backbone's sites, then `ssd.extra.{j}.{reduce,spatial,expand}.{pre,post}`, and per
//! map k `ssd.class.{k}.spatial.{pre,post}` (SSDLite), `ssd.class.{k}.out`, likewise `ssd.box.{k}.*`.

mod anchors;
mod cost;
mod forward;
mod sites;
mod weights;

use nalgebra::DMatrix;

use super::config::{Arch, ModelConfig};
use super::mobilenet_v2::MobileNetV2;
use crate::error::{Error, Result};
use crate::hooks::catalogue::catalogue;
use crate::hooks::{BlockPoint, HookName};
use crate::layers::{Activation, Conv2d, ConvBias, ConvBn, ConvKind, Depthwise, Pointwise};

/// Depths of the four extra feature layers.
pub const EXTRA_DEPTHS: [usize; 4] = [512, 256, 256, 128];
/// Anchor scales and aspect ratios of the TF `ssd_anchor_generator` used by SSDLite.
pub const MIN_SCALE: f64 = 0.2;
pub const MAX_SCALE: f64 = 0.95;
pub const ASPECT_RATIOS: [f64; 5] = [1.0, 2.0, 0.5, 3.0, 1.0 / 3.0];
/// Anchors per position of the lowest map (`reduce_boxes_in_lowest_layer`) and of the others.
pub const LOWEST_ANCHORS: usize = 3;
pub const OTHER_ANCHORS: usize = 6;

/// An extra feature layer: reduce (1×1) → spatial (3×3 stride 2) → expand (1×1, SSDLite only).
#[derive(Clone, Debug, PartialEq)]
pub struct ExtraLayer {
    pub reduce: ConvBn,
    pub spatial: ConvBn,
    pub expand: Option<ConvBn>,
}

/// One predictor: optional depthwise 3×3 + BN + ReLU6 (SSDLite), then a conv with bias.
#[derive(Clone, Debug, PartialEq)]
pub struct Predictor {
    pub spatial: Option<ConvBn>,
    pub conv: ConvBias,
}

/// A detector: backbone, extra layers, class and box predictors.
#[derive(Clone, Debug, PartialEq)]
pub struct Detector {
    config: ModelConfig,
    pub backbone: MobileNetV2,
    /// The two backbone sites whose activations are the first feature maps.
    pub taps: [HookName; 2],
    pub extras: Vec<ExtraLayer>,
    pub class_heads: Vec<Predictor>,
    pub box_heads: Vec<Predictor>,
    /// Anchors per position of each feature map.
    pub anchors: Vec<usize>,
}

/// Per-image outputs, one row per anchor (anchor order: map, then row-major position, then anchor).
#[derive(Clone, Debug, PartialEq)]
pub struct Detections {
    /// anchors × (classes + 1).
    pub class_logits: Vec<DMatrix<f32>>,
    /// anchors × 4 (box deltas).
    pub box_deltas: Vec<DMatrix<f32>>,
}
impl Detector {
    /// Builds the detector for a config whose `arch` is a detector; `classes` excludes background.
    ///
    /// # Errors
    /// An invalid config, or one that is not a detector.
    pub fn new(config: &ModelConfig) -> Result<Self> {
        config.validate()?;
        if !config.arch.is_detector() {
            return Err(Error::config("arch", format!("{:?}", config.arch), "use ssdlite_mobilenet_v2, ssd_mobilenet_v2 or ssdlite_mobilenet_v1"));
        }
        let lite = config.arch != Arch::SsdMobilenetV2;
        let backbone_cfg = ModelConfig { arch: config.arch.backbone(), classes: 1, ..config.clone() };
        let backbone = MobileNetV2::new(&backbone_cfg)?;
        let taps = match config.arch.backbone() {
            Arch::MobilenetV1 => [HookName::block(11, BlockPoint::Project), HookName::block(13, BlockPoint::Project)],
            _ => [HookName::block(14, BlockPoint::ExpandPost), HookName::HeadPost],
        };
        let sites = catalogue(&backbone, config.resolution);
        let tap_channels = taps.map(|t| sites.iter().find(|s| s.name == t).map(|s| s.channels).unwrap_or(0));
        if tap_channels.contains(&0) {
            return Err(Error::config("expansion", "block 14 without expansion", "SSDLite taps blocks.14.expand.post: keep t ≠ 1 in stage 6"));
        }
        let eps = config.bn_eps as f32;
        let relu6 = Activation::Relu6;
        let pad = config.padding;
        let pw = |i, o| ConvKind::Pointwise(Pointwise { in_channels: i, out_channels: o });
        let mut extras = Vec::new();
        let mut prev = tap_channels[1];
        for d in EXTRA_DEPTHS {
            let half = d / 2;
            let reduce = ConvBn::new(pw(prev, half), relu6, eps);
            let (spatial, expand) = if lite {
                (
                    ConvBn::new(ConvKind::Depthwise(Depthwise { channels: half, stride: 2, padding: pad }), relu6, eps),
                    Some(ConvBn::new(pw(half, d), relu6, eps)),
                )
            } else {
                (ConvBn::new(ConvKind::Full(Conv2d { in_channels: half, out_channels: d, kernel: 3, stride: 2, padding: pad }), relu6, eps), None)
            };
            extras.push(ExtraLayer { reduce, spatial, expand });
            prev = d;
        }
        let map_channels: Vec<usize> = tap_channels.iter().copied().chain(EXTRA_DEPTHS).collect();
        let anchors: Vec<usize> = (0..map_channels.len()).map(|k| if k == 0 { LOWEST_ANCHORS } else { OTHER_ANCHORS }).collect();
        let predictor = |c: usize, outputs: usize| {
            if lite {
                Predictor {
                    spatial: Some(ConvBn::new(ConvKind::Depthwise(Depthwise { channels: c, stride: 1, padding: pad }), relu6, eps)),
                    conv: ConvBias::new(pw(c, outputs)),
                }
            } else {
                Predictor {
                    spatial: None,
                    conv: ConvBias::new(ConvKind::Full(Conv2d { in_channels: c, out_channels: outputs, kernel: 3, stride: 1, padding: pad })),
                }
            }
        };
        let class_heads = map_channels.iter().zip(&anchors).map(|(&c, &a)| predictor(c, a * (config.classes + 1))).collect();
        let box_heads = map_channels.iter().zip(&anchors).map(|(&c, &a)| predictor(c, a * 4)).collect();
        Ok(Detector { config: config.clone(), backbone, taps, extras, class_heads, box_heads, anchors })
    }

    pub fn config(&self) -> &ModelConfig {
        &self.config
    }

    /// Seeded initialisation: the backbone as torchvision, the head convs Kaiming-normal (fan-out), BN
    /// at its initial state, predictor biases 0.
    ///
    /// # Errors
    /// An invalid config.
    ///
    /// # Panics
    /// Never for a validated config (every conv has channels, so the init's standard deviation is finite).
    pub fn seeded(config: &ModelConfig, seed: u64) -> Result<Self> {
        use rand::SeedableRng;
        use rand_distr::{Distribution, Normal};
        let mut d = Detector::new(config)?;
        d.backbone.init_seeded(seed);
        // The backbone's classifier is not part of a detector (nor of its weights file).
        d.backbone.classifier.weight.fill(0.0);
        let mut rng = rand::rngs::StdRng::seed_from_u64(seed ^ 0x55D);
        let mut init = |w: &mut DMatrix<f32>, kind: &ConvKind| {
            let k = match kind {
                ConvKind::Full(c) => c.kernel * c.kernel,
                ConvKind::Depthwise(_) => 9,
                ConvKind::Pointwise(_) => 1,
            };
            let normal = Normal::new(0.0f64, (2.0 / (kind.out_channels() * k) as f64).sqrt()).expect("finite std");
            w.iter_mut().for_each(|v| *v = normal.sample(&mut rng) as f32);
        };
        for u in d.head_units_mut() {
            match u {
                HeadUnit::Bn(c) => {
                    init(&mut c.weight, &c.kind.clone());
                    c.refold();
                }
                HeadUnit::Bias(c) => init(&mut c.weight, &c.kind.clone()),
            }
        }
        Ok(d)
    }

    fn head_units_mut(&mut self) -> Vec<HeadUnit<'_>> {
        let mut v = Vec::new();
        for e in &mut self.extras {
            v.push(HeadUnit::Bn(&mut e.reduce));
            v.push(HeadUnit::Bn(&mut e.spatial));
            if let Some(x) = &mut e.expand {
                v.push(HeadUnit::Bn(x));
            }
        }
        for p in self.class_heads.iter_mut().chain(self.box_heads.iter_mut()) {
            if let Some(s) = &mut p.spatial {
                v.push(HeadUnit::Bn(s));
            }
            v.push(HeadUnit::Bias(&mut p.conv));
        }
        v
    }
}

enum HeadUnit<'a> {
    Bn(&'a mut ConvBn),
    Bias(&'a mut ConvBias),
}
