//! Churn stress (issue 3): a shared live graph of over a million managed
//! objects (350,000 rings of 3 nodes, each node owning a `String`, held in a
//! rooted `GcVec`) that 4 threads replace at random — whole rings, or a
//! ring's tail through an edge store — while collections run on their own
//! and from explicit `gc()` calls. It checks itself: every ring read during
//! and after the run is intact (ids, checksums, payloads, the cycle closes,
//! no reachable node dropped), and after `gc()` every replaced node was
//! dropped exactly once and no live one was (see `tests/common/churn.rs`).
//! It prints one summary line and exits with status 0 only if all is well
//! (a violation panics, naming the seed).
//!
//! CI runs it with the checkmark verifier, and `--small` (a few thousand
//! objects) under valgrind memcheck:
//!
//! ```text
//! cargo build --release -p tricolor --example churn_stress
//! TRICOLOR_DEBUG=gccheckmark=1 target/release/examples/churn_stress
//! valgrind --error-exitcode=1 --leak-check=full --errors-for-leak-kinds=definite \
//!     target/release/examples/churn_stress --small
//! ```
//!
//! Options: `--small`, `--entries N` (rings; the live graph is 3N nodes),
//! `--ops M` (replacements over all threads), `--threads T`, `--seed S`,
//! `--gcs K` (explicit collections), `--gc-percent P`.

#[path = "../tests/common/churn.rs"]
mod churn;
#[path = "../tests/common/mod.rs"]
mod common;

use churn::Config;

fn usage(msg: &str) -> ! {
    eprintln!(
        "churn_stress: {msg}\nusage: churn_stress [--small] [--entries N] [--ops M] \
         [--threads T] [--seed S] [--gcs K] [--gc-percent P]"
    );
    std::process::exit(2);
}

fn parse_args() -> Config {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut cfg = if args.iter().any(|a| a == "--small") {
        Config {
            entries: 2_000,
            ops: 4_000_000,
            threads: 4,
            seed: 0x5eed,
            explicit_gcs: 4,
            gc_percent: 25,
        }
    } else {
        Config {
            entries: 350_000,
            ops: 12_000_000,
            threads: 4,
            seed: 0x5eed,
            explicit_gcs: 4,
            gc_percent: 25,
        }
    };
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        if arg == "--small" {
            continue;
        }
        let mut value = || -> u64 {
            let v = it
                .next()
                .unwrap_or_else(|| usage(&format!("{arg} needs a value")));
            let parsed = match v.strip_prefix("0x") {
                Some(hex) => u64::from_str_radix(hex, 16),
                None => v.parse(),
            };
            parsed.unwrap_or_else(|_| usage(&format!("{arg} {v}: not a number")))
        };
        match arg.as_str() {
            "--entries" => cfg.entries = value(),
            "--ops" => cfg.ops = value(),
            "--threads" => cfg.threads = value(),
            "--seed" => cfg.seed = value(),
            "--gcs" => cfg.explicit_gcs = value(),
            "--gc-percent" => {
                cfg.gc_percent =
                    i32::try_from(value()).unwrap_or_else(|_| usage("--gc-percent out of range"))
            }
            _ => usage(&format!("unknown argument {arg}")),
        }
    }
    if cfg.entries == 0 || !(1..=1024).contains(&cfg.threads) {
        usage("--entries must be at least 1 and --threads 1 to 1024");
    }
    cfg
}

fn main() {
    let cfg = parse_args();
    let summary = churn::run(&cfg);
    println!("{}", summary.line(&cfg));
}
