//! The 1×1 product of the late, small stages on CPUs with AVX-512: `out (m×n) = act(a (m×k) · b
//! (k×n) + bias)` with *output channels* as the vector dimension and positions broadcast — the
//! transpose of [`super::gemm_kernel`]'s orientation. At 7×7 = 49 positions a 16-lane vector of
//! positions leaves a quarter of its lanes idle (49 = 3·16 + 1), while MobileNetV2's channel counts
//! are multiples of 16 and 49 = 7·7 positions fill tiles of seven exactly.
//!
//! A tile is 48 output channels (three vectors, from weights packed once per layer into panels of
//! 48 channels, see [`PackedChannels`]) × 7 positions: 21 accumulators, three loads and seven
//! broadcasts per step of `k`. The sums leave through a small buffer, transposed to the column-major
//! output seven positions per channel. Each output element is one chain of fused multiply-adds over
//! `k` in order from zero, then the bias and clamp (or the add to `out`) — the same operations as
//! [`super::gemm_kernel`]'s, so the two kernels give the same bits (a test checks it).
//!
//! Measured on MobileNetV2's 49-position products, one thread, AVX-512 AMD EPYC (Zen 5): 111–121
//! GMAC/s against 89–93 for the `gemm` crate (132 is the FMA peak).

#[cfg(target_arch = "x86_64")]
use std::arch::x86_64::*;

use super::gemm_kernel::Epilogue;

/// f32 lanes of one AVX-512 vector.
const LANES: usize = 16;
/// Channel vectors per full tile.
const CV: usize = 3;
/// Output channels per packed panel and per full tile.
pub const CW: usize = CV * LANES;
/// Positions per full tile.
pub const NP: usize = 7;

/// `b` (k×n, column-major: column `j` holds output channel `j`'s weights) packed in panels of
/// [`CW`] channels: panel `q` holds, for each `p` in `0..k`, the row `b[p, q·CW .. q·CW + CW]`
/// (zeros past `n`).
#[derive(Clone, Debug, Default)]
pub struct PackedChannels {
    data: Vec<f32>,
    k: usize,
    n: usize,
}

impl PackedChannels {
    /// Packs `b` (column stride `ldb`).
    pub fn pack(b: &[f32], k: usize, n: usize, ldb: usize) -> Self {
        let panels = n.div_ceil(CW);
        let mut data = vec![0.0; panels * k * CW];
        for j in 0..n {
            let (q, c) = (j / CW, j % CW);
            let panel = &mut data[q * k * CW..(q + 1) * k * CW];
            for (p, &v) in b[j * ldb..][..k].iter().enumerate() {
                panel[p * CW + c] = v;
            }
        }
        PackedChannels { data, k, n }
    }

    /// The depth `k` and the channel count `n` it was packed for.
    pub fn shape(&self) -> (usize, usize) {
        (self.k, self.n)
    }
}

/// Whether this machine runs the kernel (AVX-512F).
pub fn available() -> bool {
    super::gemm_kernel::available()
}

/// Output channels `c0..c1` of `out = a · b`, `act(a · b + bias)` or `out + a · b` (the
/// [`Epilogue`]), every position `0..m`; `a` and `out` column-major with column stride `m`.
/// Channels outside `c0..c1` are neither read nor written.
///
/// # Safety
/// AVX-512F; `a` must hold `m·k` values, `out` `m·n`; `out` must not alias `a`; a fused bias must hold
/// `n` values.
///
/// # Panics
/// Unless `c0` is a multiple of 16 (a tile's weight loads would leave its panel) and `c0 ≤ c1 ≤ n`.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
pub unsafe fn gemm_channels(a: *const f32, m: usize, packed: &PackedChannels, out: *mut f32, c0: usize, c1: usize, epilogue: Epilogue) {
    // SAFETY: forwarded from the caller.
    unsafe { gemm_channels_in(Layout::Columns, Layout::Columns, a, m, packed, out, 0..m, c0, c1, epilogue) }
}

/// How a kernel operand of `m` positions × `c` channels is laid out in memory.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Layout {
    /// Column-major: channel `j` is the `m` positions at `j·m` (the `FeatureMap` layout).
    Columns,
    /// Blocks of 16 channels: channel `j` of position `i` at `((j / 16)·m + i)·16 + j % 16` (the
    /// `c` channels a multiple of 16), so one position's 16 channels are one vector.
    Blocked,
}

/// [`gemm_channels`] with `a` (`m × k`) and `out` (`m × n`) in the given layouts, for the positions
/// `positions` only (a band of a long product; positions outside are neither read nor written). A
/// blocked output
/// needs no transpose (the tile's vectors are its blocks); a blocked `a` is read a channel at a
/// time as before. The same sums in the same order, so the same bits, whatever the layouts.
///
/// # Safety
/// As [`gemm_channels`].
///
/// # Panics
/// As [`gemm_channels`], and when a blocked operand's channels are not a multiple of 16.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
#[allow(clippy::too_many_arguments)]
pub unsafe fn gemm_channels_in(
    input: Layout,
    output: Layout,
    a: *const f32,
    m: usize,
    packed: &PackedChannels,
    out: *mut f32,
    positions: std::ops::Range<usize>,
    c0: usize,
    c1: usize,
    epilogue: Epilogue,
) {
    assert!(c0.is_multiple_of(LANES) && c0 <= c1 && c1 <= packed.n, "gemm_channels: channels {c0}..{c1} of {}", packed.n);
    assert!(positions.start <= positions.end && positions.end <= m, "gemm_channels: positions {positions:?} of {m}");
    assert!(input == Layout::Columns || packed.k.is_multiple_of(LANES), "gemm_channels: blocked input of {} channels", packed.k);
    assert!(
        output == Layout::Columns || (packed.n.is_multiple_of(LANES) && c1.is_multiple_of(LANES)),
        "gemm_channels: blocked output of {} channels, up to {c1}",
        packed.n
    );
    let k = packed.k;
    let mut c = c0;
    while c < c1 {
        // A segment of channels inside one panel (tiles never cross a panel).
        let (q, off) = (c / CW, c % CW);
        let width = (CW - off).min(c1 - c);
        let wp = packed.data.as_ptr().add(q * k * CW + off);
        // The next segment's panel, fetched into L2 while this one's tiles run (at batch 1 every
        // layer's weights come from L3 or memory: measured, 25–35% of the time of a 49-position
        // product without it).
        let next = if c + width < c1 { packed.data.as_ptr().add((q + 1) * k * CW) } else { std::ptr::null() };
        let seg = Segment { a, m, wp, k, out, ch0: c, width, epilogue, next, next_lines: k * CW / LANES, input, output };
        let mut pos = positions.start;
        let mut index = 0;
        while pos < positions.end {
            let np = NP.min(positions.end - pos);
            // SAFETY: positions pos..pos + np ≤ m and channels c..c + width ≤ c1 (caller).
            unsafe { seg.tile(pos, np, index) };
            pos += np;
            index += 1;
        }
        c += width;
    }
}

/// One panel segment of `gemm_channels`: `width` (≤ [`CW`]) channels from `ch0`, their packed
/// weights at `wp` (row stride [`CW`]).
#[cfg(target_arch = "x86_64")]
struct Segment<'a> {
    a: *const f32,
    m: usize,
    wp: *const f32,
    k: usize,
    out: *mut f32,
    ch0: usize,
    width: usize,
    epilogue: Epilogue<'a>,
    /// The next segment's panel (null: none) and its length in 64-byte lines.
    next: *const f32,
    next_lines: usize,
    input: Layout,
    output: Layout,
}

#[cfg(target_arch = "x86_64")]
impl Segment<'_> {
    /// The tile of positions `pos..pos + np` (`np` ≤ [`NP`]), the `index`-th of its segment,
    /// dispatched to its register shape.
    #[target_feature(enable = "avx512f")]
    unsafe fn tile(&self, pos: usize, np: usize, index: usize) {
        macro_rules! shapes {
            ($bi:literal, $bo:literal; $($p:literal)*) => {
                match (self.width.div_ceil(LANES), np) {
                    $((3, $p) => self.run::<3, $p, $bi, $bo>(pos, index), (2, $p) => self.run::<2, $p, $bi, $bo>(pos, index), (_, $p) => self.run::<1, $p, $bi, $bo>(pos, index),)*
                    _ => unreachable!("tile of {np} positions"),
                }
            };
        }
        // SAFETY: forwarded from the caller.
        unsafe {
            match (self.input, self.output) {
                (Layout::Columns, Layout::Columns) => shapes!(false, false; 1 2 3 4 5 6 7),
                (Layout::Columns, Layout::Blocked) => shapes!(false, true; 1 2 3 4 5 6 7),
                (Layout::Blocked, Layout::Columns) => shapes!(true, false; 1 2 3 4 5 6 7),
                (Layout::Blocked, Layout::Blocked) => shapes!(true, true; 1 2 3 4 5 6 7),
            }
        }
    }

    /// `V` channel vectors × `P` positions: the k-loop in registers, the epilogue on the vectors
    /// (bias and clamp), then the transpose through a buffer to `P` contiguous positions per channel.
    #[target_feature(enable = "avx512f")]
    #[inline]
    #[allow(clippy::needless_range_loop)] // register tiles read best by index
    unsafe fn run<const V: usize, const P: usize, const BI: bool, const BO: bool>(&self, pos: usize, index: usize) {
        let mut acc = [[_mm512_setzero_ps(); P]; V];
        // Blocked: position c of channel p at xp + 16c, the next channel one further, the next block
        // of 16 channels 16·m further.
        let mut xp = if BI { self.a.add(pos * LANES) } else { self.a.add(pos) };
        let mut w = self.wp;
        // Tile `index` prefetches lines index·k .. (index + 1)·k of the next panel, one per step.
        let first_line = index * self.k;
        let prefetch = !self.next.is_null() && first_line < self.next_lines;
        for p in 0..self.k {
            if prefetch && first_line + p < self.next_lines {
                _mm_prefetch::<_MM_HINT_T1>(self.next.add((first_line + p) * LANES) as *const i8);
            }
            let mut wv = [_mm512_setzero_ps(); V];
            for (v, x) in wv.iter_mut().enumerate() {
                *x = _mm512_loadu_ps(w.add(v * LANES));
            }
            for c in 0..P {
                let b = _mm512_set1_ps(*xp.add(if BI { c * LANES } else { c }));
                for v in 0..V {
                    acc[v][c] = _mm512_fmadd_ps(wv[v], b, acc[v][c]);
                }
            }
            // Wrapping: after the last step the pointer may pass the end of `a` (never read).
            xp = if !BI {
                xp.wrapping_add(self.m)
            } else if (p + 1).is_multiple_of(LANES) {
                xp.wrapping_add(self.m * LANES - (LANES - 1))
            } else {
                xp.wrapping_add(1)
            };
            w = w.add(CW);
        }
        // Every lane of the `V` vectors is written before channels `..width` (≤ 16·V) are read.
        let mut buf = [[std::mem::MaybeUninit::<f32>::uninit(); CW]; P];
        for v in 0..V {
            let lanes = self.width.saturating_sub(v * LANES).min(LANES);
            let mask = if lanes == LANES { u16::MAX } else { (1u16 << lanes) - 1 };
            let fused = match self.epilogue {
                Epilogue::Fused(f) => {
                    Some((_mm512_maskz_loadu_ps(mask, f.bias.as_ptr().add(self.ch0 + v * LANES)), _mm512_set1_ps(f.lo), _mm512_set1_ps(f.hi)))
                }
                _ => None,
            };
            for c in 0..P {
                let mut x = acc[v][c];
                if let Some((bias, lo, hi)) = fused {
                    x = _mm512_min_ps(_mm512_max_ps(_mm512_add_ps(x, bias), lo), hi);
                }
                if BO {
                    // Whole blocks (n a multiple of 16): the vector is the block at this position.
                    let at = self.out.add(((self.ch0 / LANES + v) * self.m + pos + c) * LANES);
                    if matches!(self.epilogue, Epilogue::Accumulate) {
                        x = _mm512_add_ps(_mm512_loadu_ps(at), x);
                    }
                    _mm512_storeu_ps(at, x);
                } else {
                    _mm512_storeu_ps(buf[c].as_mut_ptr().add(v * LANES).cast(), x);
                }
            }
        }
        if BO {
            return;
        }
        let accumulate = matches!(self.epilogue, Epilogue::Accumulate);
        for ch in 0..self.width {
            let o = self.out.add((self.ch0 + ch) * self.m + pos);
            for c in 0..P {
                // SAFETY: written above (ch < width ≤ 16·V).
                let x = unsafe { buf[c][ch].assume_init() };
                *o.add(c) = if accumulate { *o.add(c) + x } else { x };
            }
        }
    }
}

#[cfg(all(test, target_arch = "x86_64"))]
mod tests {
    use super::*;
    use crate::layers::gemm_kernel::Fused;

    /// The kernel against a naive chain of fused multiply-adds, bit for bit: positions that end
    /// mid-tile, channels that end mid-vector and mid-panel, channel ranges that start inside a panel,
    /// with the bias and clamp, without, and adding to `out` (skipped, and said so, without AVX-512).
    #[test]
    fn kernel_equals_naive_fma_chain_on_edge_shapes() {
        if !available() {
            eprintln!("no AVX-512 here: gemm_channels is not used");
            return;
        }
        for (m, k, n, c0, c1) in [(49, 37, 160, 0, 160), (50, 5, 13, 0, 13), (6, 64, 100, 16, 99), (13, 1, 48, 32, 48), (22, 300, 97, 48, 97)] {
            let a: Vec<f32> = (0..m * k).map(|i| ((i * 7919) % 997) as f32 / 997.0 - 0.5).collect();
            let b: Vec<f32> = (0..k * n).map(|i| ((i * 104_729) % 991) as f32 / 991.0 - 0.5).collect();
            let bias: Vec<f32> = (0..n).map(|j| j as f32 * 0.03 - 1.0).collect();
            let packed = PackedChannels::pack(&b, k, n, k);
            let dot = |i: usize, j: usize| (0..k).fold(0.0f32, |acc, p| a[p * m + i].mul_add(b[j * k + p], acc));
            let fused = Fused { bias: &bias, lo: 0.0, hi: 0.75 };
            let before: Vec<f32> = (0..m * n).map(|i| ((i * 31) % 17) as f32 * 0.25 - 2.0).collect();
            for epilogue in [Epilogue::Store, Epilogue::Fused(&fused), Epilogue::Accumulate] {
                let mut out = before.clone();
                // SAFETY: AVX-512F is present; a is m×k and out m×n, column-major; c0 is a multiple of 16.
                unsafe { gemm_channels(a.as_ptr(), m, &packed, out.as_mut_ptr(), c0, c1, epilogue) };
                for j in 0..n {
                    for i in 0..m {
                        let want = match epilogue {
                            _ if !(c0..c1).contains(&j) => before[j * m + i],
                            Epilogue::Store => dot(i, j),
                            Epilogue::Fused(f) => (dot(i, j) + f.bias[j]).max(f.lo).min(f.hi),
                            Epilogue::Accumulate => before[j * m + i] + dot(i, j),
                        };
                        assert_eq!(out[j * m + i].to_bits(), want.to_bits(), "{epilogue:?}: {m}×{k}→{n}, channels {c0}..{c1}, ({i}, {j})");
                    }
                }
            }
        }
    }

    /// Every combination of column-major and blocked input and output gives the column-major
    /// product's bits, channel bands starting inside panels included.
    #[test]
    fn blocked_layouts_give_the_same_bits() {
        if !available() {
            eprintln!("no AVX-512 here: gemm_channels is not used");
            return;
        }
        for (m, k, n, c0, c1) in [(49, 32, 160, 0, 160), (196, 96, 64, 16, 64), (10, 16, 96, 48, 80)] {
            let a: Vec<f32> = (0..m * k).map(|i| ((i * 7919) % 997) as f32 / 997.0 - 0.5).collect();
            let b: Vec<f32> = (0..k * n).map(|i| ((i * 104_729) % 991) as f32 / 991.0 - 0.5).collect();
            let bias: Vec<f32> = (0..n).map(|j| j as f32 * 0.03 - 1.0).collect();
            let packed = PackedChannels::pack(&b, k, n, k);
            let fused = Fused { bias: &bias, lo: 0.0, hi: 0.75 };
            let block = |x: &[f32], c: usize| -> Vec<f32> {
                let mut y = vec![0.0; m * c];
                for j in 0..c {
                    for i in 0..m {
                        y[((j / 16) * m + i) * 16 + j % 16] = x[j * m + i];
                    }
                }
                y
            };
            let mut want = vec![f32::NAN; m * n];
            // SAFETY: AVX-512F is present; the operands hold their shapes.
            unsafe { gemm_channels(a.as_ptr(), m, &packed, want.as_mut_ptr(), c0, c1, Epilogue::Fused(&fused)) };
            let want_blocked = block(&want, n);
            let a_blocked = block(&a, k);
            for input in [Layout::Columns, Layout::Blocked] {
                for output in [Layout::Columns, Layout::Blocked] {
                    let src = if input == Layout::Blocked { &a_blocked } else { &a };
                    let mut got = vec![f32::NAN; m * n];
                    // SAFETY: as above.
                    unsafe { gemm_channels_in(input, output, src.as_ptr(), m, &packed, got.as_mut_ptr(), 0..m, c0, c1, Epilogue::Fused(&fused)) };
                    let reference = if output == Layout::Blocked { &want_blocked } else { &want };
                    let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
                    assert_eq!(bits(&got), bits(reference), "{input:?} → {output:?}: {m}×{k}→{n}, channels {c0}..{c1}");
                    // In three bands of positions (edges off the 7-position tiles): the same bits.
                    let mut banded = vec![f32::NAN; m * n];
                    for (p0, p1) in [(0, m / 3), (m / 3, m / 2 + 1), (m / 2 + 1, m)] {
                        // SAFETY: as above.
                        unsafe { gemm_channels_in(input, output, src.as_ptr(), m, &packed, banded.as_mut_ptr(), p0..p1, c0, c1, Epilogue::Fused(&fused)) };
                    }
                    assert_eq!(bits(&banded), bits(reference), "{input:?} → {output:?}: {m}×{k}→{n} in bands of positions");
                }
            }
        }
    }
}
