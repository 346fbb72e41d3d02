//! Options: every environment variable tricolor reads, declared once.
//!
//! Each option is parsed once, when the heap is first used. A bad value is
//! reported once on stderr, naming the variable, the value and what is
//! accepted, and the default is kept: a typo never changes behaviour
//! silently and never aborts the program.

use std::sync::atomic::Ordering::Relaxed;
use std::sync::Once;

/// One option: its environment variable, default and meaning.
#[derive(Debug, Clone, Copy)]
pub struct OptionSpec {
    /// Environment variable.
    pub env: &'static str,
    /// Default, as text.
    pub default: &'static str,
    /// What it does and what values it accepts.
    pub doc: &'static str,
}

/// Every option tricolor reads.
pub const OPTIONS: &[OptionSpec] = &[
    OptionSpec {
        env: "TRICOLOR_GC",
        default: "100",
        doc: "GOGC: the heap may grow by this percentage of the live heap before the next cycle; `off` (or a negative number) disables automatic collection",
    },
    OptionSpec {
        env: "TRICOLOR_MEMLIMIT",
        default: "off",
        doc: "GOMEMLIMIT: a soft limit on the memory the heap maps, in bytes with an optional B, KiB, MiB, GiB or TiB suffix (e.g. 512MiB), or `off`",
    },
    OptionSpec {
        env: "TRICOLOR_MEMPROFILERATE",
        default: "524288",
        doc: "MemProfileRate: the heap profiler samples one allocation per this many bytes on average (B, KiB or MiB suffix allowed); 1 samples every allocation, `off` or 0 turns profiling off (see tricolor::profile)",
    },
    OptionSpec {
        env: "TRICOLOR_DEBUG",
        default: "",
        doc: "GODEBUG-style comma-separated settings: `gctrace=1` prints one line per cycle on stderr; `gccheckmark=1` re-marks the heap at the end of every cycle, with the world stopped, and aborts with a message if the concurrent mark missed a reachable object; `gcstoptheworld=1` runs every cycle (mark and sweep) with the world stopped, as a baseline for the concurrent collector; `gcmarkworkers=N` runs N background mark workers besides the collector thread, which then marks full-time (default: Go's 25% of the CPUs, less one; under four CPUs none, and the collector thread marks for that share of a CPU, as Go's fractional worker)",
    },
];

static GCTRACE: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Whether `TRICOLOR_DEBUG=gctrace=1` is set.
pub(crate) fn gctrace() -> bool {
    GCTRACE.load(Relaxed)
}

/// `TRICOLOR_DEBUG` settings.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Debug {
    /// `gctrace=1`: one line per cycle on stderr.
    pub gctrace: bool,
    /// `gccheckmark=1`: verify each concurrent mark (Go's checkmark mode).
    pub gccheckmark: bool,
    /// `gcstoptheworld=1`: whole cycles with the world stopped.
    pub gcstoptheworld: bool,
    /// `gcmarkworkers=N`: extra background mark workers.
    pub gcmarkworkers: Option<usize>,
}

static GCCHECKMARK: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Whether `TRICOLOR_DEBUG=gccheckmark=1` is set.
pub(crate) fn gccheckmark() -> bool {
    GCCHECKMARK.load(Relaxed)
}

static GCMARKWORKERS: std::sync::atomic::AtomicUsize =
    std::sync::atomic::AtomicUsize::new(usize::MAX);

/// `TRICOLOR_DEBUG=gcmarkworkers=N`, if set.
pub(crate) fn gcmarkworkers() -> Option<usize> {
    init();
    Some(GCMARKWORKERS.load(Relaxed)).filter(|&n| n != usize::MAX)
}

static GCSTOPTHEWORLD: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Whether `TRICOLOR_DEBUG=gcstoptheworld=1` is set.
pub(crate) fn gcstoptheworld() -> bool {
    GCSTOPTHEWORLD.load(Relaxed)
}

/// Parses `TRICOLOR_DEBUG` (comma-separated `name=0|1` settings).
pub(crate) fn parse_debug(s: &str) -> Result<Debug, String> {
    let mut d = Debug::default();
    for item in s.split(',').map(str::trim).filter(|i| !i.is_empty()) {
        let (name, v) = item.split_once('=').unwrap_or((item, ""));
        if name == "gcmarkworkers" {
            let n: usize = v.parse().ok().filter(|&n| n <= 256).ok_or_else(|| {
                format!("gcmarkworkers: expected a number of threads from 0 to 256, got {v:?}")
            })?;
            d.gcmarkworkers = Some(n);
            continue;
        }
        let field = match name {
            "gctrace" => &mut d.gctrace,
            "gccheckmark" => &mut d.gccheckmark,
            "gcstoptheworld" => &mut d.gcstoptheworld,
            _ => {
                return Err(format!(
                    "unknown setting {item:?} (known: gctrace=0|1, gccheckmark=0|1, gcstoptheworld=0|1, gcmarkworkers=N)"
                ))
            }
        };
        *field = match v {
            "0" => false,
            "1" => true,
            _ => return Err(format!("{name} takes 0 or 1, got {v:?}")),
        };
    }
    Ok(d)
}

/// Parses a GOGC value: a whole number (negative = off) or `off`.
pub(crate) fn parse_gc_percent(s: &str) -> Result<i32, String> {
    let t = s.trim();
    if t.eq_ignore_ascii_case("off") {
        return Ok(-1);
    }
    t.parse::<i32>()
        .map(|v| v.max(-1))
        .map_err(|_| format!("expected a whole number of percent (e.g. 100) or `off`, got {s:?}"))
}

/// Reads option `name` from the environment: parses and applies it, or
/// reports a bad value on stderr, saying what stays in force (`keeping`).
fn from_env<T>(
    name: &str,
    parse: impl FnOnce(&str) -> Result<T, String>,
    apply: impl FnOnce(T),
    keeping: &str,
) {
    let Some(v) = std::env::var_os(name) else {
        return;
    };
    match v
        .to_str()
        .ok_or_else(|| "not valid UTF-8".to_string())
        .and_then(parse)
    {
        Ok(x) => apply(x),
        Err(e) => eprintln!("tricolor: ignoring {name}: {e}{keeping}"),
    }
}

/// Reads the environment once.
pub(crate) fn init() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let _ = crate::stats::START.set(std::time::Instant::now());
        crate::profile::init_rate();
        from_env(
            "TRICOLOR_GC",
            parse_gc_percent,
            |p| {
                crate::pacer::set_gc_percent(p);
            },
            "; using the default (100)",
        );
        from_env(
            "TRICOLOR_MEMLIMIT",
            crate::pacer::parse_memory_limit,
            |l| {
                crate::pacer::set_memory_limit(l);
            },
            "; no limit",
        );
        from_env(
            "TRICOLOR_DEBUG",
            parse_debug,
            |d| {
                GCTRACE.store(d.gctrace, Relaxed);
                GCCHECKMARK.store(d.gccheckmark, Relaxed);
                GCSTOPTHEWORLD.store(d.gcstoptheworld, Relaxed);
                GCMARKWORKERS.store(d.gcmarkworkers.unwrap_or(usize::MAX), Relaxed);
            },
            "",
        );
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gc_percent_values() {
        assert_eq!(parse_gc_percent("100"), Ok(100));
        assert_eq!(parse_gc_percent(" 50 "), Ok(50));
        assert_eq!(parse_gc_percent("off"), Ok(-1));
        assert_eq!(parse_gc_percent("OFF"), Ok(-1));
        assert_eq!(parse_gc_percent("-7"), Ok(-1));
        assert!(parse_gc_percent("abc").unwrap_err().contains("abc"));
        assert!(parse_gc_percent("").is_err());
    }

    #[test]
    fn debug_values() {
        let on = |gctrace, gccheckmark| {
            Ok(Debug {
                gctrace,
                gccheckmark,
                gcstoptheworld: false,
                gcmarkworkers: None,
            })
        };
        assert_eq!(parse_debug("gctrace=1"), on(true, false));
        assert_eq!(parse_debug("gctrace=0,"), on(false, false));
        assert_eq!(parse_debug("gccheckmark=1, gctrace=1"), on(true, true));
        assert!(parse_debug("gctrace=2").is_err());
        assert!(parse_debug("gccheckmark").is_err());
        assert!(parse_debug("bogus=1").unwrap_err().contains("bogus"));
        assert!(parse_debug("gcstoptheworld=1").unwrap().gcstoptheworld);
        assert_eq!(
            parse_debug("gcmarkworkers=3").unwrap().gcmarkworkers,
            Some(3)
        );
        assert!(parse_debug("gcmarkworkers=x")
            .unwrap_err()
            .contains("gcmarkworkers"));
    }
}
