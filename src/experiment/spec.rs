//! Experiment specs, parsed in two stages: the TOML text (with `--set key=value` overrides applied to
//! it) → [`RawSpec`] (unknown keys rejected by serde) → a validated [`Spec`] whose every variant is a
//! fully resolved, typed [`Setup`]. Every error names the key and the fix, and all of them surface
//! before any compute.
//!
//! A spec is one experiment of a `kind` (`train`, `spiral`, `theory`, `memory`) over a list of variants and
//! seeds, with the paper claims it tests — or a `suite` of such specs (e.g. `quick.toml`), each part
//! a spec file with its own overrides.

use std::path::Path;

use serde::{Deserialize, Serialize};

use super::metrics::{metric_available, metric_names};
use super::overrides::{apply_overrides, Override};
use super::setup::Setup;
use crate::analysis::stats::Direction;
use crate::error::{Error, Result};

/// What an experiment runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    /// Train each variant × seed, then analyse the trained (and optionally initial) network.
    Train,
    /// Fig. 1: the spiral through a random embedding and ReLU.
    Spiral,
    /// Theorem 1 against random expansion layers.
    Theory,
    /// Table 3 and §5.1: materialised memory, and the measured peak heap of split execution.
    Memory,
    /// A list of other specs.
    Suite,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Train => "train",
            Kind::Spiral => "spiral",
            Kind::Theory => "theory",
            Kind::Memory => "memory",
            Kind::Suite => "suite",
        }
    }

    /// The per-variant sections this kind accepts.
    pub fn sections(self) -> &'static [&'static str] {
        match self {
            Kind::Train => &["model", "train", "analysis"],
            Kind::Spiral => &["spiral"],
            Kind::Theory => &["theory"],
            Kind::Memory => &["memory"],
            Kind::Suite => &[],
        }
    }

    /// Top-level keys this kind accepts besides the common ones.
    pub(super) fn own_keys(self) -> &'static [&'static str] {
        match self {
            Kind::Train => &["data", "model", "train", "analysis"],
            Kind::Spiral => &["spiral"],
            Kind::Theory => &["theory"],
            Kind::Memory => &["memory"],
            Kind::Suite => &["parts"],
        }
    }
}

/// Keys a suite keeps for itself; [`PART_KEYS`] and each part's own sections go to the parts.
pub(super) const SUITE_KEYS: [&str; 3] = ["name", "description", "preliminary"];
pub(super) const PART_KEYS: [&str; 2] = ["seeds", "alpha"];
/// Keys only some kinds have.
const KIND_KEYS: [&str; 9] = ["data", "model", "train", "analysis", "spiral", "theory", "memory", "parts", "grid"];

/// The spec as written (after overrides).
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct RawSpec {
    pub name: String,
    #[serde(default)]
    pub description: String,
    pub kind: Kind,
    #[serde(default)]
    pub preliminary: bool,
    pub seeds: Option<toml::Value>,
    pub alpha: Option<f64>,
    pub data: Option<String>,
    pub model: Option<toml::Table>,
    pub train: Option<toml::Table>,
    pub analysis: Option<toml::Table>,
    pub spiral: Option<toml::Table>,
    pub theory: Option<toml::Table>,
    pub memory: Option<toml::Table>,
    pub grid: Option<toml::Table>,
    #[serde(default)]
    pub variants: Vec<RawVariant>,
    #[serde(default)]
    pub claims: Vec<Claim>,
    #[serde(default)]
    pub parts: Vec<RawPart>,
}

/// One `[[variants]]` entry: a name and overrides of the base sections.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawVariant {
    pub name: String,
    pub model: Option<toml::Table>,
    pub train: Option<toml::Table>,
    pub analysis: Option<toml::Table>,
    pub spiral: Option<toml::Table>,
    pub theory: Option<toml::Table>,
    pub memory: Option<toml::Table>,
}

/// One `[[parts]]` entry of a suite: a spec file (relative to the suite) and its overrides.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawPart {
    pub spec: String,
    #[serde(default)]
    pub set: Vec<String>,
}

/// How a claim is decided.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ClaimKind {
    /// One-sided Welch (or one-sample) t-test over seeds, Holm across the experiment; ≥ 5 seeds.
    #[default]
    Statistical,
    /// Agreement with `value` (or with `b`) within `± margin`: two one-sided tests (TOST), Holm with
    /// the statistical claims.
    Equivalence,
    /// A deterministic quantity, or a property of one network per seed, compared once per seed with a
    /// bound: holds / fails / partial ("holds in k of N seeds"); no p-value, never replication.
    Exact,
}

impl ClaimKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ClaimKind::Statistical => "statistical",
            ClaimKind::Equivalence => "equivalence",
            ClaimKind::Exact => "exact",
        }
    }
}

/// A paper claim the experiment tests: `metric(a) > metric(b)` (or `<`, or against a constant), in the
/// [`ClaimKind`] that fits the metric.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Claim {
    /// Short identifier (a column of `claims.csv`).
    pub id: String,
    /// The claim in words, with where the paper makes it.
    pub statement: String,
    pub metric: String,
    /// The variant whose mean the paper says is greater (or less).
    pub a: String,
    /// The variant it is compared with…
    pub b: Option<String>,
    /// …or a constant.
    pub value: Option<f64>,
    #[serde(default)]
    pub direction: Direction,
    #[serde(default)]
    pub kind: ClaimKind,
    /// Equivalence: the half-width of the agreement interval around `value` (or `b`'s mean).
    pub margin: Option<f64>,
    /// Statistical: the smallest effect of interest, for the seeds an inconclusive claim would need
    /// (80% power at its Holm level).
    pub delta: Option<f64>,
    /// Exact `equal`: the largest |a − b| that counts as equal (default 0).
    pub tolerance: Option<f64>,
}

/// One variant, resolved.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Variant {
    pub name: String,
    pub setup: Setup,
}

/// A validated spec.
#[derive(Clone, Debug, Serialize)]
pub struct Spec {
    pub name: String,
    pub description: String,
    pub kind: Kind,
    pub preliminary: bool,
    pub seeds: Vec<u64>,
    /// Family-wise significance level of the claims (Holm).
    pub alpha: f64,
    pub variants: Vec<Variant>,
    pub claims: Vec<Claim>,
    /// Suite parts (empty otherwise).
    pub parts: Vec<Spec>,
    /// The `--set` overrides applied, in order.
    pub overrides: Vec<String>,
    /// The effective TOML (the file with the overrides applied).
    #[serde(skip)]
    pub source: String,
}

/// Default family-wise α.
pub const DEFAULT_ALPHA: f64 = 0.05;

impl Spec {
    /// Reads and validates `path` with `overrides` (`key=value`, TOML values; bare strings allowed).
    ///
    /// # Errors
    /// An unreadable file, or any error of [`Spec::parse`] (named with the file).
    pub fn load(path: &Path, overrides: &[String]) -> Result<Spec> {
        let text = read_spec_text(path).map_err(|e| Error::config("spec", path.display(), format!("{e}; give a spec file such as experiments/quick.toml")))?;
        let base = path.parent().map(Path::to_path_buf).unwrap_or_default();
        Spec::parse(&text, &base, overrides).map_err(|e| match e {
            Error::Config { key, value, fix } => Error::Config { key: format!("{key} (in {})", path.display()), value, fix },
            other => other,
        })
    }

    /// Parses spec text; `base` resolves suite parts.
    ///
    /// # Errors
    /// TOML syntax, unknown keys, sections of another kind, values out of range, claims naming missing variants or metrics.
    pub fn parse(text: &str, base: &Path, overrides: &[String]) -> Result<Spec> {
        let mut table: toml::Table =
            toml::from_str(text).map_err(|e| Error::config("spec", "TOML", format!("fix the syntax: {}", one_line(&e.to_string()))))?;
        let parsed: Vec<Override> = overrides.iter().map(|s| s.parse()).collect::<Result<_>>()?;
        let kind_name = table.get("kind").and_then(|v| v.as_str()).unwrap_or_default().to_string();
        if kind_name == "suite" {
            // Suite-level overrides are handed to the parts (see `resolve_suite`); only the suite's own
            // keys apply here.
            let own: Vec<Override> = parsed.iter().filter(|o| SUITE_KEYS.contains(&o.root())).cloned().collect();
            apply_overrides(&mut table, &own)?;
        } else {
            apply_overrides(&mut table, &parsed)?;
        }
        let source = toml::to_string(&table).map_err(|e| Error::input("spec", e))?;
        let raw: RawSpec = toml::Value::Table(table.clone()).try_into().map_err(|e: toml::de::Error| Error::config("spec", "keys", one_line(e.message())))?;
        let mut spec = resolve(raw, base, &parsed)?;
        spec.overrides = overrides.to_vec();
        spec.source = source;
        Ok(spec)
    }

    /// Number of runs (variants × seeds; for a suite, of all parts).
    pub fn run_count(&self) -> usize {
        if self.kind == Kind::Suite {
            self.parts.iter().map(Spec::run_count).sum()
        } else {
            self.variants.len() * self.seeds.len()
        }
    }

    /// The variant called `name`.
    pub fn variant(&self, name: &str) -> Option<&Variant> {
        self.variants.iter().find(|v| v.name == name)
    }
}

pub(super) fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn resolve(raw: RawSpec, base: &Path, overrides: &[Override]) -> Result<Spec> {
    if raw.name.is_empty() || !raw.name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-') {
        return Err(Error::config("name", format!("{:?}", raw.name), "use letters, digits, '_' or '-' (it names the output folder)"));
    }
    let alpha = raw.alpha.unwrap_or(DEFAULT_ALPHA);
    if !(alpha > 0.0 && alpha < 1.0) {
        return Err(Error::config("alpha", alpha, "use a significance level in (0, 1), e.g. 0.05"));
    }
    check_sections(&raw)?;
    if raw.kind == Kind::Suite {
        return super::suite::resolve_suite(raw, base, overrides, alpha);
    }
    let seeds = parse_seeds(raw.seeds.as_ref())?;
    let variants = super::variants::resolve_variants(&raw)?;
    check_claims(&raw, &variants)?;
    Ok(Spec {
        name: raw.name,
        description: raw.description,
        kind: raw.kind,
        preliminary: raw.preliminary,
        seeds,
        alpha,
        variants,
        claims: raw.claims,
        parts: Vec::new(),
        overrides: Vec::new(),
        source: String::new(),
    })
}

/// Sections that do not belong to the kind are an error, not silently ignored.
fn check_sections(raw: &RawSpec) -> Result<()> {
    let present: [(&str, bool); 9] = [
        ("data", raw.data.is_some()),
        ("model", raw.model.is_some()),
        ("train", raw.train.is_some()),
        ("analysis", raw.analysis.is_some()),
        ("spiral", raw.spiral.is_some()),
        ("theory", raw.theory.is_some()),
        ("memory", raw.memory.is_some()),
        ("parts", !raw.parts.is_empty()),
        ("grid", raw.grid.is_some()),
    ];
    debug_assert_eq!(present.iter().map(|p| p.0).collect::<Vec<_>>(), KIND_KEYS);
    let kind = raw.kind;
    for (key, is) in present {
        let allowed = kind.own_keys().contains(&key) || (key == "grid" && kind != Kind::Suite);
        if is && !allowed {
            return Err(Error::config(
                key,
                format!("a [{key}] in a {} spec", kind.as_str()),
                format!("remove it; a {} spec takes {}", kind.as_str(), kind.own_keys().join(", ")),
            ));
        }
    }
    if kind == Kind::Suite {
        if raw.parts.is_empty() {
            return Err(Error::config("parts", "none", "list the specs of the suite as [[parts]] spec = \"file.toml\""));
        }
        if !raw.variants.is_empty() || !raw.claims.is_empty() || raw.seeds.is_some() {
            return Err(Error::config(
                "variants/claims/seeds",
                "in a suite",
                "put them in the part specs, or override them with a part's set = [\"seeds=0..3\"]",
            ));
        }
    } else if kind == Kind::Train && raw.data.is_none() {
        return Err(Error::config("data", "missing", "set data = \"synthetic\" (or cifar:DIR, mnist:DIR, folder:DIR)"));
    }
    Ok(())
}

/// Largest spec file read (a spec is a few KB; this keeps `/dev/zero` or a binary from being read
/// without limit).
pub const MAX_SPEC_BYTES: u64 = 1 << 20;

/// Reads a spec file: a regular file of at most [`MAX_SPEC_BYTES`], UTF-8.
///
/// # Errors
/// A missing or unreadable path, a device or folder, a file too large, text that is not UTF-8 —
/// as a message without the path (callers name it).
pub fn read_spec_text(path: &Path) -> std::result::Result<String, String> {
    use std::io::Read;
    let meta = std::fs::metadata(path).map_err(|e| format!("cannot read it ({e})"))?;
    if !meta.is_file() {
        return Err("it is not a regular file".into());
    }
    let mut buf = Vec::new();
    std::fs::File::open(path).and_then(|f| f.take(MAX_SPEC_BYTES + 1).read_to_end(&mut buf)).map_err(|e| format!("cannot read it ({e})"))?;
    if buf.len() as u64 > MAX_SPEC_BYTES {
        return Err(format!("it is larger than {MAX_SPEC_BYTES} bytes, too large for a spec"));
    }
    String::from_utf8(buf).map_err(|_| "it is not UTF-8 text".into())
}

/// Most seeds one spec, part or flag may list: far beyond any replication count, and small enough
/// that planning (and `--dry-run`) stays instant.
pub const MAX_SEEDS: usize = 10_000;

/// The seeds of a half-open range `"a..b"` (at most [`MAX_SEEDS`]).
///
/// # Errors
/// Not a range of non-negative integers, an empty range, or one longer than [`MAX_SEEDS`].
pub fn parse_seed_range(s: &str) -> Result<Vec<u64>> {
    let bad = || Error::config("seeds", s, "use a range of non-negative integers like \"0..5\" (end exclusive) or a list like [0, 1, 2]");
    let (a, b) = s.split_once("..").ok_or_else(bad)?;
    let (a, b): (u64, u64) = (a.trim().parse().map_err(|_| bad())?, b.trim().parse().map_err(|_| bad())?);
    if b <= a {
        return Err(Error::config("seeds", s, "the range is empty; write start..end with end > start, e.g. \"0..5\""));
    }
    if b - a > MAX_SEEDS as u64 {
        return Err(Error::config("seeds", s, format!("{} seeds is more than the {MAX_SEEDS} allowed; use a shorter range", b - a)));
    }
    Ok((a..b).collect())
}

/// `seeds = [0, 1, 2]` or `seeds = "0..5"` (end exclusive); default `[0]`.
///
/// # Errors
/// Not a list or range of distinct non-negative integers, or more than [`MAX_SEEDS`].
pub fn parse_seeds(v: Option<&toml::Value>) -> Result<Vec<u64>> {
    let bad = |v: &dyn std::fmt::Display| Error::config("seeds", v, "use a list of non-negative integers like [0, 1, 2] or a range like \"0..5\"");
    let seeds: Vec<u64> = match v {
        None => vec![0],
        Some(toml::Value::String(s)) => parse_seed_range(s)?,
        Some(toml::Value::Array(items)) if items.len() > MAX_SEEDS => {
            return Err(Error::config("seeds", format!("a list of {}", items.len()), format!("list at most {MAX_SEEDS} seeds")));
        }
        Some(toml::Value::Array(items)) => {
            items.iter().map(|x| x.as_integer().filter(|&i| i >= 0).map(|i| i as u64).ok_or_else(|| bad(x))).collect::<Result<_>>()?
        }
        Some(other) => return Err(bad(other)),
    };
    if seeds.is_empty() {
        return Err(Error::config("seeds", "an empty list", "give at least one seed, e.g. \"0..5\""));
    }
    let mut sorted = seeds.clone();
    sorted.sort_unstable();
    sorted.dedup();
    if sorted.len() != seeds.len() {
        return Err(Error::config("seeds", format!("{seeds:?}"), "list each seed once"));
    }
    Ok(seeds)
}

/// The fields each claim kind takes, and deterministic metrics only in exact checks.
fn check_claim_kind(c: &Claim, key: &dyn Fn(&str) -> String) -> Result<()> {
    let positive = |name: &str, v: Option<f64>| -> Result<()> {
        match v {
            Some(x) if !(x.is_finite() && x > 0.0) => Err(Error::config(key(name), x, "use a finite positive number")),
            _ => Ok(()),
        }
    };
    positive("margin", c.margin)?;
    positive("delta", c.delta)?;
    if let Some(t) = c.tolerance.filter(|t| !(t.is_finite() && *t >= 0.0)) {
        return Err(Error::config(key("tolerance"), t, "use a finite non-negative number"));
    }
    let deterministic = super::metrics::is_deterministic(&c.metric);
    match c.kind {
        ClaimKind::Exact => {
            if c.margin.is_some() || c.delta.is_some() {
                return Err(Error::config(key("kind"), "exact", "an exact check takes direction (and tolerance for equal), not margin or delta"));
            }
            if c.tolerance.is_some() && c.direction != Direction::Equal {
                return Err(Error::config(key("tolerance"), c.tolerance.unwrap_or_default(), "tolerance belongs to direction = \"equal\""));
            }
        }
        ClaimKind::Statistical | ClaimKind::Equivalence if deterministic => {
            return Err(Error::config(
                key("kind"),
                format!("{} on {}", c.kind.as_str(), c.metric),
                format!("{} is deterministic (the same for every seed): repeating it is not replication; use kind = \"exact\"", c.metric),
            ));
        }
        ClaimKind::Statistical => {
            if !c.direction.is_one_sided() {
                return Err(Error::config(key("direction"), c.direction.as_str(), "a statistical claim is greater or less; bounds belong to kind = \"exact\""));
            }
            if c.margin.is_some() || c.tolerance.is_some() {
                return Err(Error::config(key("kind"), "statistical", "margin belongs to kind = \"equivalence\", tolerance to kind = \"exact\""));
            }
        }
        ClaimKind::Equivalence => {
            if c.margin.is_none() {
                return Err(Error::config(
                    key("margin"),
                    "missing",
                    "an equivalence claim needs margin = the largest difference that still counts as agreement",
                ));
            }
            if c.delta.is_some() || c.tolerance.is_some() || c.direction != Direction::Greater {
                return Err(Error::config(key("kind"), "equivalence", "an equivalence claim takes value (or b) and margin only"));
            }
        }
    }
    Ok(())
}

fn check_claims(raw: &RawSpec, variants: &[Variant]) -> Result<()> {
    let names: Vec<&str> = variants.iter().map(|v| v.name.as_str()).collect();
    let find = |key: String, name: &str| -> Result<&Variant> {
        variants.iter().find(|v| v.name == name).ok_or_else(|| {
            let best = names.iter().min_by_key(|n| strsim::levenshtein(n, name)).copied().unwrap_or_default();
            Error::config(key, name, format!("name a variant of this spec (did you mean '{best}'? variants: {})", names.join(", ")))
        })
    };
    let mut ids = Vec::new();
    for (i, c) in raw.claims.iter().enumerate() {
        let key = |f: &str| format!("claims[{i}].{f}");
        if ids.contains(&c.id.as_str()) {
            return Err(Error::config(key("id"), &c.id, "give each claim its own id"));
        }
        ids.push(&c.id);
        let known = metric_names(raw.kind);
        if !known.contains(&c.metric) {
            return Err(Error::config(key("metric"), &c.metric, format!("use one of {}", known.join(", "))));
        }
        check_claim_kind(c, &key)?;
        let mut groups = vec![find(key("a"), &c.a)?];
        match (&c.b, c.value) {
            (Some(b), None) => {
                if *b == c.a {
                    return Err(Error::config(key("b"), b, "compare two different variants"));
                }
                groups.push(find(key("b"), b)?);
            }
            (None, Some(v)) if v.is_finite() => {}
            (None, Some(v)) => return Err(Error::config(key("value"), v, "use a finite number")),
            _ => return Err(Error::config(key("b"), "both or neither of b and value", "give either b = \"variant\" or value = number")),
        }
        for g in groups {
            if let Err(fix) = metric_available(&c.metric, &g.setup) {
                return Err(Error::config(key("metric"), format!("{} for variant {}", c.metric, g.name), fix));
            }
        }
    }
    Ok(())
}
