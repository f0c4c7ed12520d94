//! Memory accounting (paper §5.1, Table 3) and split execution (§5.1).

mod common;

use infoloss::analysis::memory::{account, schedule};
use infoloss::bench::random_batch;
use infoloss::model::split::Splits;
use infoloss::model::{Arch, BottleneckActivation, ModelConfig, Shortcut};
use infoloss::MobileNetV2;

#[test]
fn table3_max_tensor_bytes() {
    // 16-bit activations, fused schedules: MobileNetV2 400K = 112·112·16·2, MobileNetV1 1600K = 112·112·64·2.
    let v2 = MobileNetV2::new(&ModelConfig::default()).unwrap();
    let r = account(&v2, 224, true, 2);
    assert_eq!(r.max_tensor_bytes, 401_408);
    assert_eq!(r.max_tensor_shape, [16, 112, 112]);
    let v1 = MobileNetV2::new(&ModelConfig { arch: Arch::MobilenetV1, ..Default::default() }).unwrap();
    assert_eq!(account(&v1, 224, true, 2).max_tensor_bytes, 1_605_632);
    assert_eq!(account(&v1, 224, false, 2).max_tensor_bytes, 1_605_632);
    // Layer by layer, MobileNetV2 materialises block 2's 96×112×112 expansion.
    let lbl = account(&v2, 224, false, 2);
    assert_eq!(lbl.max_tensor_shape, [96, 112, 112]);
    // Eq. 2 for the fused schedule: the stem+block-1 op reads the image and writes 16×112×112.
    assert_eq!(r.peak_bytes, (3 * 224 * 224 + 16 * 112 * 112) * 2);
    // …layer by layer the block-2 depthwise op (96×112×112 in, 96×56×56 out) peaks.
    assert_eq!(lbl.peak_bytes, (96 * 112 * 112 + 96 * 56 * 56) * 2);
}

#[test]
fn accounting_of_a_tiny_hand_computable_network() {
    // 32×32, width 0.35 (stem 16, block 1 16→8), CIFAR strides so sizes stay readable: stem s1.
    let cfg = ModelConfig { width: 0.35, resolution: 32, classes: 10, strides: Some(vec![1, 1, 2, 2, 2, 1, 2, 1]), ..Default::default() };
    let m = MobileNetV2::new(&cfg).unwrap();
    let ops = schedule(&m, 32, false);
    // stem: 3×32×32 → 16×32×32; block 1 (t=1): depthwise 16×32×32 → 16×32×32, project → 8×32×32.
    assert_eq!(ops[0].inputs, vec![[3, 32, 32]]);
    assert_eq!(ops[0].outputs, vec![[16, 32, 32]]);
    assert_eq!((ops[1].inputs.clone(), ops[1].outputs.clone()), (vec![[16, 32, 32]], vec![[16, 32, 32]]));
    assert_eq!(ops[2].outputs, vec![[8, 32, 32]]);
    // block 2 (t=6, s=1 here): expand 8 → 48 at 32×32.
    assert_eq!((ops[3].inputs.clone(), ops[3].outputs.clone()), (vec![[8, 32, 32]], vec![[48, 32, 32]]));
    let r = account(&m, 32, false, 4);
    assert_eq!(r.max_tensor_bytes, 48 * 32 * 32 * 4);
    // fused: largest tensor is the stem image or block-1 output (8×32×32 < 3×32×32? no: 8·1024 > 3·1024).
    let f = account(&m, 32, true, 4);
    assert_eq!(f.max_tensor_bytes, 8 * 32 * 32 * 4);
    assert_eq!(f.peak_bytes, (3 * 32 * 32 + 8 * 32 * 32) * 4);
}

#[test]
fn split_execution_equals_unsplit_for_every_k_and_bottleneck() {
    let x = random_batch(1, 64, 5).unwrap();
    for bottleneck in [BottleneckActivation::Linear, BottleneckActivation::Relu6, BottleneckActivation::Relu] {
        for shortcut in [Shortcut::Bottleneck, Shortcut::None] {
            let cfg = ModelConfig { width: 0.5, resolution: 64, classes: 10, bottleneck, shortcut, ..Default::default() };
            let mut m = MobileNetV2::seeded(&cfg, 2).unwrap();
            for (k, (_, _, u)) in m.conv_units_mut().into_iter().enumerate() {
                u.bn.beta = common::random_vec(u.out_channels(), 70 + k as u64).iter().map(|v| 0.3 * v).collect();
            }
            m.refold();
            let want = m.forward(&x).unwrap();
            let scale = want.iter().fold(0.0f32, |a, v| a.max(v.abs())).max(1e-6);
            for splits in [Splits::Count(1), Splits::Count(2), Splits::Count(3), Splits::Count(4), Splits::Count(6), Splits::PerChannel] {
                let got = m.forward_split(&x.images()[0], splits).unwrap();
                let diff = got.iter().zip(want.row(0).iter()).map(|(a, b)| (a - b).abs()).fold(0.0f32, f32::max);
                assert!(diff <= 1e-5 * scale, "{bottleneck:?} {shortcut:?} {splits:?}: {diff} vs scale {scale}");
            }
        }
    }
    // MobileNetV1 splits its depthwise-separable layers the same way.
    let v1 = MobileNetV2::seeded(&ModelConfig { arch: Arch::MobilenetV1, width: 0.25, resolution: 64, classes: 10, ..Default::default() }, 1).unwrap();
    let want = v1.forward(&x).unwrap();
    let got = v1.forward_split(&x.images()[0], Splits::Count(3)).unwrap();
    let scale = want.iter().fold(0.0f32, |a, v| a.max(v.abs())).max(1e-6);
    assert!(got.iter().zip(want.row(0).iter()).all(|(a, b)| (a - b).abs() <= 1e-5 * scale));
}

#[test]
fn split_rejects_the_expansion_placement_and_bad_specs() {
    let m = MobileNetV2::seeded(&ModelConfig { width: 0.35, resolution: 64, classes: 10, shortcut: Shortcut::Expansion, ..Default::default() }, 0).unwrap();
    let e = m.forward_split(&random_batch(1, 64, 0).unwrap().images()[0], Splits::Count(2)).unwrap_err().to_string();
    assert!(e.contains("expansion"), "{e}");
    assert!("0".parse::<Splits>().is_err() && "x".parse::<Splits>().is_err());
    assert_eq!("C".parse::<Splits>().unwrap(), Splits::PerChannel);
    assert_eq!(Splits::Count(4).ranges(10), vec![(0, 2), (2, 5), (5, 7), (7, 10)]);
    assert_eq!(Splits::Count(20).ranges(3).len(), 3);
}
