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

use std::sync::Arc;

use nalgebra::DMatrix;
use rayon::prelude::*;

use super::config::{Arch, ModelConfig};
use super::cost::{LayerCost, ModelCost};
use super::inverted_residual::{conv_site, fire};
use super::mobilenet_v2::MobileNetV2;
use super::weights::{fill_slots, serialize_tensors, WeightsFile};
use crate::error::{Error, Result};
use crate::hooks::catalogue::{catalogue, HookSite, SITE_LAYOUT};
use crate::hooks::sink::HookSink;
use crate::hooks::{BlockPoint, HookName, HookSet, SsdPart, SsdPoint};
use crate::layers::{Activation, Conv2d, ConvBias, ConvBn, ConvKind, Depthwise, Pointwise};
use crate::tensor::{Batch, FeatureMap};

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

    /// Feature-map sizes `(h, w)` at a `resolution²` input.
    pub fn map_sizes(&self, resolution: usize) -> Vec<(usize, usize)> {
        let sites = catalogue(&self.backbone, resolution);
        let mut sizes: Vec<(usize, usize)> =
            self.taps.iter().map(|t| sites.iter().find(|s| s.name == *t).map(|s| (s.shape[1], s.shape[2])).unwrap_or((1, 1))).collect();
        for e in &self.extras {
            let last = *sizes.last().expect("two taps");
            sizes.push(e.spatial.kind.output_size(last.0, last.1));
        }
        sizes
    }

    /// Anchor boxes `[cy, cx, h, w]` for a `resolution²` input, in output order.
    pub fn anchor_boxes(&self, resolution: usize) -> Vec<[f32; 4]> {
        let sizes = self.map_sizes(resolution);
        let l = sizes.len();
        let scale = |k: usize| if k >= l { 1.0 } else { MIN_SCALE + (MAX_SCALE - MIN_SCALE) * k as f64 / (l - 1) as f64 };
        let mut boxes = Vec::new();
        for (k, &(h, w)) in sizes.iter().enumerate() {
            let shapes: Vec<(f64, f64)> = if k == 0 {
                vec![(0.1, 1.0), (scale(0), 2.0), (scale(0), 0.5)]
            } else {
                let mut v: Vec<(f64, f64)> = ASPECT_RATIOS.iter().map(|&r| (scale(k), r)).collect();
                v.push(((scale(k) * scale(k + 1)).sqrt(), 1.0));
                v
            };
            for y in 0..h {
                for x in 0..w {
                    for &(s, r) in &shapes {
                        let (cy, cx) = ((y as f64 + 0.5) / h as f64, (x as f64 + 0.5) / w as f64);
                        boxes.push([cy as f32, cx as f32, (s / r.sqrt()) as f32, (s * r.sqrt()) as f32]);
                    }
                }
            }
        }
        boxes
    }

    /// Every hook site: the backbone's (without pool and logits) and the head's, in firing order.
    pub fn sites(&self, resolution: usize) -> Vec<HookSite> {
        let mut sites: Vec<HookSite> =
            catalogue(&self.backbone, resolution).into_iter().filter(|s| !matches!(s.name, HookName::Pool | HookName::Logits)).collect();
        let sizes = self.map_sizes(resolution);
        let mut push = |name: HookName, shape: [usize; 3], threshold: usize| {
            sites.push(HookSite { name, shape, channels: shape[0], threshold, layout: SITE_LAYOUT, activated: name.is_post() })
        };
        let mut cin = self.class_heads[1].conv.kind.in_channels();
        let mut hw = sizes[1];
        for (j, e) in self.extras.iter().enumerate() {
            let site = |point| HookName::Ssd { part: SsdPart::Extra, index: j, point };
            let r = [e.reduce.out_channels(), hw.0, hw.1];
            push(site(SsdPoint::ReducePre), r, cin);
            push(site(SsdPoint::ReducePost), r, cin);
            hw = sizes[j + 2];
            let sp = [e.spatial.out_channels(), hw.0, hw.1];
            push(site(SsdPoint::SpatialPre), sp, cin);
            push(site(SsdPoint::SpatialPost), sp, cin);
            if let Some(x) = &e.expand {
                let ex = [x.out_channels(), hw.0, hw.1];
                push(site(SsdPoint::ExpandPre), ex, cin);
                push(site(SsdPoint::ExpandPost), ex, cin);
            }
            cin = EXTRA_DEPTHS[j];
        }
        for (part, heads) in [(SsdPart::Class, &self.class_heads), (SsdPart::Box, &self.box_heads)] {
            for (k, p) in heads.iter().enumerate() {
                let (h, w) = sizes[k];
                let c = p.conv.kind.in_channels();
                let site = |point| HookName::Ssd { part, index: k, point };
                if p.spatial.is_some() {
                    push(site(SsdPoint::SpatialPre), [c, h, w], c);
                    push(site(SsdPoint::SpatialPost), [c, h, w], c);
                }
                push(site(SsdPoint::Out), [p.conv.kind.out_channels(), h, w], c);
            }
        }
        sites
    }

    /// Forward pass: per image, class logits and box deltas per anchor.
    pub fn detect(&self, batch: &Batch) -> Result<Detections> {
        self.run_with_hooks_at(batch, 0, &mut HookSet::new())
    }

    /// Forward pass with hooks at backbone and head sites (images numbered from `first_image`).
    pub fn run_with_hooks_at(&self, batch: &Batch, first_image: usize, hooks: &mut HookSet) -> Result<Detections> {
        self.backbone.check_input(batch)?;
        let routes = Arc::new(hooks.routes(&self.sites(self.config.resolution)));
        let sinks: Vec<_> = (0..batch.len()).map(|_| hooks.fork(&routes)).collect();
        let results: Vec<(DMatrix<f32>, DMatrix<f32>, _)> = sinks
            .into_par_iter()
            .enumerate()
            .map(|(i, sink)| {
                let mut tapped = Tapped { inner: sink, taps: self.taps, maps: [None, None] };
                let mut ws = self.backbone.pool.take();
                self.backbone.forward_features(&batch.images()[i], first_image + i, &mut ws, &mut tapped, 1);
                self.backbone.pool.give(ws);
                let Tapped { inner: mut sink, maps, .. } = tapped;
                let maps = maps.map(|m| m.unwrap_or_else(|| FeatureMap::zeros(0, 0, 0)));
                let (c, b) = self.head_forward(maps, first_image + i, &mut sink);
                (c, b, sink)
            })
            .collect();
        let mut out = Detections { class_logits: Vec::new(), box_deltas: Vec::new() };
        let mut parts = Vec::new();
        for (c, b, s) in results {
            out.class_logits.push(c);
            out.box_deltas.push(b);
            parts.push(s);
        }
        hooks.join(parts);
        Ok(out)
    }

    fn head_forward<H: HookSink>(&self, taps: [FeatureMap; 2], image: usize, hooks: &mut H) -> (DMatrix<f32>, DMatrix<f32>) {
        let mut maps: Vec<FeatureMap> = taps.into();
        let mut scratch = Vec::new();
        for (j, e) in self.extras.iter().enumerate() {
            let site = |point| HookName::Ssd { part: SsdPart::Extra, index: j, point };
            let (mut a, mut b) = (FeatureMap::zeros(0, 0, 0), FeatureMap::zeros(0, 0, 0));
            conv_site(&e.reduce, maps.last().expect("maps"), &mut a, &mut scratch, 1, site(SsdPoint::ReducePre), site(SsdPoint::ReducePost), hooks, image);
            conv_site(&e.spatial, &a, &mut b, &mut scratch, 1, site(SsdPoint::SpatialPre), site(SsdPoint::SpatialPost), hooks, image);
            if let Some(x) = &e.expand {
                conv_site(x, &b, &mut a, &mut scratch, 1, site(SsdPoint::ExpandPre), site(SsdPoint::ExpandPost), hooks, image);
                maps.push(a);
            } else {
                maps.push(b);
            }
        }
        let mut run = |part, heads: &[Predictor], per_anchor: usize| -> DMatrix<f32> {
            let mut rows: Vec<f32> = Vec::new();
            for (k, p) in heads.iter().enumerate() {
                let site = |point| HookName::Ssd { part, index: k, point };
                let mut tmp = FeatureMap::zeros(0, 0, 0);
                let input = match &p.spatial {
                    Some(sp) => {
                        conv_site(sp, &maps[k], &mut tmp, &mut scratch, 1, site(SsdPoint::SpatialPre), site(SsdPoint::SpatialPost), hooks, image);
                        &tmp
                    }
                    None => &maps[k],
                };
                let mut out = FeatureMap::zeros(0, 0, 0);
                p.conv.forward(input, &mut out, &mut scratch, 1);
                fire(hooks, site(SsdPoint::Out), image, &mut out);
                // channel = anchor·per_anchor + value → rows (position, anchor), columns value.
                let a = self.anchors[k];
                for q in 0..out.positions() {
                    for an in 0..a {
                        for v in 0..per_anchor {
                            rows.push(out.channel(an * per_anchor + v)[q]);
                        }
                    }
                }
            }
            let n = rows.len() / per_anchor;
            DMatrix::from_row_slice(n, per_anchor, &rows)
        };
        let cls = run(SsdPart::Class, &self.class_heads, self.config.classes + 1);
        let boxes = run(SsdPart::Box, &self.box_heads, 4);
        (cls, boxes)
    }

    /// Cost of the backbone (features only) and the head at `resolution²`.
    pub fn cost(&self, resolution: usize) -> ModelCost {
        let mut layers: Vec<LayerCost> = self
            .backbone
            .cost(resolution)
            .layers
            .into_iter()
            .filter(|l| !matches!(l.kind.as_str(), "pool" | "dropout" | "linear"))
            .map(|l| LayerCost { name: format!("backbone.{}", l.name), ..l })
            .collect();
        let sizes = self.map_sizes(resolution);
        let unit = |layers: &mut Vec<LayerCost>, name: String, u: &ConvBn, input: [usize; 3]| -> [usize; 3] {
            let (oh, ow) = u.kind.output_size(input[1], input[2]);
            let out = [u.out_channels(), oh, ow];
            layers.push(LayerCost {
                name: format!("{name}.0"),
                kind: u.kind.name().into(),
                input,
                output: out,
                params: u.weight.len() as u64,
                buffers: 0,
                macs: u.macs(oh, ow),
            });
            layers.push(LayerCost {
                name: format!("{name}.1"),
                kind: "batch_norm".into(),
                input: out,
                output: out,
                params: 2 * u.out_channels() as u64,
                buffers: u.buffers() as u64,
                macs: 0,
            });
            out
        };
        let mut x = [self.class_heads[1].conv.kind.in_channels(), sizes[1].0, sizes[1].1];
        for (j, e) in self.extras.iter().enumerate() {
            x = unit(&mut layers, format!("extras.{j}.0"), &e.reduce, x);
            x = unit(&mut layers, format!("extras.{j}.1"), &e.spatial, x);
            if let Some(ex) = &e.expand {
                x = unit(&mut layers, format!("extras.{j}.2"), ex, x);
            }
        }
        for (part, heads) in [("class", &self.class_heads), ("box", &self.box_heads)] {
            for (k, p) in heads.iter().enumerate() {
                let (h, w) = sizes[k];
                let mut input = [p.conv.kind.in_channels(), h, w];
                if let Some(sp) = &p.spatial {
                    input = unit(&mut layers, format!("head.{part}.{k}.0"), sp, input);
                }
                let out = [p.conv.kind.out_channels(), h, w];
                layers.push(LayerCost {
                    name: format!("head.{part}.{k}.1"),
                    kind: p.conv.kind.name().into(),
                    input,
                    output: out,
                    params: p.conv.params() as u64,
                    buffers: 0,
                    macs: p.conv.macs(h, w),
                });
            }
        }
        ModelCost {
            params: layers.iter().map(|l| l.params).sum(),
            buffers: layers.iter().map(|l| l.buffers).sum(),
            macs: layers.iter().map(|l| l.macs).sum(),
            shortcuts: self.backbone.cost(resolution).shortcuts,
            layers,
        }
    }

    /// Cost of the head alone (extra layers and predictors; Table 5).
    pub fn head_cost(&self, resolution: usize) -> (u64, u64) {
        let c = self.cost(resolution);
        c.layers.iter().filter(|l| !l.name.starts_with("backbone.")).fold((0, 0), |(p, m), l| (p + l.params, m + l.macs))
    }

    /// Every tensor with its documented name (see the module docs).
    pub fn state_dict(&self) -> Vec<(String, Vec<usize>, &[f32])> {
        let mut out: Vec<(String, Vec<usize>, &[f32])> =
            self.backbone.state_dict().into_iter().filter(|(n, _, _)| !n.starts_with("classifier.")).map(|(n, s, d)| (format!("backbone.{n}"), s, d)).collect();
        for (p, u) in self.head_bn_units() {
            let c = vec![u.out_channels()];
            out.push((format!("{p}.0.weight"), u.kind.torch_shape(), u.weight.as_slice()));
            out.push((format!("{p}.1.weight"), c.clone(), &u.bn.gamma[..]));
            out.push((format!("{p}.1.bias"), c.clone(), &u.bn.beta[..]));
            out.push((format!("{p}.1.running_mean"), c.clone(), &u.bn.running_mean[..]));
            out.push((format!("{p}.1.running_var"), c, &u.bn.running_var[..]));
        }
        for (p, c) in self.head_bias_units() {
            out.push((format!("{p}.weight"), c.kind.torch_shape(), c.weight.as_slice()));
            out.push((format!("{p}.bias"), vec![c.bias.len()], &c.bias[..]));
        }
        out
    }

    fn head_bn_units(&self) -> Vec<(String, &ConvBn)> {
        let mut v = Vec::new();
        for (j, e) in self.extras.iter().enumerate() {
            v.push((format!("extras.{j}.0"), &e.reduce));
            v.push((format!("extras.{j}.1"), &e.spatial));
            if let Some(x) = &e.expand {
                v.push((format!("extras.{j}.2"), x));
            }
        }
        for (part, heads) in [("class", &self.class_heads), ("box", &self.box_heads)] {
            for (k, p) in heads.iter().enumerate() {
                if let Some(s) = &p.spatial {
                    v.push((format!("head.{part}.{k}.0"), s));
                }
            }
        }
        v
    }

    fn head_bias_units(&self) -> Vec<(String, &ConvBias)> {
        [("class", &self.class_heads), ("box", &self.box_heads)]
            .into_iter()
            .flat_map(|(part, heads)| heads.iter().enumerate().map(move |(k, p)| (format!("head.{part}.{k}.1"), &p.conv)))
            .collect()
    }

    /// Mutable slots named as [`Detector::state_dict`] (order may differ; names decide).
    fn state_dict_mut(&mut self) -> Vec<(String, Vec<usize>, &mut [f32])> {
        let Detector { backbone, extras, class_heads, box_heads, .. } = self;
        let mut out = Vec::new();
        let MobileNetV2 { stem, blocks, head, .. } = backbone;
        for (conv, bn, u) in super::mobilenet_v2::units_mut(stem, blocks, head) {
            push_bn(&mut out, format!("backbone.{conv}"), format!("backbone.{bn}"), u);
        }
        for (j, e) in extras.iter_mut().enumerate() {
            push_bn(&mut out, format!("extras.{j}.0.0"), format!("extras.{j}.0.1"), &mut e.reduce);
            push_bn(&mut out, format!("extras.{j}.1.0"), format!("extras.{j}.1.1"), &mut e.spatial);
            if let Some(x) = &mut e.expand {
                push_bn(&mut out, format!("extras.{j}.2.0"), format!("extras.{j}.2.1"), x);
            }
        }
        for (part, heads) in [("class", class_heads), ("box", box_heads)] {
            for (k, p) in heads.iter_mut().enumerate() {
                if let Some(s) = &mut p.spatial {
                    push_bn(&mut out, format!("head.{part}.{k}.0.0"), format!("head.{part}.{k}.0.1"), s);
                }
                let shape = p.conv.kind.torch_shape();
                let nb = p.conv.bias.len();
                out.push((format!("head.{part}.{k}.1.weight"), shape, p.conv.weight.as_mut_slice()));
                out.push((format!("head.{part}.{k}.1.bias"), vec![nb], &mut p.conv.bias[..]));
            }
        }
        out
    }

    /// Serialises to safetensors (config in the metadata).
    pub fn to_safetensors_bytes(&self) -> Result<Vec<u8>> {
        serialize_tensors(self.state_dict(), &self.config)
    }

    /// Writes the weights atomically.
    pub fn save_safetensors(&self, path: &std::path::Path) -> Result<()> {
        crate::io::atomic::write_atomic(path, &self.to_safetensors_bytes()?)
    }

    /// Loads every tensor of `file`; missing, unexpected or mis-shaped tensors are named.
    pub fn load_weights(&mut self, file: &WeightsFile, path: &std::path::Path) -> Result<()> {
        let hint = format!("is this an infoloss {} detector file for this config?", self.config().arch.name());
        fill_slots(self.state_dict_mut(), file, path, &hint)?;
        self.backbone.refold();
        for u in self.head_units_mut() {
            if let HeadUnit::Bn(c) = u {
                c.refold();
            }
        }
        Ok(())
    }
}

fn push_bn<'a>(out: &mut Vec<(String, Vec<usize>, &'a mut [f32])>, conv: String, bn: String, u: &'a mut ConvBn) {
    super::weights::push_conv_bn_mut(out, &conv, &bn, u);
}

enum HeadUnit<'a> {
    Bn(&'a mut ConvBn),
    Bias(&'a mut ConvBias),
}

/// Wraps a hook sink and keeps copies of two sites' activations (after any intervention there).
struct Tapped<H> {
    inner: H,
    taps: [HookName; 2],
    maps: [Option<FeatureMap>; 2],
}

impl<H: HookSink> HookSink for Tapped<H> {
    fn wants(&self, name: &HookName) -> bool {
        self.taps.contains(name) || self.inner.wants(name)
    }
    fn fire(&mut self, name: &HookName, image: usize, fm: &mut FeatureMap) {
        if self.inner.wants(name) {
            self.inner.fire(name, image, fm);
        }
        if let Some(k) = self.taps.iter().position(|t| t == name) {
            self.maps[k] = Some(fm.clone());
        }
    }
}
