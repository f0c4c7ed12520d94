//! Paper Table 2: the MobileNetV2 body as data, and the one function that expands it into blocks.

/// One row of Table 2: a stage of `n` inverted-residual blocks with expansion `t`, `c` output
/// channels and stride `s` on its first block.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct BlockSetting {
    pub t: f64,
    pub c: usize,
    pub n: usize,
    pub s: usize,
}

/// Table 2 of Sandler et al. 2018 (the rows between the stem `conv2d 3×3, 32, s2` and the head
/// `conv2d 1×1, 1280`): `t, c, n, s`.
pub const MOBILENET_V2_TABLE2: [BlockSetting; 7] = [
    BlockSetting { t: 1.0, c: 16, n: 1, s: 1 },
    BlockSetting { t: 6.0, c: 24, n: 2, s: 2 },
    BlockSetting { t: 6.0, c: 32, n: 3, s: 2 },
    BlockSetting { t: 6.0, c: 64, n: 4, s: 2 },
    BlockSetting { t: 6.0, c: 96, n: 3, s: 1 },
    BlockSetting { t: 6.0, c: 160, n: 3, s: 2 },
    BlockSetting { t: 6.0, c: 320, n: 1, s: 1 },
];

/// Stem output channels and stride (Table 2, first row).
pub const STEM_CHANNELS: usize = 32;
pub const STEM_STRIDE: usize = 2;
/// Head conv channels before the width multiplier (Table 2, `conv2d 1×1, 1280`).
pub const HEAD_CHANNELS: usize = 1280;

/// Rounds `v` to a multiple of `divisor`, never below `divisor` and never more than 10% below `v` —
/// the channel rule of the TensorFlow reference implementation (`_make_divisible` in TF-slim's
/// `mobilenet.py`, reused by torchvision).
pub fn make_divisible(v: f64, divisor: usize) -> usize {
    let d = divisor as f64;
    let mut rounded = ((v + d / 2.0) / d).floor() * d;
    rounded = rounded.max(d);
    if rounded < 0.9 * v {
        rounded += d;
    }
    rounded as usize
}

/// One inverted-residual block after expanding Table 2 for a config.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct BlockPlan {
    /// torchvision's `features.{index}` (blocks are 1–17 for the default table).
    pub index: usize,
    /// 0-based row of Table 2.
    pub stage: usize,
    pub in_channels: usize,
    pub out_channels: usize,
    /// Expansion ratio t of this block.
    pub expansion: f64,
    /// `round(in · t)` (see [`hidden_width`]).
    pub hidden_channels: usize,
    pub stride: usize,
}

/// Expands Table 2 rows into blocks: width multiplier on `c`, stride `s` only on a stage's first block.
pub fn expand_stages(rows: &[BlockSetting], stem_channels: usize, width: f64) -> Vec<BlockPlan> {
    let mut blocks = Vec::new();
    let mut input = stem_channels;
    for (stage, row) in rows.iter().enumerate() {
        let output = make_divisible(row.c as f64 * width, 8);
        for i in 0..row.n {
            blocks.push(BlockPlan {
                index: blocks.len() + 1,
                stage,
                in_channels: input,
                out_channels: output,
                expansion: row.t,
                hidden_channels: hidden_width(input, row.t),
                stride: if i == 0 { row.s } else { 1 },
            });
            input = output;
        }
    }
    blocks
}

/// Hidden (expanded) width `round(in · t)`, rounding halves to even as Python's `round` does in
/// torchvision, so fractional `t` gives the same widths there and here.
pub fn hidden_width(input: usize, t: f64) -> usize {
    (input as f64 * t).round_ties_even() as usize
}

/// MobileNetV1 (Howard et al. 2017, Table 1): after the stem `conv 3×3, 32, s2`, thirteen
/// depthwise-separable layers as `(output channels, stride)`; then average pool and the classifier.
pub const MOBILENET_V1_TABLE1: [(usize, usize); 13] =
    [(64, 1), (128, 2), (128, 1), (256, 2), (256, 1), (512, 2), (512, 1), (512, 1), (512, 1), (512, 1), (512, 1), (1024, 2), (1024, 1)];

/// MobileNetV1's channel rule (TF-slim `mobilenet_v1.py`): `max(⌊c·α⌋, 8)`.
pub fn v1_width(c: usize, width: f64) -> usize {
    ((c as f64 * width).floor() as usize).max(8)
}

/// MobileNetV1's layers as t = 1 blocks (`features.1 ..= features.13`); strides may be overridden
/// by `config.strides` (14 values: stem, then each layer).
pub fn v1_plans(config: &super::config::ModelConfig, stem_channels: usize) -> Vec<BlockPlan> {
    let mut input = stem_channels;
    MOBILENET_V1_TABLE1
        .iter()
        .enumerate()
        .map(|(k, &(c, s))| {
            let out = v1_width(c, config.width);
            let plan = BlockPlan {
                index: k + 1,
                stage: k,
                in_channels: input,
                out_channels: out,
                expansion: 1.0,
                hidden_channels: input,
                stride: config.strides.as_ref().map_or(s, |v| v[k + 1]),
            };
            input = out;
            plan
        })
        .collect()
}
