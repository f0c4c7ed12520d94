//! Weights I/O: the torchvision fixture, round trips, half precision, and every bad-file error.

mod common;

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use infoloss::bench::random_batch;
use infoloss::io::npy::read_npy;
use infoloss::model::{ModelConfig, WeightsFile};
use infoloss::{Batch, Error, MobileNetV2};
use safetensors::{tensor::TensorView, Dtype};

/// Logits may differ from torchvision's by float reassociation only: |Δ| ≤ rtol · max|logit|.
const TORCHVISION_LOGITS_RTOL: f32 = 1e-4;

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures").join(name)
}

fn fixture_config() -> ModelConfig {
    ModelConfig { width: 0.25, classes: 10, ..Default::default() }
}

#[test]
fn torchvision_fixture_gives_torchvision_logits() {
    // Made by bench/make_fixture.py: torchvision mobilenet_v2(width_mult=0.25, num_classes=10),
    // BN statistics calibrated on random data, saved with safetensors.torch.save_file.
    let m = MobileNetV2::from_safetensors(&fixture_config(), &fixture("tv_mobilenet_v2_w025.safetensors")).unwrap();
    let x = read_npy(&fixture("tv_input.npy")).unwrap();
    let want = read_npy(&fixture("tv_logits.npy")).unwrap();
    let batch = Batch::from_nchw(x.shape.clone().try_into().unwrap(), &x.data).unwrap();
    let y = m.forward(&batch).unwrap();
    assert_eq!(y.shape(), (2, 10));
    let scale = want.data.iter().fold(0.0f32, |a, v| a.max(v.abs()));
    for i in 0..2 {
        for j in 0..10 {
            let d = (y[(i, j)] - want.data[i * 10 + j]).abs();
            assert!(d <= TORCHVISION_LOGITS_RTOL * scale, "logit ({i},{j}): {} vs {}", y[(i, j)], want.data[i * 10 + j]);
        }
    }
    // The two images must give clearly different logits, or the comparison proves little.
    let spread = (0..10).map(|j| (want.data[j] - want.data[10 + j]).abs()).fold(0.0f32, f32::max);
    assert!(spread > 100.0 * TORCHVISION_LOGITS_RTOL * scale);
}

#[test]
fn round_trip_preserves_every_tensor_and_the_config() {
    let cfg = ModelConfig { width: 0.35, resolution: 64, classes: 7, shortcut: infoloss::model::Shortcut::Expansion, ..Default::default() };
    let a = MobileNetV2::seeded(&cfg, 3).unwrap();
    let dir = tempdir();
    let path = dir.join("w.safetensors");
    a.save_safetensors(&path).unwrap();
    let file = WeightsFile::read(&path).unwrap();
    assert_eq!(file.config.as_ref(), Some(&cfg));
    // PyTorch's strict load_state_dict needs every BatchNorm's num_batches_tracked (an I64 scalar).
    let bytes = std::fs::read(&path).unwrap();
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let counter = st.tensor("features.3.conv.1.1.num_batches_tracked").unwrap();
    assert_eq!((counter.dtype(), counter.shape()), (Dtype::I64, &[][..]));
    assert_eq!(st.names().iter().filter(|n| n.ends_with("num_batches_tracked")).count(), a.conv_units().len());
    let mut b = MobileNetV2::new(&cfg).unwrap();
    b.load_weights(&file, &path).unwrap();
    assert_eq!(a, b);
    let x = random_batch(2, 64, 1).unwrap();
    assert_eq!(a.forward(&x).unwrap(), b.forward(&x).unwrap());
}

fn tempdir() -> PathBuf {
    let d = std::env::temp_dir().join(format!("infoloss-test-{}-{}", std::process::id(), rand_suffix()));
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn rand_suffix() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    N.fetch_add(1, Ordering::Relaxed)
}

/// Writes tensors (name, dtype, shape, raw bytes) as a foreign safetensors file.
fn write_raw(path: &Path, tensors: &[(String, Dtype, Vec<usize>, Vec<u8>)]) {
    let views: Vec<(String, TensorView)> = tensors.iter().map(|(n, d, s, b)| (n.clone(), TensorView::new(*d, s.clone(), b).unwrap())).collect();
    std::fs::write(path, safetensors::serialize(views, None::<HashMap<String, String>>).unwrap()).unwrap();
}

fn f32_tensors(m: &MobileNetV2) -> Vec<(String, Dtype, Vec<usize>, Vec<u8>)> {
    m.state_dict().into_iter().map(|(n, s, d)| (n, Dtype::F32, s, d.iter().flat_map(|v| v.to_le_bytes()).collect())).collect()
}

fn load_err(cfg: &ModelConfig, path: &Path) -> Error {
    MobileNetV2::from_safetensors(cfg, path).unwrap_err()
}

#[test]
fn half_precision_is_up_cast_and_num_batches_tracked_ignored() {
    let cfg = fixture_config();
    let a = MobileNetV2::seeded(&cfg, 5).unwrap();
    let mut ts: Vec<_> = a
        .state_dict()
        .into_iter()
        .map(|(n, s, d)| (n, Dtype::F16, s, d.iter().flat_map(|v| half::f16::from_f32(*v).to_le_bytes()).collect::<Vec<u8>>()))
        .collect();
    ts.push(("features.0.1.num_batches_tracked".into(), Dtype::I64, vec![], 0i64.to_le_bytes().to_vec()));
    let path = tempdir().join("half.safetensors");
    write_raw(&path, &ts);
    let b = MobileNetV2::from_safetensors(&cfg, &path).unwrap();
    for ((_, _, x), (_, _, y)) in a.state_dict().iter().zip(b.state_dict().iter()) {
        for (u, v) in x.iter().zip(y.iter()) {
            assert!((u - v).abs() <= 1e-3 * u.abs().max(1e-2), "{u} vs {v}");
        }
    }
}

#[test]
fn missing_key_names_the_key_and_shape() {
    let cfg = fixture_config();
    let mut ts = f32_tensors(&MobileNetV2::seeded(&cfg, 1).unwrap());
    ts.retain(|t| t.0 != "features.3.conv.1.0.weight");
    let path = tempdir().join("missing.safetensors");
    write_raw(&path, &ts);
    let e = load_err(&cfg, &path).to_string();
    assert!(e.contains("missing tensor features.3.conv.1.0.weight") && e.contains("[48, 1, 3, 3]"), "{e}");
}

#[test]
fn unexpected_key_is_named() {
    let cfg = fixture_config();
    let mut ts = f32_tensors(&MobileNetV2::seeded(&cfg, 1).unwrap());
    ts.push(("features.19.0.weight".into(), Dtype::F32, vec![1], 1.0f32.to_le_bytes().to_vec()));
    let path = tempdir().join("extra.safetensors");
    write_raw(&path, &ts);
    let e = load_err(&cfg, &path).to_string();
    assert!(e.contains("unexpected tensor features.19.0.weight"), "{e}");
}

#[test]
fn wrong_shape_names_key_expected_and_found() {
    // Weights of a wider model loaded into a narrower config.
    let wide = MobileNetV2::seeded(&ModelConfig { width: 0.35, classes: 10, ..Default::default() }, 1).unwrap();
    let path = tempdir().join("wide.safetensors");
    write_raw(&path, &f32_tensors(&wide));
    let e = load_err(&fixture_config(), &path);
    assert_eq!(e.to_string(), "shape mismatch for features.0.0.weight: expected [8, 3, 3, 3], found [16, 3, 3, 3]");
}

#[test]
fn integer_dtype_is_rejected_with_the_key() {
    let cfg = fixture_config();
    let mut ts = f32_tensors(&MobileNetV2::seeded(&cfg, 1).unwrap());
    let t = ts.iter_mut().find(|t| t.0 == "classifier.1.bias").unwrap();
    t.1 = Dtype::I32;
    let path = tempdir().join("int.safetensors");
    write_raw(&path, &ts);
    let e = load_err(&cfg, &path).to_string();
    assert!(e.contains("classifier.1.bias") && e.contains("I32"), "{e}");
}

#[test]
fn truncated_and_corrupt_files_give_one_line_errors() {
    let bytes = std::fs::read(fixture("tv_mobilenet_v2_w025.safetensors")).unwrap();
    let dir = tempdir();
    let cases = [("truncated", bytes[..bytes.len() / 2].to_vec()), ("garbage", b"not a safetensors file at all".to_vec()), ("empty", vec![])];
    for (name, content) in cases {
        let path = dir.join(format!("{name}.safetensors"));
        std::fs::write(&path, content).unwrap();
        let e = load_err(&fixture_config(), &path).to_string();
        assert!(e.contains("not a valid safetensors file") && e.contains(name) && !e.contains('\n'), "{name}: {e}");
    }
    let e = load_err(&fixture_config(), &dir.join("absent.safetensors")).to_string();
    assert!(e.contains("absent.safetensors"), "{e}");
}
