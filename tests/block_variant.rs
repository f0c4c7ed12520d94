//! A toy block variant added through the one description of the block (`model::block_steps`): a
//! shortcut around the depthwise layer only. Changing a block's steps is all it takes; forward,
//! backward, cost and the hook catalogue follow — each checked here against an independent reference.

mod common;

use infoloss::bench::random_batch;
use infoloss::hooks::{BlockPoint, HookName, NameFilter};
use infoloss::layers::Activation;
use infoloss::model::block_steps::{Layer, Step};
use infoloss::model::{BottleneckActivation, ModelConfig, Shortcut};
use infoloss::train::train_step;
use infoloss::{FeatureMap, Hooked, MobileNetV2};

/// The toy flow: the depthwise output plus its own input.
const AROUND_DEPTHWISE: [Step; 7] =
    [Step::In, Step::Conv(Layer::Expand), Step::Save, Step::Conv(Layer::Depthwise), Step::AddSaved, Step::Conv(Layer::Project), Step::Out];

fn net(shortcut: Shortcut) -> (MobileNetV2, Vec<usize>) {
    let cfg = ModelConfig {
        width: 0.35,
        resolution: 32,
        classes: 4,
        dropout: 0.0,
        bottleneck: BottleneckActivation::Linear,
        shortcut,
        stage_expansion: Some(vec![1.0, 2.0, 2.0, 2.0, 2.0, 2.0, 2.0]),
        strides: Some(vec![1, 1, 2, 2, 2, 1, 2, 1]),
        ..Default::default()
    };
    let mut m = MobileNetV2::seeded(&cfg, 3).unwrap();
    for (k, (_, _, u)) in m.conv_units_mut().into_iter().enumerate() {
        u.bn.beta = common::random_vec(u.out_channels(), 300 + k as u64).iter().map(|v| 0.2 * v).collect();
    }
    m.refold();
    // Every stride-1 block with an expansion layer gets the toy flow.
    let mut changed = Vec::new();
    for b in &mut m.blocks {
        if b.plan.stride == 1 && b.expand.is_some() {
            b.steps = AROUND_DEPTHWISE.to_vec();
            changed.push(b.plan.index);
        }
    }
    assert!(changed.len() >= 3, "the test needs toy blocks: {changed:?}");
    (m, changed)
}

/// conv → BN → activation of one layer, computed from the layer's own forward (eval mode).
fn layer(u: &infoloss::layers::ConvBn, x: &FeatureMap) -> FeatureMap {
    let mut out = FeatureMap::zeros(0, 0, 0);
    u.forward(x, &mut out, &mut Vec::new(), 1, true);
    out
}

#[test]
fn forward_runs_the_toy_flow() {
    let (m, changed) = net(Shortcut::None);
    let x = random_batch(2, 32, 5).unwrap();
    let names: Vec<NameFilter> =
        changed.iter().flat_map(|&i| [NameFilter::Exact(HookName::block(i, BlockPoint::In)), NameFilter::Exact(HookName::block(i, BlockPoint::Out))]).collect();
    let (_, cache) = m.run_with_cache(&x, NameFilter::Any(names)).unwrap();
    for &i in &changed {
        let b = m.blocks.iter().find(|b| b.plan.index == i).unwrap();
        for img in 0..2 {
            let input = cache.image(&HookName::block(i, BlockPoint::In), img).unwrap();
            // Independent reference: the three layers by hand, the sum around the depthwise.
            let e = layer(b.expand.as_ref().unwrap(), input);
            let mut d = layer(&b.depthwise, &e);
            d.as_mut_slice().iter_mut().zip(e.as_slice()).for_each(|(a, v)| *a += v);
            let want = layer(&b.project, &d);
            let got = cache.image(&HookName::block(i, BlockPoint::Out), img).unwrap();
            let err = got.as_slice().iter().zip(want.as_slice()).map(|(a, b)| (a - b).abs()).fold(0.0f32, f32::max);
            assert!(err < 1e-5, "block {i} image {img}: {err}");
        }
    }
    // And it is a different network from the standard flow.
    let (plain, _) = (MobileNetV2::seeded(m.config(), 3).unwrap(), ());
    assert_ne!(plain.forward(&x).unwrap(), m.forward(&x).unwrap());
}

#[test]
fn backward_of_the_toy_flow_matches_finite_differences() {
    let (mut m, _) = net(Shortcut::None);
    let (x, labels, opt) = common::gradient_check_setup(&mut m);
    let g = train_step(&mut m.clone(), &x, &labels, opt).grads;
    let loss = |m: &MobileNetV2| train_step(&mut m.clone(), &x, &labels, opt).loss;
    let eps = 1e-2f64;
    // Along each unit's own weight gradient the directional derivative equals the gradient's norm.
    for unit in 0..m.conv_units().len() {
        let dir = g.units[unit].weight.as_slice().to_vec();
        let norm = dir.iter().map(|a| (*a as f64).powi(2)).sum::<f64>().sqrt();
        if norm < 1e-6 {
            continue;
        }
        let shifted = |e: f64| {
            let mut p = m.clone();
            p.conv_units_mut()[unit].2.weight.as_mut_slice().iter_mut().zip(&dir).for_each(|(w, d)| *w += (e * *d as f64 / norm) as f32);
            loss(&p)
        };
        let fd = (shifted(eps) - shifted(-eps)) / (2.0 * eps);
        assert!((fd - norm).abs() < 3e-2 * norm + 1e-3, "unit {unit}: directional fd {fd} vs |g| {norm}");
    }
    // The toy shortcut matters to the gradient: the standard flow gives another one.
    let mut plain = MobileNetV2::seeded(m.config(), 3).unwrap();
    for ((_, _, a), (_, _, b)) in plain.conv_units_mut().into_iter().zip(m.conv_units()) {
        a.bn.beta = b.bn.beta.clone();
        a.activation = Activation::Identity;
    }
    assert_ne!(train_step(&mut plain, &x, &labels, opt).grads.units[3].weight, g.units[3].weight);
}

#[test]
fn cost_and_catalogue_follow_the_toy_flow() {
    let (m, changed) = net(Shortcut::None);
    let plain = MobileNetV2::seeded(m.config(), 3).unwrap();
    let (c, p) = (m.cost(32), plain.cost(32));
    // Additions are free: same parameters and MACs, one add row per toy block, placed after its
    // depthwise and shaped like the expansion output.
    assert_eq!((c.params, c.macs), (p.params, p.macs));
    assert_eq!(c.layers.len(), p.layers.len() + changed.len());
    for &i in &changed {
        let b = m.blocks.iter().find(|b| b.plan.index == i).unwrap();
        let at = c.layers.iter().position(|r| r.name == format!("features.{i}.add")).unwrap();
        assert_eq!(c.layers[at - 1].kind, "relu6", "after the depthwise's activation");
        assert_eq!(c.layers[at - 3].kind, "depthwise");
        assert_eq!(c.layers[at].input[0], b.wide_channels());
    }
    // The catalogue's shapes are what the forward pass produces at every site.
    let x = random_batch(1, 32, 2).unwrap();
    let sites = m.hook_sites();
    let (_, cache) = m.run_with_cache(&x, NameFilter::parse("blocks.*", &sites).unwrap()).unwrap();
    let listed: Vec<_> = sites.iter().filter(|s| s.name.to_string().starts_with("blocks.")).collect();
    assert_eq!(cache.names().len(), listed.len());
    for s in listed {
        assert_eq!(cache.image(&s.name, 0).unwrap().shape(), s.shape, "{}", s.name);
    }
    // Split execution fuses only the standard flow, and says so.
    let e = m.forward_split(&x.images()[0], "2".parse().unwrap()).unwrap_err().to_string();
    assert!(e.contains("split"), "{e}");
}
