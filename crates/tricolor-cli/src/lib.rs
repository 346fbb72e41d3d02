//! The `tricolor` command line, as a library.
//!
//! The binary (`src/main.rs`) is a thin wrapper around [`cli::main`]; all the
//! logic lives here so that it can be tested and reused (the benchmark crate
//! runs the same workloads):
//!
//! - [`workloads`]: GC workloads that run on the tricolor heap: the
//!   Benchmarks Game binary-trees and Boehm's GCBench (deterministic output),
//!   and `churn` (multi-threaded replacements in a large live heap, measuring
//!   throughput and mutator-observed latency);
//! - [`report`]: turning [`tricolor::MemStats`] into a readable summary or a
//!   one-line JSON object;
//! - [`pprof`]: reading pprof profiles (`tricolor pprof top`);
//! - [`cli`]: the clap command-line definition and its dispatcher.

pub mod cli;
pub mod pprof;
pub mod report;
pub mod workloads;
