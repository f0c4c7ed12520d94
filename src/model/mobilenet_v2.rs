//! MobileNetV2 (Sandler et al. 2018, Table 2), the network as a walkable structure — and, with
//! `arch = mobilenet_v1`, MobileNetV1 (Howard et al. 2017, Table 1): a depthwise-separable layer is a
//! block without expansion whose 1×1 conv has the hidden activation, no shortcut, and no head conv.
//!
//! MobileNetV2:
//! stem (`features.0`) → 17 inverted residual blocks (`features.1..=17`) → head 1×1 conv
//! (`features.18`) → global average pool → dropout → linear classifier (`classifier.1`).
//! Module indices follow torchvision's `mobilenetv2.py`, so weights and hook names line up.
//!
//! The forward pass runs each image depth-first through all layers in a reused [`Workspace`];
//! a batch is spread over rayon's threads one image per task (single-threaded GEMMs), and a batch
//! smaller than the thread count uses the GEMM's own threads instead.

use nalgebra::DMatrix;
use rayon::prelude::*;

use super::block_setting::{expand_stages, make_divisible, v1_plans, v1_width, BlockPlan, HEAD_CHANNELS, STEM_CHANNELS};
use super::config::{Arch, ModelConfig};
use super::inverted_residual::{conv_site, fire, InvertedResidual};
use super::workspace::{Workspace, WorkspacePool};
use crate::error::{Error, Result};
use crate::hooks::hook_name::HookName;
use crate::hooks::sink::{HookSink, NoHooks};
use crate::layers::{pool::global_average_pool, Conv2d, ConvBn, ConvKind, Linear, Pointwise};
use crate::tensor::{Batch, FeatureMap};

/// torchvision's module names of the conv → BN units in forward order — stem `features.0`, block i's
/// `features.{i}.conv.{j}` (expansion, depthwise, projection; j from 0 where t = 1 has no expansion),
/// the head `features.{blocks + 1}` — written once and instantiated for shared (`&`) and mutable
/// (`&mut`) access.
macro_rules! torchvision_units {
    ($stem:expr, $blocks:expr, $head:expr, $($r:tt)+) => {{
        let h = $blocks.len() + 1;
        let mut units = vec![("features.0.0".to_string(), "features.0.1".to_string(), $stem)];
        for b in $blocks {
            let i = b.plan.index;
            let mut j = 0;
            if let Some(e) = $($r)+ b.expand {
                units.push((format!("features.{i}.conv.0.0"), format!("features.{i}.conv.0.1"), e));
                j = 1;
            }
            units.push((format!("features.{i}.conv.{j}.0"), format!("features.{i}.conv.{j}.1"), $($r)+ b.depthwise));
            units.push((format!("features.{i}.conv.{}", j + 1), format!("features.{i}.conv.{}", j + 2), $($r)+ b.project));
        }
        if let Some(head) = $head {
            units.push((format!("features.{h}.0"), format!("features.{h}.1"), head));
        }
        units
    }};
}

/// Input channels of the stem (RGB).
pub const INPUT_CHANNELS: usize = 3;

/// The network.
#[derive(Clone, Debug, PartialEq)]
pub struct MobileNetV2 {
    config: ModelConfig,
    /// `features.0`: 3×3 conv, stride 2, 3 → 32·α, hidden activation.
    pub stem: ConvBn,
    /// `features.1 ..= features.17`.
    pub blocks: Vec<InvertedResidual>,
    /// `features.18`: 1×1 conv to 1280·max(1, α), hidden activation (MobileNetV1 has none).
    pub head: Option<ConvBn>,
    /// `classifier.1` (`classifier.0` is dropout, identity at inference).
    pub classifier: Linear,
    pub(crate) pool: WorkspacePool,
}

impl MobileNetV2 {
    /// Builds the structure for a validated config, with zero weights and BN at its initial state
    /// (see [`crate::model::init`] for seeded initialisation and [`crate::model::weights`] for loading).
    ///
    /// # Errors
    /// An invalid config.
    pub fn new(config: &ModelConfig) -> Result<Self> {
        config.validate()?;
        if config.arch.is_detector() {
            return Err(Error::config(
                "arch",
                config.arch.name(),
                "this builds a classifier: use mobilenet_v2 or mobilenet_v1 here, and Network::seeded / Detector::new (the CLI's model, hooks and analyze) for a detector",
            ));
        }
        let eps = config.bn_eps as f32;
        let act = config.activation.activation();
        let v1 = config.arch == Arch::MobilenetV1;
        let stem_channels = if v1 { v1_width(STEM_CHANNELS, config.width) } else { make_divisible(STEM_CHANNELS as f64 * config.width, 8) };
        let stem = ConvBn::new(
            ConvKind::Full(Conv2d {
                in_channels: INPUT_CHANNELS,
                out_channels: stem_channels,
                kernel: 3,
                stride: config.stem_stride(),
                padding: config.padding,
            }),
            act,
            eps,
        );
        let plans = if v1 { v1_plans(config, stem_channels) } else { expand_stages(&config.stages(), stem_channels, config.width) };
        let blocks: Vec<InvertedResidual> =
            plans.iter().enumerate().map(|(k, p)| InvertedResidual::new(*p, k.checked_sub(1).map(|j| &plans[j]), config)).collect();
        let last_in = plans.last().map_or(stem_channels, |p| p.out_channels);
        let head = (!v1).then(|| {
            let head_channels = make_divisible(HEAD_CHANNELS as f64 * config.width.max(1.0), 8);
            ConvBn::new(ConvKind::Pointwise(Pointwise { in_channels: last_in, out_channels: head_channels }), act, eps)
        });
        let features = head.as_ref().map_or(last_in, |h| h.out_channels());
        let classifier = Linear { weight: DMatrix::zeros(features, config.classes), bias: vec![0.0; config.classes] };
        Ok(MobileNetV2 { config: config.clone(), stem, blocks, head, classifier, pool: WorkspacePool::default() })
    }

    pub fn config(&self) -> &ModelConfig {
        &self.config
    }

    /// Block plans (Table 2 expanded).
    pub fn plans(&self) -> Vec<BlockPlan> {
        self.blocks.iter().map(|b| b.plan).collect()
    }

    /// torchvision index of the head conv (`features.18` by default).
    pub fn head_index(&self) -> usize {
        self.blocks.len() + 1
    }

    /// Every conv → BN unit in forward order with its torchvision module prefixes `(conv, bn)`.
    pub fn conv_units(&self) -> Vec<(String, String, &ConvBn)> {
        torchvision_units!(&self.stem, &self.blocks, &self.head, &)
    }

    /// Mutable view of [`Self::conv_units`] (same order), for loading and initialisation.
    pub fn conv_units_mut(&mut self) -> Vec<(String, String, &mut ConvBn)> {
        units_mut(&mut self.stem, &mut self.blocks, &mut self.head)
    }

    /// Recomputes every BN-folded weight; call after editing weights or BN parameters by hand.
    pub fn refold(&mut self) {
        for (_, _, u) in self.conv_units_mut() {
            u.refold();
        }
    }

    /// Checks a batch can enter the network.
    ///
    /// # Errors
    /// A batch that is not N×3×H×W.
    pub fn check_input(&self, batch: &Batch) -> Result<()> {
        let [_, c, h, w] = batch.shape();
        if !batch.is_empty() && (c != INPUT_CHANNELS || h == 0 || w == 0) {
            return Err(Error::input("batch", format!("shape {:?} is not N×3×H×W; MobileNetV2 takes RGB images (NCHW, 3 channels)", batch.shape())));
        }
        Ok(())
    }

    /// Eval-mode forward pass: logits, one row per image.
    ///
    /// # Errors
    /// As [`Self::check_input`], and non-finite inputs.
    pub fn forward(&self, batch: &Batch) -> Result<DMatrix<f32>> {
        Ok(self.forward_sinks(batch, 0, vec![NoHooks; batch.len()])?.0)
    }

    /// Forward pass where image `i` reports to `sinks[i]` (as image `first_image + i`); returns the
    /// logits and the sinks in image order. Results do not depend on the thread count.
    pub(crate) fn forward_sinks<H: HookSink + Send>(&self, batch: &Batch, first_image: usize, sinks: Vec<H>) -> Result<(DMatrix<f32>, Vec<H>)> {
        self.check_input(batch)?;
        let n = batch.len();
        assert_eq!(sinks.len(), n, "one hook sink per image");
        let threads = rayon::current_num_threads();
        let run = |(i, mut sink): (usize, H), gemm_threads: usize| {
            let mut ws = self.pool.take();
            self.forward_pooled(&batch.images()[i], first_image + i, &mut ws, &mut sink, gemm_threads);
            let pooled = ws.pooled.as_slice().to_vec();
            self.pool.give(ws);
            (pooled, sink)
        };
        let results: Vec<(Vec<f32>, H)> = if n >= threads {
            sinks.into_par_iter().enumerate().map(|x| run(x, 1)).collect()
        } else {
            // Fewer images than threads: each layer is split over the threads, on the spinning
            // helpers of `crate::fork_join` (no sleep and wake-up per layer). The images run on a
            // worker of the pool, so the splits that still use rayon (the gemm crate's, on machines
            // without AVX2) are joins between spinning workers too.
            crate::parallel::on_pool(|| sinks.into_iter().enumerate().map(|x| run(x, threads)).collect())
        };
        // The classifier over the whole batch: its weights are read once, not once per image.
        let (pooled, mut out): (Vec<Vec<f32>>, Vec<H>) = results.into_iter().unzip();
        let xs: Vec<&[f32]> = pooled.iter().map(Vec::as_slice).collect();
        let mut logits = DMatrix::zeros(n, self.config.classes);
        crate::parallel::on_pool(|| self.classifier.forward_batch(&xs, &mut logits, threads));
        for (i, sink) in out.iter_mut().enumerate() {
            if sink.wants(&HookName::Logits) {
                let row: Vec<f32> = logits.row(i).iter().copied().collect();
                let mut fm = FeatureMap::from_chw(row.len(), 1, 1, row).expect("classes × 1 × 1");
                sink.fire(&HookName::Logits, first_image + i, &mut fm);
                for (j, v) in fm.as_slice().iter().enumerate() {
                    logits[(i, j)] = *v;
                }
            }
        }
        Ok((logits, out))
    }

    /// One image through every layer up to the pool (the classifier runs over the batch, in
    /// [`Self::forward_sinks`]); the hook sites fire in catalogue order.
    pub(crate) fn forward_pooled<H: HookSink>(&self, x: &FeatureMap, image: usize, ws: &mut Workspace, hooks: &mut H, threads: usize) {
        self.forward_features(x, image, ws, hooks, threads);
        // Dropout is the identity in eval mode.
        global_average_pool(&ws.next, &mut ws.pooled);
        fire(hooks, HookName::Pool, image, &mut ws.pooled);
    }

    /// Stem and blocks: leaves the last bottleneck in `ws.cur`.
    pub(crate) fn forward_body<H: HookSink>(&self, x: &FeatureMap, image: usize, ws: &mut Workspace, hooks: &mut H, threads: usize) {
        let input: &FeatureMap = if hooks.wants(&HookName::Input) {
            ws.input.copy_from(x);
            hooks.fire(&HookName::Input, image, &mut ws.input);
            &ws.input
        } else {
            x
        };
        conv_site(&self.stem, input, &mut ws.cur, &mut ws.scratch, threads, HookName::StemPre, HookName::StemPost, hooks, image);
        for block in &self.blocks {
            block.forward(ws, hooks, image, threads);
        }
    }

    /// Body and head conv: leaves the head output (MobileNetV1: the last block's) in `ws.next`.
    pub(crate) fn forward_features<H: HookSink>(&self, x: &FeatureMap, image: usize, ws: &mut Workspace, hooks: &mut H, threads: usize) {
        self.forward_body(x, image, ws, hooks, threads);
        let Workspace { cur, next, scratch, .. } = ws;
        match &self.head {
            Some(head) => conv_site(head, cur, next, scratch, threads, HookName::HeadPre, HookName::HeadPost, hooks, image),
            None => std::mem::swap(cur, next),
        }
    }
}

/// The conv → BN units of a network's parts in forward order, with their torchvision prefixes.
pub(crate) fn units_mut<'a>(stem: &'a mut ConvBn, blocks: &'a mut [InvertedResidual], head: &'a mut Option<ConvBn>) -> Vec<(String, String, &'a mut ConvBn)> {
    torchvision_units!(stem, blocks, head, &mut)
}
