//! The metrics registry and `MemStats` agree, and their identities hold,
//! right after `gc()` with no other thread allocating (the only test in
//! this binary that allocates, so nothing races the figures).

use std::collections::HashMap;

use tricolor::metrics::{self, Sample, Value};
use tricolor::{Member, Root, Trace};

#[derive(Trace)]
struct Node {
    next: Member<Node>,
    payload: [u64; 6],
}

#[derive(Trace)]
struct Big {
    bytes: [u64; 8192], // 64 KiB: a large object
}

/// A list of `n` nodes, plus garbage of both kinds, then a full cycle.
fn build_heap() -> (Root<Node>, Root<Big>) {
    let root = Root::new(Node {
        next: Member::null(),
        payload: [0; 6],
    });
    let big = Root::new(Big { bytes: [1; 8192] });
    {
        let g = tricolor::pin();
        let mut tail = root.get(&g);
        for i in 0..10_000u64 {
            let n = g.alloc(Node {
                next: Member::null(),
                payload: [i; 6],
            });
            if i % 2 == 0 {
                tail.next.store(&g, Some(n));
                tail = n;
            }
        }
        for _ in 0..3 {
            g.alloc(Big { bytes: [2; 8192] });
        }
    }
    tricolor::gc();
    tricolor::gc();
    (root, big)
}

fn metrics_by_name() -> HashMap<String, Value> {
    metrics::read_all()
        .into_iter()
        .map(|s| (s.name.into_owned(), s.value))
        .collect()
}

fn u(m: &HashMap<String, Value>, name: &str) -> u64 {
    m[name]
        .as_u64()
        .unwrap_or_else(|| panic!("{name} is not a u64"))
}

#[test]
fn identities_after_gc() {
    let keep = build_heap();
    let s = tricolor::read_mem_stats();
    let m = metrics_by_name();

    // MemStats identities.
    assert_eq!(s.heap_inuse + s.heap_idle, s.heap_sys);
    assert_eq!(s.mallocs - s.frees, s.heap_objects);
    assert_eq!(s.alloc, s.heap_alloc);
    assert_eq!(s.sys, s.heap_sys + s.gc_sys);
    assert!(s.heap_released <= s.heap_idle);
    assert!(s.heap_alloc <= s.heap_inuse);
    assert!(s.num_forced_gc >= 2 && s.num_gc >= s.num_forced_gc);
    assert!(
        s.heap_objects >= 5_000 + 2,
        "the list and the big root are live"
    );

    // by_size: per class, and in total the small objects of mallocs/frees.
    assert_eq!(s.by_size.len(), tricolor::NUM_SIZE_CLASSES);
    assert_eq!(s.by_size[0], tricolor::SizeClassStats::default());
    assert!(s.by_size.windows(2).skip(1).all(|w| w[0].size < w[1].size));
    let small_mallocs: u64 = s.by_size.iter().map(|c| c.mallocs).sum();
    let small_frees: u64 = s.by_size.iter().map(|c| c.frees).sum();
    assert!(s.by_size.iter().all(|c| c.frees <= c.mallocs));
    assert!(small_mallocs >= 10_001 && small_mallocs <= s.mallocs);
    assert!(small_frees >= 5_000 && small_frees <= s.frees);
    assert!(
        s.mallocs - small_mallocs >= 4,
        "the large objects are not in by_size"
    );

    // /memory/classes partition the total exactly.
    let classes = [
        "/memory/classes/heap/free:bytes",
        "/memory/classes/heap/objects:bytes",
        "/memory/classes/heap/released:bytes",
        "/memory/classes/heap/unused:bytes",
        "/memory/classes/metadata/other:bytes",
    ];
    let listed: Vec<&str> = metrics::all()
        .iter()
        .map(|d| d.name)
        .filter(|n| n.starts_with("/memory/classes/") && *n != "/memory/classes/total:bytes")
        .collect();
    assert_eq!(
        listed, classes,
        "every /memory/classes metric is summed here"
    );
    let sum: u64 = classes.iter().map(|n| u(&m, n)).sum();
    assert_eq!(sum, u(&m, "/memory/classes/total:bytes"));

    // Metrics equal the corresponding MemStats fields.
    assert_eq!(u(&m, "/memory/classes/total:bytes"), s.sys);
    assert_eq!(u(&m, "/memory/classes/heap/objects:bytes"), s.heap_alloc);
    assert_eq!(
        u(&m, "/memory/classes/heap/released:bytes"),
        s.heap_released
    );
    assert_eq!(
        u(&m, "/memory/classes/heap/free:bytes"),
        s.heap_idle - s.heap_released
    );
    assert_eq!(
        u(&m, "/memory/classes/heap/unused:bytes"),
        s.heap_inuse - s.heap_alloc
    );
    assert_eq!(u(&m, "/memory/classes/metadata/other:bytes"), s.gc_sys);
    assert_eq!(u(&m, "/gc/heap/allocs:bytes"), s.total_alloc);
    assert_eq!(u(&m, "/gc/heap/allocs:objects"), s.mallocs);
    assert_eq!(u(&m, "/gc/heap/frees:objects"), s.frees);
    assert_eq!(u(&m, "/gc/heap/frees:bytes"), s.total_alloc - s.heap_alloc);
    assert_eq!(u(&m, "/gc/heap/objects:objects"), s.heap_objects);
    assert_eq!(u(&m, "/gc/heap/goal:bytes"), s.next_gc);
    assert_eq!(u(&m, "/gc/cycles/total:gc-cycles"), u64::from(s.num_gc));
    assert_eq!(
        u(&m, "/gc/cycles/forced:gc-cycles"),
        u64::from(s.num_forced_gc)
    );
    assert_eq!(
        u(&m, "/gc/cycles/automatic:gc-cycles") + u(&m, "/gc/cycles/forced:gc-cycles"),
        u(&m, "/gc/cycles/total:gc-cycles")
    );
    let gogc = tricolor::set_gc_percent(100);
    tricolor::set_gc_percent(gogc);
    assert_eq!(u(&m, "/gc/gogc:percent"), gogc as u64);
    assert_eq!(s.enable_gc, gogc >= 0);
    let limit = tricolor::set_memory_limit(u64::MAX);
    tricolor::set_memory_limit(limit);
    assert_eq!(u(&m, "/gc/gomemlimit:bytes"), limit);
    let live = u(&m, "/gc/heap/live:bytes");
    assert!(live > 0 && live <= s.heap_alloc, "live {live}");
    assert!(u(&m, "/gc/scan/heap:bytes") > 0);
    assert!(m["/cpu/classes/gc/total:cpu-seconds"].as_f64().unwrap() > 0.0);

    // Histograms: one pause per cycle; by-size counts add up to the totals.
    let pauses = m["/gc/pauses:seconds"].as_histogram().unwrap();
    assert_eq!(pauses.counts.iter().sum::<u64>(), u64::from(s.num_gc));
    assert!(pauses.sum > 0.0);
    let blocked = m["/sched/pauses/blocked/gc:seconds"]
        .as_histogram()
        .unwrap();
    assert_eq!(blocked.counts, s.blocked_hist.to_vec());
    let allocs = m["/gc/heap/allocs-by-size:bytes"].as_histogram().unwrap();
    assert_eq!(allocs.counts.iter().sum::<u64>(), s.mallocs);
    assert_eq!(allocs.sum, s.total_alloc as f64);
    let frees = m["/gc/heap/frees-by-size:bytes"].as_histogram().unwrap();
    assert_eq!(frees.counts.iter().sum::<u64>(), s.frees);

    // The JSON writer has every field, by_size included.
    let json = s.to_json();
    for f in tricolor::MemStats::FIELDS {
        assert!(
            json.contains(&format!("\"{f}\":")),
            "{f} missing from to_json"
        );
    }
    assert!(json.contains("\"by_size\":[{\"size\":0,\"mallocs\":0,\"frees\":0},{\"size\":16,"));
    drop(keep);
}

#[test]
fn read_reports_unknown_names_and_fills_the_rest() {
    let mut samples = [
        Sample::new("/gc/heap/goal:bytes"),
        Sample::new(String::from("/gc/heap/goal")),
        Sample::new(""),
    ];
    let err = metrics::read(&mut samples).unwrap_err();
    assert_eq!(err.name, "/gc/heap/goal");
    assert!(err.to_string().contains("unknown metric"));
    assert!(samples[0].value.as_u64().unwrap() > 0);
    assert_eq!(samples[1].value, Value::Bad);
    assert_eq!(samples[2].value, Value::Bad);
}

/// Parses the Prometheus text format line by line: comments are `# HELP
/// name text` or `# TYPE name kind`; samples are `name[{labels}] value`
/// with a valid metric name and a number. Every registry metric appears,
/// with HELP and TYPE before its samples.
#[test]
fn prometheus_exposition_parses_and_covers_the_registry() {
    let text = metrics::prometheus();
    let valid_name = |n: &str| {
        !n.is_empty()
            && !n.starts_with(|c: char| c.is_ascii_digit())
            && n.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
    };
    let mut types: HashMap<String, String> = HashMap::new();
    let mut helped = std::collections::HashSet::new();
    let mut samples: HashMap<String, Vec<(String, f64)>> = HashMap::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# ") {
            let mut parts = rest.splitn(3, ' ');
            let (kw, name, arg) = (parts.next(), parts.next(), parts.next());
            let name = name.expect("a comment names its metric").to_string();
            assert!(valid_name(&name), "bad name in {line:?}");
            match kw {
                Some("HELP") => {
                    assert!(!arg.unwrap_or("").is_empty(), "empty HELP: {line:?}");
                    helped.insert(name);
                }
                Some("TYPE") => {
                    let t = arg.expect("TYPE has a kind");
                    assert!(["counter", "gauge", "histogram"].contains(&t), "{line:?}");
                    assert!(helped.contains(&name), "TYPE before HELP: {line:?}");
                    assert!(types.insert(name, t.to_string()).is_none(), "{line:?}");
                }
                _ => panic!("unexpected comment {line:?}"),
            }
            continue;
        }
        let (series, value) = line.rsplit_once(' ').expect("name value");
        let value: f64 = match value {
            "+Inf" => f64::INFINITY,
            v => v
                .parse()
                .unwrap_or_else(|_| panic!("bad value in {line:?}")),
        };
        let (name, labels) = match series.split_once('{') {
            Some((n, l)) => {
                let l = l.strip_suffix('}').expect("labels end with }");
                let (k, v) = l.split_once('=').expect("label=value");
                assert_eq!(k, "le", "{line:?}");
                let v = v.strip_prefix('"').and_then(|v| v.strip_suffix('"'));
                (n, v.expect("quoted label value").to_string())
            }
            None => (series, String::new()),
        };
        assert!(valid_name(name), "bad name in {line:?}");
        let family = ["_bucket", "_sum", "_count"]
            .iter()
            .find_map(|suf| {
                name.strip_suffix(suf)
                    .filter(|f| types.get(*f).map(String::as_str) == Some("histogram"))
            })
            .unwrap_or(name);
        assert!(
            types.contains_key(family),
            "sample before its TYPE: {line:?}"
        );
        samples
            .entry(name.to_string())
            .or_default()
            .push((labels, value));
    }
    for d in metrics::all() {
        let p = metrics::prometheus_name(&d);
        let ty = types
            .get(&p)
            .unwrap_or_else(|| panic!("{} ({p}) missing", d.name));
        if ty == "histogram" {
            let buckets = &samples[&format!("{p}_bucket")];
            assert_eq!(buckets.last().unwrap().0, "+Inf", "{p}");
            assert!(
                buckets.windows(2).all(|w| w[0].1 <= w[1].1),
                "{p}: cumulative"
            );
            let count = samples[&format!("{p}_count")][0].1;
            assert_eq!(buckets.last().unwrap().1, count, "{p}");
            assert!(samples.contains_key(&format!("{p}_sum")), "{p}");
        } else {
            assert_eq!(samples[&p].len(), 1, "{p}");
            assert_eq!(ty == "counter", d.cumulative, "{p}");
        }
    }
    assert_eq!(types.len(), metrics::all().len(), "one family per metric");
}
