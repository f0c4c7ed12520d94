//! The one matrix product of the network: column-major `out = a · b` on nalgebra storage, computed by
//! the `gemm` crate (run-time AVX-512/AVX2 dispatch; 1.3–3× faster than nalgebra's own
//! `matrixmultiply` backend on MobileNetV2's shapes, measured in `shared/STACK.md`).

use gemm::Parallelism;

/// `out (m×n) = a (m×k) · b (k×n)`; all three column-major and contiguous. `threads > 1` lets the
/// product itself use that many rayon workers (used when a batch is too small to parallelise over).
pub fn matmul(out: &mut [f32], a: &[f32], b: &[f32], m: usize, k: usize, n: usize, threads: usize) {
    matmul_strided(out, m, n, k, (a, m, 1), (b, k, 1), false, threads);
}

/// `out (m×n) (+)= a (m×k) · B` where `B` is the k×n block starting at `b[0]` of a column-major matrix
/// with column stride `b_col_stride` (a row slice of a larger weight). `accumulate` adds to `out`.
#[allow(clippy::too_many_arguments)]
pub fn matmul_rows_acc(out: &mut [f32], a: &[f32], b: &[f32], m: usize, k: usize, n: usize, b_col_stride: usize, accumulate: bool) {
    matmul_strided(out, m, n, k, (a, m, 1), (b, b_col_stride, 1), accumulate, 1);
}

/// General strided product `dst (m×n) (+)= lhs (m×k) · rhs (k×n)`: element (i, j) of a matrix with
/// strides (`cs`, `rs`) sits at `j·cs + i·rs`. Used by the training engine for transposed operands.
///
/// # Panics
/// When the slices are shorter than the strides and sizes say.
#[allow(clippy::too_many_arguments)]
pub fn matmul_strided(
    dst: &mut [f32],
    m: usize,
    n: usize,
    k: usize,
    lhs: (&[f32], usize, usize),
    rhs: (&[f32], usize, usize),
    accumulate: bool,
    threads: usize,
) {
    let reach = |len: usize, rows: usize, cols: usize, cs: usize, rs: usize| rows == 0 || cols == 0 || (cols - 1) * cs + (rows - 1) * rs < len;
    assert!(dst.len() >= m * n, "matmul_strided: destination too small");
    assert!(reach(lhs.0.len(), m, k, lhs.1, lhs.2) && reach(rhs.0.len(), k, n, rhs.1, rhs.2), "matmul_strided: operand out of range");
    if m == 0 || n == 0 {
        return;
    }
    if k == 0 {
        if !accumulate {
            dst[..m * n].fill(0.0);
        }
        return;
    }
    let par = if threads > 1 { Parallelism::Rayon(threads) } else { Parallelism::None };
    // SAFETY: the asserts bound every index the strides reach; `dst` does not alias the operands.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            dst.as_mut_ptr(),
            m as isize,
            1,
            accumulate,
            lhs.0.as_ptr(),
            lhs.1 as isize,
            lhs.2 as isize,
            rhs.0.as_ptr(),
            rhs.1 as isize,
            rhs.2 as isize,
            1.0f32,
            1.0f32,
            false,
            false,
            false,
            par,
        );
    }
}
