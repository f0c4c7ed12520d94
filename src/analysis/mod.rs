//! Information-loss analyses: activation patterns against the rank threshold ([`patterns`]),
//! Lemma 2 at every position ([`invertibility`], [`lemma2_observer`]), the spiral experiment
//! ([`manifold`]), Theorem 1 against experiment ([`theory`]), interval statistics ([`stats`]).

pub mod invertibility;
pub mod jacobian;
pub mod lemma2_avx512;
pub mod lemma2_gram;
pub mod lemma2_kernels;
pub mod lemma2_observer;
pub mod manifold;
pub mod memory;
pub mod patterns;
pub mod stats;
pub mod theory;

pub use invertibility::{lemma2_check, Lemma2Layer, Lemma2Verdict, RANK_EPS};
pub use patterns::{analyze, AnalyzeResult, AnalyzeSettings};
