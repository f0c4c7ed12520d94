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
        if self.runs_blocked(hooks) {
            fire(hooks, site(BlockPoint::In), image, &mut ws.cur);
            self.forward_blocked(ws, threads);
            fire(hooks, site(BlockPoint::Out), image, &mut ws.cur);
            return;
        }
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

impl InvertedResidual {
    /// Whether this block runs [`InvertedResidual::forward_blocked`]: a block of the plain steps (`in`,
    /// expand, depthwise, project, `out`, with or without the bottleneck shortcut) whose wide tensor
    /// is whole 16-channel blocks, with no hook at its six inner sites, on a machine with AVX-512.
    fn runs_blocked<H: HookSink>(&self, hooks: &H) -> bool {
        const PLAIN: [Step; 5] = [Step::In, Step::Conv(Layer::Expand), Step::Conv(Layer::Depthwise), Step::Conv(Layer::Project), Step::Out];
        const RESIDUAL: [Step; 7] =
            [Step::In, Step::Save, Step::Conv(Layer::Expand), Step::Conv(Layer::Depthwise), Step::Conv(Layer::Project), Step::AddSaved, Step::Out];
        let i = self.plan.index;
        let unhooked = [Layer::Expand, Layer::Depthwise, Layer::Project].iter().all(|l| {
            let (pre, post) = l.sites();
            !hooks.wants(&HookName::block(i, pre)) && !hooks.wants(&HookName::block(i, post))
        });
        (self.steps == PLAIN || self.steps == RESIDUAL)
            && self.wide_channels().is_multiple_of(16)
            && matches!(self.depthwise.kind, ConvKind::Depthwise(_))
            && crate::layers::gemm_channels::available()
            && unhooked
    }

    /// The block with its wide tensors in blocks of 16 channels: the expansion writes them blocked,
    /// the depthwise runs on whole vectors of channels (no masks or lane permutes; measured, one
    /// thread, against the row kernel: 576 × 14² at stride 2 39 → 8 µs, 384 × 14² at stride 1 24 →
    /// 14 µs, 144 × 56² 88 → 60 µs) and the projection reads them blocked, then the shortcut is added.
    /// The same sums in the same order as the steps, so the same bits (a test checks it). `ws.cur`
    /// in, `ws.cur` out.
    fn forward_blocked(&self, ws: &mut Workspace, threads: usize) {
        use crate::layers::gemm_channels::Layout::{Blocked, Columns};
        use crate::layers::matmul::matmul_channels_in;
        let (Some(e), ConvKind::Depthwise(d)) = (&self.expand, &self.depthwise.kind) else { unreachable!("checked by runs_blocked") };
        let (p, x) = (&self.project, &ws.cur);
        let (h, w, cin, hidden) = (x.height(), x.width(), x.channels(), self.wide_channels());
        ws.wide.reshape(hidden, h, w);
        let fused = e.activation.fused(e.folded_bias());
        matmul_channels_in(
            ws.wide.as_mut_slice(),
            x.as_slice(),
            e.folded_weight().as_slice(),
            h * w,
            cin,
            hidden,
            threads,
            Some(&fused),
            e.packs(),
            (Columns, Blocked),
        );
        let dw = &self.depthwise;
        d.forward_blocked(ws.wide.as_slice(), h, w, dw.folded_weight().as_slice(), dw.folded_bias(), dw.activation, &mut ws.dw, threads);
        let (oh, ow) = (ws.dw.height(), ws.dw.width());
        let cout = p.out_channels();
        ws.next.reshape(cout, oh, ow);
        let fused = p.activation.fused(p.folded_bias());
        matmul_channels_in(
            ws.next.as_mut_slice(),
            ws.dw.as_slice(),
            p.folded_weight().as_slice(),
            oh * ow,
            hidden,
            cout,
            threads,
            Some(&fused),
            p.packs(),
            (Blocked, Columns),
        );
        if self.has_shortcut() {
            ws.next.as_mut_slice().iter_mut().zip(ws.cur.as_slice()).for_each(|(a, b)| *a += b);
        }
        std::mem::swap(&mut ws.cur, &mut ws.next);
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hooks::sink::NoHooks;
    use crate::model::{MobileNetV2, ModelConfig};

    /// Listens at one inner site (the depthwise output) of every block, doing nothing there: the
    /// blocks take the step-by-step path.
    struct DepthwiseListener;

    impl HookSink for DepthwiseListener {
        fn wants(&self, name: &HookName) -> bool {
            matches!(name, HookName::Block { point: BlockPoint::DepthwisePost, .. })
        }
        fn fire(&mut self, _: &HookName, _: usize, _: &mut FeatureMap) {}
    }

    /// The blocked path gives the step-by-step path's logits bit for bit, batch 1 on two threads and
    /// batch 3 (one thread per image), with and without shortcuts, at both strides, with a ReLU6
    /// bottleneck and TensorFlow padding; and it is taken exactly where it should be (never with the
    /// `expansion` shortcut placement, whose wide tensor is carried to the next block).
    #[test]
    fn blocked_blocks_equal_the_step_path_bit_for_bit() {
        use crate::layers::Padding;
        use crate::model::config::{BottleneckActivation, Shortcut};
        let base = ModelConfig { resolution: 96, ..ModelConfig::default() };
        let configs = [
            (base.clone(), 16),
            (ModelConfig { bottleneck: BottleneckActivation::Relu6, padding: Padding::Tf, ..base.clone() }, 16),
            (ModelConfig { shortcut: Shortcut::None, ..base.clone() }, 16),
            // `expansion` placement: every block carries its wide tensor, none runs blocked.
            (ModelConfig { shortcut: Shortcut::Expansion, ..base.clone() }, 0),
        ];
        for (config, blocked) in configs {
            let mut model = MobileNetV2::new(&config).unwrap();
            model.init_seeded(7);
            let taken = model.blocks.iter().filter(|b| b.runs_blocked(&NoHooks)).count();
            let expected = if crate::layers::gemm_channels::available() { blocked } else { 0 };
            assert_eq!(taken, expected, "{config:?}: blocks taking the blocked path");
            assert!(model.blocks.iter().all(|b| !b.runs_blocked(&DepthwiseListener)));
            for n in [1, 3] {
                let batch = crate::data::noise::random_batch(n, 96, 11).unwrap();
                let pool = rayon::ThreadPoolBuilder::new().num_threads(2).build().unwrap();
                let (plain, _) = pool.install(|| model.forward_sinks(&batch, 0, vec![NoHooks; n])).unwrap();
                let (stepped, _) = pool.install(|| model.forward_sinks(&batch, 0, (0..n).map(|_| DepthwiseListener).collect())).unwrap();
                let bits = |m: &nalgebra::DMatrix<f32>| m.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
                assert_eq!(bits(&plain), bits(&stepped), "{config:?}, batch {n}");
            }
        }
    }
}
