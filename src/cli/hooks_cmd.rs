//! `infoloss hooks`: every hook site of a config.

use clap::Args;

use super::model_flags::ModelFlags;
use infoloss::hooks::catalogue::markdown_table;
use infoloss::model::Network;

#[derive(Args, Debug)]
pub struct HooksArgs {
    #[command(flatten)]
    pub model: ModelFlags,
    /// JSON array of {name, shape, channels, threshold, layout}
    #[arg(long)]
    pub json: bool,
    /// The README's table of site kinds (markdown)
    #[arg(long, conflicts_with = "json")]
    pub markdown: bool,
}

pub fn run(a: HooksArgs) -> anyhow::Result<()> {
    if a.markdown {
        print!("{}", markdown_table());
        return Ok(());
    }
    let config = a.model.config()?;
    let model = Network::new(&config)?;
    let sites = model.sites(config.resolution);
    if a.json {
        println!("{}", serde_json::to_string_pretty(&sites)?);
        return Ok(());
    }
    println!(
        "# {} — {} sites, {} post-activation; layout {}",
        config.label(),
        sites.len(),
        sites.iter().filter(|s| s.name.is_post()).count(),
        infoloss::hooks::catalogue::SITE_LAYOUT
    );
    println!("{:<28} {:>16} {:>9} {:>10}", "name", "shape", "channels", "threshold");
    for s in &sites {
        let shape = format!("{}×{}×{}", s.shape[0], s.shape[1], s.shape[2]);
        println!("{:<28} {:>16} {:>9} {:>10}", s.name.to_string(), shape, s.channels, s.threshold);
    }
    Ok(())
}
