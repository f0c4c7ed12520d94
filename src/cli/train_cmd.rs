//! `infoloss train`, `infoloss eval` and `infoloss bench train`.

use std::io::IsTerminal;
use std::path::PathBuf;

use clap::Args;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use super::forward_cmd::load_model;
use super::model_flags::ModelFlags;
use infoloss::data::{DataSpec, Split};
use infoloss::model::ModelConfig;
use infoloss::train::optim::OptimizerKind;
use infoloss::train::settings::{ScheduleKind, TrainSettings};
use infoloss::train::trainer::{evaluate, evaluate_test, train, TrainConfig};
use infoloss::MobileNetV2;

#[derive(Args, Debug)]
pub struct TrainArgs {
    /// synthetic | fashion-mnist[:DIR] | cifar:DIR | mnist:DIR | folder:DIR
    #[arg(long, default_value = "synthetic")]
    pub data: String,
    #[arg(long, default_value_t = 10)]
    pub epochs: usize,
    #[arg(long, default_value_t = 96)]
    pub batch: usize,
    /// rmsprop (TF semantics, the paper's) | sgd | adamw
    #[arg(long, default_value = "rmsprop")]
    pub optimizer: String,
    /// Learning rate (default per optimizer: 0.045 rmsprop, 0.1 sgd, 0.001 adamw)
    #[arg(long)]
    pub lr: Option<f64>,
    /// exponential (×0.98 per epoch) | step | cosine
    #[arg(long, default_value = "exponential")]
    pub schedule: String,
    /// Linear warm-up epochs
    #[arg(long, default_value_t = 0)]
    pub warmup: usize,
    #[arg(long, default_value_t = 0.0)]
    pub label_smoothing: f32,
    /// none | crop | crop-flip (default: crop for mnist:DIR digits, crop-flip otherwise)
    #[arg(long)]
    pub augment: Option<String>,
    /// The same as --augment none
    #[arg(long, conflicts_with = "augment")]
    pub no_augment: bool,
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Use only the first N training images
    #[arg(long)]
    pub train_limit: Option<usize>,
    #[arg(long)]
    pub val_limit: Option<usize>,
    #[arg(long, default_value = "notebooks-out/train")]
    pub out: PathBuf,
    /// Continue from the checkpoint in --out
    #[arg(long)]
    pub resume: bool,
    #[arg(long)]
    pub quiet: bool,
    #[command(flatten)]
    pub model: ModelFlags,
}

/// The model config for training: the flags over a 32×32, data-set-classes default.
pub fn train_model_config(flags: &ModelFlags, data: &str) -> anyhow::Result<ModelConfig> {
    let spec: DataSpec = data.parse()?;
    let classes = spec.open(Split::Test, 32, 0)?.classes();
    let base = ModelConfig { resolution: 32, classes, ..Default::default() };
    Ok(flags.apply(&base)?)
}

pub fn train_config(a: &TrainArgs) -> anyhow::Result<TrainConfig> {
    let optimizer: OptimizerKind = serde_json::from_value(serde_json::Value::String(a.optimizer.clone()))
        .map_err(|_| anyhow::anyhow!("invalid --optimizer = {}: use rmsprop, sgd or adamw", a.optimizer))?;
    let schedule: ScheduleKind = serde_json::from_value(serde_json::Value::String(a.schedule.clone()))
        .map_err(|_| anyhow::anyhow!("invalid --schedule = {}: use exponential, step or cosine", a.schedule))?;
    let settings = TrainSettings {
        epochs: a.epochs,
        batch: a.batch,
        optimizer,
        lr: a.lr,
        weight_decay: None,
        schedule,
        warmup: a.warmup,
        label_smoothing: a.label_smoothing,
        augment: if a.no_augment { Some(infoloss::train::augment::Augment::None) } else { a.augment.as_deref().map(str::parse).transpose()? },
        train_limit: a.train_limit,
        val_limit: a.val_limit,
    };
    Ok(settings.resolve(&a.data, a.seed)?)
}

pub fn run(a: TrainArgs) -> anyhow::Result<()> {
    let config = train_model_config(&a.model, &a.data)?;
    let cfg = train_config(&a)?;
    let mut model = MobileNetV2::seeded(&config, cfg.seed)?;
    let bar = ProgressBar::new(0);
    if a.quiet || !std::io::stderr().is_terminal() {
        bar.set_draw_target(ProgressDrawTarget::hidden());
    }
    bar.set_style(ProgressStyle::with_template("epoch {prefix} {bar:30} {pos}/{len} {msg} ETA {eta}").unwrap_or_else(|_| ProgressStyle::default_bar()));
    let start = std::time::Instant::now();
    let mut first_epoch: Option<usize> = None;
    let metrics = train(&mut model, &cfg, &a.out, a.resume, &mut |p| {
        first_epoch.get_or_insert(p.epoch);
        bar.set_length(p.steps as u64);
        bar.set_prefix(format!("{}/{}", p.epoch + 1, p.epochs));
        bar.set_position(p.step as u64);
        bar.set_message(format!("loss {:.3} acc {:.3}", p.loss, p.acc));
    })?;
    bar.finish_and_clear();
    if a.resume {
        match first_epoch {
            Some(e) => println!("resumed from the checkpoint of epoch {e}: trained epochs {} to {}", e + 1, cfg.epochs),
            None => println!("resumed from the checkpoint of epoch {}: nothing left to train", cfg.epochs),
        }
    }
    for m in &metrics {
        println!(
            "epoch {:>3}: train loss {:.4} acc {:.4} | val loss {:.4} acc {:.4} | lr {:.5} | {:.1} s",
            m.epoch, m.train_loss, m.train_acc, m.val_loss, m.val_acc, m.lr, m.seconds
        );
    }
    let test = evaluate_test(&mut model, &cfg)?;
    println!("test split: loss {:.4}, accuracy {:.4} ({} images)", test.loss, test.accuracy, test.confusion.iter().flatten().sum::<usize>());
    println!(
        "trained {} ({} augmentation) in {:.1} s; checkpoint, metrics.csv and timing.csv in {}",
        config.label(),
        cfg.augment.as_str(),
        start.elapsed().as_secs_f64(),
        a.out.display()
    );
    Ok(())
}

#[derive(Args, Debug)]
pub struct EvalArgs {
    #[arg(long)]
    pub weights: PathBuf,
    #[arg(long, default_value = "synthetic")]
    pub data: String,
    #[arg(long)]
    pub limit: Option<usize>,
    /// Which split: test (the data set's test file) | val (the validation hold-out)
    #[arg(long, default_value = "test")]
    pub split: String,
    /// Also print the confusion matrix and per-class accuracy
    #[arg(long)]
    pub confusion: bool,
    #[command(flatten)]
    pub model: ModelFlags,
}

pub fn eval(a: EvalArgs) -> anyhow::Result<()> {
    let mut model = load_model(&a.weights, &a.model)?;
    let spec: DataSpec = a.data.parse()?;
    let split = match a.split.as_str() {
        "test" => Split::Test,
        "val" => Split::Val,
        other => anyhow::bail!("invalid --split = {other}: use test or val"),
    };
    let data = spec.open(split, model.config().resolution, 0)?;
    let e = evaluate(&mut model, data.as_ref(), a.limit, 256)?;
    if a.confusion {
        println!("confusion (rows: true class, columns: predicted):");
        for (k, (row, acc)) in e.confusion.iter().zip(e.per_class_accuracy()).enumerate() {
            let cells: Vec<String> = row.iter().map(|c| format!("{c:>5}")).collect();
            println!("{k:>3} |{} | {acc:.3}", cells.join(""));
        }
    }
    println!("{}: loss {:.4}, accuracy {:.4} ({} images)", data.describe(), e.loss, e.accuracy, a.limit.unwrap_or(usize::MAX).min(data.len()));
    Ok(())
}
