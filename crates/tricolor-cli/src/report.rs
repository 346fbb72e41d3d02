//! Reports on a run: a readable [`MemStats`] summary and the one-line JSON
//! object printed by `tricolor run --json`.
//!
//! The JSON line has this shape (one line, no trailing spaces):
//!
//! ```text
//! {"workload": "binary-trees", "params": {...}, "wall_s": 1.25,
//!  "mem_stats": <MemStats::to_json()>,
//!  "pauses": {"count": n, "p50_ns": .., "p99_ns": .., "max_ns": ..}}
//! ```
//!
//! Pause statistics come from the `pause_ns` ring of [`MemStats`]: the last
//! `min(num_gc, 256)` entries (Go keeps the 256 most recent pauses, the most
//! recent at `(num_gc + 255) % 256`). Percentiles use the nearest-rank
//! method; with no pause at all every figure is 0.
//!
//! With `--metrics`, every runtime metric ([`tricolor::metrics`]) is
//! reported too: [`metrics_text`] (one readable line each) or
//! [`metrics_json`] (a `"metrics"` object in the JSON line).
//!
//! A workload that measures something itself (`churn`: throughput, the
//! latencies its threads observe) hands it over as an [`Extra`]: more keys
//! after `pauses` in the JSON object, more lines at the end of the summary.

use std::fmt::Write as _;
use std::time::Duration;

use tricolor::metrics::{Sample, Value};
use tricolor::MemStats;

/// Size of the `pause_ns` ring in [`MemStats`].
const RING: usize = 256;

/// Summary of the stop-the-world pauses recorded in [`MemStats`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PauseSummary {
    /// Number of pauses summarised: `min(num_gc, 256)`.
    pub count: usize,
    /// Median pause, nanoseconds (nearest rank).
    pub p50_ns: u64,
    /// 99th percentile pause, nanoseconds (nearest rank).
    pub p99_ns: u64,
    /// Longest pause, nanoseconds.
    pub max_ns: u64,
}

impl PauseSummary {
    /// Summarises the last `min(num_gc, 256)` pauses of `stats`.
    pub fn from_mem_stats(stats: &MemStats) -> Self {
        Self::from_ring(&stats.pause_ns, u64::from(stats.num_gc))
    }

    /// Summarises the last `min(num_gc, 256)` entries of a Go-style pause
    /// ring (most recent at `(num_gc + 255) % 256`).
    pub fn from_ring(ring: &[u64; RING], num_gc: u64) -> Self {
        let count = num_gc.min(RING as u64) as usize;
        let mut pauses: Vec<u64> = (0..count)
            .map(|k| ring[((num_gc + RING as u64 - 1 - k as u64) % RING as u64) as usize])
            .collect();
        Self::from_pauses(&mut pauses)
    }

    /// Summarises a list of pauses (sorted in place).
    pub fn from_pauses(pauses: &mut [u64]) -> Self {
        if pauses.is_empty() {
            return PauseSummary::default();
        }
        pauses.sort_unstable();
        PauseSummary {
            count: pauses.len(),
            p50_ns: nearest_rank(pauses, 50),
            p99_ns: nearest_rank(pauses, 99),
            max_ns: pauses[pauses.len() - 1],
        }
    }

    /// The `pauses` JSON object.
    pub fn to_json(&self) -> String {
        format!(
            "{{\"count\": {}, \"p50_ns\": {}, \"p99_ns\": {}, \"max_ns\": {}}}",
            self.count, self.p50_ns, self.p99_ns, self.max_ns
        )
    }
}

/// The `pct`-th percentile of a sorted, non-empty slice, nearest-rank method.
fn nearest_rank(sorted: &[u64], pct: usize) -> u64 {
    let rank = (pct * sorted.len()).div_ceil(100).max(1);
    sorted[rank - 1]
}

/// Formats a byte count with a binary unit: `512 B`, `12.3 MiB`.
pub fn human_bytes(bytes: u64) -> String {
    const UNITS: [&str; 6] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
    if bytes < 1024 {
        return format!("{bytes} B");
    }
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    format!("{value:.1} {}", UNITS[unit])
}

/// Formats a duration in nanoseconds with a readable unit: `850 ns`,
/// `12.5 µs`, `3.21 ms`, `1.50 s`.
pub fn human_ns(ns: u64) -> String {
    if ns < 1_000 {
        format!("{ns} ns")
    } else if ns < 1_000_000 {
        format!("{:.1} µs", ns as f64 / 1e3)
    } else if ns < 1_000_000_000 {
        format!("{:.2} ms", ns as f64 / 1e6)
    } else {
        format!("{:.2} s", ns as f64 / 1e9)
    }
}

/// Figures a workload measured itself, reported after the [`MemStats`] ones.
/// Most workloads measure nothing ([`Extra::default`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Extra {
    /// `(key, value)` pairs appended to the JSON object, in order; each value
    /// is already JSON text (a number, an object...).
    pub json: Vec<(&'static str, String)>,
    /// `(name, value)` lines appended to the readable summary, in order
    /// (`name` without the colon).
    pub summary: Vec<(&'static str, String)>,
}

/// A readable, multi-line summary of `stats` (and of the wall time, if
/// given), one `name: value` per line, ending with a newline.
pub fn summary(stats: &MemStats, wall: Option<Duration>) -> String {
    summary_with(stats, wall, &Extra::default())
}

/// [`summary`] followed by the workload's own lines (`extra.summary`).
pub fn summary_with(stats: &MemStats, wall: Option<Duration>, extra: &Extra) -> String {
    let pauses = PauseSummary::from_mem_stats(stats);
    let mut s = String::new();
    let mut line = |name: &str, value: String| {
        let _ = writeln!(s, "{name:<16} {value}");
    };
    line("heap_alloc:", human_bytes(stats.heap_alloc));
    line("heap_inuse:", human_bytes(stats.heap_inuse));
    line("heap_idle:", human_bytes(stats.heap_idle));
    line("heap_released:", human_bytes(stats.heap_released));
    line("heap_sys:", human_bytes(stats.heap_sys));
    line("sys:", human_bytes(stats.sys));
    line("total_alloc:", human_bytes(stats.total_alloc));
    line("heap_objects:", stats.heap_objects.to_string());
    line("mallocs:", stats.mallocs.to_string());
    line("frees:", stats.frees.to_string());
    line("next_gc:", human_bytes(stats.next_gc));
    line(
        "num_gc:",
        format!("{} ({} forced)", stats.num_gc, stats.num_forced_gc),
    );
    line("pause_total:", human_ns(stats.pause_total_ns));
    line(
        "pauses:",
        format!(
            "{} recorded, p50 {}, p99 {}, max {}",
            pauses.count,
            human_ns(pauses.p50_ns),
            human_ns(pauses.p99_ns),
            human_ns(pauses.max_ns)
        ),
    );
    line(
        "gc_cpu_fraction:",
        format!("{:.2}%", stats.gc_cpu_fraction * 100.0),
    );
    line("enable_gc:", stats.enable_gc.to_string());
    if let Some(wall) = wall {
        line("wall:", format!("{:.3} s", wall.as_secs_f64()));
    }
    for (name, value) in &extra.summary {
        line(&format!("{name}:"), value.clone());
    }
    s
}

/// Escapes `s` as a JSON string literal (with the quotes).
pub fn json_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Formats a finite `f64` as a JSON number (non-finite values become 0).
pub fn json_f64(x: f64) -> String {
    if x.is_finite() {
        // Debug always keeps a decimal point or an exponent, both valid JSON.
        format!("{x:?}")
    } else {
        "0".to_owned()
    }
}

/// The one-line JSON report of a run.
///
/// `params` are `(name, value)` pairs of the workload's parameters, written as
/// JSON integers in a `params` object.
pub fn json_line(
    workload: &str,
    params: &[(&str, u64)],
    wall: Duration,
    stats: &MemStats,
) -> String {
    json_line_with(workload, params, wall, stats, &Extra::default())
}

/// [`json_line`] with the workload's own keys (`extra.json`) after `pauses`.
pub fn json_line_with(
    workload: &str,
    params: &[(&str, u64)],
    wall: Duration,
    stats: &MemStats,
    extra: &Extra,
) -> String {
    let pauses = PauseSummary::from_mem_stats(stats);
    let params = params
        .iter()
        .map(|(k, v)| format!("{}: {v}", json_string(k)))
        .collect::<Vec<_>>()
        .join(", ");
    let mem_stats = stats.to_json();
    let extra: String = extra
        .json
        .iter()
        .map(|(k, v)| format!(", {}: {v}", json_string(k)))
        .collect();
    format!(
        "{{\"workload\": {}, \"params\": {{{params}}}, \"wall_s\": {}, \"mem_stats\": {}, \"pauses\": {}{extra}}}",
        json_string(workload),
        json_f64(wall.as_secs_f64()),
        mem_stats.trim(),
        pauses.to_json()
    )
}

/// A metric's value in readable form, by its unit (the part of the name
/// after `:`).
fn metric_value(name: &str, v: &Value) -> String {
    let unit = name.rsplit_once(':').map_or("", |(_, u)| u);
    let seconds = |x: f64| human_ns((x * 1e9).round() as u64);
    match v {
        Value::U64(n) if *n == u64::MAX => "none (u64::MAX)".into(),
        Value::U64(n) if unit == "bytes" => format!("{} ({n})", human_bytes(*n)),
        Value::U64(n) => n.to_string(),
        Value::F64(x) if unit.ends_with("seconds") => seconds(*x),
        Value::F64(x) => format!("{x}"),
        Value::Histogram(h) => {
            let count: u64 = h.counts.iter().sum();
            let secs = unit.ends_with("seconds");
            let bound = |b: f64| {
                if secs {
                    seconds(b)
                } else {
                    human_bytes(b as u64)
                }
            };
            let sum = bound(h.sum);
            let used: Vec<usize> = (0..h.counts.len()).filter(|&i| h.counts[i] > 0).collect();
            match (used.first(), used.last()) {
                (Some(&lo), Some(&hi)) => {
                    let top = h.buckets.get(hi + 1).copied().unwrap_or(f64::INFINITY);
                    let top = if top.is_finite() {
                        bound(top)
                    } else {
                        "inf".into()
                    };
                    format!(
                        "count {count}, sum {sum}, all in [{}, {top})",
                        bound(h.buckets[lo])
                    )
                }
                _ => "count 0".into(),
            }
        }
        Value::Bad => "unknown".into(),
    }
}

/// Every metric, one `name  value` line each, under a `metrics:` heading.
pub fn metrics_text(samples: &[Sample]) -> String {
    let width = samples.iter().map(|s| s.name.len()).max().unwrap_or(0);
    let mut out = String::from("metrics:\n");
    for s in samples {
        let _ = writeln!(
            out,
            "  {:width$}  {}",
            s.name,
            metric_value(&s.name, &s.value)
        );
    }
    out
}

/// Every metric as one JSON object keyed by name: integers and floats as
/// numbers, histograms as `{"counts": [..], "buckets": [..], "sum": x}`
/// (bucket boundaries, one more than counts, `null` for an infinite one).
pub fn metrics_json(samples: &[Sample]) -> String {
    let num = |x: f64| {
        if x.is_finite() {
            json_f64(x)
        } else {
            "null".to_string()
        }
    };
    let items: Vec<String> = samples
        .iter()
        .map(|s| {
            let v = match &s.value {
                Value::U64(n) => n.to_string(),
                Value::F64(x) => num(*x),
                Value::Histogram(h) => {
                    let counts: Vec<String> = h.counts.iter().map(u64::to_string).collect();
                    let buckets: Vec<String> = h.buckets.iter().map(|&b| num(b)).collect();
                    format!(
                        "{{\"counts\": [{}], \"buckets\": [{}], \"sum\": {}}}",
                        counts.join(", "),
                        buckets.join(", "),
                        num(h.sum)
                    )
                }
                Value::Bad => "null".to_string(),
            };
            format!("{}: {v}", json_string(&s.name))
        })
        .collect();
    format!("{{{}}}", items.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ring_takes_the_most_recent_entries() {
        let mut ring = [0u64; RING];
        // 300 cycles: pause of cycle c (1-based) stored at (c - 1) % 256.
        for c in 1..=300u64 {
            ring[((c - 1) % 256) as usize] = c;
        }
        let s = PauseSummary::from_ring(&ring, 300);
        assert_eq!(s.count, 256);
        assert_eq!(s.max_ns, 300);
        // Entries 45..=300; the 50th percentile has rank 128 -> 172.
        assert_eq!(s.p50_ns, 172);
        // Rank ceil(0.99 * 256) = 254 -> 298.
        assert_eq!(s.p99_ns, 298);

        let mut ring = [0u64; RING];
        ring[..3].copy_from_slice(&[1, 2, 3]);
        let few = PauseSummary::from_ring(&ring, 3);
        assert_eq!(few.count, 3);
        assert_eq!(few.max_ns, 3);
        assert_eq!(few.p50_ns, 2);

        assert_eq!(PauseSummary::from_ring(&ring, 0), PauseSummary::default());
    }

    #[test]
    fn human_units() {
        assert_eq!(human_bytes(512), "512 B");
        assert_eq!(human_bytes(1536), "1.5 KiB");
        assert_eq!(human_bytes(12 * 1024 * 1024 + 300 * 1024), "12.3 MiB");
        assert_eq!(human_ns(850), "850 ns");
        assert_eq!(human_ns(12_500), "12.5 µs");
        assert_eq!(human_ns(3_210_000), "3.21 ms");
    }

    #[test]
    fn json_escaping() {
        assert_eq!(json_string("a\"b\\c\n\u{1}"), "\"a\\\"b\\\\c\\n\\u0001\"");
        assert_eq!(json_f64(1.0), "1.0");
        assert_eq!(json_f64(f64::NAN), "0");
    }
}
