//! `tricolor run churn`: the JSON report, the human lines, and the entry
//! graph builder.

mod common;

use common::{stderr, stdout, tricolor};

use serde_json::Value;
use tricolor::Gc;
use tricolor_cli::workloads::churn::{self, ChurnParams};

fn summary_keys(v: &Value, name: &str) -> (u64, u64, u64, u64) {
    let s = &v[name];
    let get = |k: &str| {
        s[k].as_u64()
            .unwrap_or_else(|| panic!("{name}.{k} missing or not an integer: {s}"))
    };
    let r = (get("count"), get("p50_ns"), get("p99_ns"), get("max_ns"));
    assert!(r.1 <= r.2 && r.2 <= r.3, "{name}: {s}");
    r
}

#[test]
fn json_report_has_throughput_and_mutator_pauses() {
    // 2000 entries of ~150 bytes (300 KB live), 20000 replacements (~3 MB
    // allocated): with GOGC 10 the heap goal is far below that, so the
    // collector runs several cycles while the threads churn.
    let o = tricolor(&[
        "run",
        "churn",
        "--live",
        "2000",
        "--ops",
        "20000",
        "--threads",
        "2",
        "--gogc",
        "10",
        "--json",
    ]);
    assert!(o.status.success(), "stderr: {}", stderr(&o));
    let out = stdout(&o);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 4, "{out}");
    assert!(
        lines[0].starts_with("churn: 2000 live entries, 20000 ops on 2 threads: ")
            && lines[0].contains("ops/s")
            && lines[0].contains("mutator-observed pin/repin latency p50 "),
        "{out}"
    );
    assert!(
        lines[1].contains("verified") && lines[1].contains("2000 entries after the run"),
        "{out}"
    );

    assert!(
        lines[2].starts_with("churn: peak heap mapped ") && lines[2].contains("peak RSS"),
        "{out}"
    );

    let v: Value = serde_json::from_str(lines[3])
        .unwrap_or_else(|e| panic!("last line is not JSON ({e}): {}", lines[3]));
    assert_eq!(v["workload"], "churn");
    assert_eq!(v["params"]["live"], 2000);
    assert_eq!(v["params"]["ops"], 20000);
    assert_eq!(v["params"]["threads"], 2);
    assert!(v["wall_s"].as_f64().expect("wall_s") > 0.0);
    let ops_per_s = v["ops_per_s"].as_f64().expect("ops_per_s is a number");
    assert!(ops_per_s > 0.0, "ops_per_s = {ops_per_s}");
    let mapped = v["peak_mapped_bytes"].as_u64().expect("peak_mapped_bytes");
    assert!(mapped > 0, "the heap maps memory: {mapped}");

    let ms = &v["mem_stats"];
    for key in [
        "heap_alloc",
        "mallocs",
        "pause_ns",
        "num_gc",
        "pause_total_ns",
    ] {
        assert!(ms.get(key).is_some(), "mem_stats.{key} missing: {ms}");
    }
    let num_gc = ms["num_gc"].as_u64().expect("num_gc");
    assert!(num_gc > 0, "no collection: {ms}");
    // Fill: 3 objects per entry; churn: 3 per operation.
    assert!(
        ms["mallocs"].as_u64().unwrap() >= 3 * (2000 + 20000),
        "{ms}"
    );

    let (pauses, ..) = summary_keys(&v, "pauses");
    assert_eq!(pauses, num_gc.min(256));
    // One pin per thread, then one repin between batches of 64:
    // ceil(10000 / 64) = 157 calls per thread.
    let (calls, ..) = summary_keys(&v, "mutator_pauses");
    assert_eq!(calls, 2 * 10000u64.div_ceil(churn::BATCH));
    let (batches, ..) = summary_keys(&v, "batches");
    assert_eq!(batches, calls);
}

#[test]
fn stats_summary_includes_the_mutator_figures() {
    let o = tricolor(&[
        "run",
        "churn",
        "--live",
        "500",
        "--ops",
        "3000",
        "--threads",
        "3",
        "--stats",
    ]);
    assert!(o.status.success(), "stderr: {}", stderr(&o));
    let out = stdout(&o);
    for key in [
        "churn: 500 live entries, 3000 ops on 3 threads",
        "num_gc:",
        "pauses:",
        "wall:",
        "ops_per_s:",
        "mutator_pauses:",
    ] {
        assert!(out.contains(key), "{key} missing from:\n{out}");
    }
}

#[test]
fn bad_sizes_are_rejected() {
    for args in [
        &["run", "churn", "--live", "0"][..],
        &["run", "churn", "--threads", "0"][..],
        &["run", "churn", "--live", "99999999"][..],
        &["run", "churn", "--ops", "-5"][..],
    ] {
        let o = tricolor(args);
        assert_eq!(o.status.code(), Some(2), "{args:?}");
        assert!(o.stdout.is_empty(), "{args:?}: {}", stdout(&o));
    }
}

#[test]
fn entry_graph_has_an_intact_cycle() {
    let g = tricolor::pin();
    let head = churn::build_entry(&g, 42, 3, 1234);
    assert_eq!((head.key, head.writer, head.seq), (42, 3, 1234));
    assert_eq!(head.payload, churn::payload(42, 3, 1234));

    let left = head.left.load(&g).expect("left child");
    let right = head.right.load(&g).expect("right child");
    assert!(!Gc::ptr_eq(left, right));
    // Both children point back to the head: head -> left -> head and
    // head -> right -> head; and head -> left -> right -> head.
    assert!(Gc::ptr_eq(left.head.load(&g).expect("left.head"), head));
    assert!(Gc::ptr_eq(right.head.load(&g).expect("right.head"), head));
    assert!(Gc::ptr_eq(
        left.sibling.load(&g).expect("left.sibling"),
        right
    ));
    assert!(right.sibling.is_null());
    assert_eq!(left.tag, churn::tag(42, 3, 1234, 1));
    assert_eq!(right.tag, churn::tag(42, 3, 1234, 2));
    // Going round the cycle many times stays on the same three objects.
    let mut node = head;
    for _ in 0..10 {
        node = node
            .left
            .load(&g)
            .unwrap()
            .sibling
            .load(&g)
            .unwrap()
            .head
            .load(&g)
            .unwrap();
    }
    assert!(Gc::ptr_eq(node, head));
    assert_eq!(churn::verify_entry(&g, head, 42), Ok(()));
}

#[test]
fn in_process_run_keeps_every_entry_intact() {
    let params = ChurnParams {
        live: 1000,
        ops: 5000,
        threads: 2,
    };
    let mut out = Vec::new();
    let r = churn::run(&params, &mut out).expect("churn runs");
    assert_eq!(r.entries_verified, 1000);
    assert!(r.reads_verified > 0);
    assert!(r.ops_per_s > 0.0);
    assert_eq!(String::from_utf8(out).unwrap(), r.lines());
    let extra = r.extra();
    let keys: Vec<&str> = extra.json.iter().map(|(k, _)| *k).collect();
    assert_eq!(
        keys,
        [
            "ops_per_s",
            "mutator_pauses",
            "batches",
            "peak_mapped_bytes",
            "peak_rss_bytes",
            "peak_limited_bytes"
        ]
    );
    assert!(r.peak_mapped > 0);
    // This test binary's global allocator is `System`: nothing is tracked.
    assert_eq!(r.peak_limited, r.peak_mapped);
}
