//! `infoloss memory` (Table 3 accounting) and the `bench split` table.

use std::path::PathBuf;

use clap::Args;

use super::model_flags::ModelFlags;
use infoloss::analysis::memory::account;
use infoloss::bench::bench_split;
use infoloss::model::split::Splits;
use infoloss::report::{LineChart, RunMeta, Series, Table};
use infoloss::MobileNetV2;

#[derive(Args, Debug)]
pub struct MemoryArgs {
    #[command(flatten)]
    pub model: ModelFlags,
    /// Several resolutions, one row each (default: --resolution)
    #[arg(long, value_delimiter = ',')]
    pub resolutions: Option<Vec<usize>>,
    /// Bytes per activation element (2 for the paper's 16-bit figures)
    #[arg(long, default_value_t = 2)]
    pub bytes_per_element: usize,
    /// Fused schedule: each inverted-residual block one op (stem fused with block 1)
    #[arg(long)]
    pub fused: bool,
    #[arg(long)]
    pub json: bool,
}

pub fn memory(a: MemoryArgs) -> anyhow::Result<()> {
    let config = a.model.config()?;
    if !(1..=8).contains(&a.bytes_per_element) {
        anyhow::bail!("invalid --bytes-per-element = {}: use 1 to 8 (2 for the paper's 16-bit figures, 4 for f32)", a.bytes_per_element);
    }
    let model = MobileNetV2::new(&config)?;
    let resolutions = a.resolutions.clone().unwrap_or(vec![config.resolution]);
    if resolutions.is_empty() || resolutions.len() > 64 {
        anyhow::bail!("invalid --resolutions: give 1 to 64 resolutions, e.g. 96,128,160,192,224");
    }
    for &r in &resolutions {
        infoloss::model::ModelConfig { resolution: r, ..config.clone() }.validate().map_err(|_| {
            anyhow::anyhow!(
                "invalid --resolutions entry {r}: use {} to {} pixels",
                infoloss::model::config::MIN_RESOLUTION,
                infoloss::model::config::MAX_RESOLUTION
            )
        })?;
    }
    let rows: Vec<_> = resolutions.iter().map(|&r| account(&model, r, a.fused, a.bytes_per_element)).collect();
    let first = &rows[0];
    if a.json {
        let v = serde_json::json!({
            "max_tensor_bytes": first.max_tensor_bytes,
            "peak_bytes": first.peak_bytes,
            "rows": rows,
            "config": config,
            "threads": super::threads(),
            "version": env!("CARGO_PKG_VERSION"),
        });
        println!("{}", serde_json::to_string_pretty(&v)?);
        return Ok(());
    }
    println!("# {} — {} schedule, {} bytes/element", config.label(), if a.fused { "fused" } else { "layer-by-layer" }, a.bytes_per_element);
    println!("{:>10} {:>16} {:>9} {:>16} {:>14}  peak op (Eq. 2)", "resolution", "largest tensor", "channels", "max_tensor_bytes", "peak_bytes");
    for r in &rows {
        let s = r.max_tensor_shape;
        println!(
            "{:>10} {:>16} {:>9} {:>16} {:>14}  {}",
            r.resolution,
            format!("{}×{}×{}", s[0], s[1], s[2]),
            r.max_tensor_channels,
            r.max_tensor_bytes,
            r.peak_bytes,
            r.peak_op
        );
    }
    Ok(())
}

#[derive(Args, Debug)]
pub struct SplitArgs {
    /// Splits per block: integers or C (one channel per split)
    #[arg(long, value_delimiter = ',', default_value = "1,2,3,4,6,C")]
    pub splits: Vec<String>,
    /// Timed iterations per k (median)
    #[arg(long, default_value_t = 3)]
    pub iters: usize,
    #[arg(long, default_value = "notebooks-out/split")]
    pub out: PathBuf,
    #[command(flatten)]
    pub model: ModelFlags,
}

pub fn split(a: SplitArgs) -> anyhow::Result<()> {
    let config = a.model.config()?;
    let splits = a.splits.iter().map(|s| s.parse::<Splits>()).collect::<Result<Vec<_>, _>>()?;
    infoloss::io::atomic::ensure_writable_dir(&a.out)?;
    let rows = bench_split(&config, &splits, a.iters)?;
    let table = Table::new()
        .str("splits", rows.iter().map(|r| r.splits.clone()).collect())
        .f64("peak_bytes", rows.iter().map(|r| r.peak_bytes.map_or(f64::NAN, |b| b as f64)).collect())
        .f64("ms_per_image", rows.iter().map(|r| r.ms_per_image).collect())
        .f64("max_abs_diff", rows.iter().map(|r| r.max_abs_diff as f64).collect());
    let meta = RunMeta::new("infoloss bench split", serde_json::json!({"config": config, "splits": a.splits, "iters": a.iters, "threads_used": 1}));
    table.write_csv(&a.out.join("split.csv"), &meta)?;
    let kx = |s: &str| match s {
        "unsplit" => 0.0,
        "C" => 1e9,
        v => v.parse::<f64>().unwrap_or(0.0),
    };
    let widest = MobileNetV2::new(&config)?.blocks.iter().map(|b| b.wide_channels()).max().unwrap_or(1) as f64;
    let pts = |f: &dyn Fn(&infoloss::bench::SplitRow) -> f64| -> Vec<(f64, f64)> {
        rows.iter().filter(|r| r.splits != "unsplit").map(|r| (kx(&r.splits).min(widest).log2(), f(r))).collect()
    };
    let mut mem = LineChart::new("Split execution: peak heap vs splits per block", "log2 k (C = one channel per split)", "peak heap (MB)");
    mem.series.push(Series::line("split forward", pts(&|r| r.peak_bytes.unwrap_or(0) as f64 / 1e6), 0).with_markers());
    mem.write(&a.out.join("split_memory"))?;
    let mut time = LineChart::new("Split execution: time vs splits per block", "log2 k (C = one channel per split)", "ms per image (1 thread)");
    time.series.push(Series::line("split forward", pts(&|r| r.ms_per_image), 1).with_markers());
    time.write(&a.out.join("split_time"))?;
    println!("# {} — batch 1, 1 thread", config.label());
    println!("{:>8} {:>14} {:>10} {:>12}", "k", "peak bytes", "ms/img", "max |Δ|");
    for r in &rows {
        let peak = r.peak_bytes.map_or("n/a".into(), |b| b.to_string());
        println!("{:>8} {:>14} {:>10.2} {:>12.2e}", r.splits, peak, r.ms_per_image, r.max_abs_diff);
    }
    println!("wrote split.csv and plots to {}", a.out.display());
    Ok(())
}
