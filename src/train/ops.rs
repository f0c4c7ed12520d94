//! Forward and backward of the training layers on batched activations ([`Act`]): convolutions
//! (1×1 as GEMMs, depthwise per plane, the stem as im2col + GEMM), BatchNorm in training mode,
//! activations, global pooling, the linear classifier, dropout and softmax cross-entropy.

use nalgebra::DMatrix;
use rayon::prelude::*;

use super::act::Act;
use super::channel_sums::{self, Lanes};
use super::pool::ActPool;
use crate::layers::matmul::{matmul, matmul_strided};
use crate::layers::{Activation, BatchNorm, ConvKind};
use crate::tensor::FeatureMap;

/// PyTorch's BatchNorm momentum convention: `running ← (1 − 0.1)·running + 0.1·batch`.
pub const BN_MOMENTUM: f64 = 0.1;

/// `z = conv(x)` (no bias: BatchNorm follows).
///
/// # Panics
/// When the weight matrix does not fit the conv kind and input channels.
pub fn conv_forward(pool: &mut ActPool, kind: &ConvKind, w: &DMatrix<f32>, x: &Act, threads: usize) -> Act {
    match kind {
        ConvKind::Pointwise(p) => {
            // The GEMM overwrites every element.
            let mut z = pool.overwritten(x.n, p.out_channels, x.h, x.w);
            matmul(&mut z.data, &x.data, w.as_slice(), x.m(), p.in_channels, p.out_channels, threads);
            z
        }
        ConvKind::Depthwise(d) => {
            let (oh, ow) = d.output_size(x.h, x.w);
            // Every output plane is written whole.
            let mut z = pool.overwritten(x.n, d.channels, oh, ow);
            let (n, ohw) = (x.n, oh * ow);
            z.data.par_chunks_mut(n * ohw).enumerate().for_each_init(Vec::new, |scratch, (c, zc)| {
                let filt: &[f32; 9] = w.as_slice()[c * 9..(c + 1) * 9].try_into().expect("3×3");
                d.forward_planes(n, &x.data[c * n * x.hw()..(c + 1) * n * x.hw()], x.h, x.w, filt, zc, scratch);
            });
            z
        }
        ConvKind::Full(conv) => {
            let (oh, ow) = conv.output_size(x.h, x.w);
            let cols = im2col_batch(pool, conv, x);
            let mut z = pool.overwritten(x.n, conv.out_channels, oh, ow);
            matmul(&mut z.data, &cols.data, w.as_slice(), x.n * oh * ow, conv.fan_in(), conv.out_channels, threads);
            pool.give(cols);
            z
        }
    }
}

/// The stem's im2col over the batch: `(N·OH·OW) × fan_in`, column-major (in a pooled buffer; every
/// element is written).
fn im2col_batch(pool: &mut ActPool, conv: &crate::layers::Conv2d, x: &Act) -> Act {
    let (oh, ow) = conv.output_size(x.h, x.w);
    let (ohw, fan_in) = (oh * ow, conv.fan_in());
    let big_m = x.n * ohw;
    let mut buf = pool.overwritten(1, 1, big_m, fan_in);
    let cols = &mut buf.data;
    let mut one = Vec::new();
    for i in 0..x.n {
        let img = x.image(i).expect("image shape");
        one.resize(ohw * fan_in, 0.0);
        conv.im2col_rows(&img, 0, oh, &mut one);
        for j in 0..fan_in {
            cols[j * big_m + i * ohw..j * big_m + (i + 1) * ohw].copy_from_slice(&one[j * ohw..(j + 1) * ohw]);
        }
    }
    buf
}

/// `(∂L/∂W, ∂L/∂x)` of `z = conv(x)` given `∂L/∂z`; `∂L/∂x` only when `need_dx`.
///
/// # Panics
/// When the weight matrix does not fit the conv kind and input channels.
pub fn conv_backward(pool: &mut ActPool, kind: &ConvKind, w: &DMatrix<f32>, x: &Act, dz: &Act, need_dx: bool, threads: usize) -> (DMatrix<f32>, Option<Act>) {
    match kind {
        ConvKind::Pointwise(p) => {
            let (m, cin, cout) = (x.m(), p.in_channels, p.out_channels);
            let mut dw = DMatrix::zeros(cin, cout);
            // dW (cin×cout) = xᵀ · dz
            matmul_strided(dw.as_mut_slice(), cin, cout, m, (&x.data, 1, m), (&dz.data, m, 1), false, threads);
            let dx = need_dx.then(|| {
                // The GEMM overwrites every element.
                let mut dx = pool.overwritten_like(x);
                // dx (m×cin) = dz (m×cout) · Wᵀ (cout×cin)
                matmul_strided(&mut dx.data, m, cin, cout, (&dz.data, m, 1), (w.as_slice(), 1, cin), false, threads);
                dx
            });
            (dw, dx)
        }
        ConvKind::Depthwise(d) => {
            let (n, hw) = (x.n, x.hw());
            let mut dx = pool.overwritten_like(x);
            let mut dw = DMatrix::zeros(9, d.channels);
            dx.data.par_chunks_mut(n * hw).zip(dw.as_mut_slice().par_chunks_mut(9)).enumerate().for_each_init(Vec::new, |scratch, (c, (dxc, dwc))| {
                // The kernel adds into dx: zero this channel while it is about to be in cache.
                dxc.fill(0.0);
                let filt: &[f32; 9] = w.as_slice()[c * 9..(c + 1) * 9].try_into().expect("3×3");
                let mut df = [0.0f32; 9];
                let (xs, dys) = (&x.data[c * n * hw..(c + 1) * n * hw], &dz.data[c * n * dz.hw()..(c + 1) * n * dz.hw()]);
                d.backward_planes(n, xs, x.h, x.w, filt, dys, dxc, &mut df, scratch);
                dwc.copy_from_slice(&df);
            });

            if need_dx {
                (dw, Some(dx))
            } else {
                pool.give(dx);
                (dw, None)
            }
        }
        ConvKind::Full(conv) => {
            let cols = im2col_batch(pool, conv, x);
            let (big_m, fan_in, cout) = (dz.m(), conv.fan_in(), conv.out_channels);
            let mut dw = DMatrix::zeros(fan_in, cout);
            matmul_strided(dw.as_mut_slice(), fan_in, cout, big_m, (&cols.data, 1, big_m), (&dz.data, big_m, 1), false, threads);
            pool.give(cols);
            // The stem is the first layer: its input gradient is never needed.
            (dw, None)
        }
    }
}

/// Per-channel batch statistics kept for the backward pass.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct BnStats {
    pub mean: Vec<f32>,
    pub invstd: Vec<f32>,
}

/// BatchNorm in training mode: normalise with batch statistics (biased variance), update the running
/// statistics with [`BN_MOMENTUM`] and the unbiased variance (PyTorch's convention).
pub fn bn_train_forward(pool: &mut ActPool, bn: &mut BatchNorm, z: &Act) -> (Act, BnStats) {
    let stats = bn_batch_stats(bn, z);
    // Every element is written below.
    let mut a = pool.overwritten_like(z);
    let m = z.m().max(1);
    a.data.par_chunks_mut(m).zip(z.data.par_chunks(m)).enumerate().for_each(|(c, (ac, zc))| {
        let (g, b, mean, invstd) = (bn.gamma[c], bn.beta[c], stats.mean[c], stats.invstd[c]);
        ac.iter_mut().zip(zc).for_each(|(o, &v)| *o = g * (v - mean) * invstd + b);
    });
    (a, stats)
}

/// [`bn_train_forward`] followed by [`act_forward`] in one pass over memory: `(a, act(a), stats)`,
/// bit for bit the two calls' results (for a unit without a hook between the two).
pub fn bn_act_train_forward(pool: &mut ActPool, bn: &mut BatchNorm, z: &Act, act: Activation) -> (Act, Act, BnStats) {
    let stats = bn_batch_stats(bn, z);
    let (mut a, mut y) = (pool.overwritten_like(z), pool.overwritten_like(z));
    let m = z.m().max(1);
    let bounds = (act != Activation::Identity).then(|| act.bounds());
    a.data.par_chunks_mut(m).zip(y.data.par_chunks_mut(m)).zip(z.data.par_chunks(m)).enumerate().for_each(|(c, ((ac, yc), zc))| {
        let affine = Affine { gamma: bn.gamma[c], beta: bn.beta[c], mean: stats.mean[c], invstd: stats.invstd[c] };
        bn_act_channel(ac, yc, zc, affine, bounds);
    });
    (a, y, stats)
}

/// One channel's BatchNorm affine map with batch statistics.
#[derive(Clone, Copy)]
struct Affine {
    gamma: f32,
    beta: f32,
    mean: f32,
    invstd: f32,
}

/// `a = γ·(z − mean)·invstd + β`, `y = clamp(a + 0, lo, hi)` (exactly [`Activation::apply_slice`]) or
/// `y = a` without bounds; vectorised at run time.
#[multiversion::multiversion(targets("x86_64+avx512f+avx512vl", "x86_64+avx2+fma"))]
fn bn_act_channel(a: &mut [f32], y: &mut [f32], z: &[f32], f: Affine, bounds: Option<(f32, f32)>) {
    let norm = |v: f32| f.gamma * (v - f.mean) * f.invstd + f.beta;
    match bounds {
        Some((lo, hi)) => a.iter_mut().zip(y.iter_mut()).zip(z).for_each(|((a, y), &v)| {
            let av = norm(v);
            *a = av;
            *y = (av + 0.0).max(lo).min(hi);
        }),
        None => a.iter_mut().zip(y.iter_mut()).zip(z).for_each(|((a, y), &v)| {
            let av = norm(v);
            *a = av;
            *y = av;
        }),
    }
}

/// Batch statistics of `z` per channel (mean, 1/√(var + ε)); updates the running statistics with
/// [`BN_MOMENTUM`] and the unbiased variance (PyTorch's convention).
fn bn_batch_stats(bn: &mut BatchNorm, z: &Act) -> BnStats {
    let m = z.m();
    let stats = by_channel_groups(z.c, |first, k| mean_var(&z.data[first * m..(first + k) * m], k, m));
    let mut out = BnStats { mean: Vec::with_capacity(z.c), invstd: Vec::with_capacity(z.c) };
    for (c, &(mean, var)) in stats.iter().enumerate() {
        let unbiased = if m > 1 { var as f64 * m as f64 / (m - 1) as f64 } else { var as f64 };
        bn.running_mean[c] = ((1.0 - BN_MOMENTUM) * bn.running_mean[c] as f64 + BN_MOMENTUM * mean as f64) as f32;
        bn.running_var[c] = ((1.0 - BN_MOMENTUM) * bn.running_var[c] as f64 + BN_MOMENTUM * unbiased) as f32;
        out.mean.push(mean);
        out.invstd.push(1.0 / (var + bn.eps).sqrt());
    }
    out
}

/// Channels whose sums one pass takes together: each channel is still summed in element order (so
/// results are those of one channel at a time, bit for bit), but the independent sums of eight
/// channels keep the FPU busy where one sequential f64 sum waits on each addition's latency.
const CHANNEL_GROUP: usize = channel_sums::LANES;

/// `f(first, k)` for consecutive groups of `k ≤ CHANNEL_GROUP` channels out of `c`, in parallel;
/// the per-channel results in channel order.
fn by_channel_groups<T: Send>(c: usize, f: impl Fn(usize, usize) -> Vec<T> + Sync) -> Vec<T> {
    let groups: Vec<Vec<T>> = (0..c.div_ceil(CHANNEL_GROUP)).into_par_iter().map(|g| f(g * CHANNEL_GROUP, CHANNEL_GROUP.min(c - g * CHANNEL_GROUP))).collect();
    groups.into_iter().flatten().collect()
}

/// Per channel of `cols` (`k` channels of `m` values back to back): the mean and the biased variance,
/// each a sequential f64 sum in element order, as f32.
// Indices run over eight channels' slices at once.
#[allow(clippy::needless_range_loop)]
fn mean_var(cols: &[f32], k: usize, m: usize) -> Vec<(f32, f32)> {
    if m == 0 {
        // An empty batch: 0/0, as the sums give.
        return vec![(f32::NAN, f32::NAN); k];
    }
    if k != CHANNEL_GROUP {
        return cols
            .chunks(m.max(1))
            .map(|col| {
                let mean = col.iter().map(|&v| v as f64).sum::<f64>() / m as f64;
                let var = col.iter().map(|&v| (v as f64 - mean).powi(2)).sum::<f64>() / m as f64;
                (mean as f32, var as f32)
            })
            .collect();
    }
    let lanes: Lanes = std::array::from_fn(|j| &cols[j * m..(j + 1) * m]);
    // `Sum for f64` starts from −0.0; so do these.
    let mean = channel_sums::sums(&lanes, m, -0.0).map(|s| s / m as f64);
    let sq = channel_sums::squares(&lanes, m, &mean, -0.0);
    (0..CHANNEL_GROUP).map(|j| (mean[j] as f32, (sq[j] / m as f64) as f32)).collect()
}

/// Per channel: `(Σ g·(z − mean)·invstd, Σ g)` in f64, element order, as f32 — BatchNorm's `∂L/∂γ`
/// and `∂L/∂β`.
#[allow(clippy::needless_range_loop)]
fn bn_grad_sums(da: &[f32], z: &[f32], mean: &[f32], invstd: &[f32], m: usize) -> Vec<(f32, f32)> {
    let k = mean.len();
    let one = |c: usize| {
        let (mut dg, mut db) = (0.0f64, 0.0f64);
        for (&g, &v) in da[c * m..(c + 1) * m].iter().zip(&z[c * m..(c + 1) * m]) {
            db += g as f64;
            dg += (g * (v - mean[c]) * invstd[c]) as f64;
        }
        (dg as f32, db as f32)
    };
    if k != CHANNEL_GROUP {
        return (0..k).map(one).collect();
    }
    let g: Lanes = std::array::from_fn(|j| &da[j * m..(j + 1) * m]);
    let v: Lanes = std::array::from_fn(|j| &z[j * m..(j + 1) * m]);
    let (mean, invstd): ([f32; CHANNEL_GROUP], [f32; CHANNEL_GROUP]) = (std::array::from_fn(|j| mean[j]), std::array::from_fn(|j| invstd[j]));
    let (dg, db) = channel_sums::grad_sums(&g, &v, m, &mean, &invstd);
    (0..CHANNEL_GROUP).map(|j| (dg[j] as f32, db[j] as f32)).collect()
}

/// `(∂L/∂z, ∂L/∂γ, ∂L/∂β)` of training-mode BatchNorm.
pub fn bn_backward(pool: &mut ActPool, bn: &BatchNorm, z: &Act, st: &BnStats, da: &Act) -> (Act, Vec<f32>, Vec<f32>) {
    let m = z.m() as f32;
    // Every element is written below.
    let mut dz = pool.overwritten_like(z);
    let mz = z.m();
    let grads = by_channel_groups(z.c, |first, k| {
        let span = first * mz..(first + k) * mz;
        bn_grad_sums(&da.data[span.clone()], &z.data[span], &st.mean[first..first + k], &st.invstd[first..first + k], mz)
    });
    dz.data.par_chunks_mut(mz.max(1)).enumerate().for_each(|(c, dzc)| {
        let (dg, db) = grads[c];
        let (mean, inv, gamma) = (st.mean[c], st.invstd[c], bn.gamma[c]);
        let k = gamma * inv / m;
        dzc.iter_mut().zip(da.col(c).iter().zip(z.col(c))).for_each(|(o, (&g, &v))| {
            *o = k * (m * g - db - (v - mean) * inv * dg);
        });
    });
    (dz, grads.iter().map(|g| g.0).collect(), grads.iter().map(|g| g.1).collect())
}

/// `y = act(a)`.
pub fn act_forward(pool: &mut ActPool, act: Activation, a: &Act) -> Act {
    let mut y = pool.copy(a);
    act.apply_slice(&mut y.data);
    y
}

/// `∂L/∂a = ∂L/∂y` where the activation is in its linear region (0 < a < 6 for ReLU6), else 0.
pub fn act_backward(pool: &mut ActPool, act: Activation, a: &Act, dy: &Act) -> Act {
    if act == Activation::Identity {
        return pool.copy(dy);
    }
    let mut da = pool.overwritten_like(dy);
    let (lo, hi) = act.bounds();
    mask_linear_region(&mut da.data, &dy.data, &a.data, lo, hi);
    da
}

/// `out = g` where `lo < a < hi`, else 0 (branch-free, vectorised at run time).
#[multiversion::multiversion(targets("x86_64+avx512f+avx512vl", "x86_64+avx2+fma"))]
fn mask_linear_region(out: &mut [f32], g: &[f32], a: &[f32], lo: f32, hi: f32) {
    for ((o, &g), &v) in out.iter_mut().zip(g).zip(a) {
        *o = if v > lo && v < hi { g } else { 0.0 };
    }
}

/// Global average pool: `(N × C)` as an Act with 1×1 spatial size.
pub fn pool_forward(x: &Act) -> Act {
    let mut p = Act::zeros(x.n, x.c, 1, 1);
    let hw = x.hw() as f32;
    for c in 0..x.c {
        for i in 0..x.n {
            p.data[c * x.n + i] = x.plane(c, i).iter().sum::<f32>() / hw;
        }
    }
    p
}

/// `∂L/∂x` of [`pool_forward`]: each plane filled with its pooled gradient over `H·W`.
pub fn pool_backward(pool: &mut ActPool, x: &Act, dp: &Act) -> Act {
    // Every plane is filled below.
    let mut dx = pool.overwritten_like(x);
    let hw = x.hw();
    for c in 0..x.c {
        for i in 0..x.n {
            let g = dp.data[c * x.n + i] / hw as f32;
            dx.data[(c * x.n + i) * hw..(c * x.n + i + 1) * hw].fill(g);
        }
    }
    dx
}

/// Logits `(N × K)`, column-major, of `pooled (N × C) · W (C × K) + b`.
pub fn linear_forward(w: &DMatrix<f32>, b: &[f32], p: &Act) -> DMatrix<f32> {
    let (n, k) = (p.n, w.ncols());
    let mut out = DMatrix::zeros(n, k);
    matmul(out.as_mut_slice(), &p.data, w.as_slice(), n, p.c, k, 1);
    for (j, mut col) in out.column_iter_mut().enumerate() {
        col.add_scalar_mut(b[j]);
    }
    out
}

/// `(∂L/∂W, ∂L/∂b, ∂L/∂pooled)`.
pub fn linear_backward(w: &DMatrix<f32>, p: &Act, dlogits: &DMatrix<f32>) -> (DMatrix<f32>, Vec<f32>, Act) {
    let (n, c, k) = (p.n, p.c, w.ncols());
    let mut dw = DMatrix::zeros(c, k);
    matmul_strided(dw.as_mut_slice(), c, k, n, (&p.data, 1, n), (dlogits.as_slice(), n, 1), false, 1);
    let db = dlogits.column_iter().map(|col| col.sum()).collect();
    let mut dp = p.zeros_like();
    matmul_strided(&mut dp.data, n, c, k, (dlogits.as_slice(), n, 1), (w.as_slice(), 1, c), false, 1);
    (dw, db, dp)
}

/// Mean softmax cross-entropy with label smoothing ε (target `(1−ε)·onehot + ε/K`), its gradient with
/// respect to the logits, and the number of correct argmax predictions.
pub fn softmax_cross_entropy(logits: &DMatrix<f32>, labels: &[usize], smoothing: f32) -> (f64, DMatrix<f32>, usize) {
    let (n, k) = logits.shape();
    let mut grad = DMatrix::zeros(n, k);
    let (mut loss, mut correct) = (0.0f64, 0usize);
    for i in 0..n {
        let row: Vec<f64> = (0..k).map(|j| logits[(i, j)] as f64).collect();
        let max = row.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let z: f64 = row.iter().map(|v| (v - max).exp()).sum();
        let logz = max + z.ln();
        let argmax = (0..k).max_by(|&a, &b| row[a].total_cmp(&row[b])).unwrap_or(0);
        correct += (argmax == labels[i]) as usize;
        for j in 0..k {
            let q = if j == labels[i] { 1.0 - smoothing as f64 } else { 0.0 } + smoothing as f64 / k as f64;
            let p = (row[j] - logz).exp();
            loss -= q * (row[j] - logz);
            grad[(i, j)] = ((p - q) / n as f64) as f32;
        }
    }
    (loss / n as f64, grad, correct)
}

/// Inverted dropout on pooled features: keeps each with probability `1 − p`, scales by `1/(1 − p)`.
/// The mask is a pure function of `(seed, step, image, channel)`.
pub fn dropout_mask(n: usize, c: usize, p: f64, seed: u64) -> Vec<f32> {
    use rand::{RngExt, SeedableRng};
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let keep = 1.0 - p;
    (0..n * c).map(|_| if rng.random::<f64>() < keep { (1.0 / keep) as f32 } else { 0.0 }).collect()
}

/// Copies a map into an Act of one image (for tests and single-image checks).
pub fn act_of(fm: &FeatureMap) -> Act {
    let [c, h, w] = fm.shape();
    // One image: the channel-major layout of `Act` is the map's CHW order.
    Act { n: 1, c, h, w, data: fm.as_slice().to_vec() }
}
