//! The `tricolor` binary: output, `--json`, `--stats`, `--list`, errors.

mod common;

use common::{stderr, stdout, tricolor};
use std::process::Output;

use serde_json::Value;
use tricolor_cli::workloads::binary_trees;

fn last_line_json(o: &Output) -> Value {
    let out = stdout(o);
    let last = out.lines().last().expect("some stdout");
    serde_json::from_str(last).unwrap_or_else(|e| panic!("last line is not JSON ({e}): {last}"))
}

#[test]
fn binary_trees_prints_exactly_the_benchmark_output() {
    let o = tricolor(&["run", "binary-trees", "--depth", "6"]);
    assert!(o.status.success(), "stderr: {}", stderr(&o));
    assert_eq!(
        stdout(&o),
        "stretch tree of depth 7\t check: 255\n\
         64\t trees of depth 4\t check: 1984\n\
         16\t trees of depth 6\t check: 2032\n\
         long lived tree of depth 6\t check: 127\n"
    );
}

#[test]
fn json_report_has_every_key_and_collections_happened() {
    let depth = 14;
    let o = tricolor(&["run", "binary-trees", "--depth", "14", "--json"]);
    assert!(o.status.success(), "stderr: {}", stderr(&o));
    let out = stdout(&o);
    let lines: Vec<&str> = out.lines().collect();
    // The benchmark output (stretch, 6 depths from 4 to 14, long-lived), then
    // the JSON line.
    assert_eq!(lines.len(), 9, "{out}");
    assert_eq!(lines[0], "stretch tree of depth 15\t check: 65535");
    assert_eq!(lines[7], "long lived tree of depth 14\t check: 32767");

    let v = last_line_json(&o);
    assert_eq!(v["workload"], "binary-trees");
    assert_eq!(v["params"]["depth"], depth);
    let wall = v["wall_s"].as_f64().expect("wall_s is a number");
    assert!(wall > 0.0, "wall_s = {wall}");

    let ms = &v["mem_stats"];
    for key in [
        "alloc",
        "total_alloc",
        "sys",
        "mallocs",
        "frees",
        "heap_alloc",
        "heap_sys",
        "heap_idle",
        "heap_inuse",
        "heap_released",
        "heap_objects",
        "next_gc",
        "last_gc",
        "pause_total_ns",
        "pause_ns",
        "pause_end",
        "num_gc",
        "num_forced_gc",
        "gc_cpu_fraction",
        "enable_gc",
    ] {
        assert!(ms.get(key).is_some(), "mem_stats.{key} missing: {ms}");
    }
    let num_gc = ms["num_gc"].as_u64().expect("num_gc is an integer");
    assert!(num_gc > 0, "no collection at depth {depth}: {ms}");
    let mallocs = ms["mallocs"].as_u64().expect("mallocs is an integer");
    let nodes = binary_trees::nodes_allocated(depth);
    assert!(
        mallocs >= nodes,
        "mallocs {mallocs} < nodes allocated {nodes}"
    );

    let p = &v["pauses"];
    for key in ["count", "p50_ns", "p99_ns", "max_ns"] {
        assert!(
            p[key].is_u64(),
            "pauses.{key} missing or not an integer: {p}"
        );
    }
    assert_eq!(p["count"].as_u64().unwrap(), num_gc.min(256));
    let (p50, p99, max) = (
        p["p50_ns"].as_u64().unwrap(),
        p["p99_ns"].as_u64().unwrap(),
        p["max_ns"].as_u64().unwrap(),
    );
    assert!(p50 <= p99 && p99 <= max, "{p}");
}

#[test]
fn json_flag_may_come_before_the_workload() {
    let o = tricolor(&["run", "--json", "gcbench", "--small"]);
    assert!(o.status.success(), "stderr: {}", stderr(&o));
    let v = last_line_json(&o);
    assert_eq!(v["workload"], "gcbench");
    assert_eq!(v["params"]["stretch_tree_depth"], 10);
    assert!(stdout(&o).starts_with("Garbage Collector Test\n"));
}

#[test]
fn stats_prints_a_readable_summary_after_the_output() {
    let o = tricolor(&["run", "gcbench", "--small", "--stats"]);
    assert!(o.status.success(), "stderr: {}", stderr(&o));
    let out = stdout(&o);
    let expected = tricolor_cli::workloads::gcbench::GcBenchParams::small().expected_output();
    assert!(out.starts_with(&expected), "{out}");
    let summary = &out[expected.len()..];
    for key in ["heap_alloc:", "mallocs:", "num_gc:", "pauses:", "wall:"] {
        assert!(summary.contains(key), "{key} missing from:\n{summary}");
    }
    assert!(
        summary.contains("iB") || summary.contains(" B"),
        "{summary}"
    );
}

#[test]
fn stats_with_json_keeps_json_last() {
    let o = tricolor(&["run", "binary-trees", "-n", "6", "--stats", "--json"]);
    assert!(o.status.success(), "stderr: {}", stderr(&o));
    last_line_json(&o);
    assert_eq!(stdout(&o).lines().count(), 5);
    assert!(stderr(&o).contains("heap_alloc:"), "{}", stderr(&o));
}

#[test]
fn list_names_every_workload() {
    for args in [&["run", "--list"][..], &["list"][..]] {
        let o = tricolor(args);
        assert!(o.status.success(), "{args:?}: {}", stderr(&o));
        let out = stdout(&o);
        for name in ["binary-trees", "gcbench", "churn"] {
            assert!(
                out.lines().any(|l| l.starts_with(name)),
                "{args:?}: {name} missing from:\n{out}"
            );
        }
    }
}

#[test]
fn errors_exit_with_code_2_and_a_message() {
    for args in [
        &["run"][..],
        &["run", "--json"][..],
        &["run", "no-such-workload"][..],
        &["run", "binary-trees", "--depth", "x"][..],
        &["run", "binary-trees", "--depth", "31"][..],
        &["run", "binary-trees", "--depth", "-1"][..],
        &["frobnicate"][..],
        &[][..],
    ] {
        let o = tricolor(args);
        assert_eq!(o.status.code(), Some(2), "{args:?}");
        assert!(o.stdout.is_empty(), "{args:?}: {}", stdout(&o));
        assert!(!stderr(&o).trim().is_empty(), "{args:?}: no message");
    }
}

#[test]
fn help_documents_everything() {
    let o = tricolor(&["--help"]);
    assert!(o.status.success());
    let top = stdout(&o);
    for word in ["run", "list"] {
        assert!(top.contains(word), "{word} missing from:\n{top}");
    }
    let o = tricolor(&["run", "--help"]);
    assert!(o.status.success());
    let run = stdout(&o);
    for word in [
        "binary-trees",
        "gcbench",
        "churn",
        "--stats",
        "--json",
        "--list",
        "--gogc",
        "--gctrace",
        "--metrics",
    ] {
        assert!(run.contains(word), "{word} missing from:\n{run}");
    }
    let o = tricolor(&["run", "binary-trees", "--help"]);
    assert!(o.status.success());
    let bt = stdout(&o);
    assert!(bt.contains("--depth") && bt.contains("21"), "{bt}");
}

/// `--gctrace`: one Go-format line per cycle on stderr, numbered from 1.
#[test]
fn gctrace_prints_go_format_lines() {
    let o = tricolor(&["run", "binary-trees", "--depth", "14", "--gctrace"]);
    assert!(o.status.success(), "stderr: {}", stderr(&o));
    let err = stderr(&o);
    let lines: Vec<&str> = err.lines().filter(|l| l.starts_with("gc ")).collect();
    assert!(!lines.is_empty(), "no gctrace line in:\n{err}");
    for (i, l) in lines.iter().enumerate() {
        assert!(l.starts_with(&format!("gc {} @", i + 1)), "{l}");
        for part in [
            "s ",
            "%: ",
            " ms clock, ",
            " ms cpu, ",
            " MB, ",
            " MB goal, ",
            " P",
        ] {
            assert!(l.contains(part), "{part:?} missing from {l}");
        }
    }
    assert!(
        !stdout(&o).contains("gc 1 @"),
        "the trace goes to stderr only"
    );
}

/// `--metrics`: every metric after the output; with `--json`, a `metrics`
/// object in the last line instead.
#[test]
fn metrics_flag_prints_every_metric() {
    let o = tricolor(&["run", "gcbench", "--small", "--metrics"]);
    assert!(o.status.success(), "stderr: {}", stderr(&o));
    let out = stdout(&o);
    let text = &out[out.find("metrics:\n").expect("a metrics section")..];
    for d in tricolor::metrics::all() {
        assert!(text.contains(d.name), "{} missing from:\n{text}", d.name);
    }

    let o = tricolor(&["run", "gcbench", "--small", "--metrics", "--json"]);
    assert!(o.status.success(), "stderr: {}", stderr(&o));
    assert!(!stdout(&o).contains("metrics:\n"), "no text with --json");
    let v = last_line_json(&o);
    let m = &v["metrics"];
    for d in tricolor::metrics::all() {
        assert!(m.get(d.name).is_some(), "{} missing from {m}", d.name);
    }
    assert_eq!(
        m["/gc/cycles/total:gc-cycles"].as_u64(),
        v["mem_stats"]["num_gc"].as_u64()
    );
    let p = &m["/gc/pauses:seconds"];
    let counts = p["counts"].as_array().unwrap();
    assert_eq!(p["buckets"].as_array().unwrap().len(), counts.len() + 1);
    assert!(p["buckets"].as_array().unwrap().last().unwrap().is_null());
    assert!(v.get("pauses").is_some(), "the other keys stay");
}
