//! The model config flags shared by every subcommand; the same names are the TOML config keys.

use clap::Args;
use serde::de::DeserializeOwned;

use infoloss::model::ModelConfig;
use infoloss::{Error, Result};

/// `--arch`, `--width`, `--resolution`, … as optional overrides of a base config.
#[derive(Args, Clone, Debug, Default)]
pub struct ModelFlags {
    /// Network: mobilenet_v2 | mobilenet_v1 | ssdlite_mobilenet_v2 | ssd_mobilenet_v2 | ssdlite_mobilenet_v1
    #[arg(long)]
    pub arch: Option<String>,
    /// Width multiplier α (default 1.0)
    #[arg(long)]
    pub width: Option<f64>,
    /// Input resolution (default 224)
    #[arg(long)]
    pub resolution: Option<usize>,
    /// Number of classes (default 1000; detectors: 80, without background)
    #[arg(long)]
    pub classes: Option<usize>,
    /// Bottleneck activation: linear | relu6 | relu (default linear)
    #[arg(long)]
    pub bottleneck: Option<String>,
    /// Hidden activation: relu6 | relu (default relu6)
    #[arg(long)]
    pub activation: Option<String>,
    /// Shortcut placement: bottleneck | expansion | none (default bottleneck)
    #[arg(long)]
    pub shortcut: Option<String>,
    /// One expansion ratio t for every stage
    #[arg(long)]
    pub expansion: Option<f64>,
    /// Seven per-stage expansion ratios t1,…,t7
    #[arg(long, value_delimiter = ',')]
    pub stage_expansion: Option<Vec<f64>>,
    /// Eight strides s0,…,s7 (stem, then each stage), e.g. 1,1,1,2,2,1,2,1 for 32×32 inputs
    #[arg(long, value_delimiter = ',')]
    pub strides: Option<Vec<usize>>,
    /// Padding convention: torch | tf (default torch)
    #[arg(long)]
    pub padding: Option<String>,
    /// BatchNorm epsilon (default 1e-5; 1e-3 for Keras weights)
    #[arg(long)]
    pub bn_eps: Option<f64>,
}

fn parse_enum<T: DeserializeOwned>(key: &str, value: &str, allowed: &str) -> Result<T> {
    serde_json::from_value(serde_json::Value::String(value.to_string())).map_err(|_| Error::config(format!("--{key}"), value, format!("use one of {allowed}")))
}

impl ModelFlags {
    /// `base` with every given flag applied, validated.
    pub fn apply(&self, base: &ModelConfig) -> Result<ModelConfig> {
        let mut c = base.clone();
        if let Some(v) = &self.arch {
            c.arch = parse_enum("arch", v, "mobilenet_v2, mobilenet_v1, ssdlite_mobilenet_v2, ssd_mobilenet_v2, ssdlite_mobilenet_v1")?;
        }
        if let Some(v) = self.width {
            c.width = v;
        }
        if let Some(v) = self.resolution {
            c.resolution = v;
        }
        if let Some(v) = self.classes {
            c.classes = v;
        }
        if let Some(v) = &self.bottleneck {
            c.bottleneck = parse_enum("bottleneck", v, "linear, relu6, relu")?;
        }
        if let Some(v) = &self.activation {
            c.activation = parse_enum("activation", v, "relu6, relu")?;
        }
        if let Some(v) = &self.shortcut {
            c.shortcut = parse_enum("shortcut", v, "bottleneck, expansion, none")?;
        }
        if let Some(v) = self.expansion {
            c.expansion = Some(v);
            c.stage_expansion = None;
        }
        if let Some(v) = &self.stage_expansion {
            c.stage_expansion = Some(v.clone());
            c.expansion = None;
        }
        if let Some(v) = &self.strides {
            c.strides = Some(v.clone());
        }
        if let Some(v) = &self.padding {
            c.padding = parse_enum("padding", v, "torch, tf")?;
        }
        if let Some(v) = self.bn_eps {
            c.bn_eps = v;
        }
        c.validate()?;
        Ok(c)
    }

    /// The config from the flags alone (defaults for the rest; detectors default to 80 classes at
    /// 320×320, the paper's COCO setting).
    pub fn config(&self) -> Result<ModelConfig> {
        let mut base = ModelConfig::default();
        if let Some(a) = &self.arch {
            let arch: infoloss::model::Arch =
                parse_enum("arch", a, "mobilenet_v2, mobilenet_v1, ssdlite_mobilenet_v2, ssd_mobilenet_v2, ssdlite_mobilenet_v1")?;
            if arch.is_detector() {
                base = ModelConfig { classes: 80, resolution: 320, ..base };
            }
        }
        self.apply(&base)
    }

    /// For weights that store their config: the stored config, with an error naming the first given
    /// flag that contradicts it (`resolution` is free: the forward pass takes any input size).
    pub fn merge_stored(&self, stored: &ModelConfig) -> Result<ModelConfig> {
        let merged = self.apply(stored)?;
        let a = serde_json::to_value(stored).map_err(|e| Error::input("config", e))?;
        let b = serde_json::to_value(&merged).map_err(|e| Error::input("config", e))?;
        if let (Some(a), Some(b)) = (a.as_object(), b.as_object()) {
            for (key, va) in a {
                if key == "resolution" {
                    continue;
                }
                if let Some(vb) = b.get(key) {
                    if va != vb {
                        return Err(Error::ConfigMismatch { key: format!("--{key}"), stored: va.to_string(), given: vb.to_string() });
                    }
                }
            }
        }
        Ok(merged)
    }
}
