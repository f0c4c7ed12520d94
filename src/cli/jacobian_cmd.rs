//! `infoloss jacobian`: rank and spectrum of block Jacobians, optionally across variants.

use std::path::PathBuf;

use clap::Args;

use super::forward_cmd::load_model;
use super::model_flags::ModelFlags;
use infoloss::analysis::jacobian::{block_jacobian, BlockJacobian};
use infoloss::data::{BatchSource, NoiseSource, NpySource};
use infoloss::model::{BottleneckActivation, ModelConfig, Shortcut};
use infoloss::report::{LineChart, RunMeta, Series, Table};
use infoloss::MobileNetV2;

#[derive(Args, Debug)]
pub struct JacobianArgs {
    /// Blocks (torchvision features.i) to examine
    #[arg(long, value_delimiter = ',', default_value = "2,4,7,11,14,17")]
    pub blocks: Vec<usize>,
    /// Spatial crop size (crop × crop positions of the block input)
    #[arg(long, default_value_t = 3)]
    pub crop: usize,
    /// Trained weights; without them a seeded initialisation
    #[arg(long, conflicts_with = "compare")]
    pub weights: Option<PathBuf>,
    #[arg(long, default_value_t = 0)]
    pub init_seed: u64,
    /// First image of this NCHW .npy as the input (default: a seeded N(0,1) image)
    #[arg(long)]
    pub input: Option<PathBuf>,
    /// Run every bottleneck activation × shortcut placement (seeded models)
    #[arg(long)]
    pub compare: bool,
    #[arg(long, default_value = "notebooks-out/jacobian")]
    pub out: PathBuf,
    #[command(flatten)]
    pub model: ModelFlags,
}

pub fn run(a: JacobianArgs) -> anyhow::Result<()> {
    let base = a.model.config()?;
    if !(1..=infoloss::analysis::jacobian::MAX_CROP).contains(&a.crop) {
        anyhow::bail!("invalid --crop = {}: use 1 to {} positions per side", a.crop, infoloss::analysis::jacobian::MAX_CROP);
    }
    infoloss::io::atomic::ensure_writable_dir(&a.out)?;
    let models: Vec<(String, MobileNetV2)> = if let Some(w) = &a.weights {
        vec![("weights".into(), load_model(w, &a.model)?)]
    } else if a.compare {
        let mut v = Vec::new();
        for b in [BottleneckActivation::Linear, BottleneckActivation::Relu6, BottleneckActivation::Relu] {
            for s in [Shortcut::Bottleneck, Shortcut::Expansion, Shortcut::None] {
                let cfg = ModelConfig { bottleneck: b, shortcut: s, ..base.clone() };
                v.push((format!("{}/{}", b.activation().name(), serde_json::to_value(s)?.as_str().unwrap_or("")), MobileNetV2::seeded(&cfg, a.init_seed)?));
            }
        }
        v
    } else {
        vec![("seeded".into(), MobileNetV2::seeded(&base, a.init_seed)?)]
    };
    let image = match &a.input {
        Some(p) => NpySource::new(p)?.next_batch(1)?.ok_or_else(|| anyhow::anyhow!("{} holds no image", p.display()))?,
        None => NoiseSource::new(1, base.resolution, a.init_seed).next_batch(1)?.expect("one image"),
    }
    .into_images()
    .remove(0);
    let mut results: Vec<(String, BlockJacobian)> = Vec::new();
    for (label, m) in &models {
        for &b in &a.blocks {
            results.push((label.clone(), block_jacobian(m, b, &image, a.crop)?));
        }
    }
    let table = Table::new()
        .str("variant", results.iter().map(|r| r.0.clone()).collect())
        .u64("block", results.iter().map(|r| r.1.block as u64).collect())
        .u64("input_dim", results.iter().map(|r| r.1.input_dim as u64).collect())
        .u64("output_dim", results.iter().map(|r| r.1.output_dim as u64).collect())
        .u64("rank", results.iter().map(|r| r.1.rank as u64).collect())
        .f64("rank_fraction_of_input", results.iter().map(|r| r.1.rank as f64 / r.1.input_dim as f64).collect())
        .f64("sigma_max", results.iter().map(|r| r.1.singular_values.first().copied().unwrap_or(0.0)).collect())
        .f64("sigma_min", results.iter().map(|r| r.1.singular_values.last().copied().unwrap_or(0.0)).collect())
        .f64("rank_tolerance", results.iter().map(|r| r.1.rank_tolerance).collect());
    let (mut v, mut bl, mut idx, mut sig) = (vec![], vec![], vec![], vec![]);
    for (label, r) in &results {
        for (i, s) in r.singular_values.iter().enumerate() {
            v.push(label.clone());
            bl.push(r.block as u64);
            idx.push(i as u64);
            sig.push(*s);
        }
    }
    let spectrum = Table::new().str("variant", v).u64("block", bl).u64("index", idx).f64("sigma", sig);
    let meta = RunMeta::new(
        "infoloss jacobian",
        serde_json::json!({"config": base, "blocks": a.blocks, "crop": a.crop, "init_seed": a.init_seed, "compare": a.compare, "weights": a.weights}),
    );
    table.write_csv(&a.out.join("jacobian.csv"), &meta)?;
    spectrum.write_csv(&a.out.join("jacobian_spectrum.csv"), &meta)?;
    let mut chart = LineChart::new("Block Jacobian spectra (masks frozen)", "singular value index / input dim", "log10 σ_i / σ_max");
    for (k, (label, r)) in results.iter().enumerate() {
        let smax = r.singular_values.first().copied().unwrap_or(1.0).max(1e-300);
        let pts = r.singular_values.iter().enumerate().map(|(i, s)| (i as f64 / r.input_dim as f64, (s / smax).max(1e-12).log10())).collect();
        chart.series.push(Series::line(format!("{label} block {}", r.block), pts, k));
    }
    chart.write(&a.out.join("jacobian_spectrum"))?;
    println!("{:<22} {:>6} {:>6} {:>7} {:>6}", "variant", "block", "in", "out", "rank");
    for (label, r) in &results {
        println!("{:<22} {:>6} {:>6} {:>7} {:>6}", label, r.block, r.input_dim, r.output_dim, r.rank);
    }
    println!("wrote jacobian.csv, jacobian_spectrum.csv and plots to {}", a.out.display());
    Ok(())
}
