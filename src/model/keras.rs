//! Keras → torchvision weight names for MobileNetV2 (the `keras.applications` family, trained with TF).
//!
//! Input: a safetensors file with one tensor per Keras weight named `{layer}/{weight}` (made from the
//! `.h5` by `tools/keras_h5_to_safetensors.py`), e.g. `block_3_expand/kernel`,
//! `block_3_expand_BN/moving_variance`. Layers: `Conv1`/`bn_Conv1` (stem), `expanded_conv_*`
//! (torchvision `features.1`), `block_{k}_*` (`features.{k+1}`), `Conv_1`/`Conv_1_bn` (head),
//! `predictions` (classifier). Kernels are HWIO (`[kh, kw, in, out]`), depthwise kernels
//! `[kh, kw, C, 1]`, the dense kernel `[in, out]`; BN uses gamma/beta/moving_mean/moving_variance.
//! Run the converted model with `--padding tf --bn-eps 1e-3` and Keras preprocessing (x/127.5 − 1);
//! the converter stores that config in the output.

use std::collections::BTreeMap;
use std::path::Path;

use super::config::ModelConfig;
use super::mobilenet_v2::MobileNetV2;
use super::weights::{NamedTensor, WeightsFile};
use crate::error::{Error, Result};
use crate::layers::Padding;

/// BatchNorm epsilon of Keras' MobileNetV2.
pub const KERAS_BN_EPS: f64 = 1e-3;

/// The Keras layer names of torchvision's conv unit prefixes, in the model's conv-unit order.
fn keras_layers(model: &MobileNetV2) -> Vec<(String, String)> {
    let mut v = vec![("Conv1".to_string(), "bn_Conv1".to_string())];
    for b in &model.blocks {
        let k = b.plan.index - 1;
        let p = if k == 0 { "expanded_conv".to_string() } else { format!("block_{k}") };
        let bn = |s: &str| format!("{p}_{s}_BN");
        if b.expand.is_some() {
            v.push((format!("{p}_expand"), bn("expand")));
        }
        v.push((format!("{p}_depthwise"), bn("depthwise")));
        v.push((format!("{p}_project"), bn("project")));
    }
    v.push(("Conv_1".to_string(), "Conv_1_bn".to_string()));
    v
}

fn take<'a>(file: &'a WeightsFile, key: &str, path: &Path) -> Result<&'a NamedTensor> {
    file.tensors.get(key).ok_or_else(|| Error::MissingKey {
        key: key.to_string(),
        path: path.display().to_string(),
        expected: vec![],
        hint: "is this a Keras MobileNetV2 file converted by tools/keras_h5_to_safetensors.py?".into(),
    })
}

/// `[d0, d1, d2, d3]` row-major → permuted so output axis `i` is input axis `perm[i]`.
fn permute4(t: &NamedTensor, perm: [usize; 4]) -> NamedTensor {
    let s = &t.shape;
    let out_shape: Vec<usize> = perm.iter().map(|&p| s[p]).collect();
    let strides = [s[1] * s[2] * s[3], s[2] * s[3], s[3], 1];
    let mut data = Vec::with_capacity(t.data.len());
    for a in 0..out_shape[0] {
        for b in 0..out_shape[1] {
            for c in 0..out_shape[2] {
                for d in 0..out_shape[3] {
                    let idx = [a, b, c, d];
                    let mut src = 0;
                    for (i, &p) in perm.iter().enumerate() {
                        src += idx[i] * strides[p];
                    }
                    data.push(t.data[src]);
                }
            }
        }
    }
    NamedTensor { shape: out_shape, data }
}

/// Converts Keras-named tensors into torchvision names for `config` (its padding and BN epsilon are
/// set to Keras'); returns the loaded model. Every missing or mis-shaped tensor is a one-line error.
///
/// # Errors
/// Missing, unexpected or mis-shaped Keras tensors, named.
pub fn convert_keras(keras: &WeightsFile, config: &ModelConfig, path: &Path) -> Result<MobileNetV2> {
    let config = ModelConfig { padding: Padding::Tf, bn_eps: KERAS_BN_EPS, ..config.clone() };
    let mut model = MobileNetV2::new(&config)?;
    let mut out: BTreeMap<String, NamedTensor> = BTreeMap::new();
    let names = keras_layers(&model);
    for ((conv, bn, unit), (kconv, kbn)) in model.conv_units().into_iter().zip(names) {
        let depthwise = matches!(unit.kind, crate::layers::ConvKind::Depthwise(_));
        let kernel = take(keras, &format!("{kconv}/{}", if depthwise { "depthwise_kernel" } else { "kernel" }), path)?;
        if kernel.shape.len() != 4 {
            return Err(Error::ShapeMismatch { key: format!("{kconv} kernel"), expected: vec![3, 3, 0, 0], found: kernel.shape.clone() });
        }
        // HWIO → OIHW; depthwise HWC1 → C1HW.
        let w = if depthwise { permute4(kernel, [2, 3, 0, 1]) } else { permute4(kernel, [3, 2, 0, 1]) };
        out.insert(format!("{conv}.weight"), w);
        for (k, t) in [("gamma", "weight"), ("beta", "bias"), ("moving_mean", "running_mean"), ("moving_variance", "running_var")] {
            out.insert(format!("{bn}.{t}"), take(keras, &format!("{kbn}/{k}"), path)?.clone());
        }
    }
    let dense = take(keras, "predictions/kernel", path)?;
    if dense.shape.len() != 2 {
        return Err(Error::ShapeMismatch { key: "predictions/kernel".into(), expected: vec![0, 0], found: dense.shape.clone() });
    }
    let (i, o) = (dense.shape[0], dense.shape[1]);
    let data = (0..o).flat_map(|r| (0..i).map(move |c| (r, c))).map(|(r, c)| dense.data[c * o + r]).collect();
    out.insert("classifier.1.weight".into(), NamedTensor { shape: vec![o, i], data });
    out.insert("classifier.1.bias".into(), take(keras, "predictions/bias", path)?.clone());
    let file = WeightsFile { tensors: out, config: None, metadata: Default::default() };
    model.load_weights(&file, path)?;
    Ok(model)
}
