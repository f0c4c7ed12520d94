//! Reproducible experiments: a TOML spec ([`spec`], with `--set` [`overrides`]) of variants × seeds
//! and the paper claims they test, resolved into typed setups ([`setup`], [`variants`]; suites in
//! [`suite`]); runs keyed by a hash of their config ([`run`]), executed resumably, in shards and in
//! parallel ([`runner`]); statistics and verdicts ([`summary`]); shard outputs combined ([`merge`](mod@merge)).
//! Metric names live in one catalogue ([`metrics`]).

pub mod merge;
pub mod metrics;
pub mod overrides;
pub mod report;
mod report_figures;
pub mod run;
pub mod runner;
pub mod setup;
pub mod slurm;
pub mod spec;
pub mod suite;
pub mod summary;
pub mod variants;

pub use merge::merge;
pub use runner::{parse_shard, run_spec, RunOptions, RunOutcome, RunProgress};
pub use spec::{Claim, Kind, Spec};
