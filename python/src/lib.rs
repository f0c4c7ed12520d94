//! `infoloss._infoloss`: the Rust core behind the Python package `infoloss` (see `infoloss/__init__.py`
//! for the API a user sees). Thin by design: arrays cross as NumPy float32 (one copy in, none out),
//! the GIL is released while Rust computes, every Rust error becomes `ValueError` (bad input),
//! `OSError` (files) or `RuntimeError` (internal) with the same one-line message.

use std::sync::{Arc, Mutex};

use numpy::ndarray::{Array, IxDyn};
use numpy::{IntoPyArray, PyArrayDyn, PyReadonlyArrayDyn, PyUntypedArrayMethods};
use pyo3::exceptions::{PyOSError, PyRuntimeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::PyDict;

use infoloss::data::NpySource;
use infoloss::experiment::{run_spec, RunOptions, Spec};
use infoloss::hooks::interventions::{Clamp, GaussianNoise, KeepChannels, Linearize, ZeroChannels};
use infoloss::hooks::{HookName, HookSet, NameFilter};
use infoloss::io::table::Table;
use infoloss::model::weights::{NamedTensor, WeightsFile};
use infoloss::model::Network;
use infoloss::{Batch, Error, ErrorKind, FeatureMap, Hooked, MobileNetV2, ModelConfig};

/// A Rust error as the Python exception of its kind, with the same one-line message (and the cause
/// of an internal failure after a colon).
fn py_err(e: Error) -> PyErr {
    let mut msg = e.to_string();
    if let Some(src) = std::error::Error::source(&e) {
        msg = format!("{msg}: {src}");
    }
    match e.kind() {
        ErrorKind::Io => PyOSError::new_err(msg),
        ErrorKind::Internal => PyRuntimeError::new_err(msg),
        _ => PyValueError::new_err(msg),
    }
}

/// A config from JSON with kebab-case keys (the CLI flags), over `base`.
fn config_over(base: &ModelConfig, json: &str) -> PyResult<ModelConfig> {
    let given: serde_json::Value = serde_json::from_str(json).map_err(|e| PyValueError::new_err(format!("config: {e}")))?;
    let mut merged = serde_json::to_value(base).map_err(|e| PyRuntimeError::new_err(e.to_string()))?;
    if let (Some(m), Some(g)) = (merged.as_object_mut(), given.as_object()) {
        for (k, v) in g {
            if !m.contains_key(k) {
                let keys: Vec<String> = m.keys().map(|k| k.replace('-', "_")).collect();
                return Err(PyValueError::new_err(format!("invalid keyword {} : use one of {}", k.replace('-', "_"), keys.join(", "))));
            }
            m.insert(k.clone(), v.clone());
        }
    }
    let config: ModelConfig = serde_json::from_value(merged).map_err(|e| PyValueError::new_err(format!("invalid model config: {e}")))?;
    config.validate().map_err(py_err)?;
    Ok(config)
}

/// The batch an NCHW float32 array holds (one copy).
fn batch_of(x: &PyReadonlyArrayDyn<'_, f32>) -> PyResult<Batch> {
    let shape = x.shape();
    let Ok(shape4): Result<[usize; 4], _> = shape.try_into() else {
        return Err(PyValueError::new_err(format!("x has shape {shape:?}; expected a float32 N×3×H×W batch (add a batch axis with x[None])")));
    };
    if !x.is_c_contiguous() {
        return Err(PyValueError::new_err("x is not C-contiguous; pass np.ascontiguousarray(x)"));
    }
    let data = x.as_slice().map_err(|_| PyValueError::new_err("x is not C-contiguous; pass np.ascontiguousarray(x)"))?;
    Batch::from_nchw(shape4, data).map_err(py_err)
}

/// A row-major (N, K) float32 array from a logits matrix (no copy of the returned vector).
fn logits_array<'py>(py: Python<'py>, m: &nalgebra::DMatrix<f32>) -> Bound<'py, PyArrayDyn<f32>> {
    let (n, k) = m.shape();
    let data: Vec<f32> = (0..n).flat_map(|i| (0..k).map(move |j| (i, j))).map(|ij| m[ij]).collect();
    Array::from_shape_vec(IxDyn(&[n, k]), data).expect("n·k values").into_pyarray(py)
}

fn fm_array<'py>(py: Python<'py>, fm: &FeatureMap) -> Bound<'py, PyArrayDyn<f32>> {
    let [c, h, w] = fm.shape();
    Array::from_shape_vec(IxDyn(&[c, h, w]), fm.as_slice().to_vec()).expect("c·h·w values").into_pyarray(py)
}

/// Stacks per-image maps into one NCHW array.
fn stacked<'py>(py: Python<'py>, maps: &[FeatureMap]) -> Bound<'py, PyArrayDyn<f32>> {
    let [c, h, w] = maps.first().map_or([0, 0, 0], |m| m.shape());
    let data: Vec<f32> = maps.iter().flat_map(|m| m.as_slice().iter().copied()).collect();
    Array::from_shape_vec(IxDyn(&[maps.len(), c, h, w]), data).expect("n·c·h·w values").into_pyarray(py)
}

fn site(name: &str, model: &MobileNetV2) -> PyResult<HookName> {
    infoloss::hooks::resolve_name(name, &model.hook_sites()).map_err(py_err)
}

/// MobileNetV2 (any classifier architecture of infoloss) with its hooks.
#[pyclass(name = "_Model", module = "infoloss._infoloss")]
struct Model {
    inner: MobileNetV2,
}

#[pymethods]
impl Model {
    /// A seeded initialisation (torchvision's scheme) of the config given as JSON (kebab-case keys).
    #[staticmethod]
    fn seeded(config_json: &str, seed: u64) -> PyResult<Self> {
        let config = config_over(&ModelConfig::default(), config_json)?;
        Ok(Model { inner: MobileNetV2::seeded(&config, seed).map_err(py_err)? })
    }

    /// Weights from a safetensors file (infoloss's or torchvision's names); the stored config, if
    /// any, with the given keys over it (they must agree, except the resolution).
    #[staticmethod]
    fn load(path: &str, config_json: &str) -> PyResult<Self> {
        let file = WeightsFile::read(std::path::Path::new(path)).map_err(py_err)?;
        let config = match &file.config {
            Some(stored) => {
                let merged = config_over(stored, config_json)?;
                let (a, b) = (serde_json::to_value(stored).unwrap_or_default(), serde_json::to_value(&merged).unwrap_or_default());
                if let (Some(a), Some(b)) = (a.as_object(), b.as_object()) {
                    if let Some((k, va)) = a.iter().find(|(k, v)| k.as_str() != "resolution" && b.get(*k) != Some(*v)) {
                        return Err(PyValueError::new_err(format!(
                            "config mismatch for {}: the weights file stores {va}, the keywords say {}; drop the keyword or use matching weights",
                            k.replace('-', "_"),
                            b.get(k).cloned().unwrap_or_default()
                        )));
                    }
                }
                merged
            }
            None => config_over(&ModelConfig::default(), config_json)?,
        };
        let mut m = MobileNetV2::new(&config).map_err(py_err)?;
        m.load_weights(&file, std::path::Path::new(path)).map_err(py_err)?;
        Ok(Model { inner: m })
    }

    /// Weights from named float32 arrays (a torchvision `state_dict` as NumPy), config as JSON.
    #[staticmethod]
    fn from_tensors(names: Vec<String>, arrays: Vec<PyReadonlyArrayDyn<'_, f32>>, config_json: &str) -> PyResult<Self> {
        let config = config_over(&ModelConfig::default(), config_json)?;
        let mut file = WeightsFile::default();
        for (name, a) in names.into_iter().zip(arrays) {
            if !a.is_c_contiguous() {
                return Err(PyValueError::new_err(format!("tensor {name} is not C-contiguous; pass np.ascontiguousarray(v)")));
            }
            let data = a.as_slice().map_err(|_| PyValueError::new_err(format!("tensor {name} is not C-contiguous")))?.to_vec();
            file.tensors.insert(name, NamedTensor { shape: a.shape().to_vec(), data });
        }
        let mut m = MobileNetV2::new(&config).map_err(py_err)?;
        m.load_weights(&file, std::path::Path::new("<state_dict>")).map_err(py_err)?;
        Ok(Model { inner: m })
    }

    /// Every tensor under its torchvision name (weights, BN statistics), as float32 arrays.
    fn state_dict<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let out = PyDict::new(py);
        for (name, shape, data) in self.inner.state_dict() {
            out.set_item(name, Array::from_shape_vec(IxDyn(&shape), data.to_vec()).map_err(|e| PyRuntimeError::new_err(e.to_string()))?.into_pyarray(py))?;
        }
        Ok(out)
    }

    fn save(&self, py: Python<'_>, path: &str) -> PyResult<()> {
        py.detach(|| self.inner.save_safetensors(std::path::Path::new(path))).map_err(py_err)
    }

    /// The config as JSON (kebab-case keys).
    fn config_json(&self) -> PyResult<String> {
        serde_json::to_string(self.inner.config()).map_err(|e| PyRuntimeError::new_err(e.to_string()))
    }

    /// Every hook site as JSON (as `infoloss hooks --json`).
    fn hooks_json(&self) -> PyResult<String> {
        serde_json::to_string(&self.inner.hook_sites()).map_err(|e| PyRuntimeError::new_err(e.to_string()))
    }

    /// The site names a glob, prefix or exact name selects.
    fn select(&self, pattern: &str) -> PyResult<Vec<String>> {
        if pattern.len() > 1000 {
            return Err(PyValueError::new_err(format!("site pattern of {} characters; site names are short (see m.hooks())", pattern.len())));
        }
        let sites = self.inner.hook_sites();
        let f = NameFilter::parse(pattern, &sites).map_err(py_err)?;
        Ok(sites.iter().filter(|s| f.matches(&s.name)).map(|s| s.name.to_string()).collect())
    }

    /// Logits (N, classes); the GIL is released while Rust computes.
    fn forward<'py>(&self, py: Python<'py>, x: PyReadonlyArrayDyn<'py, f32>) -> PyResult<Bound<'py, PyArrayDyn<f32>>> {
        let batch = batch_of(&x)?;
        let logits = py.detach(|| self.inner.forward(&batch)).map_err(py_err)?;
        Ok(logits_array(py, &logits))
    }

    /// Logits and the activations at `names` (NCHW arrays by name).
    fn run_with_cache<'py>(
        &self,
        py: Python<'py>,
        x: PyReadonlyArrayDyn<'py, f32>,
        names: Vec<String>,
    ) -> PyResult<(Bound<'py, PyArrayDyn<f32>>, Bound<'py, PyDict>)> {
        let batch = batch_of(&x)?;
        let filter = NameFilter::Any(names.iter().map(|n| site(n, &self.inner).map(NameFilter::Exact)).collect::<PyResult<_>>()?);
        let (logits, cache) = py.detach(|| self.inner.run_with_cache(&batch, filter)).map_err(py_err)?;
        let out = PyDict::new(py);
        for name in cache.names() {
            let s = cache.site(&name).map_err(py_err)?;
            out.set_item(name.to_string(), stacked(py, &s.maps))?;
        }
        Ok((logits_array(py, &logits), out))
    }

    /// Logits with interventions `(kind, sites, numbers)` and Python hooks `(site, fn)`. Images run
    /// one after another, so each hook sees image 0, 1, … in order; a hook re-acquires the GIL at its
    /// site only.
    fn run<'py>(
        &self,
        py: Python<'py>,
        x: PyReadonlyArrayDyn<'py, f32>,
        interventions: Vec<(String, Vec<String>, Vec<f64>)>,
        hooks: Vec<(String, Py<PyAny>)>,
    ) -> PyResult<Bound<'py, PyArrayDyn<f32>>> {
        let batch = batch_of(&x)?;
        let mut set = HookSet::new();
        let all_sites = self.inner.hook_sites();
        for (kind, sites, nums) in interventions {
            if sites.is_empty() {
                return Err(PyValueError::new_err(format!("{kind}: name at least one site (see m.hooks())")));
            }
            let names: Vec<HookName> = sites.iter().map(|s| site(s, &self.inner)).collect::<PyResult<_>>()?;
            let filter = NameFilter::Any(names.iter().copied().map(NameFilter::Exact).collect());
            let need = |k: usize| -> PyResult<()> {
                if nums.len() != k || nums.iter().any(|v| !v.is_finite()) {
                    return Err(PyValueError::new_err(format!("{kind}: expected {k} finite numbers, got {nums:?}")));
                }
                Ok(())
            };
            // Channel indices: whole, non-negative and below every named site's channel count.
            let channels = || -> PyResult<Vec<usize>> {
                let fewest = names.iter().filter_map(|n| all_sites.iter().find(|s| s.name == *n)).map(|s| s.channels).min().unwrap_or(0);
                nums.iter()
                    .map(|&c| {
                        if c.fract() != 0.0 || c < 0.0 || c >= fewest as f64 {
                            return Err(PyValueError::new_err(format!(
                                "{kind}: channel {c} is not an index below {fewest}, the channels of {}",
                                sites.join(", ")
                            )));
                        }
                        Ok(c as usize)
                    })
                    .collect()
            };
            match kind.as_str() {
                "zero" => {
                    let _ = set.intervene(filter, ZeroChannels { channels: channels()? });
                }
                "keep" => {
                    let _ = set.intervene(filter, KeepChannels { channels: channels()? });
                }
                "clamp" => {
                    need(2)?;
                    if nums[0] > nums[1] {
                        return Err(PyValueError::new_err(format!("clamp: lo = {} is above hi = {}; give lo ≤ hi", nums[0], nums[1])));
                    }
                    let _ = set.intervene(filter, Clamp { lo: nums[0] as f32, hi: nums[1] as f32 });
                }
                "noise" => {
                    need(2)?;
                    if nums[0] < 0.0 || nums[1] < 0.0 || nums[1].fract() != 0.0 || nums[1] > 9.007_199_254_740_992e15 {
                        return Err(PyValueError::new_err(format!(
                            "noise: std = {} and seed = {}: give std ≥ 0 and a whole seed in 0..2**53",
                            nums[0], nums[1]
                        )));
                    }
                    let _ = set.intervene(filter, GaussianNoise { std: nums[0] as f32, seed: nums[1] as u64 });
                }
                "linearize" => {
                    if let Some(n) = names.iter().find(|n| n.pre_of().is_none()) {
                        return Err(PyValueError::new_err(format!("linearize: {n} has no pre-activation; give a .post site or blocks.{{i}}.project")));
                    }
                    set.apply(Linearize::new(names)).map_err(py_err)?;
                }
                other => return Err(PyValueError::new_err(format!("unknown intervention {other}"))),
            }
        }
        let failure: Arc<Mutex<Option<PyErr>>> = Arc::new(Mutex::new(None));
        let python_hooks = hooks.len();
        for (name, f) in hooks {
            let at = site(&name, &self.inner)?;
            let (f, failure) = (Arc::new(f), Arc::clone(&failure));
            set.intervene_fn(NameFilter::Exact(at), move |s, _image, fm| {
                Python::attach(|py| {
                    let r = (|| -> PyResult<()> {
                        let out = f.call1(py, (fm_array(py, fm), s.to_string()))?;
                        if out.is_none(py) {
                            return Ok(());
                        }
                        let a: PyReadonlyArrayDyn<'_, f32> =
                            out.extract(py).map_err(|_| PyValueError::new_err(format!("the hook at {s} returned neither None nor a float32 array")))?;
                        if a.shape() != fm.shape() {
                            return Err(PyValueError::new_err(format!("the hook at {s} returned shape {:?}; the activation is {:?}", a.shape(), fm.shape())));
                        }
                        if !a.is_c_contiguous() {
                            return Err(PyValueError::new_err(format!(
                                "the hook at {s} returned an array that is not C-contiguous; return np.ascontiguousarray(a)"
                            )));
                        }
                        let data = a.as_slice().map_err(|_| PyValueError::new_err(format!("the hook at {s} returned a non-contiguous array")))?;
                        if let Some(k) = data.iter().position(|v| !v.is_finite()) {
                            return Err(PyValueError::new_err(format!("the hook at {s} returned a non-finite value ({}) at flat index {k}", data[k])));
                        }
                        fm.as_mut_slice().copy_from_slice(data);
                        Ok(())
                    })();
                    if let Err(e) = r {
                        failure.lock().unwrap_or_else(|p| p.into_inner()).get_or_insert(e);
                    }
                })
            });
        }
        if python_hooks == 0 {
            // Only Rust interventions: the whole batch at once, images in parallel.
            let logits = py.detach(|| self.inner.run_with_hooks(&batch, &mut set)).map_err(py_err)?;
            return Ok(logits_array(py, &logits));
        }
        let images = batch.images();
        let mut rows: Vec<nalgebra::DMatrix<f32>> = Vec::with_capacity(images.len());
        for (i, img) in images.iter().enumerate() {
            let one = Batch::new(vec![img.clone()]).map_err(py_err)?;
            rows.push(py.detach(|| self.inner.run_with_hooks_at(&one, i, &mut set)).map_err(py_err)?);
            if let Some(e) = failure.lock().unwrap_or_else(|p| p.into_inner()).take() {
                return Err(e);
            }
        }
        let k = self.inner.config().classes;
        let all = nalgebra::DMatrix::from_fn(rows.len(), k, |i, j| rows[i][(0, j)]);
        Ok(logits_array(py, &all))
    }

    /// The analyses of `infoloss analyze` on `x`: table name → CSV text.
    fn analyze(&self, py: Python<'_>, x: PyReadonlyArrayDyn<'_, f32>, lemma2: bool) -> PyResult<Vec<(String, String)>> {
        let batch = batch_of(&x)?;
        let net = Network::Classifier(self.inner.clone());
        let r = py
            .detach(|| {
                let mut src = infoloss::data::source::VecSource::new(batch);
                let settings = infoloss::analysis::patterns::AnalyzeSettings { lemma2, ..Default::default() };
                infoloss::analysis::patterns::analyze(&net, &mut src, &settings, &mut |_, _| {})
            })
            .map_err(py_err)?;
        let mut out = vec![("patterns".to_string(), r.patterns_table()), ("channels".into(), r.channels_table()), ("histograms".into(), r.histogram_table())];
        if lemma2 {
            out.push(("lemma2".into(), r.lemma2_table()));
        }
        out.into_iter().map(|(n, t)| Ok((n, csv(&t)?))).collect()
    }
}

fn csv(t: &Table) -> PyResult<String> {
    String::from_utf8(t.to_csv().map_err(py_err)?).map_err(|e| PyRuntimeError::new_err(e.to_string()))
}

/// Runs an experiment spec into `out` (resuming); returns `out`.
#[pyfunction]
#[pyo3(signature = (spec, out, set, jobs))]
fn run_experiment(py: Python<'_>, spec: &str, out: &str, set: Vec<String>, jobs: usize) -> PyResult<String> {
    let s = Spec::load(std::path::Path::new(spec), &set).map_err(py_err)?;
    let opts = RunOptions { out: out.into(), shard: None, jobs, max_runs: None };
    let outcome = py.detach(|| run_spec(&s, &opts, &|_| {})).map_err(py_err)?;
    if let Some((k, e)) = outcome.failed.first() {
        return Err(PyRuntimeError::new_err(format!("run {k} failed: {e}")));
    }
    Ok(out.to_string())
}

/// Fig. 1: the spiral table as CSV.
#[pyfunction]
fn spiral_csv(py: Python<'_>, dims: Vec<usize>, seeds: Vec<u64>, points: usize) -> PyResult<String> {
    let max_points = infoloss::analysis::manifold::MAX_SPIRAL_POINTS;
    if dims.is_empty()
        || seeds.is_empty()
        || !(12..=max_points).contains(&points)
        || dims.iter().any(|&n| n == 0 || n > 4096)
        || dims.len() * seeds.len() > 100_000
    {
        return Err(PyValueError::new_err(format!(
            "spiral: give dims in 1..=4096, at least one seed, 12 to {max_points} points and at most 100000 (dim, seed) runs"
        )));
    }
    let s = infoloss::analysis::manifold::SpiralSettings { dims, seeds, points, ..Default::default() };
    let (rows, _) = py.detach(|| infoloss::analysis::manifold::spiral_experiment(&s));
    csv(&infoloss::analysis::manifold::spiral_table(&rows))
}

/// Theorem 1 against random expansion layers: the theory table as CSV.
#[pyfunction]
fn theory_csv(py: Python<'_>, n: Vec<usize>, t: Vec<f64>, seeds: Vec<u64>, samples: usize) -> PyResult<String> {
    // The largest layer drawn (n · m with m = t·n) and the trials, bounded: a sweep stays in memory and time.
    let work = n.iter().flat_map(|&a| t.iter().map(move |&b| (a as f64) * (a as f64 * b))).fold(0.0f64, f64::max);
    let bad_t = t.iter().any(|v| !(1.0..=64.0).contains(v));
    if n.is_empty()
        || t.is_empty()
        || seeds.is_empty()
        || !(1..=1_000_000).contains(&samples)
        || n.iter().any(|&v| v == 0 || v > 4096)
        || bad_t
        || work > (1u64 << 24) as f64
    {
        return Err(PyValueError::new_err("theory: give n in 1..=4096, t in [1, 64] with n·m ≤ 2**24 (m = t·n), at least one seed and 1 to 1000000 samples"));
    }
    let s = infoloss::analysis::theory::TheorySettings { n, t, seeds, samples, rank_eps: infoloss::analysis::invertibility::RANK_EPS, confidence: 0.95 };
    let rows = py.detach(|| infoloss::analysis::theory::theory_sweep(&s));
    csv(&infoloss::analysis::theory::theory_table(&rows))
}

/// Reads an NCHW `.npy` batch (float32).
#[pyfunction]
fn read_npy<'py>(py: Python<'py>, path: &str) -> PyResult<Bound<'py, PyArrayDyn<f32>>> {
    use infoloss::data::BatchSource;
    let mut src = NpySource::new(std::path::Path::new(path)).map_err(py_err)?;
    let mut maps = Vec::new();
    while let Some(b) = src.next_batch(64).map_err(py_err)? {
        maps.extend(b.into_images());
    }
    Ok(stacked(py, &maps))
}

#[pymodule]
fn _infoloss(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<Model>()?;
    m.add_function(wrap_pyfunction!(run_experiment, m)?)?;
    m.add_function(wrap_pyfunction!(spiral_csv, m)?)?;
    m.add_function(wrap_pyfunction!(theory_csv, m)?)?;
    m.add_function(wrap_pyfunction!(read_npy, m)?)?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    Ok(())
}
