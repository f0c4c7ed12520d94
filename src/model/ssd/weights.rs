//! The detector's weights: its state dict (backbone under `backbone.`, then extras and predictors) and
//! safetensors I/O.

use super::*;

use super::super::mobilenet_v2::MobileNetV2;
use super::super::weights::{fill_slots, serialize_tensors, WeightsFile};
use crate::error::Result;
use crate::layers::{ConvBias, ConvBn};

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

    pub(super) fn head_bias_units(&self) -> Vec<(String, &ConvBias)> {
        [("class", &self.class_heads), ("box", &self.box_heads)]
            .into_iter()
            .flat_map(|(part, heads)| heads.iter().enumerate().map(move |(k, p)| (format!("head.{part}.{k}.1"), &p.conv)))
            .collect()
    }

    /// Mutable slots named as [`Detector::state_dict`] (order may differ; names decide).
    pub(super) fn state_dict_mut(&mut self) -> Vec<(String, Vec<usize>, &mut [f32])> {
        let Detector { backbone, extras, class_heads, box_heads, .. } = self;
        let mut out = Vec::new();
        let MobileNetV2 { stem, blocks, head, .. } = backbone;
        for (conv, bn, u) in super::super::mobilenet_v2::units_mut(stem, blocks, head) {
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
    super::super::weights::push_conv_bn_mut(out, &conv, &bn, u);
}
