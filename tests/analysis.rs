//! Analyses against independent references: known-rank matrices, hand-computed statistics, closed
//! forms, finite differences, naive per-position loops.

mod common;

use std::path::{Path, PathBuf};

use infoloss::analysis::invertibility::{lemma2_check, lemma2_check_set, numerical_rank, Lemma2Layer, RANK_EPS};
use infoloss::analysis::jacobian::{block_jacobian_matrix, block_output, centre_crop};
use infoloss::analysis::lemma2_observer::{Lemma2Observer, RECON_BOUND_FACTOR};
use infoloss::analysis::manifold::{spiral_experiment, SpiralSettings};
use infoloss::analysis::stats::{mean_ci, wilson_interval};
use infoloss::analysis::theory::{theorem1_noncollapsed, theory_sweep, TheorySettings};
use infoloss::analysis::{analyze, AnalyzeSettings};
use infoloss::data::{BatchSource, ImageFolderSource, NoiseSource, NpySource, Preprocess};
use infoloss::hooks::{BlockPoint, HookName, HookSet, NameFilter};
use infoloss::model::ModelConfig;
use infoloss::report::{analyze::write_analyze_outputs, RunMeta};
use infoloss::Hooked;
use infoloss::{Batch, FeatureMap, MobileNetV2};
use nalgebra::DMatrix;

fn tmp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("infoloss-analysis-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// A layer whose rows are given explicitly (B is m×n, row-major list of rows).
fn layer(rows: &[Vec<f64>]) -> Lemma2Layer {
    let (m, n) = (rows.len(), rows[0].len());
    Lemma2Layer::new(DMatrix::from_fn(n, m, |c, r| rows[r][c]), vec![0.0; m], Some(6.0))
}

#[test]
fn lemma2_on_matrices_of_known_rank() {
    // n = 3. Rows 0..3 span R³; rows 3..5 are combinations of rows 0 and 1 only.
    let l = layer(&[vec![1.0, 0.0, 0.0], vec![0.0, 1.0, 0.0], vec![0.0, 0.0, 1.0], vec![1.0, 1.0, 0.0], vec![2.0, -1.0, 0.0]]);
    let x = [0.3f32, 0.2, 0.1];
    let y = |s: &[usize]| -> Vec<f32> { (0..5).map(|i| if s.contains(&i) { 1.0 } else { -1.0 }).collect() };
    // S = {0, 3, 4}: three rows but rank 2 → fails by rank.
    let v = lemma2_check_set(&l, &[0, 3, 4], &x, &y(&[0, 3, 4]), RANK_EPS).unwrap();
    assert!(v.enough_active && !v.full_rank && !v.invertible());
    // S = {0, 1, 2, 3}: rank 3 → invertible.
    let v = lemma2_check_set(&l, &[0, 1, 2, 3], &x, &y(&[0, 1, 2, 3]), RANK_EPS).unwrap();
    assert!(v.invertible());
    // S = {0, 1}: too few rows.
    let v = lemma2_check_set(&l, &[0, 1], &x, &y(&[0, 1]), RANK_EPS).unwrap();
    assert!(!v.enough_active && !v.invertible());
    // The active set is the linear region of ReLU6: 0 < y < 6.
    assert_eq!(l.active_set(&[0.5, 0.0, 6.0, 5.99, -1.0]), vec![0, 3]);
}

#[test]
fn lemma2_agrees_with_svd_rank_at_the_tolerance_edge() {
    // B_S = U diag(1, 1, s) Vᵀ-like: rows with a controlled smallest singular value s.
    let n = 3;
    for &(factor, expect_full) in &[(0.5, false), (0.9, false), (1.1, true), (2.0, true), (100.0, true)] {
        let k = 4;
        let tol = 1.0 * k.max(n) as f64 * RANK_EPS; // σ_max = 1
        let s = factor * tol;
        let rows = vec![vec![1.0, 0.0, 0.0], vec![0.0, 1.0, 0.0], vec![0.0, 0.0, s], vec![0.0, 0.0, 0.0]];
        let l = layer(&rows);
        let v = lemma2_check_set(&l, &[0, 1, 2, 3], &[0.1, 0.1, 0.1], &[1.0, 1.0, 1.0, 1.0], RANK_EPS).unwrap();
        let reference = numerical_rank(&DMatrix::from_fn(4, 3, |r, c| rows[r][c]), RANK_EPS) == n;
        assert_eq!(v.full_rank, reference, "factor {factor}");
        assert_eq!(v.full_rank, expect_full, "factor {factor}");
    }
}

/// A random n × m layer (rows from `row_seed`, bias ×0.1 from `bias_seed`) and its rows.
fn random_layer(n: usize, m: usize, row_seed: u64, bias_seed: u64) -> (Lemma2Layer, Vec<Vec<f64>>) {
    let rows: Vec<Vec<f64>> = (0..m).map(|i| common::random_vec(n, row_seed + i as u64).iter().map(|&v| v as f64).collect()).collect();
    let mut l = layer(&rows);
    l.bias = common::random_vec(m, bias_seed).iter().map(|&v| v as f64 * 0.1).collect();
    (l, rows)
}

/// The pre-activation `B x + b` in f64, rounded to f32 as the network would store it.
fn pre_activation(l: &Lemma2Layer, rows: &[Vec<f64>], x: &[f32]) -> Vec<f32> {
    rows.iter().zip(&l.bias).map(|(r, b)| (r.iter().zip(x).map(|(w, &v)| w * v as f64).sum::<f64>() + b) as f32).collect()
}

#[test]
fn lemma2_reconstruction_is_exact_where_invertible_and_fails_where_not() {
    let n = 6;
    let (mut l, rows) = random_layer(n, 18, 40, 60);
    l.cap = None;
    let mut invertible = 0;
    for seed in 0..50 {
        let x: Vec<f32> = common::random_vec(n, 100 + seed);
        let y = pre_activation(&l, &rows, &x);
        let v = lemma2_check(&l, &x, &y, RANK_EPS).unwrap();
        if v.invertible() {
            invertible += 1;
            assert!(v.reconstruction_error < 1e-5, "error {}", v.reconstruction_error);
        }
    }
    assert!(invertible > 10);
    // A rank-deficient active set cannot recover the null-space component.
    let deficient = layer(&[vec![1.0, 0.0, 0.0], vec![2.0, 0.0, 0.0], vec![0.0, 1.0, 0.0], vec![0.0, 3.0, 0.0]]);
    let x = [0.4f32, -0.3, 0.5];
    let y: Vec<f32> = (0..4).map(|i| (0..3).map(|j| deficient.bt[(j, i)] * x[j] as f64).sum::<f64>() as f32).collect();
    let v = lemma2_check_set(&deficient, &[0, 1, 2, 3], &x, &y, RANK_EPS).unwrap();
    assert!(!v.full_rank && v.reconstruction_error > 0.5, "{v:?}");
}

#[test]
fn lemma2_reconstruction_error_equals_the_svd_least_squares_one() {
    // The reported error of an invertible position against an independent min-norm solve by SVD:
    // the error itself is f32 rounding of y (~1e-7 of ‖x‖), so x̂ must be far more exact than that.
    let n = 24;
    let (l, rows) = random_layer(n, 144, 500, 61);
    let mut checked = 0;
    for seed in 0..40 {
        let x: Vec<f32> = common::random_vec(n, 900 + seed);
        let y = pre_activation(&l, &rows, &x);
        let v = lemma2_check(&l, &x, &y, RANK_EPS).unwrap();
        if !v.invertible() {
            continue;
        }
        let s = l.active_set(&y);
        let bs = DMatrix::from_fn(s.len(), n, |r, c| rows[s[r]][c]);
        let rhs = nalgebra::DVector::from_iterator(s.len(), s.iter().map(|&i| y[i] as f64 - l.bias[i]));
        let xhat = bs.svd(true, true).solve(&rhs, 0.0).unwrap();
        let norm = x.iter().map(|&v| (v as f64).powi(2)).sum::<f64>().sqrt();
        let want = xhat.iter().zip(&x).map(|(a, &b)| (a - b as f64).powi(2)).sum::<f64>().sqrt() / norm;
        assert!(want > 0.0 && (v.reconstruction_error - want).abs() <= 1e-6 * want, "seed {seed}: {} vs SVD {want}", v.reconstruction_error);
        checked += 1;
    }
    assert!(checked > 20, "{checked}");
}

#[test]
fn theorem1_equals_the_binomial_sum() {
    // Σ_{k ≥ n} C(m, k) / 2^m in exact integers.
    let direct = |m: u64, n: u64| -> f64 {
        let mut c: u128 = 1;
        let mut sum: u128 = 0;
        for k in 0..=m {
            if k >= n {
                sum += c;
            }
            c = c * (m - k) as u128 / (k + 1) as u128;
        }
        sum as f64 / 2f64.powi(m as i32)
    };
    for (m, n) in [(8, 8), (10, 8), (16, 16), (48, 16), (24, 16), (60, 32), (20, 1), (96, 16)] {
        assert!((theorem1_noncollapsed(m, n) - direct(m, n)).abs() < 1e-12, "m {m} n {n}");
    }
    // The example: t = 3, n = 16 → already ≈ 0.99.
    assert!((theorem1_noncollapsed(48, 16) - 0.9934).abs() < 1e-3);
}

#[test]
fn spiral_theory_column_is_the_closed_form() {
    let s = SpiralSettings { dims: vec![2, 3, 5, 15], seeds: vec![0, 1], points: 120, ..Default::default() };
    let (rows, panels) = spiral_experiment(&s);
    assert_eq!(panels.len(), 4);
    for r in &rows {
        let closed = 1.0 - (r.n as f64 + 1.0) / 2f64.powi(r.n as i32);
        assert!((r.theory_lemma2_invertible - closed).abs() < 1e-12);
        // Where Lemma 2 holds the inverse is exact, so its error comes only from the other points.
        assert!(r.lemma2_error <= (1.0 - r.invertible_fraction) * 10.0 + 1e-6, "{r:?}");
    }
    // n = 3: every ray has exactly one antipode, so exactly half the angles keep ≥ 2 active rows.
    for r in rows.iter().filter(|r| r.n == 3) {
        assert!((r.invertible_fraction - 0.5).abs() < 0.02, "{r:?}");
    }
    // n = 15 keeps (nearly) everything; n = 2 loses a lot.
    let mean = |n| rows.iter().filter(|r| r.n == n).map(|r| r.invertible_fraction).sum::<f64>() / 2.0;
    assert!(mean(15) > 0.95 && mean(2) < 0.6);
}

#[test]
fn theory_sweep_matches_theorem1_within_its_interval() {
    let s = TheorySettings { n: vec![8], t: vec![1.5, 2.0, 3.0], seeds: vec![0, 1], samples: 300, rank_eps: RANK_EPS, confidence: 0.999 };
    for r in theory_sweep(&s) {
        assert_eq!(r.m, (8.0 * r.t) as usize);
        assert!(r.theory >= r.wilson_lo && r.theory <= r.wilson_hi, "{r:?}");
    }
}

#[test]
fn interval_statistics_match_hand_computed_values() {
    let ci = mean_ci(&[1.0, 2.0, 3.0, 4.0, 5.0], 0.95);
    // mean 3, s = √2.5, t(0.975, 4) = 2.776445 → half-width 1.963243
    assert!((ci.mean - 3.0).abs() < 1e-12 && (ci.std - 2.5f64.sqrt()).abs() < 1e-12);
    assert!((ci.hi - 3.0 - 1.963243).abs() < 1e-5 && (3.0 - ci.lo - 1.963243).abs() < 1e-5);
    // Wilson 10/100 at 95%: (0.05523, 0.17437)
    let (lo, hi) = wilson_interval(10, 100, 0.95);
    assert!((lo - 0.05523).abs() < 1e-4 && (hi - 0.17437).abs() < 1e-4, "{lo} {hi}");
    let (lo, hi) = wilson_interval(0, 50, 0.95);
    assert!(lo == 0.0 && (hi - 0.07135).abs() < 1e-4, "{hi}");
}

fn calibrated() -> MobileNetV2 {
    let cfg = ModelConfig { width: 0.25, classes: 10, ..Default::default() };
    MobileNetV2::from_safetensors(&cfg, Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/tv_mobilenet_v2_w025.safetensors"))).unwrap()
}

#[test]
fn lemma2_observer_matches_a_per_position_loop_and_reconstructs_within_bound() {
    let m = calibrated();
    let b = infoloss::bench::random_batch(2, 64, 3).unwrap();
    let mut hooks = HookSet::new();
    let id = hooks.observe(Lemma2Observer::filter(), Lemma2Observer::for_model(&m, RANK_EPS));
    m.run_with_hooks(&b, &mut hooks).unwrap();
    let obs = hooks.get(id).unwrap();
    assert_eq!(obs.blocks().len(), 16);
    // Reference: cache the block input and expansion pre-activation, loop positions directly.
    let blk = 4;
    let (_, cache) = m
        .run_with_cache(
            &b,
            NameFilter::Any(vec![NameFilter::Exact(HookName::block(blk, BlockPoint::In)), NameFilter::Exact(HookName::block(blk, BlockPoint::ExpandPre))]),
        )
        .unwrap();
    let layer = Lemma2Layer::from_conv(m.blocks[blk - 1].expand.as_ref().unwrap());
    let (mut inv, mut cnt, mut pos, mut inv_svd) = (0, 0, 0, 0);
    for img in 0..2 {
        let x = cache.image(&HookName::block(blk, BlockPoint::In), img).unwrap();
        let y = cache.image(&HookName::block(blk, BlockPoint::ExpandPre), img).unwrap();
        for q in 0..x.positions() {
            let xv: Vec<f32> = (0..x.channels()).map(|c| x.channel(c)[q]).collect();
            let yv: Vec<f32> = (0..y.channels()).map(|c| y.channel(c)[q]).collect();
            let v = lemma2_check(&layer, &xv, &yv, RANK_EPS).unwrap();
            pos += 1;
            inv += v.invertible() as u64;
            cnt += (!v.enough_active) as u64;
            // Independent reference: NumPy's matrix_rank rule on an exact SVD of B_S.
            let s = layer.active_set(&yv);
            let bs = DMatrix::from_fn(s.len(), layer.n(), |r, c| layer.bt[(c, s[r])]);
            inv_svd += (s.len() >= layer.n() && numerical_rank(&bs, RANK_EPS) == layer.n()) as u64;
        }
    }
    let s = &obs.sites[&blk];
    assert_eq!((s.positions, s.invertible, s.fail_count), (pos, inv, cnt));
    assert_eq!(s.invertible, inv_svd, "the observer (Gram matrix carried between positions) against per-position SVDs");
    for s in obs.sites.values() {
        assert_eq!(s.positions, s.invertible + s.fail_count + s.fail_rank);
        assert!(s.max_error_ratio < RECON_BOUND_FACTOR, "reconstruction error {} × cond·ε", s.max_error_ratio);
    }
    // Totals do not depend on the thread count (fixed chunks, each with its own Gram matrix).
    let one = rayon::ThreadPoolBuilder::new().num_threads(1).build().unwrap().install(|| {
        let mut hooks = HookSet::new();
        let id = hooks.observe(Lemma2Observer::filter(), Lemma2Observer::for_model(&m, RANK_EPS));
        m.run_with_hooks(&b, &mut hooks).unwrap();
        hooks.get(id).unwrap().sites.clone()
    });
    assert_eq!(one, obs.sites);
    // This calibrated width-0.25 network has both outcomes somewhere.
    let total_inv: u64 = obs.sites.values().map(|s| s.invertible).sum();
    let total: u64 = obs.sites.values().map(|s| s.positions).sum();
    assert!(total_inv > 0 && total_inv <= total);
}

#[test]
fn block_jacobian_matches_central_differences() {
    let m = calibrated();
    for (k, bottleneck_shortcut) in [(4, true), (3, false), (1, false)] {
        let block = &m.blocks[k];
        assert_eq!(block.has_shortcut(), bottleneck_shortcut);
        let x0 = FeatureMap::from_chw(block.plan.in_channels, 3, 3, common::random_vec(block.plan.in_channels * 9, 7 + k as u64)).unwrap();
        let j = block_jacobian_matrix(block, &x0, None);
        assert_eq!(j.ncols(), x0.len());
        let eps = 1e-3f32;
        let mut checked = 0;
        for col in (0..x0.len()).step_by(5) {
            let (mut xp, mut xm) = (x0.clone(), x0.clone());
            xp.as_mut_slice()[col] += eps;
            xm.as_mut_slice()[col] -= eps;
            let (yp, ym) = (block_output(block, &xp, None), block_output(block, &xm, None));
            // Skip directions that cross a kink (the masks would change): compare masks via outputs'
            // second difference being ~0.
            let y0 = block_output(block, &x0, None);
            let curvature: f32 = yp.as_slice().iter().zip(ym.as_slice()).zip(y0.as_slice()).map(|((a, b), c)| (a + b - 2.0 * c).abs()).fold(0.0, f32::max);
            if curvature > 1e-4 {
                continue;
            }
            for r in 0..j.nrows() {
                let fd = (yp.as_slice()[r] - ym.as_slice()[r]) as f64 / (2.0 * eps as f64);
                assert!((fd - j[(r, col)]).abs() < 2e-3 * (1.0 + j[(r, col)].abs()), "block {k} ({r},{col}): fd {fd} vs {}", j[(r, col)]);
            }
            checked += 1;
        }
        assert!(checked > 3, "block {k}: too few smooth directions");
    }
}

#[test]
fn centre_crop_takes_the_middle() {
    let fm = FeatureMap::from_chw(1, 4, 4, (0..16).map(|v| v as f32).collect()).unwrap();
    assert_eq!(centre_crop(&fm, 2).as_slice(), &[5.0, 6.0, 9.0, 10.0]);
}

#[test]
fn analyze_rejects_a_histogram_without_bins_or_with_too_many() {
    let m =
        infoloss::model::Network::Classifier(MobileNetV2::seeded(&ModelConfig { width: 0.35, resolution: 32, classes: 10, ..Default::default() }, 0).unwrap());
    for bins in [0, 70_000] {
        let settings = AnalyzeSettings { batch: 1, histogram_bins: bins, ..Default::default() };
        let Err(err) = analyze(&m, &mut NoiseSource::new(1, 32, 1), &settings, &mut |_, _| {}) else { panic!("{bins} bins accepted") };
        let err = err.to_string();
        assert!(err.contains("histogram_bins") && err.contains(&bins.to_string()), "{err}");
    }
}

#[test]
fn analyze_writes_deterministic_tables_with_sidecars_and_plots() {
    let m =
        infoloss::model::Network::Classifier(MobileNetV2::seeded(&ModelConfig { width: 0.35, resolution: 64, classes: 10, ..Default::default() }, 0).unwrap());
    let settings = AnalyzeSettings { batch: 3, lemma2: true, ..Default::default() };
    let run = |dir: &Path| {
        let mut src = NoiseSource::new(5, 64, 1);
        let r = analyze(&m, &mut src, &settings, &mut |_, _| {}).unwrap();
        assert_eq!(r.images, 5);
        assert_eq!(r.sites.len(), 35);
        write_analyze_outputs(&r, dir, &RunMeta::new("test", &settings)).unwrap()
    };
    let (a, b) = (tmp("an-a"), tmp("an-b"));
    let files = run(&a);
    run(&b);
    for f in ["activation_patterns.csv", "channels.csv", "histograms.csv", "lemma2.csv"] {
        assert_eq!(std::fs::read(a.join(f)).unwrap(), std::fs::read(b.join(f)).unwrap(), "{f} differs between runs");
        let meta: serde_json::Value = serde_json::from_slice(&std::fs::read(a.join(format!("{f}.meta.json"))).unwrap()).unwrap();
        assert!(meta["git_commit"].is_string() && meta["infoloss_version"].is_string() && meta["threads"].as_u64().unwrap() >= 1);
        assert_eq!(meta["settings"]["rank_eps"], RANK_EPS);
    }
    for p in ["activation_patterns_abs.png", "activation_patterns_rel.svg", "lemma2.png"] {
        assert!(files.contains(&a.join(p)) && std::fs::metadata(a.join(p)).unwrap().len() > 1000, "{p}");
    }
    let df = infoloss::report::Table::read_csv(&a.join("activation_patterns.csv")).unwrap();
    assert_eq!(df.height(), 35);
    // Batching does not change results: one batch of 5 gives the same CSV.
    let mut src = NoiseSource::new(5, 64, 1);
    let r = analyze(&m, &mut src, &AnalyzeSettings { batch: 5, ..settings.clone() }, &mut |_, _| {}).unwrap();
    assert_eq!(r.patterns_table().to_csv().unwrap(), std::fs::read(a.join("activation_patterns.csv")).unwrap());
}

#[test]
fn image_folders_npy_inputs_and_their_errors() {
    let dir = tmp("imgs");
    let img = image::RgbImage::from_fn(40, 30, |x, y| image::Rgb([(x * 6) as u8, (y * 8) as u8, 128]));
    img.save(dir.join("a.png")).unwrap();
    img.save(dir.join("b.jpg")).unwrap();
    std::fs::write(dir.join("notes.txt"), "ignored").unwrap();
    let mut src = ImageFolderSource::new(&dir, 32, Preprocess::Torchvision).unwrap();
    assert_eq!(src.total(), 2);
    let b = src.next_batch(8).unwrap().unwrap();
    assert_eq!(b.shape(), [2, 3, 32, 32]);
    // Blue channel is constant 128 → (128/255 − 0.406) / 0.225 everywhere in the PNG.
    let want = (128.0 / 255.0 - 0.406) / 0.225;
    assert!(b.images()[0].channel(2).iter().all(|v| (v - want).abs() < 1e-4));
    let mut keras = ImageFolderSource::new(&dir, 32, Preprocess::Keras).unwrap();
    let k = keras.next_batch(1).unwrap().unwrap();
    assert!(k.images()[0].channel(2).iter().all(|v| (v - (128.0 / 127.5 - 1.0)).abs() < 1e-4));
    // Errors: a corrupt image, an empty folder, a missing folder.
    std::fs::write(dir.join("c.png"), b"not a png").unwrap();
    let mut bad = ImageFolderSource::new(&dir, 32, Preprocess::Torchvision).unwrap();
    let e = bad.next_batch(8).unwrap_err().to_string();
    assert!(e.contains("c.png") && e.contains("cannot decode"), "{e}");
    let empty = tmp("empty");
    assert!(ImageFolderSource::new(&empty, 32, Preprocess::Torchvision).err().unwrap().to_string().contains("no .png/.jpg/.jpeg"));
    assert!(ImageFolderSource::new(&empty.join("missing"), 32, Preprocess::Torchvision).is_err());
    // .npy: rank and dtype errors; a good one streams in batches.
    let npy = dir.join("x.npy");
    infoloss::io::npy::write_npy(&npy, &[3, 3, 8, 8], &common::random_vec(3 * 192, 1)).unwrap();
    let mut s = NpySource::new(&npy).unwrap();
    assert_eq!(s.next_batch(2).unwrap().unwrap().len(), 2);
    assert_eq!(s.next_batch(2).unwrap().unwrap().len(), 1);
    assert!(s.next_batch(2).unwrap().is_none());
    infoloss::io::npy::write_npy(&npy, &[3, 8, 8], &vec![0.0; 192]).unwrap();
    assert!(NpySource::new(&npy).err().unwrap().to_string().contains("rank 3"));
    let mut raw = Vec::new();
    use npyz::WriterBuilder;
    npyz::WriteOptions::<i32>::new()
        .default_dtype()
        .shape(&[1, 3, 2, 2])
        .writer(&mut raw)
        .begin_nd()
        .and_then(|mut w| {
            w.extend(0..12)?;
            w.finish()
        })
        .unwrap();
    std::fs::write(&npy, raw).unwrap();
    let e = NpySource::new(&npy).err().unwrap().to_string();
    assert!(e.contains("not float32"), "{e}");
}

#[test]
fn keras_weights_convert_to_torchvision_names() {
    use infoloss::model::weights::{NamedTensor, WeightsFile};
    // A torchvision-layout model, re-expressed in Keras layout by an independent inverse mapping.
    let cfg = ModelConfig { width: 0.35, classes: 7, padding: infoloss::layers::Padding::Tf, bn_eps: 1e-3, ..Default::default() };
    let mut src = MobileNetV2::seeded(&cfg, 4).unwrap();
    for (k, (_, _, u)) in src.conv_units_mut().into_iter().enumerate() {
        u.bn.running_mean = common::random_vec(u.out_channels(), 500 + k as u64);
    }
    src.refold();
    let mut keras = WeightsFile::default();
    let put = |f: &mut WeightsFile, name: &str, shape: Vec<usize>, data: Vec<f32>| {
        f.tensors.insert(name.to_string(), NamedTensor { shape, data });
    };
    let names = ["Conv1"].iter().map(|s| (s.to_string(), "bn_Conv1".to_string()));
    let mut layers: Vec<(String, String)> = names.collect();
    for b in &src.blocks {
        let p = if b.plan.index == 1 { "expanded_conv".to_string() } else { format!("block_{}", b.plan.index - 1) };
        if b.expand.is_some() {
            layers.push((format!("{p}_expand"), format!("{p}_expand_BN")));
        }
        layers.push((format!("{p}_depthwise"), format!("{p}_depthwise_BN")));
        layers.push((format!("{p}_project"), format!("{p}_project_BN")));
    }
    layers.push(("Conv_1".into(), "Conv_1_bn".into()));
    for ((_, _, u), (kc, kb)) in src.conv_units().into_iter().zip(&layers) {
        let s = u.kind.torch_shape(); // [o, i, kh, kw]
        let w = u.weight.as_slice(); // OIHW row-major
        let (o, i, kh, kw) = (s[0], s[1], s[2], s[3]);
        let depthwise = matches!(u.kind, infoloss::layers::ConvKind::Depthwise(_));
        // Keras: HWIO for convs ([kh, kw, i, o]); depthwise [kh, kw, C, 1] (C = o here, i = 1).
        let mut data = vec![0.0; w.len()];
        for a in 0..o {
            for b in 0..i {
                for y in 0..kh {
                    for x in 0..kw {
                        let v = w[((a * i + b) * kh + y) * kw + x];
                        let dst = if depthwise { (y * kw + x) * o + a + b } else { ((y * kw + x) * i + b) * o + a };
                        data[dst] = v;
                    }
                }
            }
        }
        let (name, shape) = if depthwise { (format!("{kc}/depthwise_kernel"), vec![kh, kw, o, 1]) } else { (format!("{kc}/kernel"), vec![kh, kw, i, o]) };
        put(&mut keras, &name, shape, data);
        put(&mut keras, &format!("{kb}/gamma"), vec![o], u.bn.gamma.clone());
        put(&mut keras, &format!("{kb}/beta"), vec![o], u.bn.beta.clone());
        put(&mut keras, &format!("{kb}/moving_mean"), vec![o], u.bn.running_mean.clone());
        put(&mut keras, &format!("{kb}/moving_variance"), vec![o], u.bn.running_var.clone());
    }
    let cls = &src.classifier;
    let (ci, co) = (cls.in_features(), cls.out_features());
    let dense: Vec<f32> = (0..ci).flat_map(|i| (0..co).map(move |o| (i, o))).map(|(i, o)| cls.weight[(i, o)]).collect();
    put(&mut keras, "predictions/kernel", vec![ci, co], dense);
    put(&mut keras, "predictions/bias", vec![co], cls.bias.clone());
    let converted =
        infoloss::model::keras::convert_keras(&keras, &ModelConfig { width: 0.35, classes: 7, ..Default::default() }, Path::new("keras.safetensors")).unwrap();
    assert_eq!(converted.config().padding, infoloss::layers::Padding::Tf);
    assert_eq!(converted.config().bn_eps, 1e-3);
    assert_eq!(converted, src);
    // A missing Keras tensor is named.
    keras.tensors.remove("block_3_depthwise_BN/gamma");
    let e = infoloss::model::keras::convert_keras(&keras, &ModelConfig { width: 0.35, classes: 7, ..Default::default() }, Path::new("k.safetensors"))
        .unwrap_err()
        .to_string();
    assert!(e.contains("block_3_depthwise_BN/gamma"), "{e}");
    let _ = Batch::new(vec![]);
}
