//! `tricolor-bench`: runs two classic GC benchmarks side by side in several
//! Rust memory-management strategies, and prints wall time and peak RSS of
//! each against the plain `Box` version.
//!
//! # Running it
//!
//! ```text
//! cargo run --release -p tricolor-bench -- [--workload binary-trees|gcbench|all]
//!     [--depth N] [--impls box,bumpalo,gc,gc-arena,dumpster,bacon_rajan_cc,tricolor]
//!     [--runs K] [--timeout SECS] [--json]
//! ```
//!
//! - `--workload` (default `all`): which program(s) to run.
//! - `--depth N` (default 21): maximum tree depth of binary-trees, at least 6
//!   as in the Benchmarks Game (GCBench's sizes are fixed by the original
//!   program).
//! - `--impls` (default: all of them): comma-separated implementations.
//! - `--runs K` (default 3): the reported wall time and RSS are the medians
//!   of `K` runs; `--runs 1` for a quick look.
//! - `--timeout SECS` (default none): kill a run after that long and report it
//!   as a time-out.
//! - `--json`: print one JSON document instead of the markdown tables.
//!
//! A second binary, `pool-bench` (`src/bin/pool_bench.rs`), measures
//! `tricolor::Pool` against the `object-pool` and `lockfree-object-pool`
//! crates and a `Mutex<Vec<T>>` pool (`cargo run --release -p tricolor-bench
//! --bin pool-bench`).
//!
//! Always benchmark a `--release` build. Numbers on a shared or busy machine
//! are noisy: use `--runs 3` or more for anything you quote.
//!
//! Every measurement runs in a fresh child process (the binary re-executes
//! itself with a hidden `--child IMPL WORKLOAD DEPTH` mode), so each
//! implementation starts from an empty heap and its peak RSS is its own. The
//! parent times the child from spawn to exit, and reads its peak resident set
//! (`ru_maxrss`) from the `rusage` that `wait4(2)` returns.
//!
//! The output of every run is compared with the `Box` version's output (and
//! the `Box` output with the one computed from closed formulas, see
//! [`workload::expected_output`]); a difference is reported loudly on stderr
//! and in the table's last column, and makes the exit status 2. An
//! implementation that crashes, fails or times out gets a row that says so
//! and the harness goes on with the next one.
//!
//! # The workloads
//!
//! - **binary-trees** (Computer Language Benchmarks Game, single-threaded):
//!   for depth `N`, build and walk a stretch tree of depth `N+1`, then build a
//!   long-lived tree of depth `N`; then for `d` in `4, 6, …, N`, build and
//!   walk `1 << (N - d + 4)` trees of depth `d`; finally walk the long-lived
//!   tree again. A node is two child pointers; `check` is the node count.
//! - **gcbench** (Hans Boehm's GCBench, after Ellis and Kovac): stretch the
//!   heap with a tree of depth 18; build a long-lived tree of depth 16 top down
//!   and a long-lived array of 500 000 `f64`s (half filled); then for `d` in
//!   `4, 6, …, 16`, build `NumIters(d) = 2 * TreeSize(18) / TreeSize(d)` trees
//!   top down (`Populate`, assigning new children into older nodes) and as
//!   many bottom up (`MakeTree`). Nodes have left/right pointers and two `i32`
//!   fields. The original's timing and diagnostics lines are left out
//!   (outputs must be comparable); the last line is `Completed` if the
//!   long-lived tree still has its 131071 nodes and `array[1000]` is still
//!   `0.001`, `Failed` otherwise. The array is a plain `Vec<f64>` in every
//!   implementation here except `tricolor`, which allocates it on its heap.
//!
//! # The implementations
//!
//! - `box`: `Option<Box<Node>>`, one `malloc`/`free` per node, no collector.
//!   The baseline of the ratios.
//! - `bumpalo`: a `bumpalo::Bump` arena per tree, `reset` after each tree:
//!   the arena limit (no per-object free, no header, no tracing).
//! - `gc`: the `gc` crate (rust-gc), stop-the-world mark-and-sweep with
//!   root counting of stack handles; `Gc<T>` and `Gc<GcCell<T>>`.
//! - `gc-arena`: the `gc-arena` crate, incremental mark-and-sweep over a
//!   closed arena; trees are built inside `Arena::mutate` and the debt paid
//!   with `Arena::collect_debt` between trees (when over 1024, as piccolo
//!   does).
//! - `dumpster`: the `dumpster` crate's `unsync::Gc`, reference counting with
//!   a cycle detector.
//! - `bacon_rajan_cc`: the `bacon_rajan_cc` crate's `Cc`, reference counting
//!   with Bacon–Rajan synchronous cycle collection (`collect_cycles()` after
//!   every tree).
//! - `tricolor`: this project's collector, via
//!   `tricolor_cli::workloads::{binary_trees, gcbench}`.
//!
//! Each implementation module's docs say how it maps the programs onto its
//! crate's API.

mod impls;
mod workload;

use std::io::{self, Read, Write};
use std::process::{Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

use impls::Impl;
use workload::Workload;

/// Parsed command line of the parent (harness) mode.
struct Options {
    workloads: Vec<Workload>,
    depth: u32,
    impls: Vec<Impl>,
    runs: usize,
    timeout: Option<Duration>,
    json: bool,
}

const USAGE: &str = "usage: tricolor-bench [--workload binary-trees|gcbench|all] [--depth N] \
[--impls box,bumpalo,gc,gc-arena,dumpster,bacon_rajan_cc,tricolor] [--runs K] \
[--timeout SECS] [--json]";

fn parse_options(args: &[String]) -> Result<Options, String> {
    let mut options = Options {
        workloads: Workload::ALL.to_vec(),
        depth: workload::binary_trees::DEFAULT_DEPTH,
        impls: Impl::ALL.to_vec(),
        runs: 3,
        timeout: None,
        json: false,
    };
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        let (flag, inline) = match arg.split_once('=') {
            Some((flag, value)) if flag.starts_with("--") => (flag, Some(value.to_owned())),
            _ => (arg.as_str(), None),
        };
        let mut value = || {
            inline
                .clone()
                .or_else(|| args.next().cloned())
                .ok_or_else(|| format!("{flag} needs a value"))
        };
        match flag {
            "--workload" => {
                let v = value()?;
                options.workloads = if v == "all" {
                    Workload::ALL.to_vec()
                } else {
                    vec![v.parse()?]
                };
            }
            "--depth" => {
                let v = value()?;
                let depth: u32 = v.parse().map_err(|_| format!("bad --depth `{v}`"))?;
                if !(workload::binary_trees::MIN_DEPTH..=workload::binary_trees::MAX_DEPTH)
                    .contains(&depth)
                {
                    return Err(format!(
                        "--depth must be between {} and {}",
                        workload::binary_trees::MIN_DEPTH,
                        workload::binary_trees::MAX_DEPTH
                    ));
                }
                options.depth = workload::binary_trees::effective_depth(depth);
            }
            "--impls" => {
                let v = value()?;
                let mut impls = Vec::new();
                for name in v.split(',').filter(|s| !s.trim().is_empty()) {
                    let imp: Impl = name.parse()?;
                    if !impls.contains(&imp) {
                        impls.push(imp);
                    }
                }
                if impls.is_empty() {
                    return Err("--impls is empty".into());
                }
                options.impls = impls;
            }
            "--runs" => {
                let v = value()?;
                options.runs = v
                    .parse()
                    .ok()
                    .filter(|&k| k > 0)
                    .ok_or_else(|| format!("bad --runs `{v}` (want a positive integer)"))?;
            }
            "--timeout" => {
                let v = value()?;
                let secs: f64 = v
                    .parse()
                    .ok()
                    .filter(|s: &f64| s.is_finite() && *s > 0.0)
                    .ok_or_else(|| format!("bad --timeout `{v}` (want seconds)"))?;
                options.timeout = Some(Duration::from_secs_f64(secs));
            }
            "--json" => options.json = true,
            "-h" | "--help" => return Err(String::new()),
            other => return Err(format!("unknown argument `{other}`")),
        }
    }
    Ok(options)
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("--child") {
        return child_main(&args[1..]);
    }
    match parse_options(&args) {
        Ok(options) => harness(&options),
        Err(message) => {
            if message.is_empty() {
                println!("{USAGE}");
                ExitCode::SUCCESS
            } else {
                eprintln!("error: {message}\n{USAGE}");
                ExitCode::from(64)
            }
        }
    }
}

/// The hidden child mode: `--child IMPL WORKLOAD DEPTH`. Runs one workload
/// with one implementation, output to stdout.
fn child_main(args: &[String]) -> ExitCode {
    let parsed = (|| -> Result<(Impl, Workload, u32), String> {
        let [imp, workload, depth] = args else {
            return Err("usage: tricolor-bench --child IMPL WORKLOAD DEPTH".into());
        };
        let depth = depth.parse().map_err(|_| format!("bad depth `{depth}`"))?;
        Ok((imp.parse()?, workload.parse()?, depth))
    })();
    let (imp, workload, depth) = match parsed {
        Ok(parsed) => parsed,
        Err(message) => {
            eprintln!("error: {message}");
            return ExitCode::from(64);
        }
    };
    let stdout = io::stdout();
    let mut out = io::BufWriter::new(stdout.lock());
    match imp
        .run(workload, depth, &mut out)
        .and_then(|()| out.flush())
    {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {imp} {workload}: {error}");
            ExitCode::FAILURE
        }
    }
}

/// What one child run produced.
struct RunResult {
    wall: Duration,
    /// Peak resident set size in KiB (`ru_maxrss` on Linux).
    max_rss_kib: u64,
    user: Duration,
    sys: Duration,
    outcome: Outcome,
    stdout: String,
    stderr: String,
}

enum Outcome {
    Exited(i32),
    Signaled(i32),
    TimedOut(Duration),
}

impl Outcome {
    fn describe(&self) -> String {
        match self {
            Outcome::Exited(0) => "ok".into(),
            Outcome::Exited(code) => format!("FAILED (exit status {code})"),
            Outcome::Signaled(signal) => {
                format!("CRASHED (signal {signal}{})", signal_name(*signal))
            }
            Outcome::TimedOut(limit) => {
                format!("TIMED OUT (killed after {:.1} s)", limit.as_secs_f64())
            }
        }
    }
}

fn signal_name(signal: i32) -> &'static str {
    match signal {
        libc::SIGSEGV => ", SIGSEGV",
        libc::SIGABRT => ", SIGABRT",
        libc::SIGKILL => ", SIGKILL: out of memory?",
        libc::SIGBUS => ", SIGBUS",
        libc::SIGILL => ", SIGILL",
        _ => "",
    }
}

fn timeval_duration(tv: libc::timeval) -> Duration {
    Duration::from_secs(tv.tv_sec.max(0) as u64) + Duration::from_micros(tv.tv_usec.max(0) as u64)
}

fn read_all_in_thread<R: Read + Send + 'static>(mut pipe: R) -> std::thread::JoinHandle<String> {
    std::thread::spawn(move || {
        let mut bytes = Vec::new();
        // A read error only truncates what we show; the exit status tells
        // whether the run worked.
        let _ = pipe.read_to_end(&mut bytes);
        String::from_utf8_lossy(&bytes).into_owned()
    })
}

/// Runs `imp` on `workload` in a fresh child process and measures it.
fn run_child(
    imp: Impl,
    workload: Workload,
    depth: u32,
    timeout: Option<Duration>,
) -> io::Result<RunResult> {
    let exe = std::env::current_exe()?;
    let start = Instant::now();
    let mut child = Command::new(exe)
        .arg("--child")
        .arg(imp.name())
        .arg(workload.name())
        .arg(depth.to_string())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()?;
    let pid = libc::pid_t::try_from(child.id()).map_err(io::Error::other)?;
    let stdout = read_all_in_thread(child.stdout.take().expect("stdout is piped"));
    let stderr = read_all_in_thread(child.stderr.take().expect("stderr is piped"));

    let mut timed_out = false;
    let (status, usage, wall) = loop {
        let mut status: libc::c_int = 0;
        // SAFETY: `rusage` is a plain C struct of integers and `timeval`s, for
        // which all-zero bytes are a valid value.
        let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
        // Poll without blocking while a time-out may have to fire; the 1 ms
        // sleep below bounds the timing error.
        let flags = if timeout.is_some() && !timed_out {
            libc::WNOHANG
        } else {
            0
        };
        // SAFETY: `pid` is our own child, not reaped yet (std's `Child` never
        // waited for it), and both out-pointers point to live, writable locals
        // of the right types.
        let reaped = unsafe { libc::wait4(pid, &mut status, flags, &mut usage) };
        if reaped == pid {
            break (status, usage, start.elapsed());
        }
        if reaped == -1 {
            let error = io::Error::last_os_error();
            if error.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return Err(error);
        }
        // reaped == 0: still running (only with WNOHANG).
        if let Some(limit) = timeout {
            if !timed_out && start.elapsed() >= limit {
                timed_out = true;
                // SAFETY: `pid` is our unreaped child, so the pid cannot have
                // been reused by another process; kill(2) has no memory
                // effects on this process.
                unsafe { libc::kill(pid, libc::SIGKILL) };
                continue;
            }
        }
        std::thread::sleep(Duration::from_millis(1));
    };
    // The child is reaped: dropping `child` neither waits nor kills.
    drop(child);

    let outcome = if let (true, Some(limit)) = (timed_out, timeout) {
        Outcome::TimedOut(limit)
    } else if libc::WIFEXITED(status) {
        Outcome::Exited(libc::WEXITSTATUS(status))
    } else if libc::WIFSIGNALED(status) {
        Outcome::Signaled(libc::WTERMSIG(status))
    } else {
        Outcome::Exited(-1)
    };
    Ok(RunResult {
        wall,
        max_rss_kib: u64::try_from(usage.ru_maxrss).unwrap_or(0),
        user: timeval_duration(usage.ru_utime),
        sys: timeval_duration(usage.ru_stime),
        outcome,
        stdout: stdout.join().unwrap_or_default(),
        stderr: stderr.join().unwrap_or_default(),
    })
}

/// The aggregated result of one implementation on one workload.
struct Row {
    imp: Impl,
    /// `None` when the implementation did not produce a usable measurement.
    measured: Option<Measured>,
    /// Last column of the table: `yes`, `MISMATCH`, or why there is no result.
    status: String,
    output_ok: Option<bool>,
    /// First difference or error message, for the report.
    detail: Option<String>,
}

struct Measured {
    walls: Vec<f64>,
    wall_median: f64,
    rss_mib_median: f64,
    user_median: f64,
    sys_median: f64,
}

fn median(values: &[f64]) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let n = sorted.len();
    if n % 2 == 1 {
        sorted[n / 2]
    } else {
        (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0
    }
}

/// Describes the first differing line of `actual` against `reference`.
fn first_difference(reference: &str, actual: &str) -> Option<String> {
    if reference == actual {
        return None;
    }
    let mut expected_lines = reference.lines();
    let mut actual_lines = actual.lines();
    for line_no in 1.. {
        match (expected_lines.next(), actual_lines.next()) {
            (Some(e), Some(a)) if e == a => continue,
            (None, None) => return Some("outputs differ in line endings".into()),
            (e, a) => {
                return Some(format!(
                    "line {line_no}: expected {:?}, got {:?}",
                    e.unwrap_or("<end of output>"),
                    a.unwrap_or("<end of output>")
                ))
            }
        }
    }
    unreachable!("the loop only ends by returning")
}

/// The report of one workload.
struct WorkloadReport {
    workload: Workload,
    depth: Option<u32>,
    rows: Vec<Row>,
}

fn measure_workload(options: &Options, workload: Workload) -> WorkloadReport {
    let depth = options.depth;
    let expected = workload::expected_output(workload, depth);
    // The reference output: Box's, once it has run (it is first in the
    // default order); the formula output before that / without it.
    let mut reference: Option<String> = None;
    let mut rows = Vec::new();
    // Run `box` first whatever the order given, so every row can be compared
    // with its output; rows are reported in the order given.
    let mut order: Vec<Impl> = options.impls.clone();
    if let Some(pos) = order.iter().position(|&i| i == Impl::Box) {
        order.remove(pos);
        order.insert(0, Impl::Box);
    }
    for &imp in &order {
        let mut results = Vec::new();
        let mut failure = None;
        for run in 1..=options.runs {
            eprint!("[{workload}] {imp}: run {run}/{} ... ", options.runs);
            let _ = io::stderr().flush();
            match run_child(imp, workload, depth, options.timeout) {
                Ok(result) => {
                    eprintln!(
                        "{:.3} s, {:.1} MiB, {}",
                        result.wall.as_secs_f64(),
                        result.max_rss_kib as f64 / 1024.0,
                        result.outcome.describe()
                    );
                    if !matches!(result.outcome, Outcome::Exited(0)) {
                        let tail: Vec<&str> = result.stderr.lines().rev().take(3).collect();
                        let tail: Vec<&str> = tail.into_iter().rev().collect();
                        failure = Some((result.outcome.describe(), tail.join(" | ")));
                        break;
                    }
                    results.push(result);
                }
                Err(error) => {
                    eprintln!("could not run: {error}");
                    failure = Some(("UNAVAILABLE (could not run)".into(), error.to_string()));
                    break;
                }
            }
        }
        if let Some((status, detail)) = failure {
            if detail.is_empty() {
                eprintln!("[{workload}] {imp}: {status}");
            } else {
                eprintln!("[{workload}] {imp}: {status}: {detail}");
            }
            rows.push(Row {
                imp,
                measured: None,
                status,
                output_ok: None,
                detail: (!detail.is_empty()).then_some(detail),
            });
            continue;
        }

        if imp == Impl::Box {
            if let Some(diff) = first_difference(&expected, &results[0].stdout) {
                eprintln!(
                    "\n!!! OUTPUT MISMATCH: box's {workload} output differs from the formula \
                     output: {diff}\n"
                );
            }
            reference = Some(results[0].stdout.clone());
        }
        let reference_output = reference.as_deref().unwrap_or(&expected);
        let mismatch = results
            .iter()
            .find_map(|r| first_difference(reference_output, &r.stdout));
        if let Some(diff) = &mismatch {
            eprintln!(
                "\n!!! OUTPUT MISMATCH: {imp} {workload} differs from {}: {diff}\n",
                if reference.is_some() {
                    "box"
                } else {
                    "the expected output"
                }
            );
        }

        let walls: Vec<f64> = results.iter().map(|r| r.wall.as_secs_f64()).collect();
        let rss: Vec<f64> = results
            .iter()
            .map(|r| r.max_rss_kib as f64 / 1024.0)
            .collect();
        let user: Vec<f64> = results.iter().map(|r| r.user.as_secs_f64()).collect();
        let sys: Vec<f64> = results.iter().map(|r| r.sys.as_secs_f64()).collect();
        rows.push(Row {
            imp,
            measured: Some(Measured {
                wall_median: median(&walls),
                rss_mib_median: median(&rss),
                user_median: median(&user),
                sys_median: median(&sys),
                walls,
            }),
            status: if mismatch.is_some() {
                "**MISMATCH**".into()
            } else {
                "yes".into()
            },
            output_ok: Some(mismatch.is_none()),
            detail: mismatch,
        });
    }
    // Report in the order the user gave.
    rows.sort_by_key(|row| options.impls.iter().position(|&i| i == row.imp));
    WorkloadReport {
        workload,
        depth: (workload == Workload::BinaryTrees).then_some(depth),
        rows,
    }
}

fn harness(options: &Options) -> ExitCode {
    let reports: Vec<WorkloadReport> = options
        .workloads
        .iter()
        .map(|&w| measure_workload(options, w))
        .collect();
    if options.json {
        println!("{}", render_json(options, &reports));
    } else {
        print!("{}", render_markdown(options, &reports));
    }
    let mismatch = reports
        .iter()
        .flat_map(|r| &r.rows)
        .any(|row| row.output_ok == Some(false));
    if mismatch {
        eprintln!("!!! at least one implementation printed a different output (see above)");
        ExitCode::from(2)
    } else {
        ExitCode::SUCCESS
    }
}

fn box_baseline(report: &WorkloadReport) -> Option<&Measured> {
    report
        .rows
        .iter()
        .find(|row| row.imp == Impl::Box)
        .and_then(|row| row.measured.as_ref())
}

fn ratio(value: f64, baseline: Option<f64>) -> Option<f64> {
    baseline.filter(|&b| b > 0.0).map(|b| value / b)
}

fn render_markdown(options: &Options, reports: &[WorkloadReport]) -> String {
    use std::fmt::Write as _;
    let mut s = String::new();
    for report in reports {
        let title = match report.depth {
            Some(depth) => format!("{} (depth {depth})", report.workload),
            None => report.workload.to_string(),
        };
        let _ = writeln!(
            s,
            "\n### {title}, median of {} run{}\n",
            options.runs,
            if options.runs == 1 { "" } else { "s" }
        );
        let _ = writeln!(
            s,
            "| impl | wall s (median) | ratio vs box | peak RSS MiB | RSS ratio vs box | output ok |"
        );
        let _ = writeln!(s, "|---|---:|---:|---:|---:|---|");
        let baseline = box_baseline(report);
        for row in &report.rows {
            match &row.measured {
                Some(m) => {
                    let fmt_ratio = |r: Option<f64>| r.map_or("n/a".into(), |r| format!("{r:.2}x"));
                    let _ = writeln!(
                        s,
                        "| {} | {:.3} | {} | {:.1} | {} | {} |",
                        row.imp,
                        m.wall_median,
                        fmt_ratio(ratio(m.wall_median, baseline.map(|b| b.wall_median))),
                        m.rss_mib_median,
                        fmt_ratio(ratio(m.rss_mib_median, baseline.map(|b| b.rss_mib_median))),
                        row.status
                    );
                }
                None => {
                    let _ = writeln!(s, "| {} | - | - | - | - | {} |", row.imp, row.status);
                }
            }
        }
        let notes: Vec<String> = report
            .rows
            .iter()
            .filter_map(|row| row.detail.as_ref().map(|d| format!("- {}: {d}", row.imp)))
            .collect();
        if !notes.is_empty() {
            let _ = writeln!(s, "\n{}", notes.join("\n"));
        }
    }
    s
}

use tricolor_cli::report::json_string;

fn json_number(value: Option<f64>) -> String {
    match value {
        Some(v) if v.is_finite() => format!("{v:.6}"),
        _ => "null".into(),
    }
}

fn render_json(options: &Options, reports: &[WorkloadReport]) -> String {
    let mut workloads = Vec::new();
    for report in reports {
        let baseline = box_baseline(report);
        let mut rows = Vec::new();
        for row in &report.rows {
            let m = row.measured.as_ref();
            let walls = m.map_or(String::from("[]"), |m| {
                let items: Vec<String> = m.walls.iter().map(|&w| json_number(Some(w))).collect();
                format!("[{}]", items.join(", "))
            });
            rows.push(format!(
                "{{\"impl\": {}, \"status\": {}, \"output_ok\": {}, \"wall_s_median\": {}, \
                 \"wall_s_runs\": {walls}, \"wall_ratio_vs_box\": {}, \
                 \"peak_rss_mib_median\": {}, \"rss_ratio_vs_box\": {}, \
                 \"user_s_median\": {}, \"sys_s_median\": {}, \"detail\": {}}}",
                json_string(row.imp.name()),
                json_string(row.status.trim_matches('*')),
                row.output_ok.map_or("null".into(), |ok| ok.to_string()),
                json_number(m.map(|m| m.wall_median)),
                json_number(m.and_then(|m| ratio(m.wall_median, baseline.map(|b| b.wall_median)))),
                json_number(m.map(|m| m.rss_mib_median)),
                json_number(
                    m.and_then(|m| ratio(m.rss_mib_median, baseline.map(|b| b.rss_mib_median)))
                ),
                json_number(m.map(|m| m.user_median)),
                json_number(m.map(|m| m.sys_median)),
                row.detail.as_deref().map_or("null".into(), json_string),
            ));
        }
        workloads.push(format!(
            "{{\"workload\": {}, \"depth\": {}, \"results\": [\n    {}\n  ]}}",
            json_string(report.workload.name()),
            report.depth.map_or("null".into(), |d| d.to_string()),
            rows.join(",\n    ")
        ));
    }
    format!(
        "{{\"runs\": {}, \"workloads\": [\n  {}\n]}}",
        options.runs,
        workloads.join(",\n  ")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(s: &str) -> Vec<String> {
        s.split_whitespace().map(String::from).collect()
    }

    #[test]
    fn parses_options() {
        let o = parse_options(&args(
            "--workload gcbench --depth 10 --impls box,gc_arena,box --runs=1 --json",
        ))
        .unwrap();
        assert_eq!(o.workloads, [Workload::GcBench]);
        assert_eq!(o.depth, 10);
        assert_eq!(o.impls, [Impl::Box, Impl::GcArena]);
        assert_eq!(o.runs, 1);
        assert!(o.json);
        assert!(parse_options(&args("--runs 0")).is_err());
        assert!(parse_options(&args("--impls nope")).is_err());
        assert!(parse_options(&args("--depth 40")).is_err());
    }

    #[test]
    fn median_and_difference() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&[4.0, 1.0, 2.0, 3.0]), 2.5);
        assert_eq!(first_difference("a\nb\n", "a\nb\n"), None);
        assert_eq!(
            first_difference("a\nb\n", "a\nc\n").unwrap(),
            "line 2: expected \"b\", got \"c\""
        );
        assert!(first_difference("a\n", "")
            .unwrap()
            .contains("<end of output>"));
    }

    #[test]
    fn json_escapes() {
        assert_eq!(json_string("a\"b\\\n"), "\"a\\\"b\\\\\\n\"");
        assert_eq!(json_number(Some(f64::NAN)), "null");
    }
}
