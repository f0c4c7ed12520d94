//! Regression tests for the defects a hostile-input probe found (issue 13): each fails on the code
//! before the fix. Grouped as the issue numbers them.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use infoloss::analysis::invertibility::{check_rank_eps, lemma2_check, lemma2_check_set, Lemma2Layer, RANK_EPS};
use infoloss::experiment::{run_spec, RunOptions, Spec};
use infoloss::model::{ModelConfig, WeightsFile};
use infoloss::tensor::{Batch, FeatureMap};
use infoloss::train::trainer::{train, train_until, TrainConfig};
use infoloss::MobileNetV2;
use nalgebra::DMatrix;

fn tmp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("infoloss-rel-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    d
}

fn bin() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_infoloss"));
    c.arg("--threads").arg("2");
    c
}

/// Runs the CLI, expects failure, returns the error line (never a panic). Errors are one line; clap's
/// flag-parsing errors add its usage hint below theirs.
fn cli_err(args: &[&str]) -> String {
    let out = bin().args(args).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(!out.status.success(), "{args:?} should fail; stdout: {}", String::from_utf8_lossy(&out.stdout));
    assert!(!err.contains("panicked"), "{args:?} panicked: {err}");
    let first = err.lines().next().unwrap_or_default().to_string();
    if !first.contains("invalid value") {
        assert_eq!(err.trim().lines().count(), 1, "{args:?}: not a one-line error: {err}");
    }
    first
}

fn tiny_model() -> ModelConfig {
    ModelConfig { width: 0.35, resolution: 32, classes: 10, ..Default::default() }
}

fn tiny_train(epochs: usize) -> TrainConfig {
    TrainConfig { epochs, batch: 16, train_limit: Some(32), val_limit: Some(16), ..Default::default() }
}

// ---- 1. resume never mixes epochs ------------------------------------------------------------

#[test]
fn resume_reads_only_the_checkpoint_the_pointer_names() {
    let (full, cut) = (tmp("ckpt-full"), tmp("ckpt-cut"));
    let mut reference = MobileNetV2::seeded(&tiny_model(), 0).unwrap();
    train(&mut reference, &tiny_train(3), &full, false, &mut |_| {}).unwrap();

    // Interrupted after epoch 1 …
    let mut first = MobileNetV2::seeded(&tiny_model(), 0).unwrap();
    train_until(&mut first, &tiny_train(3), &cut, false, Some(1), &mut |_| {}).unwrap();
    // … and killed while writing epoch 2: its weights already at the places the old code read them
    // from (top-level file, a half-written checkpoint folder), the pointer still on epoch 1.
    let epoch2 = reference.to_safetensors_bytes().unwrap();
    std::fs::write(cut.join("weights.safetensors"), &epoch2).unwrap();
    std::fs::create_dir_all(cut.join("ckpt-0002")).unwrap();
    std::fs::write(cut.join("ckpt-0002/weights.safetensors"), &epoch2).unwrap();

    let mut resumed = MobileNetV2::seeded(&tiny_model(), 0).unwrap();
    train(&mut resumed, &tiny_train(3), &cut, true, &mut |_| {}).unwrap();
    assert!(resumed == reference, "resumed run differs from the uninterrupted one");
    for f in ["metrics.csv", "weights.safetensors"] {
        assert_eq!(std::fs::read(full.join(f)).unwrap(), std::fs::read(cut.join(f)).unwrap(), "{f}");
    }
    // Only the newest checkpoint folder is kept.
    let dirs: Vec<String> =
        std::fs::read_dir(&cut).unwrap().flatten().map(|e| e.file_name().to_string_lossy().into_owned()).filter(|n| n.starts_with("ckpt-")).collect();
    assert_eq!(dirs, vec!["ckpt-0003".to_string()]);
}

#[test]
fn a_modified_checkpoint_file_is_refused() {
    let out = tmp("ckpt-tamper");
    let mut m = MobileNetV2::seeded(&tiny_model(), 0).unwrap();
    train_until(&mut m, &tiny_train(2), &out, false, Some(1), &mut |_| {}).unwrap();
    let state = out.join("ckpt-0001/train_state.json");
    let text = std::fs::read_to_string(&state).unwrap().replace("\"epochs_done\": 1", "\"epochs_done\": 2");
    std::fs::write(&state, text).unwrap();
    let mut again = MobileNetV2::seeded(&tiny_model(), 0).unwrap();
    let e = train(&mut again, &tiny_train(2), &out, true, &mut |_| {}).unwrap_err().to_string();
    assert!(e.contains("train_state.json") && e.contains("hash"), "{e}");
    // No pointer at all: --resume says so.
    let e = train(&mut again, &tiny_train(2), &tmp("ckpt-none"), true, &mut |_| {}).unwrap_err().to_string();
    assert!(e.contains("no checkpoint"), "{e}");
}

// ---- 2. non-finite values ----------------------------------------------------------------------

fn weights_with(edit: impl Fn(&mut MobileNetV2)) -> PathBuf {
    let mut m = MobileNetV2::seeded(&tiny_model(), 0).unwrap();
    edit(&mut m);
    let p = tmp("weights").with_extension("safetensors");
    std::fs::write(&p, m.to_safetensors_bytes().unwrap()).unwrap();
    p
}

#[test]
fn non_finite_weights_and_negative_variances_are_refused() {
    let nan = weights_with(|m| m.blocks[2].expand.as_mut().unwrap().weight.as_mut_slice()[5] = f32::NAN);
    let file = WeightsFile::read(&nan).unwrap();
    let e = MobileNetV2::new(&tiny_model()).unwrap().load_weights(&file, &nan).unwrap_err().to_string();
    assert!(e.contains("features.3.conv.0.0.weight") && e.contains("NaN"), "{e}");
    let neg = weights_with(|m| m.blocks[0].project.bn.running_var[1] = -0.5);
    let file = WeightsFile::read(&neg).unwrap();
    let e = MobileNetV2::new(&tiny_model()).unwrap().load_weights(&file, &neg).unwrap_err().to_string();
    assert!(e.contains("running_var") && e.contains("negative"), "{e}");
}

#[test]
fn non_finite_inputs_are_refused_by_the_library_and_the_cli() {
    let mut data = vec![0.5f32; 2 * 3 * 32 * 32];
    data[3 * 32 * 32 + 2 * 32 * 32 + 7 * 32 + 9] = f32::NAN;
    let e = Batch::from_nchw([2, 3, 32, 32], &data).unwrap_err().to_string();
    assert!(e.contains("image 1") && e.contains("channel 2") && e.contains("row 7") && e.contains("column 9"), "{e}");
    let mut img = FeatureMap::zeros(3, 32, 32);
    img.as_mut_slice()[0] = f32::INFINITY;
    assert!(Batch::new(vec![img]).is_err());
    // `analyze --lemma2` on a NaN input used to report "Lemma 2 holds at 0.00%".
    let npy = tmp("nan").with_extension("npy");
    infoloss::io::npy::write_npy(&npy, &[2, 3, 32, 32], &data).unwrap();
    let out = tmp("nan-out");
    let e =
        cli_err(&["analyze", "--input", npy.to_str().unwrap(), "--lemma2", "--width", "0.35", "--resolution", "32", "--out", out.to_str().unwrap(), "--quiet"]);
    assert!(e.contains("non-finite"), "{e}");
}

// ---- 3. every number has a range ---------------------------------------------------------------

#[test]
fn numbers_out_of_range_are_refused_with_their_range() {
    for bad in [-1.0, 0.0, f64::NAN, f64::INFINITY, 0.5] {
        assert!(check_rank_eps(bad).is_err(), "rank-eps {bad} accepted");
    }
    check_rank_eps(RANK_EPS).unwrap();
    let out = tmp("eps-out");
    let e = cli_err(&["analyze", "--noise", "1", "--lemma2", "--rank-eps=-1", "--width", "0.35", "--resolution", "32", "--out", out.to_str().unwrap()]);
    assert!(e.contains("rank-eps") && e.contains("-1"), "{e}");
    let e = cli_err(&["analyze", "--noise", "1", "--lemma2", "--rank-eps", "NaN", "--width", "0.35", "--resolution", "32", "--out", out.to_str().unwrap()]);
    assert!(e.contains("rank-eps"), "{e}");
    let e = cli_err(&["memory", "--resolution", "18446744073709551615"]);
    assert!(e.contains("resolution") && e.contains("2048"), "{e}");
    let e = cli_err(&["memory", "--resolution", "100000"]);
    assert!(e.contains("resolution"), "{e}");
    let out100k = Command::new(env!("CARGO_BIN_EXE_infoloss")).args(["--threads", "100000", "model"]).output().unwrap();
    let e = String::from_utf8_lossy(&out100k.stderr);
    assert!(!out100k.status.success() && e.contains("--threads") && e.contains("1024") && e.trim().lines().count() == 1, "{e}");
    let e = cli_err(&["jacobian", "--crop", "0", "--blocks", "2", "--width", "0.35", "--resolution", "32", "--out", out.to_str().unwrap()]);
    assert!(e.contains("crop"), "{e}");
    let e = cli_err(&["theory", "--samples", "0", "--n", "4", "--t", "2", "--out", out.to_str().unwrap()]);
    assert!(e.contains("samples"), "{e}");
}

#[test]
fn seed_ranges_are_bounded_and_planning_stays_instant() {
    for seeds in ["0..100000000", "0..18446744073709551615", "5..5"] {
        let t = std::time::Instant::now();
        let text = format!("name = \"s\"\nkind = \"spiral\"\nseeds = \"{seeds}\"\n[spiral]\npoints = 50\n");
        let e = Spec::parse(&text, Path::new("."), &[]).unwrap_err().to_string();
        assert!(e.contains("seeds"), "{e}");
        assert!(t.elapsed().as_secs_f64() < 5.0, "{seeds} took {:?}", t.elapsed());
    }
    let spec = tmp("seeds").with_extension("toml");
    std::fs::write(&spec, "name = \"s\"\nkind = \"spiral\"\n[spiral]\npoints = 50\n").unwrap();
    let e = cli_err(&["run", spec.to_str().unwrap(), "--set", "seeds=0..18446744073709551615", "--dry-run"]);
    assert!(e.contains("seeds"), "{e}");
    let e = cli_err(&["spiral", "--seeds", "0..18446744073709551615"]);
    assert!(e.contains("seeds"), "{e}");
}

#[test]
fn an_npy_whose_shape_overflows_is_refused() {
    // A valid header declaring 2^62 × 2^62 × 4 × 4 float32 values, followed by 16 bytes.
    let bytes = common::npy_with_shape("(4611686018427387904, 4611686018427387904, 4, 4)", &[0u8; 16]);
    let p = tmp("overflow").with_extension("npy");
    std::fs::write(&p, bytes).unwrap();
    let e = infoloss::io::npy::read_npy(&p).unwrap_err().to_string();
    assert!(e.contains("shape"), "{e}");
    let y = tmp("overflow-out").with_extension("npy");
    let w = weights_with(|_| {});
    cli_err(&["forward", "--weights", w.to_str().unwrap(), "--input", p.to_str().unwrap(), "--output", y.to_str().unwrap()]);
}

// ---- 4. unwritable output is found before the compute --------------------------------------------

#[test]
fn unwritable_output_fails_before_any_work() {
    // A regular file where a folder must go: unwritable even for root.
    let blocker = tmp("blocker");
    std::fs::write(&blocker, b"x").unwrap();
    let out = blocker.join("out");
    let mut epochs = 0;
    let mut m = MobileNetV2::seeded(&tiny_model(), 0).unwrap();
    let e = train(&mut m, &tiny_train(1), &out, false, &mut |_| epochs += 1).unwrap_err().to_string();
    assert_eq!(epochs, 0, "training ran before the output was checked");
    assert!(e.contains(&blocker.display().to_string()), "{e}");
    for args in [
        vec!["spiral", "--dims", "2", "--seeds", "0..2", "--points", "50"],
        vec!["theory", "--n", "4", "--t", "2", "--seeds", "0..2", "--samples", "5"],
        vec!["analyze", "--noise", "1", "--width", "0.35", "--resolution", "32"],
    ] {
        let mut args = args.clone();
        args.extend(["--out", out.to_str().unwrap()]);
        let e = cli_err(&args);
        // The folder is named, not one of the outputs (which the old code wrote after computing).
        assert!(e.contains(&blocker.display().to_string()) && !e.contains(".csv") && !e.contains(".png"), "{args:?}: {e}");
    }
}

// ---- 5. empty splits are errors, not zeros -------------------------------------------------------

use common::idx;

#[test]
fn empty_splits_and_empty_images_are_refused() {
    // IDX files declaring 0×0 images.
    let d = tmp("idx0");
    std::fs::create_dir_all(&d).unwrap();
    std::fs::write(d.join("t10k-images-idx3-ubyte"), idx(2051, &[3, 0, 0], &[])).unwrap();
    std::fs::write(d.join("t10k-labels-idx1-ubyte"), idx(2049, &[3], &[1, 2, 3])).unwrap();
    let e = infoloss::data::DataSpec::Mnist(d.clone()).open(infoloss::data::Split::Test, 32, 0).err().unwrap().to_string();
    assert!(e.contains("0×0"), "{e}");
    // An MNIST set with 0 training images.
    let d = tmp("idx-empty");
    std::fs::create_dir_all(&d).unwrap();
    for p in ["train", "t10k"] {
        std::fs::write(d.join(format!("{p}-images-idx3-ubyte")), idx(2051, &[0, 28, 28], &[])).unwrap();
        std::fs::write(d.join(format!("{p}-labels-idx1-ubyte")), idx(2049, &[0], &[])).unwrap();
    }
    let cfg = TrainConfig { data: format!("mnist:{}", d.display()), ..tiny_train(1) };
    let e = train(&mut MobileNetV2::seeded(&tiny_model(), 0).unwrap(), &cfg, &tmp("empty-out"), false, &mut |_| {}).unwrap_err().to_string();
    assert!(e.contains("no images"), "{e}");
    // A validation limit of 0, and `eval --limit 0`.
    let cfg = TrainConfig { val_limit: Some(0), ..tiny_train(1) };
    let e = train(&mut MobileNetV2::seeded(&tiny_model(), 0).unwrap(), &cfg, &tmp("val0"), false, &mut |_| {}).unwrap_err().to_string();
    assert!(e.contains("validation"), "{e}");
    let w = weights_with(|_| {});
    let e = cli_err(&["eval", "--weights", w.to_str().unwrap(), "--limit", "0"]);
    assert!(e.contains("nothing to evaluate"), "{e}");
    // A folder with a single image holds none out for validation.
    let f = tmp("one-image");
    std::fs::create_dir_all(f.join("cat")).unwrap();
    image::RgbImage::from_pixel(40, 40, image::Rgb([200, 10, 10])).save(f.join("cat/a.png")).unwrap();
    let cfg = TrainConfig { data: format!("folder:{}", f.display()), ..tiny_train(1) };
    let e = train(&mut MobileNetV2::seeded(&ModelConfig { classes: 1, ..tiny_model() }, 0).unwrap(), &cfg, &tmp("one-out"), false, &mut |_| {})
        .unwrap_err()
        .to_string();
    assert!(e.contains("no images"), "{e}");
}

// ---- 6. a failing write keeps its cause and leaves no temp files --------------------------------

#[test]
fn failed_writes_remove_their_temp_files_and_stale_ones_are_cleared() {
    let d = tmp("atomic");
    std::fs::create_dir_all(d.join("target")).unwrap();
    // Renaming a file over a non-empty folder fails: the temp file must go with the error.
    std::fs::write(d.join("target/inside"), b"x").unwrap();
    assert!(infoloss::io::atomic::write_atomic(&d.join("target"), b"data").is_err());
    let left: Vec<_> = std::fs::read_dir(&d).unwrap().flatten().map(|e| e.file_name()).filter(|n| n.to_string_lossy().ends_with(".tmp")).collect();
    assert!(left.is_empty(), "{left:?}");
    // A temp file of a dead process (pid far above pid_max) is removed by the next run.
    let out = tmp("stale");
    std::fs::create_dir_all(out.join("runs")).unwrap();
    let host = infoloss::io::atomic::host_token();
    let (dead1, dead2) = (format!(".summary.csv.{host}.999999999.0.tmp"), format!("runs/.result.json.{host}.999999998.3.tmp"));
    // Another host's temp file: its process cannot be judged from here, so it stays.
    let other = ".claims.csv.another-host.999999997.0.tmp";
    std::fs::write(out.join(&dead1), b"partial").unwrap();
    std::fs::write(out.join(&dead2), b"partial").unwrap();
    std::fs::write(out.join(other), b"partial").unwrap();
    // A temp file of the older format (no host, no counter) of a dead process.
    let legacy = ".runs.csv.999999996.tmp";
    std::fs::write(out.join(legacy), b"partial").unwrap();
    let spec = Spec::parse(SPIRAL, Path::new("."), &[]).unwrap();
    run_spec(&spec, &RunOptions { out: out.clone(), shard: None, jobs: 1, max_runs: None }, &|_| {}).unwrap();
    assert!(!out.join(&dead1).exists() && !out.join(&dead2).exists());
    assert!(out.join(other).exists(), "removed another host's temp file");
    assert!(!out.join(legacy).exists(), "kept a dead process's old-format temp file");
}

#[test]
fn a_report_that_cannot_be_written_keeps_the_failed_runs_errors() {
    // The training file is corrupt (so the run fails), the test file is fine (so the spec resolves), and summary.csv is a folder (so the report cannot be written).
    let d = tmp("corrupt-train");
    std::fs::create_dir_all(&d).unwrap();
    std::fs::write(d.join("train-images-idx3-ubyte"), idx(2051, &[5, 28, 28], &[0; 10])).unwrap();
    std::fs::write(d.join("train-labels-idx1-ubyte"), idx(2049, &[5], &[0; 5])).unwrap();
    std::fs::write(d.join("t10k-images-idx3-ubyte"), idx(2051, &[1, 28, 28], &[0; 784])).unwrap();
    std::fs::write(d.join("t10k-labels-idx1-ubyte"), idx(2049, &[1], &[0])).unwrap();
    let text = format!("name = \"bad\"\nkind = \"train\"\ndata = \"mnist:{}\"\n[model]\nwidth = 0.1\n[train]\nepochs = 1\n", d.display());
    let spec = Spec::parse(&text, Path::new("."), &[]).unwrap();
    let out = tmp("bad-out");
    std::fs::create_dir_all(out.join("summary.csv/x")).unwrap();
    let e = run_spec(&spec, &RunOptions { out: out.clone(), shard: None, jobs: 1, max_runs: None }, &|_| {}).unwrap_err().to_string();
    assert!(e.contains("failed") && e.contains("truncated"), "the run's own error is lost: {e}");
    assert!(e.contains("summary.csv"), "{e}");
}

// ---- 7. locking: each run once, reports from a consistent view -----------------------------------

const SPIRAL: &str = r#"
name = "sp"
kind = "spiral"
seeds = "0..20"
[spiral]
points = 400
[grid]
"spiral.n" = [2, 15]
[[claims]]
id = "c"
statement = "s"
metric = "invertible_fraction"
a = "n=15"
b = "n=2"
"#;

#[test]
fn two_processes_on_one_output_compute_each_run_once() {
    let spec = Spec::parse(SPIRAL, Path::new("."), &[]).unwrap();
    let out = tmp("locked");
    let opts = RunOptions { out: out.clone(), shard: None, jobs: 1, max_runs: None };
    let (a, b) = std::thread::scope(|s| {
        let a = s.spawn(|| run_spec(&spec, &opts, &|_| {}).unwrap());
        let b = s.spawn(|| run_spec(&spec, &opts, &|_| {}).unwrap());
        (a.join().unwrap(), b.join().unwrap())
    });
    let mut executed: Vec<String> = a.executed.iter().chain(&b.executed).cloned().collect();
    executed.sort();
    let n = executed.len();
    executed.dedup();
    assert_eq!(n, executed.len(), "some runs were computed twice");
    assert_eq!(n, spec.run_count());
    assert!(a.failed.is_empty() && b.failed.is_empty());
    // Whichever process wrote last, the report saw every run.
    let runs = std::fs::read_to_string(out.join("runs.csv")).unwrap();
    assert_eq!(runs.lines().count(), 1 + spec.run_count(), "{runs}");
    let claims = std::fs::read_to_string(out.join("claims.csv")).unwrap();
    let col = claims.lines().next().unwrap().split(',').position(|c| c == "p_holm").unwrap();
    assert!(claims.lines().skip(1).all(|l| l.split(',').nth(col) != Some("NaN")), "{claims}");
}

// ---- 8. reproducible weight files, honest configs, bounded reads ---------------------------------

#[test]
fn weight_files_are_byte_identical_and_headers_sorted() {
    let m = MobileNetV2::seeded(&tiny_model(), 3).unwrap();
    let first = m.to_safetensors_bytes().unwrap();
    for _ in 0..8 {
        assert_eq!(m.to_safetensors_bytes().unwrap(), first, "same weights, different bytes");
    }
    let n = u64::from_le_bytes(first[..8].try_into().unwrap()) as usize;
    assert_eq!((8 + n) % 8, 0, "data not 8-byte aligned");
    let header: serde_json::Value = serde_json::from_slice(&first[8..8 + n]).unwrap();
    let keys: Vec<&String> = header["__metadata__"].as_object().unwrap().keys().collect();
    assert_eq!(keys, ["format", "infoloss.config", "infoloss.version"]);
    let text = std::str::from_utf8(&first[8..8 + n]).unwrap();
    let pos: Vec<usize> = ["\"__metadata__\"", "\"classifier.1.bias\"", "\"features.0.0.weight\""].iter().map(|k| text.find(k).unwrap()).collect();
    assert!(pos.windows(2).all(|w| w[0] < w[1]), "keys not sorted: {pos:?}");
    // Still a valid file that loads to the same model.
    let p = tmp("sorted").with_extension("safetensors");
    std::fs::write(&p, &first).unwrap();
    let back = MobileNetV2::from_safetensors(m.config(), &p).unwrap();
    assert!(back == m);
}

#[test]
fn training_resolution_that_the_data_ignores_is_refused() {
    let cfg = tiny_train(1);
    let e = train(&mut MobileNetV2::seeded(&ModelConfig { resolution: 64, ..tiny_model() }, 0).unwrap(), &cfg, &tmp("res64"), false, &mut |_| {})
        .unwrap_err()
        .to_string();
    assert!(e.contains("resolution") && e.contains("32"), "{e}");
}

#[test]
fn a_suite_part_that_is_a_device_is_refused_at_once() {
    let d = tmp("suite");
    std::fs::create_dir_all(&d).unwrap();
    std::fs::write(d.join("s.toml"), "name = \"s\"\nkind = \"suite\"\n[[parts]]\nspec = \"/dev/zero\"\n").unwrap();
    let t = std::time::Instant::now();
    let e = Spec::load(&d.join("s.toml"), &[]).unwrap_err().to_string();
    assert!(e.contains("/dev/zero") && e.contains("not a regular file"), "{e}");
    assert!(t.elapsed().as_secs_f64() < 5.0);
}

#[test]
fn forward_does_not_create_folders_for_its_output() {
    let w = weights_with(|_| {});
    let x = tmp("fwd-x").with_extension("npy");
    infoloss::io::npy::write_npy(&x, &[1, 3, 32, 32], &vec![0.1; 3 * 32 * 32]).unwrap();
    let missing = tmp("fwd-missing");
    let y = missing.join("a/b/y.npy");
    let e = cli_err(&["forward", "--weights", w.to_str().unwrap(), "--input", x.to_str().unwrap(), "--output", y.to_str().unwrap()]);
    assert!(e.contains("does not exist"), "{e}");
    assert!(!missing.exists(), "forward created {}", missing.display());
}

// ---- 9. smaller ----------------------------------------------------------------------------------

#[test]
fn rank_deficient_positions_count_as_decided_by_the_svd() {
    // Rows 0..3 of B span only a 2-D subspace of R³: rank-deficient on that active set.
    let bt = DMatrix::from_row_slice(3, 4, &[1.0, 0.0, 1.0, 0.3, 0.0, 1.0, 1.0, 0.2, 0.0, 0.0, 0.0, 0.0]);
    let layer = Lemma2Layer::new(bt, vec![0.0; 4], None);
    let x = [1.0f32, 1.0, 0.0];
    let y = [1.0f32, 1.0, 2.0, 0.5];
    let v = lemma2_check(&layer, &x, &y, RANK_EPS).unwrap();
    assert!(v.enough_active && !v.full_rank);
    assert!(v.exact_svd, "the SVD decided this position but it was not counted");
}

#[test]
fn public_api_rejects_bad_shapes_instead_of_panicking() {
    let layer = Lemma2Layer::new(DMatrix::from_element(2, 3, 1.0), vec![0.0; 3], None);
    assert!(lemma2_check_set(&layer, &[0, 7], &[1.0, 1.0], &[1.0, 1.0, 1.0], RANK_EPS).is_err());
    assert!(lemma2_check_set(&layer, &[1, 0], &[1.0, 1.0], &[1.0, 1.0, 1.0], RANK_EPS).is_err());
    assert!(lemma2_check_set(&layer, &[0, 1], &[1.0], &[1.0, 1.0, 1.0], RANK_EPS).is_err());
    assert!(lemma2_check(&Lemma2Layer::new(DMatrix::from_element(2, 3, 1.0), vec![0.0; 1], None), &[1.0, 1.0], &[1.0, 1.0, 1.0], RANK_EPS).is_err());
    assert!(FeatureMap::from_matrix(3, 3, DMatrix::zeros(8, 2)).is_err());
    assert_eq!(FeatureMap::from_matrix(2, 4, DMatrix::zeros(8, 2)).unwrap().shape(), [2, 2, 4]);
}

#[test]
fn missing_tensor_hints_name_the_kind_of_file() {
    let empty = tmp("empty").with_extension("safetensors");
    std::fs::write(&empty, safetensors::serialize(Vec::<(String, safetensors::tensor::TensorView)>::new(), None).unwrap()).unwrap();
    let file = WeightsFile::read(&empty).unwrap();
    let ssd_cfg = ModelConfig { arch: infoloss::model::Arch::SsdliteMobilenetV2, width: 0.35, resolution: 64, classes: 3, ..Default::default() };
    let e = infoloss::model::Network::load(&ssd_cfg, &file, &empty).err().unwrap().to_string();
    assert!(e.contains("ssdlite_mobilenet_v2") && !e.contains("mobilenet_v2 state_dict"), "{e}");
    let e = MobileNetV2::new(&ModelConfig { arch: infoloss::model::Arch::MobilenetV1, ..tiny_model() })
        .unwrap()
        .load_weights(&file, &empty)
        .unwrap_err()
        .to_string();
    assert!(e.contains("mobilenet_v1"), "{e}");
}

#[test]
fn two_infoloss_processes_on_one_output_compute_each_run_once() {
    let dir = tmp("two-procs");
    std::fs::create_dir_all(&dir).unwrap();
    let spec = dir.join("sp.toml");
    std::fs::write(&spec, SPIRAL.replace("points = 400", "points = 3000")).unwrap();
    let out = dir.join("out");
    let start = || bin().args(["run", spec.to_str().unwrap(), "--out", out.to_str().unwrap(), "--quiet"]).stdout(std::process::Stdio::piped()).spawn().unwrap();
    let (a, b) = (start(), start());
    let executed = |c: std::process::Child| {
        let o = c.wait_with_output().unwrap();
        assert!(o.status.success());
        let text = String::from_utf8_lossy(&o.stdout).into_owned();
        text.lines().find_map(|l| l.split(" run(s) executed").next().and_then(|n| n.trim().parse::<usize>().ok())).unwrap_or_else(|| panic!("{text}"))
    };
    let (ea, eb) = (executed(a), executed(b));
    assert_eq!(ea + eb, 40, "runs computed by the two processes: {ea} + {eb}");
    let runs = std::fs::read_to_string(out.join("runs.csv")).unwrap();
    assert_eq!(runs.lines().count(), 41);
}

// ---- found by fuzzing ------------------------------------------------------------------------------

#[test]
fn an_npy_header_with_nested_braces_is_refused_at_once() {
    // tools/fuzz.sh's npy target: a header with ~100 nested `{` kept the header parser busy for more
    // than 30 s. Plain arrays never nest; such a header is refused before parsing.
    // The second: the same braces hidden behind a backslash-escaped quote (found after the first fix).
    // The third: a shape whose product overflows inside the parser (a panic with debug assertions).
    for name in ["npy-nested-braces-timeout.npy", "npy-escaped-quote-braces-timeout.npy", "npy-shape-product-overflow.npy"] {
        let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/fuzz").join(name);
        let t = std::time::Instant::now();
        let e = infoloss::io::npy::read_npy(&p).unwrap_err().to_string();
        assert!(t.elapsed().as_secs_f64() < 1.0, "{name} took {:?}", t.elapsed());
        assert!((e.contains("header") || e.contains("shape")) && e.contains("np.save"), "{name}: {e}");
    }
    // Real files still read: the torchvision fixture (a plain 4-D float32 array).
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/tv_input.npy");
    assert_eq!(infoloss::io::npy::read_npy(&fixture).unwrap().shape.len(), 4);
}

// ---- found by probing the binary -------------------------------------------------------------------

#[test]
fn benchmark_and_list_numbers_are_bounded() {
    // `bench train --batch 0` panicked in a kernel; iterations and batches have ranges.
    let e = cli_err(&["bench", "train", "--width", "0.35", "--resolution", "32", "--classes", "10", "--batch", "0", "--iters", "1"]);
    assert!(e.contains("--batch"), "{e}");
    let e = cli_err(&["bench", "forward", "--width", "0.35", "--resolution", "32", "--iters", "18446744073709551615"]);
    assert!(e.contains("--iters"), "{e}");
    // `memory --resolutions` wrapped around; --bytes-per-element too.
    let e = cli_err(&["memory", "--resolutions", "18446744073709551615,4294967296"]);
    assert!(e.contains("--resolutions") && e.contains("2048"), "{e}");
    let e = cli_err(&["memory", "--bytes-per-element", "18446744073709551615"]);
    assert!(e.contains("--bytes-per-element"), "{e}");
    // A detector with 100,000 classes aborted on a 27 GB allocation.
    let e = cli_err(&["hooks", "--arch", "ssd_mobilenet_v2", "--resolution", "32", "--classes", "100000"]);
    assert!(e.contains("classes") && e.contains("1000"), "{e}");
    let e = cli_err(&["analyze", "--noise", "18446744073709551615", "--width", "0.35", "--resolution", "32"]);
    assert!(e.contains("--noise"), "{e}");
    let e = cli_err(&["train", "--epochs", "18446744073709551615", "--width", "0.35"]);
    assert!(e.contains("epochs"), "{e}");
    let e = cli_err(&["spiral", "--dims", "4096", "--seeds", "0", "--points", "100000"]);
    assert!(e.contains("points") && e.contains("20000"), "{e}");
}

#[test]
fn eval_refuses_a_model_that_cannot_predict_the_data() {
    // A 3-class model on the 10-class set used to report an accuracy.
    let p = tmp("c3").with_extension("safetensors");
    let m = MobileNetV2::seeded(&ModelConfig { classes: 3, ..tiny_model() }, 0).unwrap();
    std::fs::write(&p, m.to_safetensors_bytes().unwrap()).unwrap();
    let e = cli_err(&["eval", "--weights", p.to_str().unwrap(), "--limit", "20"]);
    assert!(e.contains("10 classes") && e.contains("predicts 3"), "{e}");
    let w = weights_with(|_| {});
    let e = cli_err(&["eval", "--weights", w.to_str().unwrap(), "--limit", "0"]);
    assert!(e.contains("--limit = 0") && !e.contains("Some"), "{e}");
}

#[test]
fn resume_with_another_config_names_the_key_that_differs() {
    let out = tmp("resume-key");
    let mut m = MobileNetV2::seeded(&tiny_model(), 0).unwrap();
    train_until(&mut m, &tiny_train(2), &out, false, Some(1), &mut |_| {}).unwrap();
    let other = TrainConfig { batch: 8, ..tiny_train(2) };
    let e = train(&mut MobileNetV2::seeded(&tiny_model(), 0).unwrap(), &other, &out, true, &mut |_| {}).unwrap_err().to_string();
    assert!(e.contains("train.batch = 16 (now 8)"), "{e}");
    // --resume where there is nothing to resume creates nothing.
    let none = tmp("resume-nothing");
    assert!(train(&mut m, &tiny_train(2), &none, true, &mut |_| {}).is_err());
    assert!(!none.exists(), "--resume created {}", none.display());
}

#[test]
fn slurm_refuses_options_it_sets_itself_and_a_missing_binary() {
    let spec = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/slurm/suite.toml");
    let out = tmp("slurm-own");
    let e = cli_err(&["slurm", spec.to_str().unwrap(), "--tasks", "2", "--out", out.to_str().unwrap(), "--dry-run", "--", "--array=0-99"]);
    assert!(e.contains("--array=0-99") && e.contains("--tasks"), "{e}");
    let e = cli_err(&["slurm", spec.to_str().unwrap(), "--tasks", "2", "--out", out.to_str().unwrap(), "--dry-run", "--bin", "/no/such/infoloss"]);
    assert!(e.contains("--bin") && e.contains("/no/such/infoloss"), "{e}");
}

#[test]
fn every_header_numpy_writes_for_float_arrays_still_reads() {
    // Written by NumPy 2's np.save / format.write_array (versions 1.0, 2.0, 3.0): the header check
    // in front of the parser must accept all of them.
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/numpy");
    for (name, shape) in [
        ("d0.npy", vec![]),
        ("d1.npy", vec![5]),
        ("d2f64.npy", vec![3, 3]),
        ("d4.npy", vec![2, 3, 4, 5]),
        ("empty.npy", vec![0, 3]),
        ("v2.npy", vec![2, 2]),
        ("v3.npy", vec![2, 2]),
    ] {
        let a = infoloss::io::npy::read_npy(&dir.join(name)).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(a.shape, shape, "{name}");
        assert_eq!(a.data.len(), shape.iter().product::<usize>(), "{name}");
    }
    let e = infoloss::io::npy::read_npy(&dir.join("fortran.npy")).unwrap_err().to_string();
    assert!(e.contains("Fortran"), "{e}");
}

#[test]
fn slurm_refuses_abbreviated_and_attached_forms_of_its_own_options() {
    let spec = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/slurm/suite.toml");
    let out = tmp("slurm-own-forms");
    for opt in ["--arr=0-9", "-a0-3", "--depend=afterok:1", "-o/x.out", "--parsable"] {
        let e = cli_err(&["slurm", spec.to_str().unwrap(), "--tasks", "2", "--out", out.to_str().unwrap(), "--dry-run", "--", opt]);
        assert!(e.contains(opt), "{opt}: {e}");
    }
    // Unrelated options pass.
    let ok = bin()
        .args(["slurm", spec.to_str().unwrap(), "--tasks", "2", "--out", out.to_str().unwrap(), "--dry-run", "--", "--time=01:00:00", "--mem=4G"])
        .output()
        .unwrap();
    assert!(ok.status.success(), "{}", String::from_utf8_lossy(&ok.stderr));
}

#[test]
fn errors_say_whether_the_input_the_system_or_infoloss_is_at_fault() {
    use infoloss::{Error, ErrorKind};
    use std::error::Error as _;
    assert_eq!(Error::config("k", 1, "fix").kind(), ErrorKind::User);
    assert_eq!(infoloss::data::DataSpec::Mnist("/nonexistent".into()).open(infoloss::data::Split::Train, 32, 0).err().unwrap().kind(), ErrorKind::User);
    let io = Error::io("/x", std::io::Error::new(std::io::ErrorKind::PermissionDenied, "denied"));
    assert_eq!(io.kind(), ErrorKind::Io);
    // An internal failure keeps its cause as the source (a chain prints it once, after the context).
    let bad: serde_json::Error = serde_json::from_str::<u8>("x").unwrap_err();
    let cause = bad.to_string();
    let e = Error::internal("serialising a run result", bad);
    assert_eq!(e.kind(), ErrorKind::Internal);
    assert_eq!(e.source().map(|s| s.to_string()), Some(cause.clone()));
    assert!(!e.to_string().contains(&cause), "{e}");
    assert_eq!(format!("{:#}", anyhow::Error::from(e)), format!("internal error while serialising a run result (please report it): {cause}"));
}

#[test]
fn networks_beyond_memory_and_files_that_lie_about_their_size_are_refused_before_allocating() {
    use infoloss::model::ModelConfig;
    // 5 GB of classifier weights, and a widest activation of 2.7e9 values: refused by validate().
    let huge = ModelConfig { width: 10.0, resolution: 2048, classes: 100_000, ..Default::default() };
    let e = huge.validate().unwrap_err().to_string();
    assert!(e.contains("weights") && e.contains("lower the width"), "{e}");
    let wide = ModelConfig { width: 4.0, expansion: Some(64.0), resolution: 224, ..Default::default() };
    assert!(wide.validate().is_err());
    // The paper's networks stay well inside.
    assert!(ModelConfig::default().validate().is_ok());
    assert!(ModelConfig { width: 1.4, resolution: 224, ..Default::default() }.validate().is_ok());
    // A weights "file" that is a device, and an .npy header declaring far more data than the file holds.
    let e = infoloss::model::WeightsFile::read(std::path::Path::new("/dev/zero")).unwrap_err().to_string();
    assert!(e.contains("not a regular file"), "{e}");
    let d = tmp("npy-lies");
    std::fs::create_dir_all(&d).unwrap();
    let p = d.join("huge.npy");
    let bytes = common::npy_with_shape("(100000, 3, 100000, 100000)", &[]);
    std::fs::write(&p, bytes).unwrap();
    let e = infoloss::data::NpySource::new(&p).err().unwrap().to_string();
    assert!(e.contains("truncated"), "{e}");
    // Clamp with crossed or NaN bounds never panics.
    use infoloss::hooks::{interventions::Clamp, HookName, Intervention};
    let mut fm = infoloss::FeatureMap::from_chw(1, 1, 3, vec![-1.0, 0.5, 2.0]).unwrap();
    Clamp { lo: 1.0, hi: 0.0 }.intervene(&HookName::Pool, 0, &mut fm);
    Clamp { lo: f32::NAN, hi: 1.0 }.intervene(&HookName::Pool, 0, &mut fm);
    assert!(fm.as_slice().iter().all(|v| v.is_finite()));
}
