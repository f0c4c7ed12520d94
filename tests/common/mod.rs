//! Independent references for the tests: direct-loop convolutions in PyTorch's layout and seeded data.
#![allow(dead_code)]

use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};

/// Uniform values in [-1, 1).
pub fn random_vec(n: usize, seed: u64) -> Vec<f32> {
    let mut rng = StdRng::seed_from_u64(seed);
    (0..n).map(|_| rng.random_range(-1.0f32..1.0)).collect()
}

/// Direct-loop grouped convolution, PyTorch semantics: `x` is CHW, `weight` is
/// `[cout, cin/groups, k, k]` row-major; padding `(top, left)` with zeros, output `oh × ow`.
#[allow(clippy::too_many_arguments)]
pub fn naive_conv(
    x: &[f32],
    (cin, h, w): (usize, usize, usize),
    weight: &[f32],
    cout: usize,
    k: usize,
    groups: usize,
    stride: usize,
    (top, left): (usize, usize),
    (oh, ow): (usize, usize),
) -> Vec<f32> {
    let cin_g = cin / groups;
    let cout_g = cout / groups;
    let mut out = vec![0.0f32; cout * oh * ow];
    for co in 0..cout {
        let g = co / cout_g;
        for oy in 0..oh {
            for ox in 0..ow {
                let mut acc = 0.0f64;
                for ci in 0..cin_g {
                    let cx = g * cin_g + ci;
                    for ky in 0..k {
                        for kx in 0..k {
                            let iy = (oy * stride + ky) as isize - top as isize;
                            let ix = (ox * stride + kx) as isize - left as isize;
                            if iy < 0 || ix < 0 || iy >= h as isize || ix >= w as isize {
                                continue;
                            }
                            let xv = x[cx * h * w + iy as usize * w + ix as usize] as f64;
                            let wv = weight[((co * cin_g + ci) * k + ky) * k + kx] as f64;
                            acc += xv * wv;
                        }
                    }
                }
                out[(co * oh + oy) * ow + ox] = acc as f32;
            }
        }
    }
    out
}

/// Largest |a − b| / max(1, |b|).
pub fn max_rel_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len(), "length mismatch");
    a.iter().zip(b).map(|(x, y)| (x - y).abs() / y.abs().max(1.0)).fold(0.0, f32::max)
}

/// `.npy` (format 1.0) bytes with a float32 header declaring `shape` (Python tuple text, e.g.
/// `"(2, 3)"`), padded as NumPy pads it, followed by `payload` raw bytes.
pub fn npy_with_shape(shape: &str, payload: &[u8]) -> Vec<u8> {
    let mut h = format!("{{'descr': '<f4', 'fortran_order': False, 'shape': {shape}, }}");
    while !(10 + h.len() + 1).is_multiple_of(64) {
        h.push(' ');
    }
    h.push('\n');
    let mut bytes = b"\x93NUMPY\x01\x00".to_vec();
    bytes.extend((h.len() as u16).to_le_bytes());
    bytes.extend(h.as_bytes());
    bytes.extend_from_slice(payload);
    bytes
}

/// An IDX file: big-endian magic and dimensions, then the data.
pub fn idx(magic: u32, dims: &[u32], data: &[u8]) -> Vec<u8> {
    let mut v = magic.to_be_bytes().to_vec();
    for d in dims {
        v.extend(d.to_be_bytes());
    }
    v.extend_from_slice(data);
    v
}

/// The whole-network gradient checks' setup: every activation set to identity (finite differences
/// across ReLU kinks mean nothing), a fixed batch of six 32×32 images, labels and step options.
pub fn gradient_check_setup(m: &mut infoloss::MobileNetV2) -> (infoloss::train::Act, [usize; 6], infoloss::train::StepOptions) {
    for (_, _, u) in m.conv_units_mut() {
        u.activation = infoloss::layers::Activation::Identity;
    }
    let x = infoloss::train::Act::from_batch(&infoloss::bench::random_batch(6, 32, 11).expect("a valid batch"));
    (x, [0, 3, 1, 2, 2, 0], infoloss::train::StepOptions { label_smoothing: 0.1, dropout_seed: 0, threads: 1 })
}
