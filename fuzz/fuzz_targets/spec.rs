//! Experiment spec parsing (TOML text → a resolved spec and its run plan).
#![no_main]
use std::path::Path;

use infoloss::experiment::Spec;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    if let Ok(spec) = Spec::parse(text, Path::new("/nonexistent-fuzz-base"), &[]) {
        let _ = infoloss::experiment::runner::plan(&spec, Path::new("/nonexistent-fuzz-out"));
    }
});
