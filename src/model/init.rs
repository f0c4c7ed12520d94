//! Seeded initialisation as torchvision's `MobileNetV2.__init__` does it: convolutions Kaiming-normal
//! with `mode = "fan_out"` (std = √(2 / (cout·k·k))), BatchNorm γ = 1, β = 0 (running stats 0/1),
//! the classifier N(0, 0.01) with zero bias. Layers are drawn in state_dict order from one `StdRng`.

use rand::rngs::StdRng;
use rand::SeedableRng;
use rand_distr::{Distribution, Normal};

use super::mobilenet_v2::MobileNetV2;
use crate::layers::{BatchNorm, ConvKind};

/// Standard deviation of the classifier weights.
pub const CLASSIFIER_INIT_STD: f64 = 0.01;

impl MobileNetV2 {
    /// Re-initialises every parameter from `seed` (same seed → same weights, bit for bit).
    ///
    /// # Panics
    /// Never for a built model.
    pub fn init_seeded(&mut self, seed: u64) {
        let mut rng = StdRng::seed_from_u64(seed);
        for (_, _, unit) in self.conv_units_mut() {
            let k = match unit.kind {
                ConvKind::Full(c) => c.kernel * c.kernel,
                ConvKind::Depthwise(_) => 9,
                ConvKind::Pointwise(_) => 1,
            };
            let fan_out = unit.out_channels() * k;
            let normal = Normal::new(0.0f64, (2.0 / fan_out as f64).sqrt()).expect("finite std");
            unit.weight.iter_mut().for_each(|w| *w = normal.sample(&mut rng) as f32);
            unit.bn = BatchNorm::identity(unit.out_channels(), unit.bn.eps);
            unit.refold();
        }
        let normal = Normal::new(0.0f64, CLASSIFIER_INIT_STD).expect("finite std");
        self.classifier.weight.iter_mut().for_each(|w| *w = normal.sample(&mut rng) as f32);
        self.classifier.bias.iter_mut().for_each(|b| *b = 0.0);
    }

    /// A freshly built and seeded model.
    ///
    /// # Errors
    /// An invalid config.
    pub fn seeded(config: &super::config::ModelConfig, seed: u64) -> crate::error::Result<Self> {
        let mut m = MobileNetV2::new(config)?;
        m.init_seeded(seed);
        Ok(m)
    }
}
