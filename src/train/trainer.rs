//! The training loop: deterministic shuffling and augmentation by seed, training steps with the
//! optimizer and schedule, validation each epoch, checkpoints after every epoch, exact resume.
//!
//! Every random choice is a pure function of `(seed, epoch, …)`: the epoch's permutation, each image's
//! crop and flip, each step's dropout mask. A run resumed at an epoch boundary therefore continues
//! exactly as the uninterrupted run would (the checkpoint holds weights, BN statistics and the
//! optimizer's buffers). Results are bit-identical for the same seed and thread count.

use std::path::Path;

use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::SeedableRng;
use serde::{Deserialize, Serialize};

use super::act::Act;
use super::augment::mix;
pub use super::augment::{augment, Augment};
use super::checkpoint;
use super::engine::{train_step_pooled, StepOptions};
pub use super::evaluate::{evaluate, Evaluation};
use super::optim::{Optimizer, OptimizerConfig, ParamState, Schedule};
use super::params::param_names;
pub use super::params::{grad_slices, params_mut};
use super::pool::ActPool;
use crate::data::{DataSpec, Split};
use crate::error::{Error, Result};
use crate::io::atomic::{ensure_writable_dir, remove_stale_temps};
use crate::io::meta::RunMeta;
use crate::io::table::Table;
use crate::model::weights::{serialize_tensors_as, WeightsFile};
use crate::model::{MobileNetV2, ModelConfig};
use crate::tensor::Batch;

/// Everything that defines a training run besides the model config.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default, rename_all = "kebab-case")]
pub struct TrainConfig {
    pub data: String,
    pub epochs: usize,
    pub batch: usize,
    pub optimizer: OptimizerConfig,
    pub schedule: Schedule,
    pub label_smoothing: f32,
    /// Augmentation of the training images.
    pub augment: Augment,
    pub seed: u64,
    /// Use only the first N training / validation images.
    pub train_limit: Option<usize>,
    pub val_limit: Option<usize>,
}

impl Default for TrainConfig {
    fn default() -> Self {
        TrainConfig {
            data: "synthetic".into(),
            epochs: 10,
            batch: 96,
            optimizer: OptimizerConfig::default(),
            schedule: Schedule::default(),
            label_smoothing: 0.0,
            augment: Augment::CropFlip,
            seed: 0,
            train_limit: None,
            val_limit: None,
        }
    }
}

/// One epoch's results.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EpochMetrics {
    pub epoch: usize,
    pub train_loss: f64,
    pub train_acc: f64,
    pub val_loss: f64,
    pub val_acc: f64,
    pub lr: f64,
    /// Wall time (kept out of `metrics.csv`, which must be reproducible).
    pub seconds: f64,
}

/// Progress of the running epoch, for a progress bar.
#[derive(Clone, Copy, Debug)]
pub struct TrainProgress {
    pub epoch: usize,
    pub epochs: usize,
    pub step: usize,
    pub steps: usize,
    pub loss: f64,
    pub acc: f64,
}

/// File names inside a checkpoint (the latest weights also go to `out/weights.safetensors`).
pub const WEIGHTS_FILE: &str = "weights.safetensors";
const OPTIMIZER_FILE: &str = "optimizer.safetensors";
const STATE_FILE: &str = "train_state.json";

/// What is saved next to the weights.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct TrainState {
    model: ModelConfig,
    train: TrainConfig,
    epochs_done: usize,
    optimizer_steps: u64,
    metrics: Vec<EpochMetrics>,
    infoloss_version: String,
}

/// Trains `model` as `cfg` says, writing checkpoints and metrics into `out`. With `resume`, continues
/// from the checkpoint in `out` (which must have been written with the same configs).
///
/// # Errors
/// As [`train_until`].
pub fn train(model: &mut MobileNetV2, cfg: &TrainConfig, out: &Path, resume: bool, progress: &mut dyn FnMut(TrainProgress)) -> Result<Vec<EpochMetrics>> {
    train_until(model, cfg, out, resume, None, progress)
}

/// [`train`] that returns after `stop_after` epochs (counted from epoch 0) as an interrupted run would,
/// leaving a checkpoint to resume from. The config's epoch budget (and so the schedule) is unchanged.
///
/// # Errors
/// Bad settings, unreadable data, an unwritable `out`, a corrupt checkpoint, a diverging loss.
pub fn train_until(
    model: &mut MobileNetV2,
    cfg: &TrainConfig,
    out: &Path,
    resume: bool,
    stop_after: Option<usize>,
    progress: &mut dyn FnMut(TrainProgress),
) -> Result<Vec<EpochMetrics>> {
    cfg.optimizer.validate()?;
    if !(1..=super::settings::MAX_BATCH).contains(&cfg.batch) || !(1..=super::settings::MAX_EPOCHS).contains(&cfg.epochs) {
        return Err(Error::config(
            "batch/epochs",
            format!("{}/{}", cfg.batch, cfg.epochs),
            format!("use 1 to {} images per batch and 1 to {} epochs", super::settings::MAX_BATCH, super::settings::MAX_EPOCHS),
        ));
    }
    if resume && !checkpoint::exists(out) {
        let old = if out.join(STATE_FILE).exists() { " (its train_state.json is from an older infoloss whose checkpoints cannot be resumed)" } else { "" };
        return Err(Error::config("--resume", out.display(), format!("holds no checkpoint ({}){old}; train without --resume", checkpoint::POINTER)));
    }
    ensure_writable_dir(out)?;
    // Temp files a killed run left behind (its checkpoint folders are handled by the pointer).
    remove_stale_temps(out, 1);
    let spec: DataSpec = cfg.data.parse()?;
    let res = model.config().resolution;
    let train_set = spec.open(Split::Train, res, cfg.seed)?;
    let val_set = spec.open(Split::Val, res, cfg.seed)?;
    if let Some(native) = train_set.native_resolution().filter(|&r| r != res) {
        return Err(Error::config(
            "resolution",
            res,
            format!(
                "the images of {} are {native}×{native} and are not resized; use --resolution {native} (or a folder:DIR data set, which is resized)",
                cfg.data
            ),
        ));
    }
    if train_set.classes() > model.config().classes {
        return Err(Error::config(
            "classes",
            model.config().classes,
            format!("the data set has {} classes; pass --classes {}", train_set.classes(), train_set.classes()),
        ));
    }
    let sizes: Vec<usize> = params_mut(model).0.iter().map(|p| p.len()).collect();
    let mut opt = Optimizer::new(cfg.optimizer.clone(), &sizes);
    let mut metrics: Vec<EpochMetrics> = Vec::new();
    let mut start_epoch = 0;
    if !resume {
        // A fresh run into a folder that holds an older run's checkpoint: that one is not ours.
        checkpoint::remove(out)?;
    }
    if resume {
        let ckpt = checkpoint::load(out)?;
        let st_path = out.join(&ckpt.pointer.dir).join(STATE_FILE);
        let st: TrainState = serde_json::from_slice(ckpt.file(STATE_FILE)?).map_err(|e| Error::file("train state", &st_path, e))?;
        if &st.model != model.config() || st.train != *cfg {
            let stored = serde_json::json!({ "model": st.model, "train": st.train });
            let given = serde_json::json!({ "model": model.config(), "train": cfg });
            return Err(Error::config(
                "resume",
                out.display(),
                format!("the checkpoint was written with {}; use the same flags or another --out", first_difference(&stored, &given, "")),
            ));
        }
        if st.epochs_done != ckpt.pointer.epoch {
            return Err(Error::file("train state", &st_path, format!("says {} epochs done, its pointer says {}", st.epochs_done, ckpt.pointer.epoch)));
        }
        let wpath = out.join(&ckpt.pointer.dir).join(WEIGHTS_FILE);
        model.load_weights(&WeightsFile::from_bytes(ckpt.file(WEIGHTS_FILE)?, &wpath)?, &wpath)?;
        let opath = out.join(&ckpt.pointer.dir).join(OPTIMIZER_FILE);
        let of = WeightsFile::from_bytes(ckpt.file(OPTIMIZER_FILE)?, &opath)?;
        for (name, s) in param_names(model).iter().zip(&mut opt.state) {
            let get = |k: String| {
                of.tensors
                    .get(&k)
                    .map(|t| t.data.clone())
                    .ok_or_else(|| Error::file("optimizer state", &opath, format!("has no tensor {k}; it was written for another model")))
            };
            *s = ParamState { a: get(format!("{name}.a"))?, b: get(format!("{name}.b"))? };
        }
        opt.steps = st.optimizer_steps;
        start_epoch = st.epochs_done;
        metrics = st.metrics;
    }
    let n_train = cfg.train_limit.unwrap_or(usize::MAX).min(train_set.len());
    if n_train == 0 {
        return Err(Error::config(
            "training split",
            format!("{} ({} images)", cfg.data, train_set.len()),
            "it has no images to train on; use a data set with images (and --train-limit ≥ 1)",
        ));
    }
    let n_val = cfg.val_limit.unwrap_or(usize::MAX).min(val_set.len());
    if n_val == 0 {
        return Err(Error::config(
            "validation split",
            format!("{} ({} images)", cfg.data, val_set.len()),
            "it has no images, so no validation loss or accuracy could be measured; use a larger data set (and --val-limit ≥ 1)",
        ));
    }
    let steps = n_train.div_ceil(cfg.batch);
    let threads = rayon::current_num_threads();
    // Activation buffers reused by every step (no step allocates its tensors anew).
    let mut buffers = ActPool::default();
    for epoch in start_epoch..cfg.epochs {
        let t0 = std::time::Instant::now();
        let mut order: Vec<usize> = (0..n_train).collect();
        order.shuffle(&mut StdRng::seed_from_u64(mix(cfg.seed, epoch as u64 + 1)));
        let (mut loss_sum, mut correct, mut seen) = (0.0f64, 0usize, 0usize);
        let mut lr = cfg.schedule.lr(cfg.optimizer.lr, epoch, 0.0);
        for (s, chunk) in order.chunks(cfg.batch).enumerate() {
            lr = cfg.schedule.lr(cfg.optimizer.lr, epoch, s as f64 / steps as f64);
            let items = chunk
                .iter()
                .map(|&i| {
                    let (img, label) = train_set.image(i)?;
                    let img = cfg.augment.apply(img, mix(mix(cfg.seed, epoch as u64), i as u64));
                    Ok((img, label))
                })
                .collect::<Result<Vec<_>>>()?;
            let labels: Vec<usize> = items.iter().map(|x| x.1).collect();
            let x = Act::from_batch(&Batch::new(items.into_iter().map(|x| x.0).collect())?);
            let step_opts = StepOptions { label_smoothing: cfg.label_smoothing, dropout_seed: mix(mix(cfg.seed, epoch as u64), 1_000_000 + s as u64), threads };
            let r = crate::parallel::on_pool(|| train_step_pooled(model, &x, &labels, step_opts, &mut buffers));
            if !r.loss.is_finite() {
                return Err(Error::input(
                    "training",
                    format!(
                        "loss became {} at epoch {} step {}; the last good checkpoint (epoch {}) is in {}; lower --lr",
                        r.loss,
                        epoch + 1,
                        s + 1,
                        epoch,
                        out.display()
                    ),
                ));
            }
            let (params, decay) = params_mut(model);
            opt.step(params, &grad_slices(&r.grads), &decay, lr);
            loss_sum += r.loss * labels.len() as f64;
            correct += r.correct;
            seen += labels.len();
            progress(TrainProgress { epoch, epochs: cfg.epochs, step: s + 1, steps, loss: loss_sum / seen as f64, acc: correct as f64 / seen as f64 });
        }
        let Evaluation { loss: val_loss, accuracy: val_acc, .. } = evaluate(model, val_set.as_ref(), cfg.val_limit, 256)?;
        metrics.push(EpochMetrics {
            epoch: epoch + 1,
            train_loss: loss_sum / seen.max(1) as f64,
            train_acc: correct as f64 / seen.max(1) as f64,
            val_loss,
            val_acc,
            lr,
            seconds: t0.elapsed().as_secs_f64(),
        });
        crate::failpoint!("train-before-checkpoint");
        save_checkpoint(model, cfg, &opt, &metrics, epoch + 1, out)?;
        crate::failpoint!("train-before-outputs");
        write_outputs(model, cfg, &metrics, out)?;
        if stop_after.is_some_and(|k| epoch + 1 >= k) {
            return Ok(metrics);
        }
    }
    if start_epoch >= cfg.epochs {
        // Resumed after the last checkpoint but before its outputs were written: write them now.
        write_outputs(model, cfg, &metrics, out)?;
    }
    Ok(metrics)
}

/// The model on the whole test split of `cfg.data` (its test file; see [`Split::Test`]): the number a
/// run reports once, after training.
///
/// # Errors
/// Unreadable data, an empty test split.
pub fn evaluate_test(model: &mut MobileNetV2, cfg: &TrainConfig) -> Result<Evaluation> {
    let spec: DataSpec = cfg.data.parse()?;
    let test = spec.open(Split::Test, model.config().resolution, cfg.seed)?;
    if test.is_empty() {
        return Err(Error::config("test split", &cfg.data, "it has no images; use a data set with a test file"));
    }
    evaluate(model, test.as_ref(), None, 256)
}

/// The first key where two configs differ, as `key = stored (now given)`.
fn first_difference(stored: &serde_json::Value, given: &serde_json::Value, prefix: &str) -> String {
    if let (Some(a), Some(b)) = (stored.as_object(), given.as_object()) {
        for (k, va) in a {
            let vb = b.get(k).unwrap_or(&serde_json::Value::Null);
            if va != vb {
                let key = if prefix.is_empty() { k.clone() } else { format!("{prefix}.{k}") };
                return first_difference(va, vb, &key);
            }
        }
    }
    format!("{prefix} = {stored} (now {given})")
}

/// The checkpoint of `epochs_done` as one atomic unit (see [`checkpoint`]).
fn save_checkpoint(model: &MobileNetV2, cfg: &TrainConfig, opt: &Optimizer, metrics: &[EpochMetrics], epochs_done: usize, out: &Path) -> Result<()> {
    let weights = model.to_safetensors_bytes()?;
    let names = param_names(model);
    let mut tensors: Vec<(String, Vec<usize>, &[f32])> = Vec::new();
    for (name, s) in names.iter().zip(&opt.state) {
        tensors.push((format!("{name}.a"), vec![s.a.len()], &s.a));
        tensors.push((format!("{name}.b"), vec![s.b.len()], &s.b));
    }
    let optimizer = serialize_tensors_as(tensors, "infoloss.optimizer", &cfg.optimizer)?;
    let st = TrainState {
        model: model.config().clone(),
        train: cfg.clone(),
        epochs_done,
        optimizer_steps: opt.steps,
        metrics: metrics.to_vec(),
        infoloss_version: env!("CARGO_PKG_VERSION").into(),
    };
    let state = serde_json::to_string_pretty(&st).map_err(|e| Error::internal("serialising the train state", e))?;
    checkpoint::save(out, epochs_done, &[(WEIGHTS_FILE, &weights), (OPTIMIZER_FILE, &optimizer), (STATE_FILE, state.as_bytes())])
}

/// The user-facing outputs, derived from the checkpoint: the latest weights, `metrics.csv` and
/// `timing.csv`. Rewritten after every epoch (and on a resume that finds nothing left to train).
fn write_outputs(model: &MobileNetV2, cfg: &TrainConfig, metrics: &[EpochMetrics], out: &Path) -> Result<()> {
    model.save_safetensors(&out.join(WEIGHTS_FILE))?;
    crate::failpoint!("train-between-outputs");
    let meta = RunMeta::new("infoloss train", serde_json::json!({"model": model.config(), "train": cfg}));
    Table::new()
        .u64("epoch", metrics.iter().map(|m| m.epoch as u64).collect())
        .f64("train_loss", metrics.iter().map(|m| m.train_loss).collect())
        .f64("train_acc", metrics.iter().map(|m| m.train_acc).collect())
        .f64("val_loss", metrics.iter().map(|m| m.val_loss).collect())
        .f64("val_acc", metrics.iter().map(|m| m.val_acc).collect())
        .f64("lr", metrics.iter().map(|m| m.lr).collect())
        .write_csv(&out.join("metrics.csv"), &meta)?;
    Table::new()
        .u64("epoch", metrics.iter().map(|m| m.epoch as u64).collect())
        .f64("seconds", metrics.iter().map(|m| m.seconds).collect())
        .write_csv(&out.join("timing.csv"), &meta)
}
