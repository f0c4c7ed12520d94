//! Hooks: bit-exact no-op hooks, firing order, filters, every intervention against an independent
//! computation, counts against naive loops, cache export, name suggestions.

// The references are deliberately naive index loops.
#![allow(clippy::needless_range_loop)]

mod common;

use infoloss::bench::random_batch;
use infoloss::hooks::catalogue::{catalogue, markdown_table};
use infoloss::hooks::interventions::{ActivationPattern, Clamp, FreezePattern, GaussianNoise, KeepChannels, Linearize, ZeroChannels};
use infoloss::hooks::observers::{ChannelActivity, CountStats, SiteRecorder, ValueHistogram};
use infoloss::hooks::{resolve_name, BlockPoint, HookName, HookSet, NameFilter, Observer};
use infoloss::model::{BottleneckActivation, ModelConfig, Shortcut};
use infoloss::Hooked;
use infoloss::{Batch, FeatureMap, MobileNetV2};

fn small(bottleneck: BottleneckActivation, shortcut: Shortcut) -> MobileNetV2 {
    let cfg = ModelConfig { width: 0.35, resolution: 64, classes: 10, bottleneck, shortcut, ..Default::default() };
    let mut m = MobileNetV2::seeded(&cfg, 11).unwrap();
    // Non-trivial BN statistics so biases and caps matter.
    for (k, (_, _, u)) in m.conv_units_mut().into_iter().enumerate() {
        let c = u.out_channels();
        u.bn.beta = common::random_vec(c, 100 + k as u64).iter().map(|v| v * 0.5).collect();
        u.bn.gamma = common::random_vec(c, 200 + k as u64).iter().map(|v| 1.0 + 0.5 * v).collect();
    }
    m.refold();
    m
}

fn calibrated() -> MobileNetV2 {
    let cfg = ModelConfig { width: 0.25, classes: 10, ..Default::default() };
    MobileNetV2::from_safetensors(&cfg, std::path::Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/tv_mobilenet_v2_w025.safetensors"))).unwrap()
}

fn default_small() -> MobileNetV2 {
    small(BottleneckActivation::Linear, Shortcut::Bottleneck)
}

fn x(n: usize, seed: u64) -> Batch {
    random_batch(n, 64, seed).unwrap()
}

fn site(s: &str) -> HookName {
    s.parse().unwrap()
}

/// Observes and does nothing.
struct Nothing;
impl Observer for Nothing {
    fn observe(&mut self, _: &HookName, _: usize, _: &FeatureMap) {}
    fn fork(&self) -> Box<dyn Observer> {
        Box::new(Nothing)
    }
    fn join(&mut self, _: Box<dyn Observer>) {}
}

#[test]
fn no_op_hooks_at_every_site_equal_the_plain_forward_bit_for_bit() {
    for shortcut in [Shortcut::Bottleneck, Shortcut::Expansion] {
        let m = small(BottleneckActivation::Relu6, shortcut);
        let b = x(3, 1);
        let plain = m.forward(&b).unwrap();
        let mut hooks = HookSet::new();
        hooks.observe(NameFilter::All, Nothing);
        assert_eq!(m.run_with_hooks(&b, &mut hooks).unwrap(), plain);
    }
}

#[test]
fn sites_fire_in_catalogue_order_and_images_join_in_order() {
    let m = small(BottleneckActivation::Linear, Shortcut::Expansion);
    let mut hooks = HookSet::new();
    let id = hooks.observe(NameFilter::All, SiteRecorder::default());
    m.run_with_hooks(&x(3, 2), &mut hooks).unwrap();
    let fired = &hooks.get(id).unwrap().fired;
    let cat: Vec<HookName> = catalogue(&m, 64).into_iter().map(|s| s.name).collect();
    assert_eq!(fired.len(), 3 * cat.len());
    for (img, chunk) in fired.chunks(cat.len()).enumerate() {
        assert!(chunk.iter().all(|(i, _)| *i == img));
        assert_eq!(chunk.iter().map(|(_, n)| *n).collect::<Vec<_>>(), cat);
    }
    assert_eq!(hooks.list().len(), 1);
    assert_eq!(hooks.list()[0].verb, "observer");
    assert!(hooks.list()[0].kind.ends_with("SiteRecorder"));
}

#[test]
fn catalogue_has_torchvisions_35_relu6_sites_and_thresholds() {
    let m = MobileNetV2::new(&ModelConfig::default()).unwrap();
    let cat = catalogue(&m, 224);
    assert_eq!(cat.iter().filter(|s| s.name.is_post()).count(), 35);
    assert!(!cat.iter().any(|s| s.name == site("blocks.1.expand.post")), "t = 1 has no expansion");
    let s = cat.iter().find(|s| s.name == site("blocks.3.expand.post")).unwrap();
    assert_eq!((s.shape, s.threshold), ([144, 56, 56], 24));
    let s = cat.iter().find(|s| s.name == HookName::HeadPost).unwrap();
    assert_eq!((s.shape, s.threshold), ([1280, 7, 7], 320));
    assert_eq!(cat.iter().find(|s| s.name == HookName::StemPost).unwrap().threshold, 3);
    assert_eq!(cat.iter().filter(|s| matches!(s.name, HookName::Block { point: BlockPoint::DepthwiseSum, .. })).count(), 0);
    let e = MobileNetV2::new(&ModelConfig { shortcut: Shortcut::Expansion, ..Default::default() }).unwrap();
    let sums = catalogue(&e, 224).iter().filter(|s| matches!(s.name, HookName::Block { point: BlockPoint::DepthwiseSum, .. })).count();
    assert_eq!(sums, 7);
    for s in &cat {
        assert_eq!(s.name.to_string().parse::<HookName>().unwrap(), s.name);
    }
}

#[test]
fn filters_select_the_right_sites() {
    let m = MobileNetV2::new(&ModelConfig::default()).unwrap();
    let cat = catalogue(&m, 224);
    assert_eq!(NameFilter::parse("blocks.*.expand.post", &cat).unwrap().select(&cat).len(), 16);
    assert_eq!(NameFilter::parse("blocks.3.", &cat).unwrap().select(&cat).len(), 8);
    assert_eq!(NameFilter::parse("head.post", &cat).unwrap().select(&cat).len(), 1);
    assert_eq!(NameFilter::post_sites().select(&cat).len(), 35);
    let pred = NameFilter::predicate(|n| matches!(n, HookName::Block { index, .. } if *index >= 17));
    assert_eq!(pred.select(&cat).len(), 8);
    assert!(NameFilter::parse("blocks.99.*", &cat).unwrap_err().to_string().contains("matches no hook site"));
}

#[test]
fn unknown_names_suggest_the_closest() {
    let m = MobileNetV2::new(&ModelConfig::default()).unwrap();
    let cat = catalogue(&m, 224);
    let e = resolve_name("blocks.3.expnd.post", &cat).unwrap_err().to_string();
    assert_eq!(e, "unknown hook 'blocks.3.expnd.post' (did you mean 'blocks.3.expand.post'?); see `infoloss hooks`");
    // Syntactically valid but absent in this model.
    let e = resolve_name("blocks.1.expand.post", &cat).unwrap_err().to_string();
    assert!(e.contains("did you mean"), "{e}");
    assert!(resolve_name("stem.post", &cat).is_ok());
}

#[test]
fn linearising_every_relu6_bottleneck_gives_the_linear_variant() {
    let relu6 = small(BottleneckActivation::Relu6, Shortcut::Bottleneck);
    let linear = small(BottleneckActivation::Linear, Shortcut::Bottleneck);
    let b = x(2, 3);
    let targets: Vec<HookName> = relu6.blocks.iter().map(|bl| HookName::block(bl.plan.index, BlockPoint::Project)).collect();
    let lin = Linearize::new(targets);
    let mut hooks = HookSet::new();
    hooks.intervene(lin.filter(), lin);
    let got = relu6.run_with_hooks(&b, &mut hooks).unwrap();
    assert_eq!(got, linear.forward(&b).unwrap());
    assert_ne!(relu6.forward(&b).unwrap(), got, "the relu6 bottleneck must matter for this test to mean anything");
}

#[test]
fn zeroing_all_channels_leaves_only_the_next_layers_bias() {
    let m = default_small();
    let mut hooks = HookSet::new();
    let c = m.blocks[2].expand.as_ref().unwrap().out_channels();
    hooks.intervene(NameFilter::Exact(site("blocks.3.expand.post")), ZeroChannels { channels: (0..c).collect() });
    let cache = hooks.observe(NameFilter::Exact(site("blocks.3.depthwise.pre")), infoloss::hooks::ActivationCache::default());
    m.run_with_hooks(&x(1, 4), &mut hooks).unwrap();
    let dw = hooks.get(cache).unwrap().image(&site("blocks.3.depthwise.pre"), 0).unwrap().clone();
    let bias = m.blocks[2].depthwise.folded_bias();
    for ch in 0..dw.channels() {
        assert!(dw.channel(ch).iter().all(|&v| v == bias[ch]), "channel {ch}");
    }
}

#[test]
fn keep_channels_zeroes_the_others_and_observers_see_the_replacement() {
    let m = default_small();
    let mut hooks = HookSet::new();
    hooks.intervene(NameFilter::Exact(HookName::StemPost), KeepChannels { channels: vec![1, 4] });
    let id = hooks.observe(NameFilter::Exact(HookName::StemPost), infoloss::hooks::ActivationCache::default());
    m.run_with_hooks(&x(1, 5), &mut hooks).unwrap();
    let fm = hooks.get(id).unwrap().image(&HookName::StemPost, 0).unwrap().clone();
    for ch in 0..fm.channels() {
        let nonzero = fm.channel(ch).iter().any(|&v| v != 0.0);
        assert_eq!(nonzero, ch == 1 || ch == 4, "channel {ch}");
    }
}

#[test]
fn clamp_propagates_to_the_next_layer_as_computed_by_hand() {
    let m = default_small();
    let b = x(1, 6);
    let mut hooks = HookSet::new();
    hooks.intervene(NameFilter::Exact(HookName::StemPost), Clamp { lo: 0.0, hi: 0.5 });
    let id = hooks.observe(
        NameFilter::Any(vec![NameFilter::Exact(HookName::StemPost), NameFilter::Exact(site("blocks.1.depthwise.post"))]),
        infoloss::hooks::ActivationCache::default(),
    );
    m.run_with_hooks(&b, &mut hooks).unwrap();
    let cache = hooks.get(id).unwrap();
    let stem = cache.image(&HookName::StemPost, 0).unwrap();
    assert!(stem.as_slice().iter().all(|&v| (0.0..=0.5).contains(&v)));
    // Block 1 (t = 1) applies its depthwise layer to the clamped stem output.
    let mut want = FeatureMap::zeros(0, 0, 0);
    m.blocks[0].depthwise.forward(stem, &mut want, &mut Vec::new(), 1, true);
    assert_eq!(cache.image(&site("blocks.1.depthwise.post"), 0).unwrap(), &want);
}

#[test]
fn gaussian_noise_is_seeded_and_has_the_requested_spread() {
    let m = default_small();
    let b = x(4, 7);
    let run = |seed: u64, threads: usize| {
        let mut hooks = HookSet::new();
        let before = hooks.observe(NameFilter::Exact(site("blocks.5.project")), infoloss::hooks::ActivationCache::default());
        hooks.intervene(NameFilter::Exact(site("blocks.5.project")), GaussianNoise { std: 0.25, seed });
        let after = hooks.observe(NameFilter::Exact(site("blocks.5.project")), infoloss::hooks::ActivationCache::default());
        let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
        let y = pool.install(|| m.run_with_hooks(&b, &mut hooks).unwrap());
        let get = |id: infoloss::hooks::HookId<infoloss::hooks::ActivationCache>| hooks.get(id).unwrap().stacked(&site("blocks.5.project")).unwrap().1;
        (y, get(before), get(after))
    };
    let (y1, pre, post) = run(9, 1);
    let (y2, _, _) = run(9, 2);
    let (y3, _, _) = run(10, 2);
    assert_eq!(y1, y2);
    assert_ne!(y1, y3);
    let d: Vec<f64> = pre.iter().zip(&post).map(|(a, b)| (b - a) as f64).collect();
    let mean = d.iter().sum::<f64>() / d.len() as f64;
    let std = (d.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / d.len() as f64).sqrt();
    assert!(d.len() > 2000 && mean.abs() < 0.02 && (std / 0.25 - 1.0).abs() < 0.05, "n {} mean {mean} std {std}", d.len());
}

#[test]
fn frozen_pattern_reproduces_its_own_input_and_makes_the_network_affine() {
    // The torchvision fixture: BN calibrated, so the logits depend clearly on the input (a seeded
    // network's logits are nearly constant, which would make any map look affine).
    let m = calibrated();
    let a = x(1, 8);
    let mut rec = HookSet::new();
    let id = rec.observe(NameFilter::pre_activation_sites(), ActivationPattern::new(Some(6.0)));
    let ya = m.run_with_hooks(&a, &mut rec).unwrap();
    let pattern = rec.get(id).unwrap().clone();
    let frozen = |input: &Batch| {
        let f = FreezePattern::new(pattern.clone(), Some(0));
        let mut hooks = HookSet::new();
        hooks.intervene(f.filter(), f);
        m.run_with_hooks(input, &mut hooks).unwrap()
    };
    assert_eq!(frozen(&a), ya, "own pattern = plain forward");
    // With every activation frozen the network is affine in its input.
    let (b, c) = (x(1, 9), x(1, 10));
    let mix: Vec<f32> = b.to_nchw().iter().zip(c.to_nchw()).map(|(p, q)| 0.3 * p + 0.7 * q).collect();
    let mixed = Batch::from_nchw(b.shape(), &mix).unwrap();
    let (fb, fc, fm) = (frozen(&b), frozen(&c), frozen(&mixed));
    let scale = fm.iter().fold(0.0f32, |s, v| s.max(v.abs()));
    let dev = |m: &nalgebra::DMatrix<f32>, p: &nalgebra::DMatrix<f32>, q: &nalgebra::DMatrix<f32>| {
        (0..10).map(|j| (m[(0, j)] - (0.3 * p[(0, j)] + 0.7 * q[(0, j)])).abs()).fold(0.0f32, f32::max)
    };
    let frozen_dev = dev(&fm, &fb, &fc);
    assert!(frozen_dev <= 1e-4 * scale.max(1.0), "frozen network deviates from affine by {frozen_dev}");
    // …which the unfrozen network is not.
    let plain_dev = dev(&m.forward(&mixed).unwrap(), &m.forward(&b).unwrap(), &m.forward(&c).unwrap());
    assert!(plain_dev > 100.0 * frozen_dev.max(1e-7), "plain {plain_dev} vs frozen {frozen_dev}");
}

#[test]
fn channel_activity_matches_a_naive_loop() {
    let m = default_small();
    let b = x(3, 12);
    let names = ["stem.post", "blocks.4.expand.post", "blocks.9.depthwise.post", "head.post"];
    let filter = NameFilter::Any(names.iter().map(|n| NameFilter::Exact(site(n))).collect());
    let mut hooks = HookSet::new();
    let act = hooks.observe(filter.clone(), ChannelActivity::new(Some(6.0)));
    let hist = hooks.observe(filter.clone(), ValueHistogram::new(0.0, 6.0, 12));
    m.run_with_hooks(&b, &mut hooks).unwrap();
    let (_, cache) = m.run_with_cache(&b, filter).unwrap();
    let activity = hooks.get(act).unwrap();
    let histo = hooks.get(hist).unwrap();
    for n in names {
        let s = &activity.sites[&site(n)];
        let maps = cache.get(&site(n)).unwrap();
        let (c, p) = (maps[0].channels(), maps[0].positions());
        let mut pos_hist = vec![0u64; c + 1];
        let mut lin_hist = vec![0u64; c + 1];
        let mut ch_pos = vec![0u64; c];
        let mut sat = 0u64;
        let mut bins = vec![0u64; 12];
        let mut zeros = 0u64;
        for fm in &maps {
            for q in 0..p {
                let (mut kp, mut kl) = (0, 0);
                for ch in 0..c {
                    let v = fm.channel(ch)[q];
                    if v > 0.0 {
                        kp += 1;
                        ch_pos[ch] += 1;
                    }
                    if v > 0.0 && v < 6.0 {
                        kl += 1;
                    }
                    if v >= 6.0 {
                        sat += 1;
                    }
                    if v == 0.0 {
                        zeros += 1;
                    } else if (0.0..6.0).contains(&v) {
                        bins[((v / 0.5) as usize).min(11)] += 1;
                    }
                }
                pos_hist[kp] += 1;
                lin_hist[kl] += 1;
            }
        }
        assert_eq!(s.positive, pos_hist, "{n}");
        assert_eq!(s.linear, lin_hist, "{n}");
        assert_eq!(s.channel_positive, ch_pos, "{n}");
        assert_eq!(s.saturated_total, sat, "{n}");
        assert_eq!(s.positions, (3 * p) as u64);
        assert_eq!(histo.sites[&site(n)].counts, bins, "{n}");
        assert_eq!(histo.sites[&site(n)].zeros, zeros, "{n}");
    }
}

#[test]
fn count_stats_from_a_hand_computed_histogram() {
    // Values 1,1,2,2,2,3,5,5,5,5 (k weighted by hist[k]).
    let s = CountStats::from_histogram(&[0, 2, 3, 1, 0, 4]);
    assert_eq!((s.min, s.max, s.p50, s.p1, s.p95), (1, 5, 2, 1, 5));
    assert!((s.mean - 3.1).abs() < 1e-12);
    let var = [1.0f64, 1.0, 2.0, 2.0, 2.0, 3.0, 5.0, 5.0, 5.0, 5.0].iter().map(|v| (v - 3.1).powi(2)).sum::<f64>() / 10.0;
    assert!((s.std - var.sqrt()).abs() < 1e-12);
}

#[test]
fn cache_exports_npy_and_safetensors() {
    let m = default_small();
    let b = x(2, 13);
    let cat = catalogue(&m, 64);
    let (_, cache) = m.run_with_cache(&b, NameFilter::parse("blocks.2.*", &cat).unwrap()).unwrap();
    assert_eq!(cache.names().len(), 8);
    let dir = std::env::temp_dir().join(format!("infoloss-cache-{}", std::process::id()));
    cache.save_npy_dir(&dir).unwrap();
    let a = infoloss::io::npy::read_npy(&dir.join("blocks.2.expand.post.npy")).unwrap();
    let (shape, data) = cache.stacked(&site("blocks.2.expand.post")).unwrap();
    assert_eq!(a.shape, shape.to_vec());
    assert_eq!(a.data, data);
    cache.save_safetensors(&dir.join("cache.safetensors")).unwrap();
    let bytes = std::fs::read(dir.join("cache.safetensors")).unwrap();
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    assert_eq!(st.tensor("blocks.2.out").unwrap().shape(), &cache.stacked(&site("blocks.2.out")).unwrap().0);
    assert!(cache.get(&HookName::Logits).unwrap_err().to_string().contains("not cached"));
}

#[test]
fn readme_hook_table_is_generated_from_the_catalogue() {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    assert!(readme.contains(&markdown_table()), "README hook table is stale: paste `infoloss hooks --markdown`");
}

#[test]
fn closures_observe_and_intervene_like_the_built_in_hooks() {
    use std::sync::{Arc, Mutex};
    let m = default_small();
    let b = x(3, 5);
    let target = site("blocks.3.expand.post");
    // A closure intervention that zeroes channels 0 and 1 equals ZeroChannels.
    let mut built_in = HookSet::new();
    built_in.intervene(NameFilter::Exact(target), ZeroChannels { channels: vec![0, 1] });
    let want = m.run_with_hooks(&b, &mut built_in).unwrap();
    let mut closures = HookSet::new();
    closures.intervene_fn(NameFilter::Exact(target), |_, _, fm| {
        for c in 0..2 {
            fm.channel_mut(c).fill(0.0);
        }
    });
    // A closure observer sees the edited activation, once per image, with the image index.
    let seen = Arc::new(Mutex::new(Vec::new()));
    let sink = Arc::clone(&seen);
    closures.observe_fn(NameFilter::Exact(target), move |name, image, fm| {
        sink.lock().unwrap().push((name.to_string(), image, fm.channel(0).iter().all(|&v| v == 0.0), fm.channel(2).iter().any(|&v| v != 0.0)));
    });
    assert_eq!(m.run_with_hooks(&b, &mut closures).unwrap(), want);
    let mut seen = seen.lock().unwrap().clone();
    seen.sort();
    assert_eq!(seen, (0..3).map(|i| ("blocks.3.expand.post".to_string(), i, true, true)).collect::<Vec<_>>());
}

#[test]
fn typed_handles_give_hooks_back_and_refuse_another_set() {
    let m = default_small();
    let b = x(2, 6);
    let mut hooks = HookSet::new();
    let act = hooks.observe(NameFilter::post_sites(), ChannelActivity::new(Some(6.0)));
    m.run_with_hooks(&b, &mut hooks).unwrap();
    let sites = hooks.get(act).unwrap().sites.len();
    assert_eq!(sites, 35);
    let taken: ChannelActivity = hooks.take(act).unwrap();
    assert_eq!(taken.sites.len(), 35);
    // Taken: it is gone from the set and fires no more.
    assert!(hooks.get(act).unwrap_err().to_string().contains("already taken"));
    m.run_with_hooks(&b, &mut hooks).unwrap();
    // A handle of one set is refused by another.
    let other = HookSet::new();
    assert!(other.get(act).unwrap_err().to_string().contains("another HookSet"));
    assert_eq!(hooks.list()[0].verb, "taken");
}

#[test]
fn interventions_that_name_their_sites_attach_without_a_filter() {
    let m = small(BottleneckActivation::Relu6, Shortcut::Bottleneck);
    let b = x(2, 7);
    let targets: Vec<HookName> = m.blocks.iter().map(|bl| HookName::block(bl.plan.index, BlockPoint::Project)).collect();
    let lin = Linearize::new(targets);
    let mut by_filter = HookSet::new();
    by_filter.intervene(lin.filter(), lin.clone());
    let mut by_apply = HookSet::new();
    by_apply.apply(lin).unwrap();
    assert_eq!(m.run_with_hooks(&b, &mut by_apply).unwrap(), m.run_with_hooks(&b, &mut by_filter).unwrap());
    // One that acts wherever it is attached says so.
    let e = HookSet::new().apply(ZeroChannels { channels: vec![0] }).unwrap_err().to_string();
    assert!(e.contains("intervene(filter"), "{e}");
}

#[test]
fn one_trait_runs_classifiers_detectors_and_networks_with_a_cache_indexed_by_name() {
    use infoloss::model::hooked::NetworkOutput;
    use infoloss::model::{Arch, Network};
    let m = default_small();
    let b = x(2, 8);
    let filter = NameFilter::parse("blocks.*.expand.post", &m.hook_sites()).unwrap();
    let (logits, cache) = m.run_with_cache(&b, filter.clone()).unwrap();
    assert_eq!(logits, m.forward(&b).unwrap());
    // Every selected site, shaped as the catalogue says, indexable by its name.
    let want: Vec<_> = m.hook_sites().into_iter().filter(|s| filter.matches(&s.name)).collect();
    assert_eq!(cache.names().len(), want.len());
    for s in &want {
        let maps = &cache[s.name.to_string().as_str()];
        assert_eq!(maps.len(), 2);
        assert_eq!(maps[1].shape(), s.shape, "{}", s.name);
        assert_eq!(maps.images, vec![0, 1]);
    }
    assert!(cache.by_name("blocks.1.expand.post").is_err(), "t = 1 has no expansion layer");
    // Network (classifier) through the same trait.
    let net = Network::Classifier(m.clone());
    match net.run_with_cache(&b, filter).unwrap() {
        (NetworkOutput::Logits(l), c) => assert!(l == logits && c == cache),
        _ => panic!("a classifier returns logits"),
    }
    // A detector: its head sites too.
    let cfg = ModelConfig { arch: Arch::SsdliteMobilenetV2, width: 0.35, resolution: 96, classes: 3, ..Default::default() };
    let det = Network::seeded(&cfg, 1).unwrap();
    let sites = det.hook_sites();
    let head = NameFilter::parse("ssd.box.*", &sites).unwrap();
    let xb = random_batch(1, 96, 9).unwrap();
    let (out, c) = det.run_with_cache(&xb, head.clone()).unwrap();
    assert!(matches!(out, NetworkOutput::Detections(_)));
    assert_eq!(c.names().len(), sites.iter().filter(|s| head.matches(&s.name)).count());
    assert!(!c.names().is_empty());
}
