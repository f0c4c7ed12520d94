//! SSD / SSDLite: shapes, anchors, head cost against a hand count, weights round trip, hooks.

use infoloss::bench::random_batch;
use infoloss::hooks::observers::SiteRecorder;
use infoloss::hooks::{HookName, HookSet, NameFilter, SsdPart, SsdPoint};
use infoloss::model::ssd::Detector;
use infoloss::model::{Arch, ModelConfig};
use infoloss::Hooked;

fn cfg(arch: Arch, res: usize, classes: usize) -> ModelConfig {
    ModelConfig { arch, resolution: res, classes, ..Default::default() }
}

#[test]
fn ssdlite_maps_and_anchors_at_320() {
    let d = Detector::new(&cfg(Arch::SsdliteMobilenetV2, 320, 80)).unwrap();
    assert_eq!(d.map_sizes(320), vec![(20, 20), (10, 10), (5, 5), (3, 3), (2, 2), (1, 1)]);
    assert_eq!(d.anchors, vec![3, 6, 6, 6, 6, 6]);
    let boxes = d.anchor_boxes(320);
    assert_eq!(boxes.len(), 20 * 20 * 3 + (100 + 25 + 9 + 4 + 1) * 6); // 2034
                                                                       // First anchor: cell (0, 0) of the 20×20 map, scale 0.1, ratio 1.
    assert_eq!(boxes[0], [0.025, 0.025, 0.1, 0.1]);
    // Last map (1×1): centred, and its interpolated scale √(0.95·1.0).
    let last = boxes[boxes.len() - 1];
    assert!((last[0] - 0.5).abs() < 1e-6 && (last[2] - 0.95f32.sqrt()).abs() < 1e-5, "{last:?}");
    // Feature map channels: 576 (blocks.14.expand.post) and 1280 (head.post), then 512, 256, 256, 128.
    let ins: Vec<usize> = d.class_heads.iter().map(|p| p.conv.kind.in_channels()).collect();
    assert_eq!(ins, vec![576, 1280, 512, 256, 256, 128]);
}

/// SSDLite head parameters and MACs by hand (C = classes + 1 logits per anchor).
fn ssdlite_head_by_hand(c: u64, maps: &[(u64, u64, u64)], first_in: u64) -> (u64, u64) {
    // maps: (channels, h·w, anchors); extras from `first_in` (the 1280 map) with depths 512,256,256,128.
    let (mut p, mut m) = (0u64, 0u64);
    let mut cin = first_in;
    let sizes = [maps[2].1, maps[3].1, maps[4].1, maps[5].1];
    let prev_hw = [maps[1].1, maps[2].1, maps[3].1, maps[4].1];
    for (k, d) in [512u64, 256, 256, 128].into_iter().enumerate() {
        let half = d / 2;
        p += cin * half + 2 * half + 9 * half + 2 * half + half * d + 2 * d;
        m += cin * half * prev_hw[k] + 9 * half * sizes[k] + half * d * sizes[k];
        cin = d;
    }
    for &(ch, hw, a) in maps {
        for out in [a * c, a * 4] {
            p += 9 * ch + 2 * ch + ch * out + out;
            m += 9 * ch * hw + ch * out * hw;
        }
    }
    (p, m)
}

#[test]
fn head_costs_match_a_hand_count() {
    let d = Detector::new(&cfg(Arch::SsdliteMobilenetV2, 320, 80)).unwrap();
    let maps = [(576, 400, 3), (1280, 100, 6), (512, 25, 6), (256, 9, 6), (256, 4, 6), (128, 1, 6)];
    assert_eq!(d.head_cost(320), ssdlite_head_by_hand(81, &maps, 1280));
    // Regular SSD head: 1×1 reduce + 3×3 full conv extras, 3×3 predictors with bias.
    let s = Detector::new(&cfg(Arch::SsdMobilenetV2, 320, 80)).unwrap();
    let (mut p, mut m) = (0u64, 0u64);
    let mut cin = 1280u64;
    let hw = [100u64, 25, 9, 4, 1];
    for (k, dd) in [512u64, 256, 256, 128].into_iter().enumerate() {
        let half = dd / 2;
        p += cin * half + 2 * half + 9 * half * dd + 2 * dd;
        m += cin * half * hw[k] + 9 * half * dd * hw[k + 1];
        cin = dd;
    }
    for (ch, hwk, a) in maps {
        for out in [a * 81, a * 4] {
            p += 9 * ch * out + out;
            m += 9 * ch * out * hwk;
        }
    }
    assert_eq!(s.head_cost(320), (p, m));
    // The paper's Table 5 (SSDLite 2.1M vs SSD 14.8M parameters) to its rounding.
    let (lite_p, _) = d.head_cost(320);
    assert_eq!((lite_p as f64 / 1e5).round() as u64, 21);
    assert_eq!((p as f64 / 1e5).round() as u64, 148);
}

#[test]
fn detector_outputs_per_anchor_and_hooks_fire_through_the_head() {
    let c = ModelConfig { width: 0.35, ..cfg(Arch::SsdliteMobilenetV2, 160, 5) };
    let d = Detector::seeded(&c, 0).unwrap();
    let x = random_batch(2, 160, 1).unwrap();
    let mut hooks = HookSet::new();
    let id = hooks.observe(NameFilter::All, SiteRecorder::default());
    let out = d.run_with_hooks_at(&x, 0, &mut hooks).unwrap();
    let anchors = d.anchor_boxes(160).len();
    assert_eq!(out.class_logits.len(), 2);
    assert_eq!(out.class_logits[0].shape(), (anchors, 6));
    assert_eq!(out.box_deltas[1].shape(), (anchors, 4));
    assert!(out.class_logits[0].iter().all(|v| v.is_finite()));
    assert_ne!(out.class_logits[0], out.class_logits[1]);
    let fired = &hooks.get(id).unwrap().fired;
    let sites = d.sites(160);
    assert_eq!(fired.len(), 2 * sites.len());
    let order: Vec<HookName> = fired.iter().filter(|(i, _)| *i == 0).map(|(_, n)| *n).collect();
    assert_eq!(order, sites.iter().map(|s| s.name).collect::<Vec<_>>());
    assert!(sites.iter().any(|s| s.name == HookName::Ssd { part: SsdPart::Extra, index: 3, point: SsdPoint::ExpandPost }));
    assert_eq!("ssd.class.0.spatial.post".parse::<HookName>().unwrap(), HookName::Ssd { part: SsdPart::Class, index: 0, point: SsdPoint::SpatialPost });
    // The class output hook sees anchors·(C+1) channels at the first map's resolution.
    let s = sites.iter().find(|s| s.name.to_string() == "ssd.class.0.out").unwrap();
    assert_eq!(s.shape, [3 * 6, 10, 10]);
    // Zeroing the box predictor output zeroes the deltas of that map.
    let mut hooks = HookSet::new();
    hooks.intervene(NameFilter::Exact("ssd.box.0.out".parse().unwrap()), infoloss::hooks::interventions::ZeroChannels { channels: (0..12).collect() });
    let z = d.run_with_hooks_at(&x, 0, &mut hooks).unwrap();
    assert!(z.box_deltas[0].rows(0, 300).iter().all(|&v| v == 0.0));
    assert_eq!(z.class_logits, out.class_logits);
}

#[test]
fn detector_weights_round_trip() {
    let c = ModelConfig { width: 0.35, ..cfg(Arch::SsdliteMobilenetV1, 160, 3) };
    let a = Detector::seeded(&c, 3).unwrap();
    let bytes = a.to_safetensors_bytes().unwrap();
    let file = infoloss::model::WeightsFile::from_bytes(&bytes, std::path::Path::new("d.safetensors")).unwrap();
    assert_eq!(file.config.as_ref(), Some(&c));
    assert!(file.tensors.contains_key("backbone.features.0.0.weight"));
    assert!(file.tensors.contains_key("extras.0.1.0.weight"));
    assert!(file.tensors.contains_key("head.class.5.1.bias"));
    assert!(!file.tensors.keys().any(|k| k.starts_with("backbone.classifier")));
    let mut b = Detector::new(&c).unwrap();
    b.load_weights(&file, std::path::Path::new("d.safetensors")).unwrap();
    assert!(a == b, "round trip changed the detector");
    let mut broken = file.clone();
    broken.tensors.remove("head.box.2.1.weight");
    let e = Detector::new(&c).unwrap().load_weights(&broken, std::path::Path::new("d.safetensors")).unwrap_err().to_string();
    assert!(e.contains("head.box.2.1.weight"), "{e}");
}

#[test]
fn analyze_runs_on_the_detector_head_sites() {
    let c = ModelConfig { width: 0.35, ..cfg(Arch::SsdliteMobilenetV2, 128, 3) };
    let net = infoloss::model::Network::seeded(&c, 1).unwrap();
    let mut src = infoloss::data::NoiseSource::new(2, 128, 0);
    let r = infoloss::analysis::analyze(&net, &mut src, &Default::default(), &mut |_, _| {}).unwrap();
    let t = r.patterns_table();
    let sites = match t.column("site") {
        Some(infoloss::report::ColumnData::Str(v)) => v.clone(),
        _ => panic!("no site column"),
    };
    assert!(sites.iter().any(|s| s == "ssd.extra.0.reduce.post"));
    assert!(sites.iter().any(|s| s == "ssd.class.5.spatial.post"));
    assert!(sites.iter().any(|s| s == "blocks.14.expand.post"));
}
