//! Weights I/O in safetensors with torchvision's `mobilenet_v2` state_dict names
//! (`features.0.0.weight`, `features.{i}.conv.{j}…`, `features.18.*`, `classifier.1.weight`/`.bias`),
//! so a file written by `safetensors.torch.save_file(model.state_dict(), path)` loads as is and what we
//! write loads into PyTorch with a strict `load_state_dict`.
//!
//! Files we write carry the model config as JSON in the safetensors `__metadata__` under
//! [`CONFIG_METADATA_KEY`]; foreign files are checked tensor by tensor against the config's shapes.
//! Half-precision tensors (F16, BF16) are up-cast, F64 down-cast; `num_batches_tracked` is ignored.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use safetensors::{tensor::TensorView, Dtype, SafeTensors};

use super::config::ModelConfig;
use super::mobilenet_v2::{units_mut, MobileNetV2};
use crate::error::{Error, Result};
use crate::io::atomic::write_atomic;

/// `__metadata__` key holding the model config (JSON) in files infoloss writes.
pub const CONFIG_METADATA_KEY: &str = "infoloss.config";

/// A tensor read from a file: shape and values as f32.
#[derive(Clone, Debug, PartialEq)]
pub struct NamedTensor {
    pub shape: Vec<usize>,
    pub data: Vec<f32>,
}

/// Largest weights file read: the most weights a network may have (`MAX_PARAMS`) as f64, plus headers.
pub const MAX_WEIGHTS_BYTES: u64 = (super::config::MAX_PARAMS + (1 << 20)) * 8;

/// The contents of a safetensors weights file.
#[derive(Clone, Debug, Default)]
pub struct WeightsFile {
    pub tensors: BTreeMap<String, NamedTensor>,
    /// Config stored by infoloss, if the file has one.
    pub config: Option<ModelConfig>,
    /// All `__metadata__` entries.
    pub metadata: HashMap<String, String>,
}

impl WeightsFile {
    /// Reads and decodes a safetensors file; corrupt or truncated files give a one-line error.
    ///
    /// # Errors
    /// An unreadable file, or any error of [`WeightsFile::from_bytes`].
    pub fn read(path: &Path) -> Result<Self> {
        let meta = std::fs::metadata(path).map_err(|e| Error::io(path, e))?;
        if !meta.is_file() {
            return Err(Error::file("weights file", path, "is not a regular file; give a .safetensors file"));
        }
        if meta.len() > MAX_WEIGHTS_BYTES {
            return Err(Error::file("weights file", path, format!("is {} bytes, more than the {MAX_WEIGHTS_BYTES} a network may have", meta.len())));
        }
        let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
        Self::from_bytes(&bytes, path)
    }

    /// Decodes safetensors bytes (`path` is only used in messages).
    ///
    /// # Errors
    /// Not a safetensors file, a dtype that is not float, metadata that is not valid.
    pub fn from_bytes(bytes: &[u8], path: &Path) -> Result<Self> {
        let corrupt = |e: &dyn std::fmt::Display| {
            Error::file("weights file", path, format!("not a valid safetensors file ({e}); re-export it with safetensors.torch.save_file"))
        };
        let st = SafeTensors::deserialize(bytes).map_err(|e| corrupt(&e))?;
        let (_, meta) = SafeTensors::read_metadata(bytes).map_err(|e| corrupt(&e))?;
        let metadata: HashMap<String, String> = meta.metadata().clone().unwrap_or_default();
        let config = match metadata.get(CONFIG_METADATA_KEY) {
            Some(json) => Some(
                serde_json::from_str::<ModelConfig>(json)
                    .map_err(|e| Error::file("weights file", path, format!("stored config under {CONFIG_METADATA_KEY} is invalid: {e}")))?,
            ),
            None => None,
        };
        let mut tensors = BTreeMap::new();
        for (name, view) in st.tensors() {
            if name.ends_with("num_batches_tracked") {
                continue;
            }
            let data = decode_floats(&name, view.dtype(), view.data())?;
            tensors.insert(name, NamedTensor { shape: view.shape().to_vec(), data });
        }
        Ok(WeightsFile { tensors, config, metadata })
    }
}

fn decode_floats(name: &str, dtype: Dtype, raw: &[u8]) -> Result<Vec<f32>> {
    Ok(match dtype {
        Dtype::F32 => raw.chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect(),
        Dtype::F64 => raw.chunks_exact(8).map(|b| f64::from_le_bytes(b.try_into().expect("8 bytes")) as f32).collect(),
        Dtype::F16 => raw.chunks_exact(2).map(|b| half::f16::from_le_bytes([b[0], b[1]]).to_f32()).collect(),
        Dtype::BF16 => raw.chunks_exact(2).map(|b| half::bf16::from_le_bytes([b[0], b[1]]).to_f32()).collect(),
        other => return Err(Error::Dtype { key: name.to_string(), found: format!("{other:?}") }),
    })
}

impl MobileNetV2 {
    /// Every parameter and buffer as `(torchvision name, PyTorch shape, values)`, in state_dict order.
    pub fn state_dict(&self) -> Vec<(String, Vec<usize>, &[f32])> {
        let mut out = Vec::new();
        for (conv, bn, u) in self.conv_units() {
            let c = vec![u.out_channels()];
            out.push((format!("{conv}.weight"), u.kind.torch_shape(), u.weight.as_slice()));
            out.push((format!("{bn}.weight"), c.clone(), &u.bn.gamma[..]));
            out.push((format!("{bn}.bias"), c.clone(), &u.bn.beta[..]));
            out.push((format!("{bn}.running_mean"), c.clone(), &u.bn.running_mean[..]));
            out.push((format!("{bn}.running_var"), c, &u.bn.running_var[..]));
        }
        let cls = &self.classifier;
        out.push(("classifier.1.weight".into(), vec![cls.out_features(), cls.in_features()], cls.weight.as_slice()));
        out.push(("classifier.1.bias".into(), vec![cls.out_features()], &cls.bias[..]));
        out
    }

    /// Mutable slots of [`Self::state_dict`], same names, shapes and order.
    fn state_dict_mut(&mut self) -> Vec<(String, Vec<usize>, &mut [f32])> {
        let mut out = Vec::new();
        let (cls_in, cls_out) = (self.classifier.in_features(), self.classifier.out_features());
        let MobileNetV2 { stem, blocks, head, classifier, .. } = self;
        for (conv, bn, u) in units_mut(stem, blocks, head) {
            push_conv_bn_mut(&mut out, &conv, &bn, u);
        }
        out.push(("classifier.1.weight".into(), vec![cls_out, cls_in], classifier.weight.as_mut_slice()));
        out.push(("classifier.1.bias".into(), vec![cls_out], &mut classifier.bias[..]));
        out
    }

    /// Copies every tensor of `file` into the model: missing, unexpected or mis-shaped tensors are errors
    /// naming the key. `path` is only used in messages.
    ///
    /// # Errors
    /// Missing, unexpected or mis-shaped tensors, non-finite values, negative running variances — named.
    pub fn load_weights(&mut self, file: &WeightsFile, path: &Path) -> Result<()> {
        let hint = format!("is this a {} state_dict (torchvision names) for this config?", self.config().arch.name());
        fill_slots(self.state_dict_mut(), file, path, &hint)?;
        self.refold();
        Ok(())
    }

    /// Builds `config`'s model and loads `path` into it.
    ///
    /// # Errors
    /// As [`WeightsFile::read`] and [`MobileNetV2::load_weights`].
    pub fn from_safetensors(config: &ModelConfig, path: &Path) -> Result<Self> {
        let file = WeightsFile::read(path)?;
        let mut m = MobileNetV2::new(config)?;
        m.load_weights(&file, path)?;
        Ok(m)
    }

    /// Serialises to safetensors bytes (F32, torchvision names, config in `__metadata__`), with
    /// every BatchNorm's `num_batches_tracked` (I64, 0) so PyTorch's strict `load_state_dict` accepts it.
    ///
    /// # Errors
    /// Serialisation failures (internal).
    pub fn to_safetensors_bytes(&self) -> Result<Vec<u8>> {
        let extra: Vec<String> = self.conv_units().into_iter().map(|(_, bn, _)| format!("{bn}.num_batches_tracked")).collect();
        serialize_tensors_with_counters(self.state_dict(), &extra, CONFIG_METADATA_KEY, self.config())
    }

    /// Writes the weights atomically to `path`.
    ///
    /// # Errors
    /// The file cannot be written.
    pub fn save_safetensors(&self, path: &Path) -> Result<()> {
        write_atomic(path, &self.to_safetensors_bytes()?)
    }
}

/// Fills named slots from `file`: every slot must be present with its exact shape and finite values
/// (BatchNorm running variances also ≥ 0), and every tensor of the file must have a slot. Errors name
/// the tensor.
///
/// # Errors
/// A missing, unexpected, mis-shaped or non-finite tensor, a negative running variance.
/// `hint` ends the message of a missing tensor (what kind of file was expected).
pub fn fill_slots(slots: Vec<(String, Vec<usize>, &mut [f32])>, file: &WeightsFile, path: &Path, hint: &str) -> Result<()> {
    let p = path.display().to_string();
    let mut known = std::collections::HashSet::new();
    for (name, shape, slot) in slots {
        let t =
            file.tensors.get(&name).ok_or_else(|| Error::MissingKey { key: name.clone(), path: p.clone(), expected: shape.clone(), hint: hint.to_string() })?;
        if t.shape != shape {
            return Err(Error::ShapeMismatch { key: name, expected: shape, found: t.shape.clone() });
        }
        if t.data.len() != slot.len() {
            return Err(Error::file("weights file", path, format!("tensor {name} holds {} values, its shape needs {}", t.data.len(), slot.len())));
        }
        if let Some((i, v)) = t.data.iter().enumerate().find(|(_, v)| !v.is_finite()) {
            return Err(Error::file(
                "weights file",
                path,
                format!("tensor {name} holds the non-finite value {v} at index {i}; the weights are corrupt or diverged in training"),
            ));
        }
        if name.ends_with("running_var") {
            if let Some((i, v)) = t.data.iter().enumerate().find(|(_, v)| **v < 0.0) {
                return Err(Error::file(
                    "weights file",
                    path,
                    format!("tensor {name} holds the negative variance {v} at index {i}; a BatchNorm variance must be ≥ 0"),
                ));
            }
        }
        slot.copy_from_slice(&t.data);
        known.insert(name);
    }
    if let Some(extra) = file.tensors.keys().find(|k| !known.contains(*k)) {
        return Err(Error::UnexpectedKey { key: extra.clone(), path: p });
    }
    Ok(())
}

/// Safetensors bytes of named F32 tensors with `config` (JSON) in the metadata under
/// [`CONFIG_METADATA_KEY`].
///
/// # Errors
/// Tensors whose shapes do not match their data; serialisation failures.
pub fn serialize_tensors<C: serde::Serialize>(tensors: Vec<(String, Vec<usize>, &[f32])>, config: &C) -> Result<Vec<u8>> {
    serialize_tensors_as(tensors, CONFIG_METADATA_KEY, config)
}

/// [`serialize_tensors`] with the JSON under another metadata key (e.g. an optimizer's settings).
///
/// # Errors
/// As [`serialize_tensors`].
pub fn serialize_tensors_as<C: serde::Serialize>(tensors: Vec<(String, Vec<usize>, &[f32])>, key: &str, config: &C) -> Result<Vec<u8>> {
    serialize_tensors_with_counters(tensors, &[], key, config)
}

/// F32 tensors plus scalar I64 zero counters (BatchNorm's `num_batches_tracked`), config JSON under `key`.
///
/// # Errors
/// As [`serialize_tensors`].
pub fn serialize_tensors_with_counters<C: serde::Serialize>(
    tensors: Vec<(String, Vec<usize>, &[f32])>,
    counters: &[String],
    key: &str,
    config: &C,
) -> Result<Vec<u8>> {
    let raw: Vec<(String, Vec<usize>, Vec<u8>)> = tensors.into_iter().map(|(n, s, d)| (n, s, d.iter().flat_map(|v| v.to_le_bytes()).collect())).collect();
    let zero = 0i64.to_le_bytes();
    let views = raw
        .iter()
        .map(|(n, s, b)| TensorView::new(Dtype::F32, s.clone(), b).map(|v| (n.clone(), v)).map_err(|e| Error::input(format!("tensor {n}"), e)))
        .chain(counters.iter().map(|n| TensorView::new(Dtype::I64, vec![], &zero).map(|v| (n.clone(), v)).map_err(|e| Error::input(format!("tensor {n}"), e))))
        .collect::<Result<Vec<_>>>()?;
    let mut meta = HashMap::new();
    meta.insert("format".to_string(), "pt".to_string());
    meta.insert(key.to_string(), serde_json::to_string(config).map_err(|e| Error::internal("serialising the model config", e))?);
    meta.insert("infoloss.version".to_string(), env!("CARGO_PKG_VERSION").to_string());
    let bytes = safetensors::serialize(views, Some(meta)).map_err(|e| Error::internal("serialising safetensors", e))?;
    canonical_header(bytes)
}

/// Rewrites a safetensors file's JSON header with its keys (tensor names and `__metadata__` entries)
/// sorted. The crate writes the metadata from a `HashMap`, whose order changes from process to
/// process; sorted, identical weights give identical bytes. Tensor data and offsets are unchanged.
fn canonical_header(bytes: Vec<u8>) -> Result<Vec<u8>> {
    let bad = |why: &str| Error::input("safetensors serialisation", why);
    let n = u64::from_le_bytes(bytes.get(..8).and_then(|b| b.try_into().ok()).ok_or_else(|| bad("no header"))?) as usize;
    let header = bytes.get(8..8 + n).ok_or_else(|| bad("truncated header"))?;
    let mut top: BTreeMap<String, serde_json::Value> = serde_json::from_slice(header).map_err(|e| Error::input("safetensors header", e))?;
    if let Some(meta) = top.remove("__metadata__") {
        let sorted: BTreeMap<String, String> = serde_json::from_value(meta).map_err(|e| Error::input("safetensors metadata", e))?;
        top.insert("__metadata__".into(), serde_json::to_value(sorted).map_err(|e| Error::input("safetensors metadata", e))?);
    }
    let mut json = serde_json::to_vec(&top).map_err(|e| Error::input("safetensors header", e))?;
    // The data must stay 8-byte aligned: pad the header with spaces, as the format allows.
    json.resize(json.len().div_ceil(8) * 8, b' ');
    let mut out = Vec::with_capacity(8 + json.len() + bytes.len() - 8 - n);
    out.extend_from_slice(&(json.len() as u64).to_le_bytes());
    out.extend_from_slice(&json);
    out.extend_from_slice(&bytes[8 + n..]);
    Ok(out)
}

/// The five tensors of a conv → BN unit (`{conv}.weight`, `{bn}.{weight,bias,running_mean,running_var}`)
/// as mutable named slots.
pub fn push_conv_bn_mut<'a>(out: &mut Vec<(String, Vec<usize>, &'a mut [f32])>, conv: &str, bn: &str, u: &'a mut crate::layers::ConvBn) {
    let shape = u.kind.torch_shape();
    let c = vec![u.out_channels()];
    out.push((format!("{conv}.weight"), shape, u.weight.as_mut_slice()));
    out.push((format!("{bn}.weight"), c.clone(), &mut u.bn.gamma[..]));
    out.push((format!("{bn}.bias"), c.clone(), &mut u.bn.beta[..]));
    out.push((format!("{bn}.running_mean"), c.clone(), &mut u.bn.running_mean[..]));
    out.push((format!("{bn}.running_var"), c, &mut u.bn.running_var[..]));
}
