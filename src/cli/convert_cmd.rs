//! `infoloss convert keras IN.safetensors OUT.safetensors`: Keras MobileNetV2 weights to torchvision
//! names, with `padding = tf` and `bn-eps = 1e-3` stored in the output.

use std::path::PathBuf;

use clap::{Args, Subcommand};

use super::model_flags::ModelFlags;
use infoloss::model::keras::convert_keras;
use infoloss::model::WeightsFile;

#[derive(Subcommand, Debug)]
pub enum ConvertCommand {
    /// Keras-named tensors (from tools/keras_h5_to_safetensors.py) → torchvision names
    Keras(KerasArgs),
}

#[derive(Args, Debug)]
pub struct KerasArgs {
    pub input: PathBuf,
    pub output: PathBuf,
    #[command(flatten)]
    pub model: ModelFlags,
}

pub fn run(c: ConvertCommand) -> anyhow::Result<()> {
    match c {
        ConvertCommand::Keras(a) => {
            let file = WeightsFile::read(&a.input)?;
            let mut flags = a.model.clone();
            if flags.classes.is_none() {
                flags.classes = file.tensors.get("predictions/bias").map(|t| t.data.len());
            }
            let model = convert_keras(&file, &flags.config()?, &a.input)?;
            model.save_safetensors(&a.output)?;
            println!("converted {} Keras tensors to {} (padding tf, bn-eps 1e-3, {} classes)", file.tensors.len(), a.output.display(), model.config().classes);
        }
    }
    Ok(())
}
