//! Image decoding (PNG, JPEG) with its size limits, then the torchvision preprocessing.
#![no_main]
use std::path::Path;

use infoloss::data::images::{decode_image, preprocess, Preprocess};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(img) = decode_image(data, Path::new("fuzz.png")) {
        // Preprocessing of huge images is slow, not wrong: keep the fuzzer fast.
        if u64::from(img.width()) * u64::from(img.height()) <= 1 << 20 {
            let _ = preprocess(&img, 32, Preprocess::Torchvision);
        }
    }
});
