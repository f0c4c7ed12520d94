//! Training settings as a user writes them — the `infoloss train` flags and the `[train]` table of an
//! experiment spec share this one struct — resolved into a [`TrainConfig`] for a data set and seed.

use serde::{Deserialize, Serialize};

use super::augment::Augment;
use super::optim::{OptimizerConfig, OptimizerKind, Schedule};
use super::trainer::TrainConfig;
use crate::error::{Error, Result};

/// The learning-rate schedule by name.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ScheduleKind {
    /// ×0.98 per epoch (the paper's).
    #[default]
    Exponential,
    /// ×0.1 every third of the run.
    Step,
    /// Cosine decay to 0 over the run.
    Cosine,
}

/// Training settings (defaults: the paper's RMSprop recipe, 10 epochs, batch 96, the data set's augmentation).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default, rename_all = "kebab-case")]
pub struct TrainSettings {
    pub epochs: usize,
    pub batch: usize,
    pub optimizer: OptimizerKind,
    /// Learning rate; `None` takes the optimizer's default (0.045 rmsprop, 0.1 sgd, 0.001 adamw).
    pub lr: Option<f64>,
    /// Weight decay; `None` takes the optimizer's default (4e-5 rmsprop/sgd, 0.01 adamw).
    pub weight_decay: Option<f64>,
    pub schedule: ScheduleKind,
    /// Linear warm-up epochs.
    pub warmup: usize,
    pub label_smoothing: f32,
    /// `none`, `crop` or `crop-flip`; `None` takes the data set's default ([`Augment::default_for`]).
    pub augment: Option<Augment>,
    /// Use only the first N training / validation images.
    pub train_limit: Option<usize>,
    pub val_limit: Option<usize>,
}

impl Default for TrainSettings {
    fn default() -> Self {
        TrainSettings {
            epochs: 10,
            batch: 96,
            optimizer: OptimizerKind::Rmsprop,
            lr: None,
            weight_decay: None,
            schedule: ScheduleKind::Exponential,
            warmup: 0,
            label_smoothing: 0.0,
            augment: None,
            train_limit: None,
            val_limit: None,
        }
    }
}

/// Most epochs a run may ask for.
pub const MAX_EPOCHS: usize = 100_000;
/// Largest training batch (a whole batch's activations are held for the backward pass).
pub const MAX_BATCH: usize = 4096;

impl TrainSettings {
    /// The training config for `data` and `seed`, validated.
    ///
    /// # Errors
    /// Epochs, batch, warm-up, label smoothing or limits out of range; an unknown data spec.
    pub fn resolve(&self, data: &str, seed: u64) -> Result<TrainConfig> {
        if !(1..=MAX_EPOCHS).contains(&self.epochs) {
            return Err(Error::config("epochs", self.epochs, format!("train for at least 1 and at most {MAX_EPOCHS} epochs")));
        }
        if !(1..=MAX_BATCH).contains(&self.batch) {
            return Err(Error::config("batch", self.batch, format!("use 1 to {MAX_BATCH} images per batch")));
        }
        if self.warmup >= self.epochs && self.warmup > 0 {
            return Err(Error::config("warmup", self.warmup, format!("use fewer warm-up epochs than epochs ({})", self.epochs)));
        }
        if !(0.0..1.0).contains(&self.label_smoothing) {
            return Err(Error::config("label-smoothing", self.label_smoothing, "use a value in [0, 1), e.g. 0.1"));
        }
        if self.train_limit == Some(0) || self.val_limit == Some(0) {
            return Err(Error::config("train-limit/val-limit", 0, "use at least 1 image, or drop the key for all"));
        }
        let mut optimizer = OptimizerConfig::for_kind(self.optimizer);
        if let Some(lr) = self.lr {
            optimizer.lr = lr;
        }
        if let Some(wd) = self.weight_decay {
            optimizer.weight_decay = wd;
        }
        optimizer.validate()?;
        let warmup = self.warmup;
        let schedule = match self.schedule {
            ScheduleKind::Exponential => Schedule::Exponential { gamma: 0.98, warmup },
            ScheduleKind::Step => Schedule::Step { gamma: 0.1, every: (self.epochs / 3).max(1), warmup },
            ScheduleKind::Cosine => Schedule::Cosine { epochs: self.epochs, warmup },
        };
        Ok(TrainConfig {
            data: data.to_string(),
            epochs: self.epochs,
            batch: self.batch,
            optimizer,
            schedule,
            label_smoothing: self.label_smoothing,
            augment: match self.augment {
                Some(a) => a,
                None => Augment::default_for(&data.parse()?),
            },
            seed,
            train_limit: self.train_limit,
            val_limit: self.val_limit,
        })
    }
}
