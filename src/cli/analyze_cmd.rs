//! `infoloss analyze`: activation patterns (Fig. 7) and the Lemma-2 check over a stream of inputs.

use std::io::IsTerminal;
use std::path::PathBuf;

use clap::Args;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use super::forward_cmd::load_network;
use super::model_flags::ModelFlags;
use infoloss::analysis::{analyze, AnalyzeSettings, RANK_EPS};
use infoloss::data::{BatchSource, DataSpec, DatasetSource, ImageFolderSource, NoiseSource, NpySource, Preprocess, Split};
use infoloss::model::Network;
use infoloss::report::{analyze::write_analyze_outputs, RunMeta};

#[derive(Args, Debug)]
pub struct AnalyzeArgs {
    /// Trained weights (.safetensors); without it, a seeded initialisation (--init-seed)
    #[arg(long, conflicts_with = "init_seed")]
    pub weights: Option<PathBuf>,
    /// Seed of the initialisation ("at step 0"); default 0 when no --weights
    #[arg(long)]
    pub init_seed: Option<u64>,
    /// Folder of PNG/JPEG images
    #[arg(long, group = "source")]
    pub images: Option<PathBuf>,
    /// NCHW float32 .npy batch
    #[arg(long, group = "source")]
    pub input: Option<PathBuf>,
    /// N seeded N(0,1) images (no files needed)
    #[arg(long, group = "source")]
    pub noise: Option<usize>,
    /// A data set's validation split: synthetic | cifar:DIR | mnist:DIR | folder:DIR
    #[arg(long, group = "source")]
    pub data: Option<String>,
    /// With --data: analyse only the first N images
    #[arg(long)]
    pub limit: Option<usize>,
    /// Image preprocessing: torchvision | keras
    #[arg(long, default_value = "torchvision")]
    pub preprocess: String,
    /// Images per forward pass
    #[arg(long, default_value_t = 32)]
    pub batch: usize,
    /// Also check Lemma 2 at every expansion position
    #[arg(long)]
    pub lemma2: bool,
    /// ε of the rank tolerance σ_max·max(|S|,n)·ε (default: f32 machine epsilon)
    #[arg(long)]
    pub rank_eps: Option<f64>,
    /// Output folder
    #[arg(long, default_value = "notebooks-out/analyze")]
    pub out: PathBuf,
    /// No progress bar
    #[arg(long)]
    pub quiet: bool,
    #[command(flatten)]
    pub model: ModelFlags,
}

pub fn run(a: AnalyzeArgs) -> anyhow::Result<()> {
    if let Some(eps) = a.rank_eps {
        infoloss::analysis::invertibility::check_rank_eps(eps)?;
    }
    infoloss::io::atomic::ensure_writable_dir(&a.out)?;
    let (model, weights_desc) = match &a.weights {
        Some(w) => (load_network(w, &a.model)?, format!("weights:{}", w.display())),
        None => {
            let seed = a.init_seed.unwrap_or(0);
            (Network::seeded(&a.model.config()?, seed)?, format!("init-seed:{seed}"))
        }
    };
    let res = model.config().resolution;
    let preprocess: Preprocess = serde_json::from_value(serde_json::Value::String(a.preprocess.clone()))
        .map_err(|_| anyhow::anyhow!("invalid --preprocess = {}: use torchvision or keras", a.preprocess))?;
    let mut source: Box<dyn BatchSource> = match (&a.images, &a.input, a.noise, &a.data) {
        (Some(d), _, _, _) => Box::new(ImageFolderSource::new(d, res, preprocess)?),
        (_, Some(p), _, _) => Box::new(NpySource::new(p)?),
        (_, _, Some(n), _) => {
            if !(1..=NoiseSource::MAX_COUNT).contains(&n) {
                anyhow::bail!("invalid --noise = {n}: analyse 1 to {} noise images", NoiseSource::MAX_COUNT);
            }
            Box::new(NoiseSource::new(n, res, 0))
        }
        (_, _, _, Some(spec)) => {
            let spec: DataSpec = spec.parse()?;
            Box::new(DatasetSource::new(spec.open(Split::Val, res, 0)?, a.limit))
        }
        _ => anyhow::bail!("no inputs: give --images DIR, --input X.npy, --noise N or --data SPEC"),
    };
    let settings = AnalyzeSettings { batch: a.batch, lemma2: a.lemma2, rank_eps: a.rank_eps.unwrap_or(RANK_EPS), ..Default::default() };
    let bar = ProgressBar::new(source.total() as u64);
    if a.quiet || !std::io::stderr().is_terminal() {
        bar.set_draw_target(ProgressDrawTarget::hidden());
    }
    bar.set_style(ProgressStyle::with_template("{bar:40} {pos}/{len} images  {elapsed} < {eta}").unwrap_or_else(|_| ProgressStyle::default_bar()));
    let start = std::time::Instant::now();
    let result = analyze(&model, source.as_mut(), &settings, &mut |done, _| bar.set_position(done as u64))?;
    bar.finish_and_clear();
    let secs = start.elapsed().as_secs_f64();
    let meta = RunMeta::new(
        "infoloss analyze",
        serde_json::json!({
            "model": model.config(),
            "weights": weights_desc,
            "inputs": source.describe(),
            "images": result.images,
            "analysis": settings,
        }),
    );
    let files = write_analyze_outputs(&result, &a.out, &meta)?;
    let below: Vec<f64> = infoloss::report::analyze::f64s(result.patterns_table().column("frac_positive_below_threshold"));
    println!("analysed {} images at {} post-activation sites in {:.1} s ({:.2} img/s)", result.images, result.sites.len(), secs, result.images as f64 / secs);
    println!(
        "positions with fewer positive channels than the threshold n: {:.1}% averaged over sites",
        100.0 * below.iter().sum::<f64>() / below.len().max(1) as f64
    );
    if let Some(l) = &result.lemma2 {
        let (pos, inv): (u64, u64) = l.sites.values().fold((0, 0), |(p, i), s| (p + s.positions, i + s.invertible));
        println!("Lemma 2 holds at {:.2}% of {} expansion positions", 100.0 * inv as f64 / pos.max(1) as f64, pos);
    }
    println!("wrote {} files to {}", files.len(), a.out.display());
    Ok(())
}
