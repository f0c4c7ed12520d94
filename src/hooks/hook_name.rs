//! The hook-name catalogue: every point of the forward pass a hook can see, as a typed name.
//!
//! Names use torchvision's `features.{i}` index for blocks (stem 0, blocks 1–17, head 18 in the
//! default model) so hook names, weight names and the paper's layer numbers line up. Strings appear only
//! at the CLI/TOML edge (`Display` / `FromStr`).

use std::fmt;
use std::str::FromStr;

use crate::error::{Error, Result};

/// A point inside an inverted-residual block (paper Table 1), in firing order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum BlockPoint {
    /// The block input (the previous bottleneck).
    In,
    /// Expansion 1×1 conv after BN, before the activation (absent where t = 1).
    ExpandPre,
    /// Expansion after its activation (absent where t = 1).
    ExpandPost,
    /// Depthwise 3×3 after BN, before the activation.
    DepthwisePre,
    /// Depthwise after its activation.
    DepthwisePost,
    /// The wide sum entering the projection (only where the `expansion` shortcut fires).
    DepthwiseSum,
    /// Projection 1×1 after BN, before the bottleneck activation.
    ProjectPre,
    /// The bottleneck after its configured activation (equal to `ProjectPre` when linear), before the
    /// shortcut.
    Project,
    /// The block output, after the shortcut if any.
    Out,
}

impl BlockPoint {
    pub const ALL: [BlockPoint; 9] = [
        BlockPoint::In,
        BlockPoint::ExpandPre,
        BlockPoint::ExpandPost,
        BlockPoint::DepthwisePre,
        BlockPoint::DepthwisePost,
        BlockPoint::DepthwiseSum,
        BlockPoint::ProjectPre,
        BlockPoint::Project,
        BlockPoint::Out,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            BlockPoint::In => "in",
            BlockPoint::ExpandPre => "expand.pre",
            BlockPoint::ExpandPost => "expand.post",
            BlockPoint::DepthwisePre => "depthwise.pre",
            BlockPoint::DepthwisePost => "depthwise.post",
            BlockPoint::DepthwiseSum => "depthwise.sum",
            BlockPoint::ProjectPre => "project.pre",
            BlockPoint::Project => "project",
            BlockPoint::Out => "out",
        }
    }
}

/// Which part of an SSD/SSDLite detection head a site belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum SsdPart {
    /// Extra feature layer j (1×1 reduce → 3×3 stride-2 → 1×1 expand for SSDLite).
    Extra,
    /// Class predictor on feature map k.
    Class,
    /// Box predictor on feature map k.
    Box,
}

/// A point inside an SSD head part, in firing order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum SsdPoint {
    ReducePre,
    ReducePost,
    /// The 3×3 layer (depthwise in SSDLite, full in SSD).
    SpatialPre,
    SpatialPost,
    ExpandPre,
    ExpandPost,
    /// A predictor's output (class logits or box deltas, per anchor).
    Out,
}

impl SsdPoint {
    pub const ALL: [SsdPoint; 7] =
        [SsdPoint::ReducePre, SsdPoint::ReducePost, SsdPoint::SpatialPre, SsdPoint::SpatialPost, SsdPoint::ExpandPre, SsdPoint::ExpandPost, SsdPoint::Out];

    pub fn as_str(self) -> &'static str {
        match self {
            SsdPoint::ReducePre => "reduce.pre",
            SsdPoint::ReducePost => "reduce.post",
            SsdPoint::SpatialPre => "spatial.pre",
            SsdPoint::SpatialPost => "spatial.post",
            SsdPoint::ExpandPre => "expand.pre",
            SsdPoint::ExpandPost => "expand.post",
            SsdPoint::Out => "out",
        }
    }
}

impl SsdPart {
    pub fn as_str(self) -> &'static str {
        match self {
            SsdPart::Extra => "extra",
            SsdPart::Class => "class",
            SsdPart::Box => "box",
        }
    }
}

/// A hook site of the network.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum HookName {
    /// The network input.
    Input,
    /// Stem conv after BN, before the activation.
    StemPre,
    /// Stem after its activation.
    StemPost,
    /// A point inside block `index` (torchvision's `features.{index}`).
    Block { index: usize, point: BlockPoint },
    /// Head 1×1 conv after BN, before the activation.
    HeadPre,
    /// Head after its activation.
    HeadPost,
    /// Global average pool output (a C×1×1 map).
    Pool,
    /// Classifier output (a classes×1×1 map).
    Logits,
    /// A site of an SSD/SSDLite detection head: `ssd.{extra|class|box}.{index}.{point}`.
    Ssd { part: SsdPart, index: usize, point: SsdPoint },
}

impl HookName {
    /// Shorthand for a block site.
    pub fn block(index: usize, point: BlockPoint) -> Self {
        HookName::Block { index, point }
    }

    /// Whether this is a post-activation site (`*.post`), where ReLU-type information loss happens.
    pub fn is_post(&self) -> bool {
        matches!(
            self,
            HookName::StemPost
                | HookName::HeadPost
                | HookName::Block { point: BlockPoint::ExpandPost | BlockPoint::DepthwisePost, .. }
                | HookName::Ssd { point: SsdPoint::ReducePost | SsdPoint::SpatialPost | SsdPoint::ExpandPost, .. }
        )
    }

    /// The pre-activation site matching a `.post` site (or the bottleneck `project`), if any.
    pub fn pre_of(&self) -> Option<HookName> {
        match *self {
            HookName::StemPost => Some(HookName::StemPre),
            HookName::HeadPost => Some(HookName::HeadPre),
            HookName::Block { index, point: BlockPoint::ExpandPost } => Some(HookName::block(index, BlockPoint::ExpandPre)),
            HookName::Block { index, point: BlockPoint::DepthwisePost } => Some(HookName::block(index, BlockPoint::DepthwisePre)),
            HookName::Block { index, point: BlockPoint::Project } => Some(HookName::block(index, BlockPoint::ProjectPre)),
            HookName::Ssd { part, index, point } => {
                let pre = match point {
                    SsdPoint::ReducePost => SsdPoint::ReducePre,
                    SsdPoint::SpatialPost => SsdPoint::SpatialPre,
                    SsdPoint::ExpandPost => SsdPoint::ExpandPre,
                    _ => return None,
                };
                Some(HookName::Ssd { part, index, point: pre })
            }
            _ => None,
        }
    }
}

impl fmt::Display for HookName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HookName::Input => f.write_str("input"),
            HookName::StemPre => f.write_str("stem.pre"),
            HookName::StemPost => f.write_str("stem.post"),
            HookName::Block { index, point } => write!(f, "blocks.{index}.{}", point.as_str()),
            HookName::HeadPre => f.write_str("head.pre"),
            HookName::HeadPost => f.write_str("head.post"),
            HookName::Pool => f.write_str("pool"),
            HookName::Logits => f.write_str("logits"),
            HookName::Ssd { part, index, point } => write!(f, "ssd.{}.{index}.{}", part.as_str(), point.as_str()),
        }
    }
}

impl FromStr for HookName {
    type Err = Error;

    /// Parses the syntax of a name. Whether the site exists in a given model is checked against that
    /// model's catalogue (see [`crate::hooks::resolve_name`]), which also suggests the closest name.
    fn from_str(s: &str) -> Result<Self> {
        let simple = match s {
            "input" => Some(HookName::Input),
            "stem.pre" => Some(HookName::StemPre),
            "stem.post" => Some(HookName::StemPost),
            "head.pre" => Some(HookName::HeadPre),
            "head.post" => Some(HookName::HeadPost),
            "pool" => Some(HookName::Pool),
            "logits" => Some(HookName::Logits),
            _ => None,
        };
        if let Some(n) = simple {
            return Ok(n);
        }
        let unknown = || Error::UnknownHook { name: s.to_string(), suggestion: String::new() };
        if let Some(rest) = s.strip_prefix("ssd.") {
            let (part, rest) = rest.split_once('.').ok_or_else(unknown)?;
            let part = [SsdPart::Extra, SsdPart::Class, SsdPart::Box].into_iter().find(|p| p.as_str() == part).ok_or_else(unknown)?;
            let (index, point) = rest.split_once('.').ok_or_else(unknown)?;
            let index: usize = index.parse().map_err(|_| unknown())?;
            let point = SsdPoint::ALL.into_iter().find(|p| p.as_str() == point).ok_or_else(unknown)?;
            return Ok(HookName::Ssd { part, index, point });
        }
        let rest = s.strip_prefix("blocks.").ok_or_else(unknown)?;
        let (index, point) = rest.split_once('.').ok_or_else(unknown)?;
        let index: usize = index.parse().map_err(|_| unknown())?;
        let point = BlockPoint::ALL.into_iter().find(|p| p.as_str() == point).ok_or_else(unknown)?;
        Ok(HookName::Block { index, point })
    }
}
