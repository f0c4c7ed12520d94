//! `infoloss forward`: logits of an NCHW batch.

use std::path::PathBuf;

use clap::Args;

use super::model_flags::ModelFlags;
use infoloss::io::npy::{read_nchw, write_npy};
use infoloss::model::WeightsFile;
use infoloss::{Batch, MobileNetV2};

#[derive(Args, Debug)]
pub struct ForwardArgs {
    /// Weights (.safetensors, torchvision names)
    #[arg(long)]
    pub weights: PathBuf,
    /// Input batch (.npy, float32, N×3×H×W)
    #[arg(long)]
    pub input: PathBuf,
    /// Where to write the logits (.npy, float32, N×classes)
    #[arg(long)]
    pub output: PathBuf,
    #[command(flatten)]
    pub model: ModelFlags,
}

/// Loads weights, taking the config stored in the file (flags may only agree with it) or, for foreign
/// files, the config from the flags.
pub fn load_model(weights: &std::path::Path, flags: &ModelFlags) -> anyhow::Result<MobileNetV2> {
    let file = WeightsFile::read(weights)?;
    let config = match &file.config {
        Some(stored) => flags.merge_stored(stored)?,
        None => flags.config()?,
    };
    let mut model = MobileNetV2::new(&config)?;
    model.load_weights(&file, weights)?;
    Ok(model)
}

/// Like [`load_model`] for any network (classifier or detector).
pub fn load_network(weights: &std::path::Path, flags: &ModelFlags) -> anyhow::Result<infoloss::model::Network> {
    let file = WeightsFile::read(weights)?;
    let config = match &file.config {
        Some(stored) => flags.merge_stored(stored)?,
        None => flags.config()?,
    };
    Ok(infoloss::model::Network::load(&config, &file, weights)?)
}

pub fn run(a: ForwardArgs) -> anyhow::Result<()> {
    infoloss::io::atomic::ensure_writable_parent(&a.output)?;
    let model = load_model(&a.weights, &a.model)?;
    let (shape, data) = read_nchw(&a.input)?;
    let batch = Batch::from_nchw(shape, &data)?;
    let logits = model.forward(&batch)?;
    let (n, k) = logits.shape();
    let row_major: Vec<f32> = (0..n).flat_map(|i| (0..k).map(move |j| (i, j))).map(|ij| logits[ij]).collect();
    write_npy(&a.output, &[n, k], &row_major)?;
    println!("wrote {} logits ({n}×{k}) to {} ({} threads)", n * k, a.output.display(), super::threads());
    Ok(())
}
