//! `infoloss init`: write a seeded initialisation (torchvision's scheme) as safetensors.

use std::path::PathBuf;

use clap::Args;

use super::model_flags::ModelFlags;
use infoloss::MobileNetV2;

#[derive(Args, Debug)]
pub struct InitArgs {
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Output .safetensors (torchvision names, config in the metadata)
    #[arg(long)]
    pub out: PathBuf,
    #[command(flatten)]
    pub model: ModelFlags,
}

pub fn run(a: InitArgs) -> anyhow::Result<()> {
    infoloss::io::atomic::ensure_writable_parent(&a.out)?;
    if a.out.is_dir() {
        anyhow::bail!("invalid --out = {}: it is a folder; give a file name such as w.safetensors", a.out.display());
    }
    let config = a.model.config()?;
    if config.arch.is_detector() {
        anyhow::bail!("invalid --arch = {}: `init` writes classifier weights; use --arch mobilenet_v2 or mobilenet_v1", config.arch.name());
    }
    let model = MobileNetV2::seeded(&config, a.seed)?;
    model.save_safetensors(&a.out)?;
    println!("wrote seeded ({}) {} to {}", a.seed, model.config().label(), a.out.display());
    Ok(())
}
