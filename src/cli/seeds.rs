//! Parsing of list flags: `--seeds 0..20` (half-open range) or `--seeds 1,2,5`.

/// Parses `a..b` or a comma list of integers.
pub fn parse_seeds(s: &str) -> Result<Vec<u64>, String> {
    let bad = || format!("invalid seeds '{s}': use a range like 0..20 or a list like 1,2,5");
    if let Some((a, b)) = s.split_once("..") {
        let (a, b): (u64, u64) = (a.trim().parse().map_err(|_| bad())?, b.trim().parse().map_err(|_| bad())?);
        if b <= a {
            return Err(bad());
        }
        return Ok((a..b).collect());
    }
    s.split(',').map(|v| v.trim().parse().map_err(|_| bad())).collect()
}
