//! Training engine: every layer's backward against central finite differences, a whole network's
//! gradient, BatchNorm train/eval semantics, the optimizers against hand-computed steps.

mod common;

use infoloss::bench::random_batch;
use infoloss::layers::{Activation, BatchNorm, ConvKind, Depthwise, Padding, Pointwise};
use infoloss::model::{BottleneckActivation, ModelConfig, Shortcut};
use infoloss::train::ops::*;
use infoloss::train::{train_step, Act, ActPool, StepOptions};
use infoloss::MobileNetV2;
use nalgebra::DMatrix;

fn act(n: usize, c: usize, h: usize, w: usize, seed: u64) -> Act {
    Act { n, c, h, w, data: common::random_vec(n * c * h * w, seed) }
}

/// Σ r ⊙ f(x): a scalar whose gradient with respect to f's output is r.
fn dotp(a: &[f32], r: &[f32]) -> f64 {
    a.iter().zip(r).map(|(x, y)| *x as f64 * *y as f64).sum()
}

#[test]
fn conv_backward_matches_finite_differences() {
    let kinds = [
        ConvKind::Pointwise(Pointwise { in_channels: 3, out_channels: 4 }),
        ConvKind::Depthwise(Depthwise { channels: 3, stride: 1, padding: Padding::Torch }),
        ConvKind::Depthwise(Depthwise { channels: 3, stride: 2, padding: Padding::Tf }),
        ConvKind::Depthwise(Depthwise { channels: 3, stride: 2, padding: Padding::Torch }),
    ];
    for kind in kinds {
        let x = act(2, 3, 5, 6, 1);
        let w = DMatrix::from_vec(kind.fan_in(), kind.out_channels(), common::random_vec(kind.fan_in() * kind.out_channels(), 2));
        let z = conv_forward(&mut ActPool::default(), &kind, &w, &x, 1);
        let r = common::random_vec(z.data.len(), 3);
        let dz = Act { data: r.clone(), ..z.clone() };
        let (dw, dx) = conv_backward(&mut ActPool::default(), &kind, &w, &x, &dz, true, 1);
        let dx = dx.unwrap();
        let eps = 1e-2f32;
        for k in (0..x.data.len()).step_by(7) {
            let (mut xp, mut xm) = (x.clone(), x.clone());
            xp.data[k] += eps;
            xm.data[k] -= eps;
            let fd = (dotp(&conv_forward(&mut ActPool::default(), &kind, &w, &xp, 1).data, &r)
                - dotp(&conv_forward(&mut ActPool::default(), &kind, &w, &xm, 1).data, &r))
                / (2.0 * eps as f64);
            assert!((fd - dx.data[k] as f64).abs() < 1e-3 * (1.0 + fd.abs()), "{kind:?} dx[{k}]: fd {fd} vs {}", dx.data[k]);
        }
        for k in 0..w.len() {
            let (mut wp, mut wm) = (w.clone(), w.clone());
            wp.as_mut_slice()[k] += eps;
            wm.as_mut_slice()[k] -= eps;
            let fd = (dotp(&conv_forward(&mut ActPool::default(), &kind, &wp, &x, 1).data, &r)
                - dotp(&conv_forward(&mut ActPool::default(), &kind, &wm, &x, 1).data, &r))
                / (2.0 * eps as f64);
            assert!((fd - dw.as_slice()[k] as f64).abs() < 1e-3 * (1.0 + fd.abs()), "{kind:?} dw[{k}]: fd {fd} vs {}", dw.as_slice()[k]);
        }
    }
}

#[test]
fn batch_norm_backward_matches_finite_differences_and_updates_running_stats() {
    let z = act(3, 2, 2, 2, 4);
    let mut bn = BatchNorm { gamma: vec![1.5, 0.7], beta: vec![0.1, -0.3], running_mean: vec![0.0; 2], running_var: vec![1.0; 2], eps: 1e-5 };
    let (a, st) = bn_train_forward(&mut ActPool::default(), &mut bn.clone(), &z);
    let r = common::random_vec(a.data.len(), 5);
    let (dz, dg, db) = bn_backward(&mut ActPool::default(), &bn, &z, &st, &Act { data: r.clone(), ..a.clone() });
    let f = |z: &Act, bn: &BatchNorm| dotp(&bn_train_forward(&mut ActPool::default(), &mut bn.clone(), z).0.data, &r);
    let eps = 1e-2f32;
    for k in 0..z.data.len() {
        let (mut p, mut m) = (z.clone(), z.clone());
        p.data[k] += eps;
        m.data[k] -= eps;
        let fd = (f(&p, &bn) - f(&m, &bn)) / (2.0 * eps as f64);
        assert!((fd - dz.data[k] as f64).abs() < 2e-3 * (1.0 + fd.abs()), "dz[{k}]: {fd} vs {}", dz.data[k]);
    }
    for c in 0..2 {
        let (mut p, mut m) = (bn.clone(), bn.clone());
        p.gamma[c] += eps;
        m.gamma[c] -= eps;
        let fd = (f(&z, &p) - f(&z, &m)) / (2.0 * eps as f64);
        assert!((fd - dg[c] as f64).abs() < 1e-3 * (1.0 + fd.abs()));
        let (mut p, mut m) = (bn.clone(), bn.clone());
        p.beta[c] += eps;
        m.beta[c] -= eps;
        let fd = (f(&z, &p) - f(&z, &m)) / (2.0 * eps as f64);
        assert!((fd - db[c] as f64).abs() < 1e-3 * (1.0 + fd.abs()));
    }
    // Running statistics: PyTorch's momentum 0.1 with the unbiased batch variance (hand-computed).
    let col: Vec<f64> = z.col(0).iter().map(|&v| v as f64).collect();
    let mean = col.iter().sum::<f64>() / 12.0;
    let unbiased = col.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / 11.0;
    bn_train_forward(&mut ActPool::default(), &mut bn, &z);
    assert!((bn.running_mean[0] as f64 - 0.1 * mean).abs() < 1e-6);
    assert!((bn.running_var[0] as f64 - (0.9 + 0.1 * unbiased)).abs() < 1e-5);
}

#[test]
fn softmax_cross_entropy_with_label_smoothing_by_hand() {
    let logits = DMatrix::from_row_slice(1, 3, &[1.0f32, 2.0, 0.5]);
    let (loss, grad, correct) = softmax_cross_entropy(&logits, &[1], 0.3);
    let z: f64 = [1.0f64, 2.0, 0.5].iter().map(|v| v.exp()).sum();
    let p: Vec<f64> = [1.0f64, 2.0, 0.5].iter().map(|v| v.exp() / z).collect();
    let q = [0.1, 0.8, 0.1];
    let want: f64 = -(0..3).map(|j| q[j] * p[j].ln()).sum::<f64>();
    assert!((loss - want).abs() < 1e-6 && correct == 1);
    for j in 0..3 {
        assert!((grad[(0, j)] as f64 - (p[j] - q[j])).abs() < 1e-6);
    }
}

fn small_net(bottleneck: BottleneckActivation, shortcut: Shortcut) -> MobileNetV2 {
    let cfg = ModelConfig {
        width: 0.35,
        resolution: 32,
        classes: 4,
        dropout: 0.0,
        bottleneck,
        shortcut,
        stage_expansion: Some(vec![1.0, 2.0, 2.0, 2.0, 2.0, 2.0, 2.0]),
        strides: Some(vec![1, 1, 2, 2, 2, 1, 2, 1]),
        ..Default::default()
    };
    let mut m = MobileNetV2::seeded(&cfg, 3).unwrap();
    for (k, (_, _, u)) in m.conv_units_mut().into_iter().enumerate() {
        u.bn.beta = common::random_vec(u.out_channels(), 300 + k as u64).iter().map(|v| 0.2 * v).collect();
    }
    m.classifier.weight = DMatrix::from_vec(m.classifier.weight.nrows(), 4, common::random_vec(m.classifier.weight.len(), 9));
    m.classifier.bias = vec![0.3, -0.2, 0.5, 0.1];
    m
}

/// Whole-network gradient check. ReLU kinks make finite differences of a deep BatchNorm network
/// meaningless (a step of 1e-3 crosses thousands of them), so the activations are set to identity:
/// the network stays a composition of every conv, BatchNorm (training mode), shortcut, pooling and
/// classifier backward, and is smooth. For each unit, the derivative of the loss along that unit's own
/// gradient direction must equal the gradient's norm (kinks themselves are checked in
/// `activation_and_pool_backward_by_hand`).
#[test]
fn whole_network_gradient_matches_finite_differences() {
    for shortcut in [Shortcut::Bottleneck, Shortcut::Expansion, Shortcut::None] {
        let mut m = small_net(BottleneckActivation::Linear, shortcut);
        let (x, labels, opt) = common::gradient_check_setup(&mut m);
        let g = train_step(&mut m.clone(), &x, &labels, opt).grads;
        let loss = |m: &MobileNetV2| train_step(&mut m.clone(), &x, &labels, opt).loss;
        // Large enough that f32 rounding in the forward pass is small against the change of the loss.
        let eps = 1e-2f64;
        let along = |perturb: &dyn Fn(&mut MobileNetV2, f64)| {
            let (mut p, mut q) = (m.clone(), m.clone());
            perturb(&mut p, eps);
            perturb(&mut q, -eps);
            (loss(&p) - loss(&q)) / (2.0 * eps)
        };
        let n_units = m.conv_units().len();
        for unit in 0..n_units {
            for part in 0..2 {
                let (dir, norm): (Vec<f32>, f64) = if part == 0 {
                    let v = g.units[unit].weight.as_slice().to_vec();
                    let n = v.iter().map(|a| (*a as f64).powi(2)).sum::<f64>().sqrt();
                    (v, n)
                } else {
                    let v = g.units[unit].gamma.clone();
                    let n = v.iter().map(|a| (*a as f64).powi(2)).sum::<f64>().sqrt();
                    (v, n)
                };
                if norm < 1e-6 {
                    continue;
                }
                let fd = along(&|m: &mut MobileNetV2, e: f64| {
                    let u = &mut m.conv_units_mut()[unit].2;
                    let target: &mut [f32] = if part == 0 { u.weight.as_mut_slice() } else { &mut u.bn.gamma[..] };
                    target.iter_mut().zip(&dir).for_each(|(w, d)| *w += (e * *d as f64 / norm) as f32);
                });
                // Absolute floor: the f32 loss of this ~50-layer training-mode network carries rounding of
                // ~1e-5 (it moves that much when only the kernels' summation order changes), which the
                // central difference divides by 2·eps = 0.02.
                assert!((fd - norm).abs() < 3e-2 * norm + 1e-3, "{shortcut:?} unit {unit} part {part}: directional fd {fd} vs |g| {norm}");
            }
        }
        let cw = g.classifier_weight.clone();
        let norm = cw.norm() as f64;
        let fd = along(&|m: &mut MobileNetV2, e: f64| {
            m.classifier.weight.iter_mut().zip(cw.iter()).for_each(|(w, d)| *w += (e * *d as f64 / norm) as f32);
        });
        assert!((fd - norm).abs() < 2e-2 * norm, "classifier: {fd} vs {norm}");
    }
}

#[test]
fn activation_and_pool_backward_by_hand() {
    let a = Act { n: 1, c: 1, h: 1, w: 4, data: vec![-1.0, 0.5, 6.0, 7.0] };
    let dy = Act { data: vec![1.0; 4], ..a.clone() };
    assert_eq!(act_backward(&mut ActPool::default(), Activation::Relu6, &a, &dy).data, vec![0.0, 1.0, 0.0, 0.0]);
    assert_eq!(act_backward(&mut ActPool::default(), Activation::Relu, &a, &dy).data, vec![0.0, 1.0, 1.0, 1.0]);
    let p = pool_forward(&a);
    assert_eq!(p.data, vec![12.5 / 4.0]);
    assert_eq!(pool_backward(&mut ActPool::default(), &a, &Act { data: vec![2.0], ..p }).data, vec![0.5; 4]);
}

#[test]
fn rmsprop_follows_tensorflow_semantics_by_hand() {
    use infoloss::train::optim::{Optimizer, OptimizerConfig, OptimizerKind, Schedule};
    let cfg = OptimizerConfig { weight_decay: 0.0, ..Default::default() }; // ρ 0.9, μ 0.9, ε 1.0
    let mut opt = Optimizer::new(cfg, &[1]);
    let mut w = [1.0f32];
    let (g1, g2, lr) = (0.5f64, -0.2f64, 0.045f64);
    opt.step(vec![&mut w[..]], &[&[g1 as f32][..]], &[false], lr);
    // ms starts at 1: ms1 = 0.9 + 0.1·0.25; mom1 = lr·g/√(ms1 + 1); w1 = 1 − mom1.
    let ms1 = 0.9 + 0.1 * g1 * g1;
    let mom1 = lr * g1 / (ms1 + 1.0).sqrt();
    assert!((w[0] as f64 - (1.0 - mom1)).abs() < 1e-7);
    opt.step(vec![&mut w[..]], &[&[g2 as f32][..]], &[false], lr);
    let ms2 = 0.9 * ms1 + 0.1 * g2 * g2;
    let mom2 = 0.9 * mom1 + lr * g2 / (ms2 + 1.0).sqrt();
    assert!((w[0] as f64 - (1.0 - mom1 - mom2)).abs() < 1e-6);
    // SGD with Nesterov momentum and L2 decay; AdamW's first step moves by lr·sign(g).
    let mut sgd = Optimizer::new(OptimizerConfig { kind: OptimizerKind::Sgd, weight_decay: 0.1, nesterov: true, ..Default::default() }, &[1]);
    let mut v = [2.0f32];
    sgd.step(vec![&mut v[..]], &[&[1.0f32][..]], &[true], 0.1);
    let g = 1.0 + 0.1 * 2.0;
    assert!((v[0] as f64 - (2.0 - 0.1 * (g + 0.9 * g))).abs() < 1e-6);
    let mut adam = Optimizer::new(OptimizerConfig::for_kind(OptimizerKind::Adamw), &[1]);
    let mut a = [1.0f32];
    adam.step(vec![&mut a[..]], &[&[0.3f32][..]], &[false], 0.01);
    assert!((a[0] - 0.99).abs() < 1e-5);
    // Schedules: the paper's ×0.98 per epoch, warm-up, cosine end.
    assert!((Schedule::Exponential { gamma: 0.98, warmup: 0 }.lr(0.045, 3, 0.0) - 0.045 * 0.98f64.powi(3)).abs() < 1e-12);
    assert!((Schedule::Cosine { epochs: 10, warmup: 2 }.lr(1.0, 0, 0.5) - 0.25).abs() < 1e-6);
    assert!(Schedule::Cosine { epochs: 10, warmup: 0 }.lr(1.0, 9, 0.999) < 1e-4);
}

#[test]
fn training_is_deterministic_and_resume_equals_an_uninterrupted_run() {
    use infoloss::train::trainer::{train, TrainConfig};
    let model_cfg = ModelConfig { width: 0.35, resolution: 32, classes: 10, ..Default::default() };
    let cfg = TrainConfig { epochs: 2, batch: 16, train_limit: Some(32), val_limit: Some(16), ..Default::default() };
    let dir = |n: &str| {
        let d = std::env::temp_dir().join(format!("infoloss-train-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        d
    };
    let run = |out: &std::path::Path, epochs: usize, resume: bool, m: &mut MobileNetV2| {
        train(m, &TrainConfig { epochs, ..cfg.clone() }, out, resume, &mut |_| {}).unwrap()
    };
    let (a, b) = (dir("a"), dir("b"));
    let mut ma = MobileNetV2::seeded(&model_cfg, 0).unwrap();
    let full = run(&a, 2, false, &mut ma);
    assert_eq!(full.len(), 2);
    // Same seed, fresh process state: bit-identical weights and metrics.
    let mut again = MobileNetV2::seeded(&model_cfg, 0).unwrap();
    run(&dir("c"), 2, false, &mut again);
    assert!(again == ma, "same seed gave different weights");
    // One epoch, then resume for the second: identical to the uninterrupted run.
    let mut mb = MobileNetV2::seeded(&model_cfg, 0).unwrap();
    run(&b, 1, false, &mut mb);
    let mut resumed = MobileNetV2::seeded(&model_cfg, 0).unwrap();
    let cfg_full = TrainConfig { epochs: 2, ..cfg.clone() };
    // The first leg: the 2-epoch run interrupted after one epoch, as a kill would leave it.
    let _ = std::fs::remove_dir_all(&b);
    let mut first = MobileNetV2::seeded(&model_cfg, 0).unwrap();
    infoloss::train::trainer::train_until(&mut first, &cfg_full, &b, false, Some(1), &mut |_| {}).unwrap();
    let metrics = train(&mut resumed, &cfg_full, &b, true, &mut |_| {}).unwrap();
    assert!(resumed == ma, "resumed run differs from the uninterrupted one");
    assert_eq!(std::fs::read(a.join("metrics.csv")).unwrap(), std::fs::read(b.join("metrics.csv")).unwrap());
    assert_eq!(metrics.len(), 2);
    let _ = mb;
}

#[test]
fn hooks_fire_in_training_mode_forward_passes() {
    use infoloss::hooks::interventions::KeepChannels;
    use infoloss::hooks::observers::SiteRecorder;
    use infoloss::hooks::{catalogue, HookName, HookSet, NameFilter};
    use infoloss::train::train_step_with_hooks;
    let m = small_net(BottleneckActivation::Linear, Shortcut::Expansion);
    let x = Act::from_batch(&random_batch(3, 32, 5).unwrap());
    let labels = [1usize, 0, 2];
    let opt = StepOptions { label_smoothing: 0.0, dropout_seed: 0, threads: 1 };
    let mut hooks = HookSet::new();
    let id = hooks.observe(NameFilter::All, SiteRecorder::default());
    train_step_with_hooks(&mut m.clone(), &x, &labels, opt, &mut hooks);
    let fired = &hooks.get(id).unwrap().fired;
    let sites: Vec<HookName> = catalogue(&m, 32).into_iter().map(|s| s.name).collect();
    let image0: Vec<HookName> = fired.iter().filter(|(i, _)| *i == 0).map(|(_, n)| *n).collect();
    assert_eq!(image0, sites);
    assert_eq!(fired.len(), 3 * sites.len());
    // Zeroing the pooled features leaves logits = classifier bias: loss = mean −log softmax(b)[label].
    let mut hooks = HookSet::new();
    hooks.intervene(NameFilter::Exact(HookName::Pool), KeepChannels { channels: vec![] });
    let loss = train_step_with_hooks(&mut m.clone(), &x, &labels, opt, &mut hooks).loss;
    let b: Vec<f64> = m.classifier.bias.iter().map(|&v| v as f64).collect();
    let lz = b.iter().map(|v| v.exp()).sum::<f64>().ln();
    let want = labels.iter().map(|&l| lz - b[l]).sum::<f64>() / 3.0;
    assert!((loss - want).abs() < 1e-5, "{loss} vs {want}");
}

#[test]
fn gradients_do_not_depend_on_the_thread_count() {
    let m = small_net(BottleneckActivation::Linear, Shortcut::Bottleneck);
    let x = Act::from_batch(&random_batch(8, 32, 21).unwrap());
    let labels = [0usize, 1, 2, 3, 0, 1, 2, 3];
    let run = |threads: usize| {
        let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
        pool.install(|| train_step(&mut m.clone(), &x, &labels, StepOptions { label_smoothing: 0.0, dropout_seed: 1, threads }))
    };
    let (a, b, c) = (run(1), run(2), run(3));
    assert!(a.grads == b.grads && a.grads == c.grads, "gradients changed with the thread count");
    assert_eq!(a.loss.to_bits(), c.loss.to_bits());
}

#[test]
fn a_non_finite_loss_stops_training_with_a_clear_message() {
    use infoloss::train::trainer::{train, TrainConfig};
    let mut m = MobileNetV2::seeded(&ModelConfig { width: 0.35, resolution: 32, classes: 10, ..Default::default() }, 0).unwrap();
    m.classifier.bias[0] = f32::NAN;
    let out = std::env::temp_dir().join(format!("infoloss-nan-{}", std::process::id()));
    let cfg = TrainConfig { epochs: 1, batch: 16, train_limit: Some(32), val_limit: Some(16), ..Default::default() };
    let e = train(&mut m, &cfg, &out, false, &mut |_| {}).unwrap_err().to_string();
    assert!(e.contains("loss became NaN at epoch 1 step 1") && e.contains("lower --lr"), "{e}");
}

/// The batched (stacked-plane) depthwise kernels against direct loops, for every padding, stride
/// and a range of plane sizes down to 1×1.
#[test]
fn stacked_depthwise_planes_match_direct_loops() {
    for (stride, padding) in [(1, Padding::Torch), (1, Padding::Tf), (2, Padding::Torch), (2, Padding::Tf)] {
        let d = Depthwise { channels: 1, stride, padding };
        for (h, w) in [(1, 1), (2, 2), (3, 5), (4, 4), (7, 6), (16, 16)] {
            let n = 5;
            let (oh, ow) = d.output_size(h, w);
            let x = common::random_vec(n * h * w, (h * 31 + w) as u64);
            let dy = common::random_vec(n * oh * ow, (h * 17 + w) as u64);
            let filt: [f32; 9] = common::random_vec(9, 5).try_into().unwrap();
            // Naive reference: direct loops over outputs and taps with explicit padding offsets.
            let (top, left) = (padding.window(h, 3, stride).before as isize, padding.window(w, 3, stride).before as isize);
            let (mut want, mut dx_want, mut df_want) = (vec![0.0f32; n * oh * ow], vec![0.0f32; n * h * w], [0.0f32; 9]);
            for i in 0..n {
                for oy in 0..oh {
                    for ox in 0..ow {
                        let g = dy[i * oh * ow + oy * ow + ox];
                        for k in 0..9 {
                            let (iy, ix) = ((oy * stride + k / 3) as isize - top, (ox * stride + k % 3) as isize - left);
                            if iy >= 0 && ix >= 0 && (iy as usize) < h && (ix as usize) < w {
                                let at = i * h * w + iy as usize * w + ix as usize;
                                want[i * oh * ow + oy * ow + ox] += filt[k] * x[at];
                                dx_want[at] += g * filt[k];
                                df_want[k] += g * x[at];
                            }
                        }
                    }
                }
            }
            let mut got = vec![0.0f32; n * oh * ow];
            d.forward_planes(n, &x, h, w, &filt, &mut got, &mut Vec::new());
            for (a, b) in got.iter().zip(&want) {
                assert!((a - b).abs() < 1e-5, "forward {stride} {padding:?} {h}×{w}: {a} vs {b}");
            }
            let (mut dx_got, mut df_got) = (vec![0.0f32; n * h * w], [0.0f32; 9]);
            d.backward_planes(n, &x, h, w, &filt, &dy, &mut dx_got, &mut df_got, &mut Vec::new());
            for (a, b) in dx_got.iter().zip(&dx_want).chain(df_got.iter().zip(&df_want)) {
                assert!((a - b).abs() < 1e-4 * (1.0 + b.abs()), "backward {stride} {padding:?} {h}×{w}: {a} vs {b}");
            }
        }
    }
}

#[test]
fn augmentation_modes_crop_and_flip_as_named_with_padding_scaled_to_the_image() {
    use infoloss::data::DataSpec;
    use infoloss::tensor::FeatureMap;
    use infoloss::train::augment::{crop_padding, crop_padding_small, Augment};
    use std::path::PathBuf;
    // A 1×16×16 image whose pixel (y, x) is 1 + 16y + x: any output pixel tells where it came from.
    let (h, w) = (16usize, 16usize);
    let img = FeatureMap::from_chw(1, h, w, (0..h * w).map(|k| 1.0 + k as f32).collect()).unwrap();
    assert_eq!((crop_padding(32), crop_padding(16), crop_padding(224), crop_padding(4)), (4, 2, 28, 1));
    assert_eq!((crop_padding_small(32), crop_padding_small(16), crop_padding_small(224), crop_padding_small(4)), (2, 1, 14, 1));
    // Naive reference: the output is a translate (dy, dx) of the input — or of its mirror — with zero fill.
    let shift_of = |out: &FeatureMap| -> (isize, isize, bool) {
        let src = img.channel(0);
        for flip in [false, true] {
            for dy in -2isize..=2 {
                for dx in -2isize..=2 {
                    let same = (0..h * w).all(|k| {
                        let (y, x) = ((k / w) as isize, (k % w) as isize);
                        let xx = if flip { w as isize - 1 - x } else { x };
                        let (sy, sx) = (y + dy, xx + dx);
                        let want = if sy < 0 || sx < 0 || sy >= h as isize || sx >= w as isize { 0.0 } else { src[sy as usize * w + sx as usize] };
                        out.channel(0)[k] == want
                    });
                    if same {
                        return (dy, dx, flip);
                    }
                }
            }
        }
        panic!("not a padded crop of the image");
    };
    let (mut flips, mut shifts, mut wide) = (0, std::collections::HashSet::new(), std::collections::HashSet::new());
    for seed in 0..200u64 {
        assert!(Augment::None.apply(img.clone(), seed) == img);
        let (dy, dx, flip) = shift_of(&Augment::Crop.apply(img.clone(), seed));
        assert!(!flip, "crop never flips");
        shifts.insert((dy, dx));
        let (dy, dx, flip) = shift_of(&Augment::CropFlip.apply(img.clone(), seed));
        wide.insert((dy, dx));
        flips += usize::from(flip);
    }
    // Every offset in ±padding turns up (crop: ±1 at 16 px, crop-flip: ±2); about half the crop-flips flip.
    assert_eq!((shifts.len(), wide.len()), (9, 25));
    assert!((70..130).contains(&flips), "{flips} of 200 flipped");
    // Defaults per data source; the booleans of older specs still read.
    assert_eq!(Augment::default_for(&DataSpec::Mnist(PathBuf::from("d"))), Augment::Crop);
    assert_eq!(Augment::default_for(&DataSpec::FashionMnist(PathBuf::from("d"))), Augment::CropFlip);
    assert_eq!(Augment::default_for(&DataSpec::Cifar(PathBuf::from("d"))), Augment::CropFlip);
    assert_eq!(serde_json::from_str::<Augment>("true").unwrap(), Augment::CropFlip);
    assert_eq!(serde_json::from_str::<Augment>("false").unwrap(), Augment::None);
    assert_eq!(serde_json::from_str::<Augment>("\"crop\"").unwrap(), Augment::Crop);
    assert!(serde_json::from_str::<Augment>("\"rotate\"").is_err());
    // The resolved mode is recorded in the training config (and so in every run's key).
    let s = infoloss::train::settings::TrainSettings::default();
    assert_eq!(s.resolve("mnist:/x", 0).unwrap().augment, Augment::Crop);
    assert_eq!(s.resolve("synthetic", 0).unwrap().augment, Augment::CropFlip);
}
