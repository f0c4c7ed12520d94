//! The inverted residual block with linear bottleneck (paper Table 1 and Fig. 3b):
//! expand (1×1, ReLU6) → depthwise (3×3, stride s, ReLU6) → project (1×1, *linear*), with the shortcut
//! joining the thin bottlenecks. The variants of the paper's ablations (Fig. 6) are decided once when
//! the block is built, as its list of [`Step`]s ([`super::block_steps`]); the forward pass walks it.

use super::block_setting::BlockPlan;
use super::block_steps::{block_steps, Layer, Step};
use super::config::{Arch, ModelConfig, Shortcut};
use super::workspace::Workspace;
use crate::hooks::hook_name::{BlockPoint, HookName};
use crate::hooks::sink::HookSink;
use crate::layers::{Activation, ConvBn, ConvKind, Depthwise, Pointwise};
use crate::tensor::FeatureMap;

/// One inverted-residual block (torchvision's `features.{index}`).
#[derive(Clone, Debug, PartialEq)]
pub struct InvertedResidual {
    pub plan: BlockPlan,
    /// 1×1 expansion `n → t·n` with the hidden activation; absent where `t = 1`.
    pub expand: Option<ConvBn>,
    /// 3×3 depthwise at stride s with the hidden activation.
    pub depthwise: ConvBn,
    /// 1×1 projection `t·n → n'` with the bottleneck activation (identity: linear bottleneck).
    pub project: ConvBn,
    /// The block's data flow, in order: what every executor and accountant walks. Built from the
    /// config: the bottleneck shortcut (`out = project + in`, stride 1 and in == out, `shortcut =
    /// bottleneck`) and the expansion shortcut (the previous block's wide tensor added to this
    /// block's depthwise output: same width, stride 1, `shortcut = expansion`).
    pub steps: Vec<Step>,
}

impl InvertedResidual {
    /// Builds the block for `plan`; `previous` is the preceding block's plan (for the wide shortcut).
    pub fn new(plan: BlockPlan, previous: Option<&BlockPlan>, config: &ModelConfig) -> Self {
        let eps = config.bn_eps as f32;
        let hidden_act = config.activation.activation();
        let expand = (plan.expansion != 1.0)
            .then(|| ConvBn::new(ConvKind::Pointwise(Pointwise { in_channels: plan.in_channels, out_channels: plan.hidden_channels }), hidden_act, eps));
        // Without an expansion layer the depthwise runs on the block input.
        let dw_channels = if expand.is_some() { plan.hidden_channels } else { plan.in_channels };
        let depthwise = ConvBn::new(ConvKind::Depthwise(Depthwise { channels: dw_channels, stride: plan.stride, padding: config.padding }), hidden_act, eps);
        let v1 = config.arch == Arch::MobilenetV1;
        // MobileNetV1's pointwise conv has the hidden activation; V2's projection the bottleneck one.
        let project_act = if v1 { hidden_act } else { config.bottleneck.activation() };
        let project = ConvBn::new(ConvKind::Pointwise(Pointwise { in_channels: dw_channels, out_channels: plan.out_channels }), project_act, eps);
        let has_shortcut = !v1 && config.shortcut == Shortcut::Bottleneck && plan.stride == 1 && plan.in_channels == plan.out_channels;
        let has_wide_shortcut = config.shortcut == Shortcut::Expansion && plan.stride == 1 && previous.is_some_and(|p| wide_channels(p) == dw_channels);
        let steps = block_steps(expand.is_some(), has_shortcut, has_wide_shortcut, config.shortcut == Shortcut::Expansion);
        InvertedResidual { plan, expand, depthwise, project, steps }
    }

    /// Width of the tensor between depthwise and projection.
    pub fn wide_channels(&self) -> usize {
        self.depthwise.out_channels()
    }

    /// The layer a [`Step::Conv`] names (`None`: no expansion layer where t = 1).
    pub fn layer(&self, layer: Layer) -> Option<&ConvBn> {
        match layer {
            Layer::Expand => self.expand.as_ref(),
            Layer::Depthwise => Some(&self.depthwise),
            Layer::Project => Some(&self.project),
        }
    }

    /// A residual connection ends in this block (`Save` … `AddSaved`; the bottleneck shortcut).
    pub fn has_shortcut(&self) -> bool {
        self.steps.contains(&Step::AddSaved)
    }

    /// The previous block's wide tensor joins this one (`expansion` placement).
    pub fn has_wide_shortcut(&self) -> bool {
        self.steps.contains(&Step::WideSum)
    }

    /// Runs the block's steps on `ws.cur`, leaving the output in `ws.cur`. With the `expansion`
    /// placement, `ws.carry` holds the previous block's wide tensor on entry and this block's on exit.
    pub(crate) fn forward<H: HookSink>(&self, ws: &mut Workspace, hooks: &mut H, image: usize, threads: usize) {
        let i = self.plan.index;
        let site = |point| HookName::block(i, point);
        let Workspace { cur, next, wide, dw, carry, scratch, .. } = ws;
        // The block's buffers; each conv writes its own, so a saved tensor is never overwritten.
        let mut bufs: [&mut FeatureMap; 5] = [cur, wide, dw, carry, next];
        let (mut x, mut saved) = (CUR, None);
        for &step in &self.steps {
            match step {
                Step::In => fire(hooks, site(BlockPoint::In), image, bufs[x]),
                Step::Save => saved = Some(x),
                Step::Conv(layer) => {
                    let Some(unit) = self.layer(layer) else { continue };
                    let dst = match layer {
                        Layer::Expand => WIDE,
                        Layer::Depthwise => DW,
                        Layer::Project => NEXT,
                    };
                    debug_assert!(saved != Some(dst), "a conv would overwrite a saved tensor");
                    let (pre, post) = layer.sites();
                    let (src, out) = pair(&mut bufs, x, dst);
                    conv_site(unit, src, out, scratch, threads, site(pre), site(post), hooks, image);
                    x = dst;
                }
                Step::WideSum => {
                    let (c, out) = pair(&mut bufs, CARRY, x);
                    out.as_mut_slice().iter_mut().zip(c.as_slice()).for_each(|(a, b)| *a += b);
                    fire(hooks, site(BlockPoint::DepthwiseSum), image, out);
                }
                Step::Carry => {
                    if x != CARRY {
                        let (c, other) = pair_mut(&mut bufs, CARRY, x);
                        std::mem::swap(c, other);
                        x = CARRY;
                    }
                }
                Step::AddSaved => {
                    let from = saved.expect("AddSaved follows Save");
                    let (s, out) = pair(&mut bufs, from, x);
                    out.as_mut_slice().iter_mut().zip(s.as_slice()).for_each(|(a, b)| *a += b);
                }
                Step::Out => fire(hooks, site(BlockPoint::Out), image, bufs[x]),
            }
        }
        if x != CUR {
            let (c, other) = pair_mut(&mut bufs, CUR, x);
            std::mem::swap(c, other);
        }
    }
}

/// Buffer slots of [`InvertedResidual::forward`].
const CUR: usize = 0;
const WIDE: usize = 1;
const DW: usize = 2;
const CARRY: usize = 3;
const NEXT: usize = 4;

/// Slot `a` to read and slot `b` to write (a ≠ b).
fn pair<'a>(bufs: &'a mut [&mut FeatureMap; 5], a: usize, b: usize) -> (&'a FeatureMap, &'a mut FeatureMap) {
    let (x, y) = pair_mut(bufs, a, b);
    (x, y)
}

/// Slots `a` and `b` both writable (a ≠ b).
fn pair_mut<'a>(bufs: &'a mut [&mut FeatureMap; 5], a: usize, b: usize) -> (&'a mut FeatureMap, &'a mut FeatureMap) {
    assert_ne!(a, b, "one buffer cannot be read and written at once");
    if a < b {
        let (l, r) = bufs.split_at_mut(b);
        (&mut *l[a], &mut *r[0])
    } else {
        let (l, r) = bufs.split_at_mut(a);
        (&mut *r[0], &mut *l[b])
    }
}

fn wide_channels(plan: &BlockPlan) -> usize {
    if plan.expansion != 1.0 {
        plan.hidden_channels
    } else {
        plan.in_channels
    }
}

/// Fires `name` if anything listens there.
#[inline]
pub(crate) fn fire<H: HookSink>(hooks: &mut H, name: HookName, image: usize, fm: &mut FeatureMap) {
    if hooks.wants(&name) {
        hooks.fire(&name, image, fm);
    }
}

/// One conv → BN → activation with its `.pre` and `.post` sites. Without a `.pre` listener the
/// activation is fused into the kernel's epilogue.
#[allow(clippy::too_many_arguments)]
#[inline]
pub(crate) fn conv_site<H: HookSink>(
    layer: &ConvBn,
    x: &FeatureMap,
    out: &mut FeatureMap,
    scratch: &mut Vec<f32>,
    threads: usize,
    pre: HookName,
    post: HookName,
    hooks: &mut H,
    image: usize,
) {
    let want_pre = hooks.wants(&pre);
    layer.forward(x, out, scratch, threads, !want_pre);
    if want_pre {
        hooks.fire(&pre, image, out);
        if layer.activation != Activation::Identity {
            layer.activation.apply_slice(out.as_mut_slice());
        }
    }
    fire(hooks, post, image, out);
}
