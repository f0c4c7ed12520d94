//! The detector's weights: its state dict (backbone under `backbone.`, then extras and predictors) and
//! safetensors I/O.

use super::*;

use super::super::mobilenet_v2::MobileNetV2;
use super::super::weights::{fill_slots, serialize_tensors, WeightsFile};
use crate::error::Result;
use crate::layers::{ConvBias, ConvBn};

/// The module names of the detector's own layers — `extras.{j}.{0,1,2}` (reduce, spatial, expand),
/// `head.{class|box}.{k}.0` (the separable predictor's spatial conv → BN) and `head.{class|box}.{k}.1`
/// (the biased output conv) — written once and instantiated for shared (`&`) and mutable (`&mut`)
/// access: (conv → BN units, biased convs).
macro_rules! head_units {
    ($extras:expr, $class:expr, $boxes:expr, $($r:tt)+) => {{
        let mut bn = Vec::new();
        let mut bias = Vec::new();
        for (j, e) in $extras.into_iter().enumerate() {
            bn.push((format!("extras.{j}.0"), $($r)+ e.reduce));
            bn.push((format!("extras.{j}.1"), $($r)+ e.spatial));
            if let Some(x) = $($r)+ e.expand {
                bn.push((format!("extras.{j}.2"), x));
            }
        }
        for (part, heads) in [("class", $class), ("box", $boxes)] {
            for (k, p) in heads.into_iter().enumerate() {
                if let Some(s) = $($r)+ p.spatial {
                    bn.push((format!("head.{part}.{k}.0"), s));
                }
                bias.push((format!("head.{part}.{k}.1"), $($r)+ p.conv));
            }
        }
        (bn, bias)
    }};
}

impl Detector {
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

    pub(super) fn head_bn_units(&self) -> Vec<(String, &ConvBn)> {
        head_units!(&self.extras, &self.class_heads, &self.box_heads, &).0
    }

    pub(super) fn head_bias_units(&self) -> Vec<(String, &ConvBias)> {
        head_units!(&self.extras, &self.class_heads, &self.box_heads, &).1
    }

    /// Mutable slots named as [`Detector::state_dict`] (order may differ; names decide).
    pub(super) fn state_dict_mut(&mut self) -> Vec<(String, Vec<usize>, &mut [f32])> {
        let Detector { backbone, extras, class_heads, box_heads, .. } = self;
        let mut out = Vec::new();
        let MobileNetV2 { stem, blocks, head, .. } = backbone;
        for (conv, bn, u) in super::super::mobilenet_v2::units_mut(stem, blocks, head) {
            push_bn(&mut out, format!("backbone.{conv}"), format!("backbone.{bn}"), u);
        }
        let (bn_units, bias_units) = head_units!(extras, class_heads, box_heads, &mut);
        for (p, u) in bn_units {
            push_bn(&mut out, format!("{p}.0"), format!("{p}.1"), u);
        }
        for (p, c) in bias_units {
            let shape = c.kind.torch_shape();
            let nb = c.bias.len();
            out.push((format!("{p}.weight"), shape, c.weight.as_mut_slice()));
            out.push((format!("{p}.bias"), vec![nb], &mut c.bias[..]));
        }
        out
    }

    /// Serialises to safetensors (config in the metadata).
    ///
    /// # Errors
    /// Serialisation failures (internal).
    pub fn to_safetensors_bytes(&self) -> Result<Vec<u8>> {
        serialize_tensors(self.state_dict(), &self.config)
    }

    /// Writes the weights atomically.
    ///
    /// # Errors
    /// The file cannot be written.
    pub fn save_safetensors(&self, path: &std::path::Path) -> Result<()> {
        crate::io::atomic::write_atomic(path, &self.to_safetensors_bytes()?)
    }

    /// Loads every tensor of `file`; missing, unexpected or mis-shaped tensors are named.
    ///
    /// # Errors
    /// Missing, unexpected or mis-shaped tensors, named.
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
    super::super::weights::push_conv_bn_mut(out, &conv, &bn, u);
}
