//! The one hook-site catalogue: every site of a model in firing order, with its shape, layout and
//! rank threshold. It generates `infoloss hooks`, the README table and name suggestions.

use serde::Serialize;

use super::hook_name::{BlockPoint, HookName};
use crate::error::{Error, Result};
use crate::model::block_steps::Step;
use crate::model::MobileNetV2;

/// Layout of every site (see [`crate::tensor`]).
pub const SITE_LAYOUT: &str = "C×H×W (positions × channels matrix, channel planes contiguous)";

/// One hook site of a model at a given resolution.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct HookSite {
    #[serde(serialize_with = "as_string")]
    pub name: HookName,
    /// `[C, H, W]` at the catalogue's resolution.
    pub shape: [usize; 3],
    pub channels: usize,
    /// Rank threshold n of Lemma 2: the input width of the site's block (3 for the stem, the head's
    /// input width for the head, pool and logits).
    pub threshold: usize,
    pub layout: &'static str,
    /// The site is the output of a ReLU-type activation (every `.post`, and `blocks.{i}.project` when
    /// the projection has one: a ReLU/ReLU6 bottleneck, or MobileNetV1's pointwise layers).
    pub activated: bool,
}

fn as_string<S: serde::Serializer>(n: &HookName, s: S) -> std::result::Result<S::Ok, S::Error> {
    s.serialize_str(&n.to_string())
}

/// Every site of `model` for a `resolution × resolution` input, in the order the sites fire.
pub fn catalogue(model: &MobileNetV2, resolution: usize) -> Vec<HookSite> {
    let mut sites = Vec::new();
    let mut push = |name: HookName, shape: [usize; 3], threshold| {
        let activated = name.is_post()
            || matches!(name, HookName::Block { index, point: BlockPoint::Project }
                if model.blocks.iter().any(|b| b.plan.index == index && b.project.activation != crate::layers::Activation::Identity));
        sites.push(HookSite { name, shape, channels: shape[0], threshold, layout: SITE_LAYOUT, activated })
    };
    push(HookName::Input, [3, resolution, resolution], 3);
    let (h, w) = model.stem.kind.output_size(resolution, resolution);
    let mut shape = [model.stem.out_channels(), h, w];
    push(HookName::StemPre, shape, 3);
    push(HookName::StemPost, shape, 3);
    for b in &model.blocks {
        let (i, n) = (b.plan.index, b.plan.in_channels);
        let site = |p| HookName::block(i, p);
        // Walk the block's steps: each conv changes the current shape, the sums keep it.
        for &step in &b.steps {
            match step {
                Step::In => push(site(BlockPoint::In), shape, n),
                Step::Conv(layer) => {
                    let Some(u) = b.layer(layer) else { continue };
                    let (oh, ow) = u.kind.output_size(shape[1], shape[2]);
                    shape = [u.out_channels(), oh, ow];
                    let (pre, post) = layer.sites();
                    push(site(pre), shape, n);
                    push(site(post), shape, n);
                }
                Step::WideSum => push(site(BlockPoint::DepthwiseSum), shape, n),
                Step::Out => push(site(BlockPoint::Out), shape, n),
                Step::Save | Step::Carry | Step::AddSaved => {}
            }
        }
    }
    let head_in = shape[0];
    let mut features = shape;
    if let Some(h) = &model.head {
        features = [h.out_channels(), shape[1], shape[2]];
        push(HookName::HeadPre, features, head_in);
        push(HookName::HeadPost, features, head_in);
    }
    push(HookName::Pool, [features[0], 1, 1], head_in);
    push(HookName::Logits, [model.classifier.out_features(), 1, 1], head_in);
    sites
}

/// Parses `name` and checks it exists in `sites`; an unknown name suggests the closest valid one.
///
/// # Errors
/// An unknown name, with the closest valid one.
pub fn resolve_name(name: &str, sites: &[HookSite]) -> Result<HookName> {
    if let Ok(n) = name.parse::<HookName>() {
        if sites.iter().any(|s| s.name == n) {
            return Ok(n);
        }
    }
    let closest =
        sites.iter().map(|s| s.name.to_string()).min_by_key(|s| strsim::levenshtein(s, name)).map(|s| format!(" (did you mean '{s}'?)")).unwrap_or_default();
    Err(Error::UnknownHook { name: name.to_string(), suggestion: closest })
}

/// One row per kind of site, for the README and `infoloss hooks --markdown`: name pattern, what it
/// is, where it exists, torchvision equivalent.
pub const SITE_KINDS: [(&str, &str, &str, &str); 17] = [
    ("input", "network input", "always", "model input"),
    ("stem.pre", "stem 3×3 conv (stride 2) after BN, before the activation", "always", "features.0.1 output"),
    ("stem.post", "stem after its activation", "always", "features.0.2 (ReLU6) output"),
    ("blocks.{i}.in", "block input: the previous bottleneck", "blocks 1–17", "features.{i} input"),
    ("blocks.{i}.expand.pre", "1×1 expansion after BN, before the activation", "blocks with t ≠ 1", "features.{i}.conv.0.1 output"),
    ("blocks.{i}.expand.post", "expansion after its activation", "blocks with t ≠ 1", "features.{i}.conv.0.2 output"),
    ("blocks.{i}.depthwise.pre", "3×3 depthwise after BN, before the activation", "blocks 1–17", "features.{i}.conv.{0|1}.1 output"),
    ("blocks.{i}.depthwise.post", "depthwise after its activation", "blocks 1–17", "features.{i}.conv.{0|1}.2 output"),
    ("blocks.{i}.depthwise.sum", "wide sum entering the projection", "`--shortcut expansion`, where it fires", "—"),
    ("blocks.{i}.project.pre", "1×1 projection after BN, before the bottleneck activation", "blocks 1–17", "features.{i}.conv.{2|3} output"),
    ("blocks.{i}.project", "the bottleneck after its activation (= .pre when linear), before the shortcut", "blocks 1–17", "—"),
    ("blocks.{i}.out", "block output, after the shortcut if any", "blocks 1–17", "features.{i} output"),
    ("head.pre", "1×1 head conv after BN, before the activation", "always", "features.18.1 output"),
    ("head.post", "head after its activation", "always", "features.18.2 output"),
    ("pool", "global average pool (C×1×1)", "always", "adaptive_avg_pool2d output"),
    ("logits", "classifier output (classes×1×1)", "always", "classifier.1 output"),
    ("*.post", "every post-activation site: 35 in the default model, torchvision's 35 ReLU6 outputs", "—", "—"),
];

/// The README's hook-name table (kept in sync by a test).
pub fn markdown_table() -> String {
    let mut s = String::from("| hook name | what it is | where | torchvision equivalent |\n|---|---|---|---|\n");
    for (name, what, where_, tv) in SITE_KINDS {
        s.push_str(&format!("| `{name}` | {what} | {where_} | {tv} |\n"));
    }
    s.push_str(&format!("\nEvery site's layout: {SITE_LAYOUT}. Threshold n (Lemma 2) = the input width of the site's block; 3 for `input`/`stem.*`; the head's input width for `head.*`, `pool`, `logits`.\n"));
    s
}
