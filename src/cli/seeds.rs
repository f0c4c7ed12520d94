//! Parsing of list flags: `--seeds 0..20` (half-open range) or `--seeds 1,2,5`, with the same bounds
//! as the `seeds` key of experiment specs.

use infoloss::experiment::spec::{parse_seed_range, MAX_SEEDS};

/// Parses `a..b` or a comma list of integers (at most [`MAX_SEEDS`] seeds).
pub fn parse_seeds(s: &str) -> Result<Vec<u64>, String> {
    if s.contains("..") {
        return parse_seed_range(s).map_err(|e| e.to_string());
    }
    let bad = || format!("invalid seeds '{s}': use a range like 0..20 or a list like 1,2,5");
    let seeds: Vec<u64> = s.split(',').map(|v| v.trim().parse().map_err(|_| bad())).collect::<Result<_, _>>()?;
    if seeds.len() > MAX_SEEDS {
        return Err(format!("invalid seeds: {} seeds is more than the {MAX_SEEDS} allowed", seeds.len()));
    }
    Ok(seeds)
}
