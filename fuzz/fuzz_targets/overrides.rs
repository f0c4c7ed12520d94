//! `--set KEY=VALUE` overrides applied to a fixed, valid spec.
#![no_main]
use std::path::Path;

use infoloss::experiment::Spec;
use libfuzzer_sys::fuzz_target;

const BASE: &str = r#"
name = "f"
kind = "train"
seeds = [0, 1]
data = "synthetic"
[model]
width = 0.1
[train]
epochs = 1
[grid]
"model.bottleneck" = ["linear", "relu6"]
[[claims]]
id = "c"
statement = "s"
metric = "val_acc"
a = "bottleneck=linear"
b = "bottleneck=relu6"
"#;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let overrides: Vec<String> = text.split('\n').take(8).map(str::to_string).collect();
    if let Ok(spec) = Spec::parse(BASE, Path::new("."), &overrides) {
        let _ = infoloss::experiment::runner::plan(&spec, Path::new("/nonexistent-fuzz-out"));
    }
});
