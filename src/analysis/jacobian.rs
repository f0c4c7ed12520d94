//! Whole-block information loss: the Jacobian of an inverted-residual block's output with respect to
//! its input on a small spatial crop, with the activation masks frozen at the input (the block is
//! piecewise linear, so this *is* the block's linear map on that piece). Its numerical rank against the
//! input dimension says how much the block can lose; the singular values say how close it comes.
//!
//! The crop is treated as a standalone input (zero padding at its border). With the `expansion`
//! shortcut placement the wide tensor carried from the previous block is an input too: it is taken from
//! the same crop of the network's real forward pass and held constant.

use nalgebra::DMatrix;
use serde::Serialize;

use super::invertibility::RANK_EPS;
use crate::error::{Error, Result};
use crate::hooks::{BlockPoint, HookName, NameFilter};
use crate::layers::{Activation, ConvBn, ConvKind};
use crate::model::block_steps::Step;
use crate::model::hooked::Hooked;
use crate::model::{InvertedResidual, MobileNetV2};
use crate::tensor::{Batch, FeatureMap};

/// Rank and spectrum of one block's Jacobian.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct BlockJacobian {
    pub block: usize,
    pub input_dim: usize,
    pub output_dim: usize,
    pub rank: usize,
    /// Singular values, descending.
    pub singular_values: Vec<f64>,
    pub rank_tolerance: f64,
}

/// `out = conv(x)` with the folded weights and **no** bias or activation (the linear part of a layer).
fn linear_part(layer: &ConvBn, x: &FeatureMap) -> FeatureMap {
    let mut out = FeatureMap::zeros(0, 0, 0);
    match &layer.kind {
        ConvKind::Pointwise(p) => p.forward(x, layer.folded_weight(), &mut out, 1),
        ConvKind::Depthwise(d) => {
            let zeros = vec![0.0; d.channels];
            d.forward(x, layer.folded_weight(), &zeros, Activation::Identity, &mut out, &mut Vec::new(), 1)
        }
        ConvKind::Full(c) => c.forward(x, layer.folded_weight(), &mut out, &mut Vec::new(), 1),
    }
    out
}

/// The pre-activation of a layer (bias included) and its derivative mask (1 in the linear region).
fn pre_and_mask(layer: &ConvBn, x: &FeatureMap) -> (FeatureMap, Vec<f32>) {
    let mut pre = FeatureMap::zeros(0, 0, 0);
    layer.forward(x, &mut pre, &mut Vec::new(), 1, false);
    let (lo, hi) = layer.activation.bounds();
    let mask = pre.as_slice().iter().map(|&v| if v > lo && v < hi { 1.0 } else { 0.0 }).collect();
    (pre, mask)
}

fn apply(layer: &ConvBn, pre: &FeatureMap) -> FeatureMap {
    let mut post = pre.clone();
    layer.activation.apply_slice(post.as_mut_slice());
    post
}

fn times(mut fm: FeatureMap, mask: &[f32]) -> FeatureMap {
    fm.as_mut_slice().iter_mut().zip(mask).for_each(|(v, m)| *v *= m);
    fm
}

/// The block's actual output on `x` (with `carry` added where the block's steps have a wide sum),
/// computed layer by layer from the definitions, walking the block's steps.
pub fn block_output(block: &InvertedResidual, x: &FeatureMap, carry: Option<&FeatureMap>) -> FeatureMap {
    walk(block, x, carry).0
}

/// The block's steps on `x`: the output and each layer's derivative mask (1 in the linear region).
fn walk(block: &InvertedResidual, x: &FeatureMap, carry: Option<&FeatureMap>) -> (FeatureMap, Vec<Vec<f32>>) {
    let mut cur = x.clone();
    let mut masks = Vec::new();
    let mut saved: Option<FeatureMap> = None;
    for &step in &block.steps {
        match step {
            Step::Save => saved = Some(cur.clone()),
            Step::Conv(l) => {
                if let Some(u) = block.layer(l) {
                    let (pre, m) = pre_and_mask(u, &cur);
                    cur = apply(u, &pre);
                    masks.push(m);
                }
            }
            Step::WideSum => {
                if let Some(c) = carry {
                    add(&mut cur, c);
                }
            }
            Step::AddSaved => add(&mut cur, saved.as_ref().expect("AddSaved follows Save")),
            Step::In | Step::Carry | Step::Out => {}
        }
    }
    (cur, masks)
}

fn add(a: &mut FeatureMap, b: &FeatureMap) {
    a.as_mut_slice().iter_mut().zip(b.as_slice()).for_each(|(x, y)| *x += y);
}

/// The Jacobian (output_dim × input_dim, CHW order on both sides) at `x` with masks frozen: the
/// block's steps walked once on `x` for the masks, then once per input direction with each layer
/// replaced by its linear part times its mask (the carried wide tensor is a constant).
///
/// # Panics
/// When the block's steps are malformed (an `AddSaved` without a `Save`).
pub fn block_jacobian_matrix(block: &InvertedResidual, x: &FeatureMap, carry: Option<&FeatureMap>) -> DMatrix<f64> {
    let (_, masks) = walk(block, x, carry);
    let [c, h, w] = x.shape();
    let input_dim = c * h * w;
    let mut cols: Vec<Vec<f64>> = Vec::with_capacity(input_dim);
    for k in 0..input_dim {
        let mut v = FeatureMap::zeros(c, h, w);
        v.as_mut_slice()[k] = 1.0;
        let mut saved_v: Option<FeatureMap> = None;
        let mut m = masks.iter();
        for &step in &block.steps {
            match step {
                Step::Save => saved_v = Some(v.clone()),
                Step::Conv(l) => {
                    if let Some(u) = block.layer(l) {
                        v = times(linear_part(u, &v), m.next().expect("one mask per layer"));
                    }
                }
                Step::AddSaved => add(&mut v, saved_v.as_ref().expect("AddSaved follows Save")),
                Step::In | Step::WideSum | Step::Carry | Step::Out => {}
            }
        }
        cols.push(v.as_slice().iter().map(|&x| x as f64).collect());
    }
    let output_dim = cols.first().map_or(0, |v| v.len());
    DMatrix::from_fn(output_dim, input_dim, |r, col| cols[col][r])
}

/// Largest crop side accepted: at 32 × 32 positions and 96 channels the Jacobian already has 9.7e9
/// entries.
pub const MAX_CROP: usize = 32;

/// A `size × size` crop at the centre of a map (smaller maps are taken whole).
///
/// # Panics
/// Never for a well-formed map (the crop's shape is checked by construction).
pub fn centre_crop(fm: &FeatureMap, size: usize) -> FeatureMap {
    let [c, h, w] = fm.shape();
    let (ch, cw) = (size.min(h), size.min(w));
    let (y0, x0) = ((h - ch) / 2, (w - cw) / 2);
    let mut out = Vec::with_capacity(c * ch * cw);
    for k in 0..c {
        for y in 0..ch {
            for x in 0..cw {
                out.push(fm.get(k, y0 + y, x0 + x));
            }
        }
    }
    FeatureMap::from_chw(c, ch, cw, out).expect("crop shape")
}

/// The Jacobian of block `index` at a centre crop of its input when the model runs on `image`.
///
/// # Errors
/// A block index out of range, a crop outside 1..=[`MAX_CROP`], an image the model cannot run.
pub fn block_jacobian(model: &MobileNetV2, index: usize, image: &FeatureMap, crop: usize) -> Result<BlockJacobian> {
    if !(1..=MAX_CROP).contains(&crop) {
        return Err(crate::Error::config(
            "crop",
            crop,
            format!("use a crop of 1 to {MAX_CROP} positions per side (the Jacobian has (crop²·channels)² entries)"),
        ));
    }
    let k = model
        .blocks
        .iter()
        .position(|b| b.plan.index == index)
        .ok_or_else(|| Error::config("block", index, format!("use a block index 1..={}", model.blocks.len())))?;
    let block = &model.blocks[k];
    let input = HookName::block(index, BlockPoint::In);
    let mut names = vec![NameFilter::Exact(input)];
    let carry_site = (block.has_wide_shortcut() && k > 0).then(|| {
        let prev = &model.blocks[k - 1];
        let point = if prev.has_wide_shortcut() { BlockPoint::DepthwiseSum } else { BlockPoint::DepthwisePost };
        HookName::block(prev.plan.index, point)
    });
    if let Some(s) = carry_site {
        names.push(NameFilter::Exact(s));
    }
    let batch = Batch::new(vec![image.clone()])?;
    let (_, cache) = model.run_with_cache(&batch, NameFilter::Any(names))?;
    let x = centre_crop(cache.image(&input, 0)?, crop);
    let carry = carry_site.map(|s| cache.image(&s, 0).map(|c| centre_crop(c, crop))).transpose()?;
    let j = block_jacobian_matrix(block, &x, carry.as_ref());
    let sv = j.clone().svd(false, false).singular_values;
    let mut sv: Vec<f64> = sv.iter().copied().collect();
    sv.sort_by(|a, b| b.total_cmp(a));
    let tol = sv.first().copied().unwrap_or(0.0) * j.nrows().max(j.ncols()) as f64 * RANK_EPS;
    Ok(BlockJacobian {
        block: index,
        input_dim: j.ncols(),
        output_dim: j.nrows(),
        rank: sv.iter().filter(|&&v| v > tol).count(),
        singular_values: sv,
        rank_tolerance: tol,
    })
}
