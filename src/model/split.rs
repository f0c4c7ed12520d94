//! Split execution of inverted-residual blocks (paper §5.1): a block is computed in k slices of its
//! expansion, `F(x) = Σ_i (A_i ∘ N ∘ B_i)(x)`, accumulating the projection, so only one slice of the
//! expanded tensor (and of its depthwise output) is ever alive. MobileNetV2's stem is fused with
//! block 1 (the stem conv is evaluated slice by slice, without im2col), and the head conv is split
//! the same way into the global pool, so the largest live tensors are the thin bottlenecks.
//!
//! Every buffer is allocated inside the call, so a counting allocator sees the real peak. The
//! `expansion` shortcut placement needs the whole wide tensor of the previous block by construction
//! and is rejected (its peak is the unsplit one; see [`crate::analysis::memory`]).

use super::block_steps::{block_steps, Step};
use super::config::Shortcut;
use super::inverted_residual::InvertedResidual;
use super::mobilenet_v2::MobileNetV2;
use crate::error::{Error, Result};
use crate::layers::conv_bn::bias_activate;
use crate::layers::matmul::matmul_rows_acc;
use crate::layers::{ConvKind, Depthwise, Pointwise};
use crate::tensor::FeatureMap;

/// How each block's expansion is cut.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
pub enum Splits {
    /// k slices of (nearly) equal width (fewer when a block is narrower than k).
    Count(usize),
    /// One channel per slice.
    PerChannel,
}

impl Splits {
    /// Channel ranges covering `0..c`.
    pub fn ranges(self, c: usize) -> Vec<(usize, usize)> {
        let k = match self {
            Splits::Count(k) => k.clamp(1, c.max(1)),
            Splits::PerChannel => c.max(1),
        };
        (0..k).map(|i| (i * c / k, (i + 1) * c / k)).filter(|(a, b)| b > a).collect()
    }

    /// `1`, `2`, … or `C`.
    pub fn label(self) -> String {
        match self {
            Splits::Count(k) => k.to_string(),
            Splits::PerChannel => "C".into(),
        }
    }
}

impl std::str::FromStr for Splits {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s.trim() {
            "C" | "c" => Ok(Splits::PerChannel),
            t => t
                .parse::<usize>()
                .ok()
                .filter(|&k| k >= 1)
                .map(Splits::Count)
                .ok_or_else(|| Error::config("splits", s, "use positive integers or C (one channel per split), e.g. 1,2,3,4,6,C")),
        }
    }
}

/// Whether a block's steps are the flow [`MobileNetV2::forward_split`] fuses: the input, optionally
/// saved for the bottleneck shortcut, expand (optional), depthwise, project, the shortcut's add, the
/// output.
fn splittable(steps: &[Step]) -> bool {
    let core: Vec<Step> = steps.iter().copied().filter(|s| !matches!(s, Step::Save | Step::AddSaved)).collect();
    let flow_ok = core == block_steps(true, false, false, false) || core == block_steps(false, false, false, false);
    let saves = steps.iter().filter(|&&s| s == Step::Save).count();
    let adds = steps.iter().filter(|&&s| s == Step::AddSaved).count();
    let save_at_input = saves == 0 || steps.get(1) == Some(&Step::Save);
    let add_at_end = adds == 0 || steps.len() >= 2 && steps[steps.len() - 2] == Step::AddSaved;
    flow_ok && saves == adds && saves <= 1 && save_at_input && add_at_end
}

/// Where a block's per-channel input comes from.
enum BlockInput<'a> {
    /// A materialised bottleneck.
    Map(&'a FeatureMap),
    /// The network input: the block's depthwise input is the stem output, computed slice by slice.
    Stem(&'a FeatureMap),
}

impl MobileNetV2 {
    /// Logits of one image computed with split blocks; equal to [`MobileNetV2::forward`] up to float
    /// summation order.
    ///
    /// # Errors
    /// The expansion shortcut placement, a block flow other than the standard one, an image that is not 3×H×W.
    pub fn forward_split(&self, x: &FeatureMap, splits: Splits) -> Result<Vec<f32>> {
        if self.config().shortcut == Shortcut::Expansion {
            return Err(Error::config(
                "shortcut",
                "expansion",
                "split execution needs the bottleneck or no shortcut: the expansion placement keeps the whole wide tensor alive by construction",
            ));
        }
        // The fused kernel below runs the standard flow of a block's steps slice by slice.
        if let Some(b) = self.blocks.iter().find(|b| !splittable(&b.steps)) {
            return Err(Error::input(
                "split execution",
                format!(
                    "block {} runs {:?}; only In, Save (of the block input), the three convs in order, AddSaved and Out can be split",
                    b.plan.index, b.steps
                ),
            ));
        }
        if x.channels() != 3 {
            return Err(Error::input("image", format!("shape {:?} is not 3×H×W", x.shape())));
        }
        let mut start = 0;
        let mut cur = match self.blocks.first() {
            Some(b) if b.expand.is_none() => {
                start = 1;
                self.split_block(b, BlockInput::Stem(x), splits)
            }
            _ => {
                let mut s = FeatureMap::zeros(0, 0, 0);
                self.stem.forward(x, &mut s, &mut Vec::new(), 1, true);
                s
            }
        };
        for b in &self.blocks[start..] {
            cur = self.split_block(b, BlockInput::Map(&cur), splits);
        }
        let pooled = self.split_head_pool(&cur, splits);
        let mut logits = FeatureMap::zeros(0, 0, 0);
        self.classifier.forward(&pooled, &mut logits);
        Ok(logits.as_slice().to_vec())
    }

    fn split_block(&self, b: &InvertedResidual, input: BlockInput<'_>, splits: Splits) -> FeatureMap {
        let wide = b.wide_channels();
        let ConvKind::Depthwise(dw) = b.depthwise.kind else { unreachable!("block depthwise") };
        let (ih, iw) = match input {
            BlockInput::Map(m) => (m.height(), m.width()),
            BlockInput::Stem(img) => self.stem.kind.output_size(img.height(), img.width()),
        };
        let (oh, ow) = dw.output_size(ih, iw);
        let n_out = b.project.out_channels();
        let mut acc = FeatureMap::zeros(n_out, oh, ow);
        let mut slice = FeatureMap::zeros(0, 0, 0);
        let mut dslice = FeatureMap::zeros(0, 0, 0);
        let mut scratch = Vec::new();
        let wp = b.project.folded_weight().as_slice();
        for (k, (a, e)) in splits.ranges(wide).into_iter().enumerate() {
            let s = e - a;
            match (&b.expand, &input) {
                (Some(ex), BlockInput::Map(x)) => {
                    let ConvKind::Pointwise(pw) = ex.kind else { unreachable!("expansion is 1×1") };
                    let w = &ex.folded_weight().as_slice()[a * pw.in_channels..e * pw.in_channels];
                    Pointwise { in_channels: pw.in_channels, out_channels: s }.forward_columns(x, w, s, &mut slice, 1);
                    bias_activate(&mut slice, &ex.folded_bias()[a..e], ex.activation);
                }
                (None, BlockInput::Map(x)) => {
                    slice.reshape(s, x.height(), x.width());
                    slice.as_mut_slice().copy_from_slice(&x.as_slice()[a * x.positions()..e * x.positions()]);
                }
                (_, BlockInput::Stem(img)) => {
                    let ConvKind::Full(conv) = self.stem.kind else { unreachable!("stem is a full conv") };
                    conv.forward_direct_channels(img, self.stem.folded_weight(), a, s, &mut slice);
                    bias_activate(&mut slice, &self.stem.folded_bias()[a..e], self.stem.activation);
                }
            }
            Depthwise { channels: s, ..dw }.forward_channels(
                &slice,
                a,
                b.depthwise.folded_weight().as_slice(),
                b.depthwise.folded_bias(),
                b.depthwise.activation,
                &mut dslice,
                &mut scratch,
                1,
            );
            // acc += dslice (HW'×s) · Wp[a..e, :]
            matmul_rows_acc(acc.as_mut_slice(), dslice.as_slice(), &wp[a..], oh * ow, s, n_out, wide, k > 0);
        }
        bias_activate(&mut acc, b.project.folded_bias(), b.project.activation);
        if b.has_shortcut() {
            if let BlockInput::Map(x) = input {
                acc.as_mut_slice().iter_mut().zip(x.as_slice()).for_each(|(o, v)| *o += v);
            }
        }
        acc
    }

    /// Head conv and global pool slice by slice (the head output is never materialised); without a
    /// head (MobileNetV1) just the pool.
    fn split_head_pool(&self, x: &FeatureMap, splits: Splits) -> FeatureMap {
        let Some(head) = &self.head else {
            let mut p = FeatureMap::zeros(0, 0, 0);
            crate::layers::pool::global_average_pool(x, &mut p);
            return p;
        };
        let c = head.out_channels();
        let mut pooled = FeatureMap::zeros(c, 1, 1);
        let mut slice = FeatureMap::zeros(0, 0, 0);
        let cin = x.channels();
        for (a, e) in splits.ranges(c) {
            let s = e - a;
            let w = &head.folded_weight().as_slice()[a * cin..e * cin];
            Pointwise { in_channels: cin, out_channels: s }.forward_columns(x, w, s, &mut slice, 1);
            bias_activate(&mut slice, &head.folded_bias()[a..e], head.activation);
            for j in 0..s {
                let plane = slice.channel(j);
                pooled.as_mut_slice()[a + j] = plane.iter().sum::<f32>() / plane.len() as f32;
            }
        }
        pooled
    }
}
