//! NumPy `.npy` arrays (via the `npyz` crate): NCHW f32 input batches in, logits and activations out.

use std::io::Cursor;
use std::path::Path;

use npyz::WriterBuilder;

use crate::error::{Error, Result};
use crate::io::atomic::write_atomic;

/// A dense C-order f32 array.
#[derive(Clone, Debug, PartialEq)]
pub struct NpyArray {
    pub shape: Vec<usize>,
    pub data: Vec<f32>,
}

/// Reads an `.npy` of dtype float32 (float64 is converted), C order.
///
/// # Errors
/// An unreadable file, a header that does not describe the bytes, a dtype other than float32/float64, Fortran order.
pub fn read_npy(path: &Path) -> Result<NpyArray> {
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    parse_npy(&bytes, path)
}

/// Decodes `.npy` bytes (`path` only names them in messages).
///
/// # Errors
/// Not a `.npy`, Fortran order, a dtype other than float32/float64, a shape the data does not fill.
pub fn parse_npy(bytes: &[u8], path: &Path) -> Result<NpyArray> {
    let bad = |reason: String| Error::file("npy file", path, reason);
    check_header(bytes).map_err(|why| bad(format!("{why}; write it with np.save(path, x.astype(np.float32))")))?;
    let file = npyz::NpyFile::new(Cursor::new(bytes)).map_err(|e| bad(format!("not a valid .npy file ({e})")))?;
    if file.order() != npyz::Order::C {
        return Err(bad("array is in Fortran order; save it with np.ascontiguousarray(x)".into()));
    }
    let shape: Vec<usize> = file.shape().iter().map(|&d| usize::try_from(d).unwrap_or(usize::MAX)).collect();
    let descr = file.dtype().descr();
    let item = match descr.trim_matches('\'') {
        "<f8" => 8,
        _ => 4,
    };
    // The header's shape must fit the bytes that follow it (checked arithmetic: a forged shape must not
    // overflow or allocate more than the file holds).
    let count = shape.iter().try_fold(1usize, |acc, &d| acc.checked_mul(d));
    match count.and_then(|c| c.checked_mul(item)) {
        Some(b) if b <= bytes.len() => {}
        _ => return Err(bad(format!("header shape {shape:?} needs more data than the file's {} bytes hold (truncated or corrupt)", bytes.len()))),
    }
    let data: Vec<f32> = match descr.trim_matches('\'') {
        "<f4" => file.into_vec::<f32>().map_err(|e| bad(format!("truncated data ({e})")))?,
        "<f8" => file.into_vec::<f64>().map_err(|e| bad(format!("truncated data ({e})")))?.into_iter().map(|v| v as f32).collect(),
        other => return Err(bad(format!("dtype {other} is not float32; convert with x.astype(np.float32)"))),
    };
    Ok(NpyArray { shape, data })
}

/// Largest `.npy` header accepted (NumPy writes ~128 bytes for a plain array).
const MAX_HEADER: usize = 4096;

/// Checks the header of a plain array before it reaches the header parser: a dict with no nested
/// dicts or lists and at most one level of parentheses (`'shape': (2, 3, 32, 32)`). Deeply nested
/// brackets make the parser's time explode (found by fuzzing); a plain float array never has them.
fn check_header(bytes: &[u8]) -> std::result::Result<(), String> {
    if bytes.len() < 6 || &bytes[..6] != b"\x93NUMPY" {
        return Err("not a .npy file (no \\x93NUMPY magic)".into());
    }
    let truncated = || "its header is truncated".to_string();
    let (len, start) = match bytes.get(6) {
        Some(1) => (u16::from_le_bytes([*bytes.get(8).ok_or_else(truncated)?, *bytes.get(9).ok_or_else(truncated)?]) as usize, 10),
        Some(2 | 3) => {
            let b = bytes.get(8..12).ok_or_else(truncated)?;
            (u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize, 12)
        }
        Some(v) => return Err(format!("unsupported .npy format version {v}")),
        None => return Err(truncated()),
    };
    if len > MAX_HEADER {
        return Err(format!("its header is {len} bytes, more than the {MAX_HEADER} of a plain array"));
    }
    let header = bytes.get(start..start + len).ok_or("truncated header")?;
    // NumPy writes plain ASCII with no escapes; brackets are counted wherever they are (a plain
    // array has none inside its strings), so quoting tricks cannot hide nesting from this check.
    if header.iter().any(|&c| c == b'\\' || !(c == b'\n' || (b' '..=b'~').contains(&c))) {
        return Err("its header has bytes NumPy never writes (escapes or non-ASCII)".into());
    }
    if header.contains(&b'[') {
        return Err("its dtype is structured (a list); only plain float32/float64 arrays are read".into());
    }
    let (mut depth, mut max_depth) = (0i32, 0i32);
    for &c in header {
        match c {
            b'{' | b'(' => {
                depth += 1;
                max_depth = max_depth.max(depth);
            }
            b'}' | b')' => depth -= 1,
            _ => {}
        }
    }
    let count = |c: u8| header.iter().filter(|&&x| x == c).count();
    if count(b'{') != 1 || count(b'}') != 1 || count(b'(') > 1 || max_depth > 2 || depth != 0 {
        return Err("its header is not a plain array's {'descr': …, 'fortran_order': …, 'shape': (…)}".into());
    }
    // The shape's element count, with checked arithmetic (the header parser multiplies unchecked).
    let text = String::from_utf8_lossy(header);
    let shape = text.split_once("'shape'").and_then(|(_, rest)| rest.split_once('(')).and_then(|(_, rest)| rest.split_once(')')).map(|(dims, _)| dims);
    let Some(dims) = shape else { return Err("its header has no 'shape': (…) tuple".into()) };
    let mut product: u64 = 1;
    for d in dims.split(',').map(str::trim).filter(|d| !d.is_empty()) {
        let d: u64 = d.trim_end_matches('L').parse().map_err(|_| format!("its shape ({dims}) is not a tuple of non-negative integers"))?;
        product = product.checked_mul(d).ok_or_else(|| format!("its shape ({dims}) has more elements than can be counted"))?;
    }
    Ok(())
}

/// Reads an NCHW batch: rank 4, float.
///
/// # Errors
/// As [`read_npy`], and an array that is not rank 4.
pub fn read_nchw(path: &Path) -> Result<([usize; 4], Vec<f32>)> {
    let a = read_npy(path)?;
    let shape: [usize; 4] = a.shape.as_slice().try_into().map_err(|_| {
        Error::file("npy file", path, format!("has shape {:?} (rank {}); expected a rank-4 NCHW batch, e.g. x[None] for one image", a.shape, a.shape.len()))
    })?;
    Ok((shape, a.data))
}

/// Encodes a C-order f32 array as `.npy` bytes.
///
/// # Errors
/// A shape whose product does not match the data.
pub fn npy_bytes(shape: &[usize], data: &[f32]) -> Result<Vec<u8>> {
    let mut buf = Vec::new();
    {
        let dims: Vec<u64> = shape.iter().map(|&d| d as u64).collect();
        let mut w = npyz::WriteOptions::new().default_dtype().shape(&dims).writer(&mut buf).begin_nd().map_err(|e| Error::input("npy encoding", e))?;
        w.extend(data.iter().copied()).map_err(|e| Error::input("npy encoding", e))?;
        w.finish().map_err(|e| Error::input("npy encoding", e))?;
    }
    Ok(buf)
}

/// Writes a C-order f32 array to `path` atomically.
///
/// # Errors
/// As [`npy_bytes`], and a file that cannot be written.
pub fn write_npy(path: &Path, shape: &[usize], data: &[f32]) -> Result<()> {
    write_atomic(path, &npy_bytes(shape, data)?)
}
