//! The safetensors weights loader: decoding any bytes, then loading them into a small model, must
//! return `Ok` or an error — never panic, never abort on an allocation.
#![no_main]
use std::path::Path;

use infoloss::model::{ModelConfig, WeightsFile};
use infoloss::MobileNetV2;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let path = Path::new("fuzz.safetensors");
    if let Ok(file) = WeightsFile::from_bytes(data, path) {
        let config = ModelConfig { width: 0.1, resolution: 32, classes: 2, ..Default::default() };
        if let Ok(mut m) = MobileNetV2::new(&config) {
            let _ = m.load_weights(&file, path);
        }
    }
});
