//! Any network infoloss builds: a classifier (MobileNetV2 / MobileNetV1) or a detector (SSD/SSDLite),
//! chosen by `config.arch`. The analyses and the CLI work on this.

use std::path::Path;

use super::config::ModelConfig;
use super::cost::ModelCost;
use super::mobilenet_v2::MobileNetV2;
use super::ssd::Detector;
use super::weights::WeightsFile;
use crate::error::Result;
use crate::hooks::{catalogue, HookSite};

/// A classifier or a detector.
#[derive(Clone, Debug, PartialEq)]
#[allow(clippy::large_enum_variant)] // one per process; boxing would only add an indirection
pub enum Network {
    Classifier(MobileNetV2),
    Detector(Detector),
}

impl Network {
    /// The structure for `config` (zero weights).
    ///
    /// # Errors
    /// An invalid config.
    pub fn new(config: &ModelConfig) -> Result<Self> {
        Ok(if config.arch.is_detector() { Network::Detector(Detector::new(config)?) } else { Network::Classifier(MobileNetV2::new(config)?) })
    }

    /// Seeded initialisation.
    ///
    /// # Errors
    /// An invalid config.
    pub fn seeded(config: &ModelConfig, seed: u64) -> Result<Self> {
        Ok(if config.arch.is_detector() { Network::Detector(Detector::seeded(config, seed)?) } else { Network::Classifier(MobileNetV2::seeded(config, seed)?) })
    }

    /// `config`'s network with the tensors of `file`.
    ///
    /// # Errors
    /// An invalid config; missing, unexpected or mis-shaped tensors, named.
    pub fn load(config: &ModelConfig, file: &WeightsFile, path: &Path) -> Result<Self> {
        let mut n = Network::new(config)?;
        match &mut n {
            Network::Classifier(m) => m.load_weights(file, path)?,
            Network::Detector(d) => d.load_weights(file, path)?,
        }
        Ok(n)
    }

    pub fn config(&self) -> &ModelConfig {
        match self {
            Network::Classifier(m) => m.config(),
            Network::Detector(d) => d.config(),
        }
    }

    /// The classifier, or the detector's backbone.
    pub fn backbone(&self) -> &MobileNetV2 {
        match self {
            Network::Classifier(m) => m,
            Network::Detector(d) => &d.backbone,
        }
    }

    /// Every hook site in firing order.
    pub fn sites(&self, resolution: usize) -> Vec<HookSite> {
        match self {
            Network::Classifier(m) => catalogue(m, resolution),
            Network::Detector(d) => d.sites(resolution),
        }
    }

    pub fn cost(&self, resolution: usize) -> ModelCost {
        match self {
            Network::Classifier(m) => m.cost(resolution),
            Network::Detector(d) => d.cost(resolution),
        }
    }

    /// Saves the weights with the config in the metadata.
    ///
    /// # Errors
    /// The file cannot be written.
    pub fn save_safetensors(&self, path: &Path) -> Result<()> {
        match self {
            Network::Classifier(m) => m.save_safetensors(path),
            Network::Detector(d) => d.save_safetensors(path),
        }
    }
}
