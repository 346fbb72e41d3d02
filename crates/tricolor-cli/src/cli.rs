//! The command-line interface: clap definitions and the dispatcher behind
//! the `tricolor` binary.
//!
//! Exit codes: 0 on success, 2 on any error (bad arguments, a workload that
//! cannot run, a failed write to stdout, a panic in a workload), always with
//! a message on stderr.

use std::io::{self, Write};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};

use crate::report;
use crate::workloads::{self, binary_trees, churn, gcbench};

/// The exit code of every error.
pub const EXIT_ERROR: u8 = 2;

/// tricolor: Go's memory-management runtime for Rust, from the command line.
///
/// Runs garbage-collection workloads on the tricolor heap and reports what
/// the collector did. The runtime's environment variables are listed below.
///
/// Exit status: 0 on success, 2 on any error.
#[derive(Debug, Parser)]
#[command(name = "tricolor", version, propagate_version = true)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands of `tricolor`.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run a workload on the tricolor heap.
    ///
    /// The workload's own output goes to stdout: for binary-trees and gcbench
    /// exactly as the original program prints it (no timings), for churn its
    /// measurements; --stats and --json add a report after it.
    #[command(
        subcommand_value_name = "WORKLOAD",
        subcommand_help_heading = "Workloads"
    )]
    Run(RunArgs),
    /// List the workloads `tricolor run` knows (same as `tricolor run --list`).
    List,
    /// Read pprof profiles (tricolor's or Go's, gzip'd or raw).
    #[command(subcommand)]
    Pprof(PprofCommand),
}

/// The subcommands of `tricolor pprof`.
#[derive(Debug, Subcommand)]
pub enum PprofCommand {
    /// Print the top functions of a profile, like `go tool pprof -top`:
    /// flat (the function is the leaf), flat%, sum%, cum (anywhere on the
    /// stack), cum%, function.
    Top {
        /// The profile file (e.g. written by `tricolor run --heap-profile`,
        /// or by Go's `pprof.WriteHeapProfile`).
        file: std::path::PathBuf,
        /// The sample type to show, by name (alloc_objects, alloc_space,
        /// inuse_objects, inuse_space for heap profiles) or index; default:
        /// the profile's default sample type.
        #[arg(long, value_name = "TYPE")]
        sample_index: Option<String>,
        /// Show at most N functions.
        #[arg(long, value_name = "N")]
        nodecount: Option<usize>,
    },
}

/// Arguments of `tricolor run`. The flags may be given before or after the
/// workload name.
#[derive(Debug, clap::Args)]
pub struct RunArgs {
    /// After the workload's output, print a readable memory-statistics
    /// summary (heap sizes, objects, GC cycles, pauses, wall time) to stdout.
    /// With --json the summary goes to stderr instead, so that the JSON
    /// object stays the last line of stdout.
    #[arg(long, global = true)]
    pub stats: bool,

    /// Make the last line of stdout one JSON object: {"workload", "params",
    /// "wall_s", "mem_stats" (all MemStats fields), "pauses" {"count",
    /// "p50_ns", "p99_ns", "max_ns"} over the last min(num_gc, 256) pauses}.
    /// churn adds "ops_per_s", "mutator_pauses" (its threads' pin/repin
    /// latencies, same keys as "pauses") and "batches".
    #[arg(long, global = true)]
    pub json: bool,

    /// Print one line per GC cycle on stderr in Go's gctrace format, as
    /// TRICOLOR_DEBUG=gctrace=1 does.
    #[arg(long, global = true)]
    pub gctrace: bool,

    /// After the run, print every runtime metric (tricolor::metrics, Go's
    /// runtime/metrics names) to stdout, one per line, readable; with
    /// --json, add them to the JSON object instead, as "metrics": {name:
    /// value}, histograms as {"counts", "buckets" (boundaries, null for
    /// infinite), "sum"}.
    #[arg(long, global = true)]
    pub metrics: bool,

    /// After the run, write the heap profile (gzip'd pprof: sampled
    /// allocation sites of the run, see TRICOLOR_MEMPROFILERATE) to FILE;
    /// read it with `tricolor pprof top FILE` or `go tool pprof`.
    #[arg(long, global = true, value_name = "FILE")]
    pub heap_profile: Option<std::path::PathBuf>,

    /// Set the GC percentage (like GOGC) before the run; a negative value
    /// turns the collector off. Overrides TRICOLOR_GC.
    #[arg(
        long,
        global = true,
        value_name = "PERCENT",
        allow_negative_numbers = true
    )]
    pub gogc: Option<i32>,

    /// List the workloads and exit.
    #[arg(long)]
    pub list: bool,

    /// The workload to run.
    #[command(subcommand)]
    pub workload: Option<Workload>,
}

/// The workloads, as subcommands of `tricolor run`.
#[derive(Debug, Clone, Subcommand)]
pub enum Workload {
    /// The Computer Language Benchmarks Game binary-trees (single-threaded),
    /// every node on the tricolor heap. Prints exactly the benchmark's
    /// output.
    BinaryTrees {
        /// Maximum tree depth (the benchmark's N; values below 6 run as 6).
        #[arg(long, short = 'n', default_value_t = 21,
              value_parser = clap::value_parser!(u32).range(0..=i64::from(binary_trees::MAX_DEPTH)))]
        depth: u32,
    },
    /// Hans Boehm's GCBench: a stretch tree, a long-lived tree and array, and
    /// short-lived trees built top-down and bottom-up (depth 4 to 16).
    Gcbench {
        /// Use the small parameter set (stretch depth 10, long-lived depth 8,
        /// 4000 doubles, trees of depth 4 to 8) instead of the classic one.
        #[arg(long)]
        small: bool,
    },
    /// Multi-threaded churn: a rooted table of LIVE entries (each a small
    /// graph with cycles and a string payload); THREADS threads replace
    /// random entries OPS times in all, verifying one random entry every
    /// eighth operation. Prints the throughput and the mutator-observed
    /// pin/repin latency (p50, p99, max): the time the mutator threads were
    /// blocked by the collector.
    Churn {
        /// Number of live entries (slots of the table).
        #[arg(long, default_value_t = 1_000_000,
              value_parser = clap::value_parser!(u64).range(1..=churn::MAX_LIVE))]
        live: u64,
        /// Total number of replacements, shared out among the threads.
        #[arg(long, default_value_t = 10_000_000)]
        ops: u64,
        /// Number of mutator threads.
        #[arg(long, default_value_t = 2,
              value_parser = clap::value_parser!(u64).range(1..=churn::MAX_THREADS))]
        threads: u64,
    },
}

impl Workload {
    /// The workload's name, as `tricolor run --list` shows it.
    pub fn name(&self) -> &'static str {
        match self {
            Workload::BinaryTrees { .. } => "binary-trees",
            Workload::Gcbench { .. } => "gcbench",
            Workload::Churn { .. } => "churn",
        }
    }

    /// The workload's parameters, for the JSON report.
    pub fn params(&self) -> Vec<(&'static str, u64)> {
        match self {
            Workload::BinaryTrees { depth } => vec![("depth", u64::from(*depth))],
            Workload::Gcbench { small } => {
                let p = gcbench_params(*small);
                vec![
                    ("stretch_tree_depth", u64::from(p.stretch_tree_depth)),
                    ("long_lived_tree_depth", u64::from(p.long_lived_tree_depth)),
                    ("array_size", p.array_size as u64),
                    ("min_tree_depth", u64::from(p.min_tree_depth)),
                    ("max_tree_depth", u64::from(p.max_tree_depth)),
                ]
            }
            Workload::Churn { live, ops, threads } => {
                vec![("live", *live), ("ops", *ops), ("threads", *threads)]
            }
        }
    }

    /// Runs the workload, writing its output to `out`; returns what the
    /// workload measured itself, for the report (nothing for most).
    pub fn run(&self, out: &mut dyn Write) -> io::Result<report::Extra> {
        match self {
            Workload::BinaryTrees { depth } => {
                binary_trees::run(*depth, out).map(|()| report::Extra::default())
            }
            Workload::Gcbench { small } => {
                gcbench::run_with(&gcbench_params(*small), out).map(|()| report::Extra::default())
            }
            Workload::Churn { live, ops, threads } => {
                let params = churn::ChurnParams {
                    live: *live,
                    ops: *ops,
                    threads: *threads,
                };
                churn::run(&params, out).map(|r| r.extra())
            }
        }
    }
}

fn gcbench_params(small: bool) -> gcbench::GcBenchParams {
    if small {
        gcbench::GcBenchParams::small()
    } else {
        gcbench::GcBenchParams::default()
    }
}

/// An error to report: a message for stderr (exit code [`EXIT_ERROR`]).
#[derive(Debug)]
pub struct CliError(pub String);

impl std::fmt::Display for CliError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for CliError {}

/// The `tricolor` command with its help completed at run time (the
/// runtime's environment variables, from [`tricolor::OPTIONS`]).
pub fn command() -> clap::Command {
    let env = env_help();
    let run_help = format!("{RUN_EXAMPLES}\n{env}");
    Cli::command()
        .after_help(env)
        .mut_subcommand("run", |c| c.after_help(run_help))
}

/// The "Examples" section of `tricolor run --help`.
const RUN_EXAMPLES: &str = "Examples:
  tricolor run binary-trees --depth 21 --json
  tricolor run gcbench --stats
  tricolor run gcbench --small --gctrace --metrics
  tricolor run --gogc 200 binary-trees -n 16 --stats
  tricolor run churn --live 1000000 --ops 10000000 --threads 2 --json
  tricolor run --list
  tricolor run binary-trees -n 18 --heap-profile heap.pb.gz && tricolor pprof top heap.pb.gz
";

/// The "Environment" section of the help: every variable the runtime reads.
fn env_help() -> String {
    let mut s = String::from("Environment (read by the runtime when the heap is first used):\n");
    for o in tricolor::OPTIONS {
        let default = if o.default.is_empty() {
            "unset".to_owned()
        } else {
            o.default.to_owned()
        };
        s.push_str(&format!(
            "  {} (default {default})\n      {}\n",
            o.env, o.doc
        ));
    }
    s
}

/// Parses the process arguments, runs the command and returns the exit code.
/// Errors are printed on stderr.
pub fn main() -> ExitCode {
    let matches = command().get_matches();
    let cli = Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit());
    match execute(&cli, &mut io::stdout()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("tricolor: error: {e}");
            ExitCode::from(EXIT_ERROR)
        }
    }
}

/// Runs a parsed command line, writing the normal output to `out`.
///
/// `tricolor run` without a workload is a usage error: clap prints it with
/// the usage line and exits the process with code 2.
pub fn execute(cli: &Cli, out: &mut (dyn Write + Send)) -> Result<(), CliError> {
    match &cli.command {
        Command::List => write_list(out),
        Command::Run(args) => run(args, out),
        Command::Pprof(PprofCommand::Top {
            file,
            sample_index,
            nodecount,
        }) => pprof_top(file, sample_index.as_deref(), *nodecount, out),
    }
}

fn pprof_top(
    file: &std::path::Path,
    sample_index: Option<&str>,
    nodecount: Option<usize>,
    out: &mut dyn Write,
) -> Result<(), CliError> {
    let name = file.display().to_string();
    let bytes = std::fs::read(file).map_err(|e| CliError(format!("cannot read {name}: {e}")))?;
    let p = crate::pprof::decode(&name, &bytes).map_err(|e| CliError(e.0))?;
    let t =
        crate::pprof::top(&p, sample_index).map_err(|e| CliError(format!("{name}: {}", e.0)))?;
    out.write_all(crate::pprof::render(&t, nodecount).as_bytes())
        .and_then(|()| out.flush())
        .map_err(write_error)
}

fn write_heap_profile(path: &std::path::Path) -> Result<(), CliError> {
    let err = |e: io::Error| {
        CliError(format!(
            "cannot write the heap profile to {}: {e}",
            path.display()
        ))
    };
    let f = std::fs::File::create(path).map_err(err)?;
    tricolor::profile::write_heap_profile(io::BufWriter::new(f)).map_err(err)
}

fn write_list(out: &mut dyn Write) -> Result<(), CliError> {
    out.write_all(workloads::list_text().as_bytes())
        .and_then(|()| out.flush())
        .map_err(write_error)
}

fn write_error(e: io::Error) -> CliError {
    CliError(format!("cannot write to stdout: {e}"))
}

fn run(args: &RunArgs, out: &mut (dyn Write + Send)) -> Result<(), CliError> {
    if args.list {
        return write_list(out);
    }
    let Some(workload) = &args.workload else {
        let names: Vec<&str> = workloads::WORKLOADS.iter().map(|w| w.name).collect();
        let mut cmd = command();
        cmd.build();
        let run_cmd = cmd.find_subcommand("run").cloned();
        let msg = format!(
            "no workload given: choose one of {} (see `tricolor run --list`)",
            names.join(", ")
        );
        match run_cmd {
            Some(mut c) => c
                .error(clap::error::ErrorKind::MissingSubcommand, msg)
                .exit(),
            None => return Err(CliError(msg)),
        }
    };
    if let Some(p) = args.gogc {
        tricolor::set_gc_percent(p);
    }
    if args.gctrace {
        tricolor::set_gctrace(true);
    }

    let (wall, result) = timed_run(workload, out);
    let mut extra = result?;
    out.flush().map_err(write_error)?;
    if let Some(path) = &args.heap_profile {
        write_heap_profile(path)?;
    }

    let stats = tricolor::read_mem_stats();
    let metrics = args.metrics.then(tricolor::metrics::read_all);
    if args.stats {
        let text = report::summary_with(&stats, Some(wall), &extra);
        if args.json {
            eprint!("{text}");
        } else {
            out.write_all(text.as_bytes()).map_err(write_error)?;
        }
    }
    if let Some(m) = &metrics {
        if args.json {
            extra.json.push(("metrics", report::metrics_json(m)));
        } else {
            out.write_all(report::metrics_text(m).as_bytes())
                .map_err(write_error)?;
        }
    }
    if args.json {
        let line =
            report::json_line_with(workload.name(), &workload.params(), wall, &stats, &extra);
        writeln!(out, "{line}").map_err(write_error)?;
    }
    out.flush().map_err(write_error)
}

/// Runs `workload` on a thread of its own and returns its wall time (the
/// workload alone, from its first to its last instruction) and its result
/// (what it measured itself, or the error).
///
/// A thread of its own because a thread that exits returns its allocation
/// cache to the heap, which commits its last allocation counts: the
/// statistics read after the join are exact without forcing a collection.
/// A panic in the workload becomes an error (exit code 2) rather than Rust's
/// default exit code 101; the panic message is already on stderr.
fn timed_run(
    workload: &Workload,
    out: &mut (dyn Write + Send),
) -> (Duration, Result<report::Extra, CliError>) {
    let joined = std::thread::scope(|s| {
        let worker = std::thread::Builder::new()
            .name(format!("tricolor-{}", workload.name()))
            .spawn_scoped(s, || {
                let start = Instant::now();
                let result = workload.run(out);
                (start.elapsed(), result)
            });
        match worker {
            Ok(handle) => handle.join().map_err(|_| {
                CliError(format!(
                    "{} panicked (the message is above)",
                    workload.name()
                ))
            }),
            Err(e) => Err(CliError(format!("cannot start the workload thread: {e}"))),
        }
    });
    match joined {
        Ok((wall, Ok(extra))) => (wall, Ok(extra)),
        Ok((wall, Err(e))) if e.kind() == io::ErrorKind::InvalidInput => {
            (wall, Err(CliError(format!("{}: {e}", workload.name()))))
        }
        Ok((wall, Err(e))) => (wall, Err(write_error(e))),
        Err(e) => (Duration::ZERO, Err(e)),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn clap_definition_is_consistent() {
        super::command().debug_assert();
    }
}
