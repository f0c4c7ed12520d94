//! The inverted residual block with linear bottleneck (paper Table 1 and Fig. 3b):
//! expand (1×1, ReLU6) → depthwise (3×3, stride s, ReLU6) → project (1×1, *linear*), with the shortcut
//! joining the thin bottlenecks. The variants of the paper's ablations (Fig. 6) are stored facts, decided
//! once when the block is built; the forward pass only branches on them.

use super::block_setting::BlockPlan;
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
    /// Bottleneck shortcut: `out = project + in` (stride 1 and in == out, `shortcut = bottleneck`).
    pub has_shortcut: bool,
    /// Expansion shortcut: the previous block's wide tensor is added to this block's depthwise output
    /// (same width, stride 1, `shortcut = expansion`).
    pub has_wide_shortcut: bool,
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
        InvertedResidual { plan, expand, depthwise, project, has_shortcut, has_wide_shortcut }
    }

    /// Width of the tensor between depthwise and projection.
    pub fn wide_channels(&self) -> usize {
        self.depthwise.out_channels()
    }

    /// Runs the block on `ws.cur`, leaving the output in `ws.cur`. With the `expansion` placement,
    /// `ws.carry` holds the previous block's wide tensor on entry and this block's on exit.
    pub(crate) fn forward<H: HookSink>(&self, ws: &mut Workspace, hooks: &mut H, image: usize, threads: usize, carry_wide: bool) {
        let i = self.plan.index;
        let site = |point| HookName::block(i, point);
        let Workspace { cur, next, wide, dw, carry, scratch, .. } = ws;
        fire(hooks, site(BlockPoint::In), image, cur);
        let dw_in: &FeatureMap = match &self.expand {
            Some(expand) => {
                conv_site(expand, cur, wide, scratch, threads, site(BlockPoint::ExpandPre), site(BlockPoint::ExpandPost), hooks, image);
                wide
            }
            None => cur,
        };
        conv_site(&self.depthwise, dw_in, dw, scratch, threads, site(BlockPoint::DepthwisePre), site(BlockPoint::DepthwisePost), hooks, image);
        if self.has_wide_shortcut {
            dw.as_mut_slice().iter_mut().zip(carry.as_slice()).for_each(|(a, b)| *a += b);
            fire(hooks, site(BlockPoint::DepthwiseSum), image, dw);
        }
        // The wide residual stream continues from what enters this projection.
        let proj_in = if carry_wide {
            std::mem::swap(carry, dw);
            &*carry
        } else {
            &*dw
        };
        conv_site(&self.project, proj_in, next, scratch, threads, site(BlockPoint::ProjectPre), site(BlockPoint::Project), hooks, image);
        if self.has_shortcut {
            next.as_mut_slice().iter_mut().zip(cur.as_slice()).for_each(|(a, b)| *a += b);
        }
        fire(hooks, site(BlockPoint::Out), image, next);
        std::mem::swap(cur, next);
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
