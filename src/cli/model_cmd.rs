//! `infoloss model`: the cost table.

use clap::Args;

use super::model_flags::ModelFlags;
use infoloss::model::Network;

#[derive(Args, Debug)]
pub struct ModelArgs {
    #[command(flatten)]
    pub model: ModelFlags,
    /// One JSON object instead of the table
    #[arg(long)]
    pub json: bool,
}

pub fn run(a: ModelArgs) -> anyhow::Result<()> {
    let config = a.model.config()?;
    let model = Network::new(&config)?;
    let cost = model.cost(config.resolution);
    let detector = match &model {
        Network::Detector(d) => {
            let (hp, hm) = d.head_cost(config.resolution);
            Some(
                serde_json::json!({"head_params": hp, "head_macs": hm, "anchors": d.anchor_boxes(config.resolution).len(), "feature_maps": d.map_sizes(config.resolution), "anchors_per_position": d.anchors}),
            )
        }
        Network::Classifier(_) => None,
    };
    if a.json {
        let mut v = serde_json::json!({
            "params": cost.params,
            "buffers": cost.buffers,
            "macs": cost.macs,
            "shortcuts": cost.shortcuts,
            "layers": cost.layers,
            "config": config,
            "threads": super::threads(),
            "version": env!("CARGO_PKG_VERSION"),
        });
        if let (Some(obj), Some(serde_json::Value::Object(d))) = (v.as_object_mut(), detector.clone()) {
            obj.extend(d);
        }
        println!("{}", serde_json::to_string_pretty(&v)?);
        return Ok(());
    }
    let shape = |s: [usize; 3]| format!("{}×{}×{}", s[0], s[1], s[2]);
    println!("# {} ({} threads)", config.label(), super::threads());
    println!("{:<24} {:<11} {:>14} {:>14} {:>10} {:>12}", "name", "kind", "input", "output", "params", "macs");
    for l in &cost.layers {
        println!("{:<24} {:<11} {:>14} {:>14} {:>10} {:>12}", l.name, l.kind, shape(l.input), shape(l.output), l.params, l.macs);
    }
    if let Some(d) = &detector {
        println!("head (extra layers + predictors): {} params, {} MACs; {} anchors", d["head_params"], d["head_macs"], d["anchors"]);
    }
    println!("total: {} params, {} buffers, {} MACs, {} shortcuts", cost.params, cost.buffers, cost.macs, cost.shortcuts);
    Ok(())
}
