//! Architecture, cost accounting, config validation, initialisation and variants.

mod common;

use infoloss::bench::random_batch;
use infoloss::model::{make_divisible, BottleneckActivation, ModelConfig, Shortcut, MOBILENET_V2_TABLE2};
use infoloss::{Error, MobileNetV2};

#[test]
fn make_divisible_table() {
    // (value, expected) hand-computed from the rule: round to the nearest multiple of 8, at least 8,
    // bumped up by 8 if that lost more than 10%.
    let table = [
        (32.0, 32),
        (8.0, 8),
        (3.0, 8),
        (11.2, 16), // 32·0.35: 8 would lose 29% → 16 (torchvision's mobilenet_v2(0.35) stem)
        (12.0, 16),
        (19.0, 24), // 16 would lose 16% → 24
        (20.0, 24),
        (24.0, 24),
        (33.6, 32), // 96·0.35: 32 loses 4.8% → kept
        (56.0, 56),
        (1792.0, 1792),
        (1280.0, 1280),
    ];
    for (v, want) in table {
        assert_eq!(make_divisible(v, 8), want, "make_divisible({v}, 8)");
    }
}

#[test]
fn torchvision_totals_are_exact() {
    let m = MobileNetV2::new(&ModelConfig::default()).unwrap();
    let c = m.cost(224);
    assert_eq!(c.params, 3_504_872);
    assert_eq!(c.macs, 300_774_272);
    assert_eq!(c.shortcuts, 10);
    assert_eq!(m.blocks.len(), 17);
    assert_eq!(m.head_index(), 18);
}

/// Parameter and MAC counts from Table 2 by a separate formula (no model code involved).
fn independent_counts(width: f64, res: usize, classes: usize) -> (u64, u64) {
    let md = |v: f64| make_divisible(v, 8) as u64;
    let mut params = 0u64;
    let mut macs = 0u64;
    let mut c_in = md(32.0 * width);
    let mut hw = (res as u64).div_ceil(2); // stem stride 2, torch padding: ceil
    params += c_in * 27 + 2 * c_in;
    macs += c_in * 27 * hw * hw;
    for row in MOBILENET_V2_TABLE2 {
        let c_out = md(row.c as f64 * width);
        for i in 0..row.n {
            let s = if i == 0 { row.s as u64 } else { 1 };
            let hidden = (c_in as f64 * row.t).round() as u64;
            if row.t != 1.0 {
                params += c_in * hidden + 2 * hidden;
                macs += c_in * hidden * hw * hw;
            }
            let out_hw = hw.div_ceil(s);
            params += 9 * hidden + 2 * hidden;
            macs += 9 * hidden * out_hw * out_hw;
            params += hidden * c_out + 2 * c_out;
            macs += hidden * c_out * out_hw * out_hw;
            hw = out_hw;
            c_in = c_out;
        }
    }
    let last = md(1280.0 * width.max(1.0));
    params += c_in * last + 2 * last + last * classes as u64 + classes as u64;
    macs += c_in * last * hw * hw + last * classes as u64;
    (params, macs)
}

#[test]
fn per_width_counts_match_independent_formula() {
    for width in [0.35, 0.5, 0.75, 1.0, 1.3, 1.4] {
        for res in [96, 160, 224] {
            let cfg = ModelConfig { width, resolution: res, ..Default::default() };
            let c = MobileNetV2::new(&cfg).unwrap().cost(res);
            assert_eq!((c.params, c.macs), independent_counts(width, res, 1000), "width {width} res {res}");
        }
    }
    // Published torchvision figure for width 0.5 (torch.hub model card: 1.97M).
    let half = MobileNetV2::new(&ModelConfig { width: 0.5, ..Default::default() }).unwrap().cost(224);
    assert_eq!(half.params, 1_968_680);
}

#[test]
fn shortcut_counts_per_placement() {
    let count = |shortcut| MobileNetV2::new(&ModelConfig { shortcut, ..Default::default() }).unwrap().cost(224).shortcuts;
    assert_eq!(count(Shortcut::Bottleneck), 10);
    assert_eq!(count(Shortcut::Expansion), 7);
    assert_eq!(count(Shortcut::None), 0);
    // Where the expansion placement fires (hand-derived from Table 2): same hidden width, stride 1.
    let m = MobileNetV2::new(&ModelConfig { shortcut: Shortcut::Expansion, ..Default::default() }).unwrap();
    let wide: Vec<usize> = m.blocks.iter().filter(|b| b.has_wide_shortcut()).map(|b| b.plan.index).collect();
    assert_eq!(wide, vec![6, 9, 10, 11, 13, 16, 17]);
}

#[test]
fn config_validation_rejects_each_bad_value() {
    let bad = |c: ModelConfig, key: &str| {
        let e = MobileNetV2::new(&c).unwrap_err();
        assert!(matches!(&e, Error::Config { key: k, .. } if k == key), "{key}: {e}");
        assert!(!e.to_string().contains('\n'));
    };
    let d = ModelConfig::default;
    bad(ModelConfig { width: 0.0, ..d() }, "width");
    bad(ModelConfig { resolution: 16, ..d() }, "resolution");
    bad(ModelConfig { classes: 0, ..d() }, "classes");
    bad(ModelConfig { expansion: Some(0.5), ..d() }, "expansion");
    bad(ModelConfig { expansion: Some(2.0), stage_expansion: Some(vec![1.0; 7]), ..d() }, "expansion");
    bad(ModelConfig { stage_expansion: Some(vec![6.0; 6]), ..d() }, "stage-expansion");
    bad(ModelConfig { strides: Some(vec![2, 1, 2, 2, 2, 1, 2]), ..d() }, "strides");
    bad(ModelConfig { strides: Some(vec![3, 1, 2, 2, 2, 1, 2, 1]), ..d() }, "strides");
    bad(ModelConfig { bn_eps: -1.0, ..d() }, "bn-eps");
    bad(ModelConfig { dropout: 1.0, ..d() }, "dropout");
}

#[test]
fn toml_config_uses_flag_names_and_rejects_unknown_keys() {
    let c: ModelConfig = toml::from_str("width = 0.5\nstage-expansion = [1, 2, 2, 2, 2, 2, 2]\nbn-eps = 0.001\nshortcut = \"none\"").unwrap();
    assert_eq!(c.width, 0.5);
    assert_eq!(c.shortcut, Shortcut::None);
    assert_eq!(c.stage_expansion.as_deref(), Some(&[1.0, 2.0, 2.0, 2.0, 2.0, 2.0, 2.0][..]));
    let e = toml::from_str::<ModelConfig>("widht = 0.5").unwrap_err().to_string();
    assert!(e.contains("widht"), "{e}");
}

#[test]
fn fractional_and_stage_expansion_set_hidden_widths() {
    let m = MobileNetV2::new(&ModelConfig { expansion: Some(1.5), ..Default::default() }).unwrap();
    // Block 2: in 16 → hidden round(24) = 24; block 1 (in 32) gets 48.
    assert_eq!(m.blocks[0].plan.hidden_channels, 48);
    assert_eq!(m.blocks[1].plan.hidden_channels, 24);
    let m = MobileNetV2::new(&ModelConfig { stage_expansion: Some(vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0]), ..Default::default() }).unwrap();
    assert!(m.blocks[0].expand.is_none());
    assert_eq!(m.blocks[16].plan.hidden_channels, 160 * 7);
}

#[test]
fn stride_overrides_keep_resolution() {
    let cfg = ModelConfig { resolution: 32, classes: 10, strides: Some(vec![1, 1, 1, 2, 2, 1, 2, 1]), ..Default::default() };
    let m = MobileNetV2::new(&cfg).unwrap();
    let c = m.cost(32);
    let head = c.layers.iter().find(|l| l.name == "features.18.0").unwrap();
    assert_eq!(head.output, [1280, 4, 4]); // 32 / (2·2·2)
}

#[test]
fn seeded_init_is_reproducible_and_kaiming_scaled() {
    let cfg = ModelConfig { width: 0.5, ..Default::default() };
    let a = MobileNetV2::seeded(&cfg, 7).unwrap();
    let b = MobileNetV2::seeded(&cfg, 7).unwrap();
    let c = MobileNetV2::seeded(&cfg, 8).unwrap();
    assert_eq!(a, b);
    assert_ne!(a.head.as_ref().unwrap().weight, c.head.as_ref().unwrap().weight);
    // Kaiming normal, fan_out: head conv 1280×160×1×1 has std √(2/1280).
    let w = a.head.as_ref().unwrap().weight.as_slice();
    let n = w.len() as f64;
    let mean = w.iter().map(|&v| v as f64).sum::<f64>() / n;
    let std = (w.iter().map(|&v| (v as f64 - mean).powi(2)).sum::<f64>() / n).sqrt();
    assert!((std / (2.0f64 / 1280.0).sqrt() - 1.0).abs() < 0.02, "std {std}");
    let cls = a.classifier.weight.as_slice();
    let cstd = (cls.iter().map(|&v| (v as f64).powi(2)).sum::<f64>() / cls.len() as f64).sqrt();
    assert!((cstd / 0.01 - 1.0).abs() < 0.02);
}

#[test]
fn variant_matrix_builds_and_runs_finite() {
    let x = random_batch(2, 64, 3).unwrap();
    for bottleneck in [BottleneckActivation::Linear, BottleneckActivation::Relu6, BottleneckActivation::Relu] {
        for shortcut in [Shortcut::Bottleneck, Shortcut::Expansion, Shortcut::None] {
            for t in [2.0, 6.0] {
                let cfg = ModelConfig { width: 0.35, resolution: 64, classes: 10, bottleneck, shortcut, expansion: Some(t), ..Default::default() };
                let m = MobileNetV2::seeded(&cfg, 1).unwrap();
                let y = m.forward(&x).unwrap();
                assert_eq!(y.shape(), (2, 10));
                assert!(y.iter().all(|v| v.is_finite()), "{bottleneck:?} {shortcut:?} t={t}");
            }
        }
    }
}

#[test]
fn batch_and_thread_count_do_not_change_logits() {
    let cfg = ModelConfig { width: 0.5, resolution: 64, classes: 10, ..Default::default() };
    let m = MobileNetV2::seeded(&cfg, 2).unwrap();
    let x = random_batch(5, 64, 4).unwrap();
    let pool = |n| rayon::ThreadPoolBuilder::new().num_threads(n).build().unwrap();
    let y1 = pool(1).install(|| m.forward(&x).unwrap());
    let y2 = pool(2).install(|| m.forward(&x).unwrap());
    let y7 = pool(7).install(|| m.forward(&x).unwrap());
    assert_eq!(y1, y2);
    assert_eq!(y1, y7);
    // One image alone gives its row of the batch.
    let one = infoloss::Batch::new(vec![x.images()[3].clone()]).unwrap();
    let y = pool(1).install(|| m.forward(&one).unwrap());
    assert_eq!(y.row(0), y1.row(3));
}

/// Batch 1 on several threads splits every layer over them (row bands of the 1×1 and stem GEMMs,
/// channel ranges of the depthwise); one thread is the reference, and the logits must have the same
/// bits — on the full 224×224 network, with TF padding on an odd size (odd left padding in the
/// stride-2 even/odd split), a ReLU6 bottleneck on other strides, and the `expansion` shortcut.
#[test]
fn batch_one_split_over_threads_matches_one_thread() {
    let pool = |n| rayon::ThreadPoolBuilder::new().num_threads(n).build().unwrap();
    let configs = [
        ModelConfig { classes: 17, ..Default::default() },
        ModelConfig { width: 0.35, resolution: 97, classes: 5, padding: infoloss::layers::Padding::Tf, ..Default::default() },
        ModelConfig {
            width: 0.5,
            resolution: 40,
            classes: 5,
            bottleneck: BottleneckActivation::Relu6,
            strides: Some(vec![1, 1, 2, 1, 2, 1, 1, 1]),
            ..Default::default()
        },
        ModelConfig { width: 0.5, resolution: 64, classes: 5, shortcut: Shortcut::Expansion, ..Default::default() },
    ];
    for (k, cfg) in configs.iter().enumerate() {
        let m = MobileNetV2::seeded(cfg, 10 + k as u64).unwrap();
        let x = random_batch(1, cfg.resolution, 20 + k as u64).unwrap();
        let whole = pool(1).install(|| m.forward(&x).unwrap());
        for threads in [2, 3, 4] {
            let banded = pool(threads).install(|| m.forward(&x).unwrap());
            assert_eq!(banded, whole, "config {k}, {threads} threads");
        }
    }
}

#[test]
fn wrong_input_shape_is_an_error() {
    let m = MobileNetV2::new(&ModelConfig { width: 0.35, classes: 10, ..Default::default() }).unwrap();
    let x = infoloss::Batch::from_nchw([1, 1, 32, 32], &vec![0.0; 1024]).unwrap();
    let e = m.forward(&x).unwrap_err().to_string();
    assert!(e.contains("3 channels"), "{e}");
}

#[test]
fn mobilenet_v1_matches_its_paper() {
    // Howard et al. 2017, Table 8: 1.0 MobileNet-224 has 569M mult-adds and 4.2M parameters.
    let cfg = ModelConfig { arch: infoloss::model::Arch::MobilenetV1, ..Default::default() };
    let m = MobileNetV2::new(&cfg).unwrap();
    let c = m.cost(224);
    assert_eq!(c.macs / 1_000_000, 568, "{} MACs", c.macs); // 568.7M, the paper's 569M
    assert!((4_200_000..4_250_000).contains(&c.params), "{} params", c.params);
    assert_eq!(c.shortcuts, 0);
    assert_eq!(m.blocks.len(), 13);
    assert!(m.head.is_none());
    // Hand count of the parameters: conv weights + BN γ, β + classifier.
    let mut params = 3 * 9 * 32 + 2 * 32;
    let mut cin = 32;
    for (c, _) in infoloss::model::block_setting::MOBILENET_V1_TABLE1 {
        params += 9 * cin + 2 * cin + cin * c + 2 * c;
        cin = c;
    }
    params += 1024 * 1000 + 1000;
    assert_eq!(c.params, params as u64);
    // Every pointwise layer has the activation and runs finite at width 0.25.
    let small =
        MobileNetV2::seeded(&ModelConfig { arch: infoloss::model::Arch::MobilenetV1, width: 0.25, resolution: 64, classes: 5, ..Default::default() }, 0)
            .unwrap();
    let y = small.forward(&random_batch(2, 64, 0).unwrap()).unwrap();
    assert!(y.iter().all(|v| v.is_finite()));
    let sites = infoloss::hooks::catalogue(&small, 64);
    assert_eq!(sites.iter().filter(|s| s.activated).count(), 1 + 13 * 2);
    // V2-only flags are rejected for V1.
    let e = MobileNetV2::new(&ModelConfig { arch: infoloss::model::Arch::MobilenetV1, expansion: Some(2.0), ..Default::default() }).unwrap_err();
    assert!(e.to_string().contains("mobilenet_v1"), "{e}");
}
