//! The `.npy` reader and the NCHW batch built from it.
#![no_main]
use std::path::Path;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(a) = infoloss::io::npy::parse_npy(data, Path::new("fuzz.npy")) {
        if let Ok(shape) = <[usize; 4]>::try_from(a.shape.as_slice()) {
            let _ = infoloss::tensor::Batch::from_nchw(shape, &a.data);
        }
    }
});
