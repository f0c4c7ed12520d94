//! The `infoloss` binary: exact command forms from the README, outputs and one-line errors.

use std::path::{Path, PathBuf};
use std::process::Command;

fn bin() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_infoloss"));
    c.arg("--threads").arg("2");
    c
}

fn run_ok(args: &[&str]) -> String {
    let out = bin().args(args).output().unwrap();
    assert!(out.status.success(), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

fn run_err(args: &[&str]) -> String {
    let out = bin().args(args).output().unwrap();
    assert!(!out.status.success(), "{args:?} should fail");
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(!err.contains("panicked"), "{err}");
    err
}

fn tmp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("infoloss-cli-{}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    d.join(name)
}

fn fixture(name: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures").join(name).display().to_string()
}

#[test]
fn model_json_has_exact_totals_and_layers() {
    let v: serde_json::Value = serde_json::from_str(&run_ok(&["model", "--json"])).unwrap();
    assert_eq!(v["params"], 3_504_872);
    assert_eq!(v["macs"], 300_774_272);
    assert_eq!(v["shortcuts"], 10);
    assert_eq!(v["threads"], 2);
    let layers = v["layers"].as_array().unwrap();
    let first = &layers[0];
    assert_eq!(first["name"], "features.0.0");
    assert_eq!(first["kind"], "conv");
    assert_eq!(first["output"], serde_json::json!([32, 112, 112]));
    let sum: u64 = layers.iter().map(|l| l["macs"].as_u64().unwrap()).sum();
    assert_eq!(sum, 300_774_272);
    let v: serde_json::Value = serde_json::from_str(&run_ok(&["model", "--json", "--shortcut", "expansion"])).unwrap();
    assert_eq!(v["shortcuts"], 7);
}

#[test]
fn model_table_ends_with_totals() {
    let out = run_ok(&["model", "--width", "0.5", "--resolution", "160", "--classes", "10"]);
    assert!(out.lines().last().unwrap().starts_with("total: "), "{out}");
    assert!(out.contains("features.17.conv.3"));
}

#[test]
fn forward_writes_torchvision_logits() {
    let y = tmp("fixture_logits.npy");
    run_ok(&[
        "forward",
        "--weights",
        &fixture("tv_mobilenet_v2_w025.safetensors"),
        "--input",
        &fixture("tv_input.npy"),
        "--output",
        y.to_str().unwrap(),
        "--width",
        "0.25",
        "--classes",
        "10",
    ]);
    let got = infoloss::io::npy::read_npy(&y).unwrap();
    let want = infoloss::io::npy::read_npy(Path::new(&fixture("tv_logits.npy"))).unwrap();
    assert_eq!(got.shape, vec![2, 10]);
    for (a, b) in got.data.iter().zip(&want.data) {
        assert!((a - b).abs() < 1e-3, "{a} vs {b}");
    }
}

#[test]
fn forward_rejects_flags_that_contradict_stored_config() {
    let cfg = infoloss::ModelConfig { width: 0.35, resolution: 64, classes: 10, ..Default::default() };
    let w = tmp("stored.safetensors");
    infoloss::MobileNetV2::seeded(&cfg, 1).unwrap().save_safetensors(&w).unwrap();
    let x = tmp("x.npy");
    infoloss::io::npy::write_npy(&x, &[1, 3, 64, 64], &vec![0.5; 3 * 64 * 64]).unwrap();
    let y = tmp("y.npy");
    let (w, x, y) = (w.to_str().unwrap(), x.to_str().unwrap(), y.to_str().unwrap());
    // The stored config is used when no flag is given…
    run_ok(&["forward", "--weights", w, "--input", x, "--output", y]);
    // …and a contradicting flag names the key.
    let e = run_err(&["forward", "--weights", w, "--input", x, "--output", y, "--bottleneck", "relu6"]);
    assert!(e.contains("config mismatch for --bottleneck") && e.lines().count() == 1, "{e}");
    // A foreign file checked by shapes: the fixture with the default width.
    let e = run_err(&["forward", "--weights", &fixture("tv_mobilenet_v2_w025.safetensors"), "--input", x, "--output", y, "--classes", "10"]);
    assert!(e.contains("shape mismatch for features.0.0.weight"), "{e}");
}

#[test]
fn bad_inputs_give_one_line_errors() {
    let x3 = tmp("rank3.npy");
    infoloss::io::npy::write_npy(&x3, &[3, 8, 8], &vec![0.0; 192]).unwrap();
    let w = fixture("tv_mobilenet_v2_w025.safetensors");
    let flags = ["--width", "0.25", "--classes", "10"];
    let mut args = vec!["forward", "--weights", w.as_str(), "--input", x3.to_str().unwrap(), "--output", "/tmp/never.npy"];
    args.extend(flags);
    let e = run_err(&args);
    assert!(e.contains("rank 3") && e.contains("NCHW"), "{e}");
    let e = run_err(&["model", "--bottleneck", "sigmoid"]);
    assert!(e.contains("--bottleneck") && e.contains("sigmoid") && e.contains("linear, relu6, relu"), "{e}");
    let e = run_err(&["model", "--strides", "2,2"]);
    assert!(e.contains("strides"), "{e}");
}

#[test]
fn bench_forward_last_line_is_machine_readable() {
    let out = run_ok(&["bench", "forward", "--width", "0.35", "--resolution", "64", "--batch", "2", "--iters", "1"]);
    let last = out.lines().last().unwrap();
    assert!(last.starts_with("forward: ") && last.contains(" img/s (") && last.ends_with(" ms/batch)"), "{last}");
}

#[test]
fn hooks_json_lists_every_site_with_threshold() {
    let v: serde_json::Value = serde_json::from_str(&run_ok(&["hooks", "--json"])).unwrap();
    let sites = v.as_array().unwrap();
    let post = sites.iter().filter(|s| s["name"].as_str().unwrap().ends_with(".post")).count();
    assert_eq!(post, 35);
    let s = sites.iter().find(|s| s["name"] == "blocks.3.expand.post").unwrap();
    assert_eq!(s["shape"], serde_json::json!([144, 56, 56]));
    assert_eq!(s["channels"], 144);
    assert_eq!(s["threshold"], 24);
}

#[test]
fn bench_analyze_reports_overhead_against_forward() {
    let out = run_ok(&["bench", "analyze", "--width", "0.35", "--resolution", "64", "--batch", "2", "--iters", "1"]);
    let last = out.lines().last().unwrap();
    assert!(last.starts_with("analyze: ") && last.contains(" img/s (overhead ") && last.ends_with("% vs forward)"), "{last}");
}

#[test]
fn analyze_spiral_theory_jacobian_run_and_write_their_files() {
    let out = tmp("an");
    let o = out.to_str().unwrap();
    let s = run_ok(&["analyze", "--noise", "3", "--batch", "2", "--lemma2", "--width", "0.35", "--resolution", "64", "--classes", "10", "--out", o, "--quiet"]);
    assert!(s.contains("Lemma 2 holds at"), "{s}");
    for f in ["activation_patterns.csv", "lemma2.csv", "activation_patterns_abs.png", "channels.csv.meta.json"] {
        assert!(out.join(f).exists(), "{f}");
    }
    let sp = tmp("sp");
    run_ok(&["spiral", "--dims", "2,5", "--seeds", "0..3", "--points", "100", "--out", sp.to_str().unwrap()]);
    let csv = std::fs::read_to_string(sp.join("spiral.csv")).unwrap();
    assert!(csv.starts_with("n,seed,points,invertible_fraction,theory_lemma2_invertible"), "{csv}");
    assert_eq!(csv.lines().count(), 1 + 2 * 3);
    let th = tmp("th");
    let s = run_ok(&["theory", "--n", "8", "--t", "1.5,3", "--seeds", "0..2", "--samples", "50", "--out", th.to_str().unwrap()]);
    assert!(s.contains("theory inside the empirical 95% interval"));
    let jc = tmp("jc");
    let s = run_ok(&["jacobian", "--blocks", "2,4", "--width", "0.35", "--resolution", "64", "--out", jc.to_str().unwrap()]);
    assert!(s.contains("rank") && jc.join("jacobian.csv").exists());
}

#[test]
fn analyze_bad_inputs_are_one_line_errors() {
    let e = run_err(&["analyze", "--images", "/nonexistent/folder"]);
    assert!(e.contains("/nonexistent/folder") && e.lines().count() == 1, "{e}");
    let e = run_err(&["analyze", "--preprocess", "caffe", "--noise", "1"]);
    assert!(e.contains("--preprocess") && e.contains("keras"), "{e}");
    let e = run_err(&["analyze", "--width", "0.35"]);
    assert!(e.contains("no inputs"), "{e}");
    let w = fixture("tv_mobilenet_v2_w025.safetensors");
    let e = run_err(&["analyze", "--weights", &w, "--noise", "1"]);
    assert!(e.contains("shape mismatch"), "{e}");
}

#[test]
fn memory_json_has_table3_figures() {
    let v: serde_json::Value = serde_json::from_str(&run_ok(&["memory", "--fused", "--json", "--bytes-per-element", "2"])).unwrap();
    assert_eq!(v["max_tensor_bytes"], 401_408);
    assert_eq!(v["rows"].as_array().unwrap().len(), 1);
    let v: serde_json::Value = serde_json::from_str(&run_ok(&["memory", "--arch", "mobilenet_v1", "--fused", "--json"])).unwrap();
    assert_eq!(v["max_tensor_bytes"], 1_605_632);
    let v: serde_json::Value = serde_json::from_str(&run_ok(&["memory", "--json", "--resolutions", "96,224"])).unwrap();
    assert_eq!(v["rows"].as_array().unwrap().len(), 2);
    assert!(v["peak_bytes"].as_u64().unwrap() > v["max_tensor_bytes"].as_u64().unwrap());
}

#[test]
fn bench_split_measures_falling_peaks() {
    let out = tmp("split");
    let s = run_ok(&["bench", "split", "--splits", "1,4,C", "--iters", "1", "--width", "0.5", "--resolution", "96", "--out", out.to_str().unwrap()]);
    let peaks: Vec<u64> =
        s.lines().filter(|l| l.trim_start().starts_with(['1', '4', 'C'])).map(|l| l.split_whitespace().nth(1).unwrap().parse().unwrap()).collect();
    assert_eq!(peaks.len(), 3, "{s}");
    assert!(peaks[0] > peaks[1] && peaks[1] > peaks[2], "{peaks:?}");
    assert!(out.join("split.csv").exists() && out.join("split_memory.png").exists());
}

#[test]
fn train_and_eval_run_on_the_embedded_data() {
    let out = tmp("train");
    let o = out.to_str().unwrap();
    let s = run_ok(&["train", "--width", "0.35", "--epochs", "1", "--batch", "16", "--train-limit", "32", "--val-limit", "16", "--out", o, "--quiet"]);
    assert!(s.contains("epoch   1:"), "{s}");
    let csv = std::fs::read_to_string(out.join("metrics.csv")).unwrap();
    assert!(csv.starts_with("epoch,train_loss,train_acc,val_loss,val_acc,lr\n1,"), "{csv}");
    assert!(out.join("timing.csv").exists() && out.join("checkpoint.json").exists() && out.join("ckpt-0001/optimizer.safetensors").exists());
    let w = out.join("weights.safetensors");
    let s = run_ok(&["eval", "--weights", w.to_str().unwrap(), "--limit", "16"]);
    assert!(s.contains("accuracy"), "{s}");
    let e = run_err(&["train", "--optimizer", "lamb", "--epochs", "1"]);
    assert!(e.contains("--optimizer") && e.contains("adamw"), "{e}");
    let e = run_err(&["train", "--data", "imagenet:/x", "--epochs", "1"]);
    assert!(e.contains("data") && e.contains("synthetic"), "{e}");
    let e = run_err(&["train", "--data", "cifar:/nonexistent", "--epochs", "1"]);
    assert!(e.contains("/nonexistent"), "{e}");
}

#[test]
fn run_spec_then_shards_and_merge_from_the_command_line() {
    let dir = tmp("run-cli");
    std::fs::create_dir_all(&dir).unwrap();
    let spec = dir.join("sp.toml");
    std::fs::write(&spec, "name = \"sp\"\nkind = \"spiral\"\nseeds = \"0..5\"\n[spiral]\npoints = 50\n[grid]\n\"spiral.n\" = [2, 30]\n[[claims]]\nid = \"c\"\nstatement = \"s\"\nmetric = \"pinv_shape_error\"\na = \"n=2\"\nb = \"n=30\"\n").unwrap();
    let (whole, s1, s2, merged) = (dir.join("whole"), dir.join("s1"), dir.join("s2"), dir.join("merged"));
    let s = |p: &PathBuf| p.display().to_string();
    let out = run_ok(&["run", &s(&spec), "--out", &s(&whole), "--quiet"]);
    assert!(out.contains("10 run(s) executed") && out.contains("reproduced"), "{out}");
    let again = run_ok(&["run", &s(&spec), "--out", &s(&whole), "--quiet"]);
    assert!(again.contains("0 run(s) executed, 10 already finished"), "{again}");
    run_ok(&["run", &s(&spec), "--out", &s(&s1), "--shard", "1/2", "--jobs", "2", "--quiet"]);
    run_ok(&["run", &s(&spec), "--out", &s(&s2), "--shard", "2/2", "--quiet"]);
    let m = run_ok(&["merge", &s(&s1), &s(&s2), "--out", &s(&merged)]);
    assert!(m.contains("10 of 10 runs finished"), "{m}");
    for f in ["summary.csv", "claims.csv", "runs.csv"] {
        assert_eq!(std::fs::read(whole.join(f)).unwrap(), std::fs::read(merged.join(f)).unwrap(), "{f}");
    }
    let err = run_err(&["run", &s(&spec), "--shard", "3/2"]);
    assert!(err.contains("--shard") && err.contains("K/N") && err.lines().count() == 1, "{err}");
    let err = run_err(&["run", &s(&spec), "--set", "spiral.pionts=5"]);
    assert!(err.contains("spiral.pionts") && err.lines().count() == 1, "{err}");
}
