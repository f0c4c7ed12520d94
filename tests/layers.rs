//! Every layer against a direct-loop reference on random inputs, both paddings, both strides.

mod common;

use common::{max_rel_diff, naive_conv, random_vec};
use infoloss::layers::activation::RELU6_CAP;
use infoloss::layers::pool::global_average_pool;
use infoloss::layers::{Activation, BatchNorm, Conv2d, ConvBn, ConvKind, Depthwise, Linear, Padding, Pointwise};
use infoloss::FeatureMap;
use nalgebra::DMatrix;

/// f32 kernels against f64 direct loops: accumulated rounding stays far below this.
const LAYER_RTOL: f32 = 1e-5;

fn fm(c: usize, h: usize, w: usize, seed: u64) -> FeatureMap {
    FeatureMap::from_chw(c, h, w, random_vec(c * h * w, seed)).unwrap()
}

#[test]
fn padding_windows_match_hand_computed_values() {
    // torch: pad 1 each side; the trailing pad is counted only where a window reaches it.
    assert_eq!(Padding::Torch.window(224, 3, 2).output, 112);
    assert_eq!(Padding::Torch.window(7, 3, 2).output, 4);
    assert_eq!(Padding::Torch.window(7, 3, 1).output, 7);
    // tf 'SAME': out = ceil(in/s); pad_total = max((out-1)s + k - in, 0), floor half before.
    let w = Padding::Tf.window(224, 3, 2); // (111·2 + 3 − 224) = 1 → 0 before, 1 after
    assert_eq!((w.before, w.after, w.output), (0, 1, 112));
    let w = Padding::Tf.window(7, 3, 2); // out 4, total 3·2+3−7 = 2 → 1/1
    assert_eq!((w.before, w.after, w.output), (1, 1, 4));
    let w = Padding::Tf.window(10, 3, 1); // out 10, total 2 → 1/1
    assert_eq!((w.before, w.after, w.output), (1, 1, 10));
}

#[test]
fn full_conv_matches_direct_loop() {
    for padding in [Padding::Torch, Padding::Tf] {
        for stride in [1, 2] {
            for (h, w) in [(9, 9), (10, 7), (16, 16)] {
                let conv = Conv2d { in_channels: 3, out_channels: 5, kernel: 3, stride, padding };
                let x = fm(3, h, w, 1);
                let weight = random_vec(5 * 27, 2);
                let wm = DMatrix::from_vec(27, 5, weight.clone());
                let mut out = FeatureMap::zeros(0, 0, 0);
                let mut scratch = Vec::new();
                conv.forward(&x, &wm, &mut out, &mut scratch, 1);
                let (wy, wx) = (padding.window(h, 3, stride), padding.window(w, 3, stride));
                let reference = naive_conv(x.as_slice(), (3, h, w), &weight, 5, 3, 1, stride, (wy.before, wx.before), (wy.output, wx.output));
                assert_eq!(out.shape(), [5, wy.output, wx.output]);
                assert!(max_rel_diff(out.as_slice(), &reference) < LAYER_RTOL, "{padding:?} s{stride} {h}x{w}");
            }
        }
    }
}

#[test]
fn depthwise_matches_direct_loop_with_bias_and_activation() {
    for padding in [Padding::Torch, Padding::Tf] {
        for stride in [1, 2] {
            // Rows of whole vectors, short rows computed as one long row (ow = 7, 9, 14, 28), tiny planes.
            for (h, w) in [(8, 8), (7, 9), (15, 4), (2, 2), (14, 14), (28, 28), (7, 7), (56, 56), (1, 5)] {
                let c = 6;
                let dw = Depthwise { channels: c, stride, padding };
                let x = fm(c, h, w, 3);
                let weight = random_vec(c * 9, 4);
                let bias = random_vec(c, 5);
                let mut out = FeatureMap::zeros(0, 0, 0);
                let mut scratch = Vec::new();
                dw.forward(&x, &DMatrix::from_vec(9, c, weight.clone()), &bias, Activation::Relu6, &mut out, &mut scratch, 1);
                // The channel-parallel path (batch of one) gives the same bits.
                let mut par = FeatureMap::zeros(0, 0, 0);
                dw.forward(&x, &DMatrix::from_vec(9, c, weight.clone()), &bias, Activation::Relu6, &mut par, &mut scratch, 2);
                assert_eq!(out, par);
                let (wy, wx) = (padding.window(h, 3, stride), padding.window(w, 3, stride));
                let mut reference = naive_conv(x.as_slice(), (c, h, w), &weight, c, 3, c, stride, (wy.before, wx.before), (wy.output, wx.output));
                let plane = wy.output * wx.output;
                for (i, v) in reference.iter_mut().enumerate() {
                    *v = (*v + bias[i / plane]).clamp(0.0, RELU6_CAP);
                }
                assert!(max_rel_diff(out.as_slice(), &reference) < LAYER_RTOL, "{padding:?} s{stride} {h}x{w}");
            }
        }
    }
}

#[test]
fn pointwise_matches_direct_loop() {
    let (cin, cout, h, w) = (13, 7, 5, 6);
    let x = fm(cin, h, w, 6);
    let weight = random_vec(cout * cin, 7);
    let mut out = FeatureMap::zeros(0, 0, 0);
    Pointwise { in_channels: cin, out_channels: cout }.forward(&x, &DMatrix::from_vec(cin, cout, weight.clone()), &mut out, 1);
    let reference = naive_conv(x.as_slice(), (cin, h, w), &weight, cout, 1, 1, 1, (0, 0), (h, w));
    assert!(max_rel_diff(out.as_slice(), &reference) < LAYER_RTOL);
}

#[test]
fn conv_bn_folding_equals_conv_then_batch_norm() {
    let (cin, cout, h, w) = (4, 6, 5, 5);
    let kind = ConvKind::Pointwise(Pointwise { in_channels: cin, out_channels: cout });
    let mut unit = ConvBn::new(kind, Activation::Relu6, 1e-3);
    unit.weight = DMatrix::from_vec(cin, cout, random_vec(cin * cout, 8));
    unit.bn = BatchNorm {
        gamma: random_vec(cout, 9).iter().map(|v| v + 1.5).collect(),
        beta: random_vec(cout, 10),
        running_mean: random_vec(cout, 11),
        running_var: random_vec(cout, 12).iter().map(|v| v + 1.2).collect(),
        eps: 1e-3,
    };
    unit.refold();
    let x = fm(cin, h, w, 13);
    let mut out = FeatureMap::zeros(0, 0, 0);
    unit.forward(&x, &mut out, &mut Vec::new(), 1, true);
    // Reference: conv, then BN from its definition, then ReLU6.
    let mut reference = naive_conv(x.as_slice(), (cin, h, w), unit.weight.as_slice(), cout, 1, 1, 1, (0, 0), (h, w));
    for c in 0..cout {
        let plane = &mut reference[c * h * w..(c + 1) * h * w];
        for v in plane.iter_mut() {
            let bn = &unit.bn;
            let y = bn.gamma[c] as f64 * (*v as f64 - bn.running_mean[c] as f64) / (bn.running_var[c] as f64 + 1e-3).sqrt() + bn.beta[c] as f64;
            *v = (y as f32).clamp(0.0, 6.0);
        }
    }
    assert!(max_rel_diff(out.as_slice(), &reference) < LAYER_RTOL);
    // Without the activation the kernel returns the pre-activation (hook sites `.pre`).
    unit.forward(&x, &mut out, &mut Vec::new(), 1, false);
    assert!(out.as_slice().iter().any(|v| *v < 0.0));
}

#[test]
fn activations_match_definitions() {
    let xs = [-3.0f32, -0.0, 0.5, 5.9, 6.0, 7.5];
    let relu6: Vec<f32> = xs.iter().map(|&x| Activation::Relu6.apply(x)).collect();
    assert_eq!(relu6, vec![0.0, 0.0, 0.5, 5.9, 6.0, 6.0]);
    let relu: Vec<f32> = xs.iter().map(|&x| Activation::Relu.apply(x)).collect();
    assert_eq!(relu, vec![0.0, 0.0, 0.5, 5.9, 6.0, 7.5]);
    assert_eq!(Activation::Identity.apply(-3.0), -3.0);
    let mut s = xs.to_vec();
    Activation::Relu6.bias_apply_slice(&mut s, 1.0);
    assert_eq!(s, vec![0.0, 1.0, 1.5, 6.0, 6.0, 6.0]);
}

#[test]
fn pool_and_linear_match_direct_sums() {
    let x = fm(3, 4, 5, 14);
    let mut pooled = FeatureMap::zeros(0, 0, 0);
    global_average_pool(&x, &mut pooled);
    for c in 0..3 {
        let mean: f64 = x.channel(c).iter().map(|&v| v as f64).sum::<f64>() / 20.0;
        assert!((pooled.as_slice()[c] as f64 - mean).abs() < 1e-6);
    }
    // PyTorch weight [out=2, in=3] row-major is the in×out column-major matrix.
    let lin = Linear { weight: DMatrix::from_vec(3, 2, vec![1.0, 2.0, 3.0, -1.0, 0.5, 0.0]), bias: vec![0.25, -0.5] };
    let v = FeatureMap::from_chw(3, 1, 1, vec![1.0, 1.0, 2.0]).unwrap();
    let mut out = FeatureMap::zeros(0, 0, 0);
    lin.forward(&v, &mut out);
    assert_eq!(out.as_slice(), &[1.0 + 2.0 + 6.0 + 0.25, -1.0 + 0.5 - 0.5]);
}
