//! The heap profiler, checked from the outside: the profile is gunzip'd and
//! decoded with a protobuf wire-format reader written here (independent of
//! the `prost` structs that wrote it), and its samples are compared with
//! allocations this test made itself, at rate 1 (every allocation sampled,
//! no scaling). This test binary also runs on the tracking allocator, so
//! plain `Vec` allocations show up too, with their counts in
//! `tricolor::alloc::stats()`.
//!
//! One `#[test]` only: the sampling rate is process-wide.

use std::collections::HashMap;
use std::io::Read;
use std::sync::atomic::{AtomicU32, Ordering::Relaxed};

use tricolor::alloc::Tracking;
use tricolor::Trace;

#[global_allocator]
static A: Tracking = Tracking::new();

// ---- a minimal protobuf wire-format reader ----

#[derive(Debug, Clone)]
enum Val<'a> {
    Int(u64),
    Bytes(&'a [u8]),
}

fn varint(b: &[u8], i: &mut usize) -> u64 {
    let mut v = 0u64;
    let mut shift = 0;
    loop {
        let x = b[*i];
        *i += 1;
        v |= u64::from(x & 0x7f) << shift;
        if x & 0x80 == 0 {
            return v;
        }
        shift += 7;
    }
}

/// Every (field number, value) of one message, in order.
fn fields(b: &[u8]) -> Vec<(u64, Val<'_>)> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        let key = varint(b, &mut i);
        let v = match key & 7 {
            0 => Val::Int(varint(b, &mut i)),
            1 => {
                let v = u64::from_le_bytes(b[i..i + 8].try_into().unwrap());
                i += 8;
                Val::Int(v)
            }
            2 => {
                let n = varint(b, &mut i) as usize;
                let s = &b[i..i + n];
                i += n;
                Val::Bytes(s)
            }
            5 => {
                let v = u32::from_le_bytes(b[i..i + 4].try_into().unwrap());
                i += 4;
                Val::Int(u64::from(v))
            }
            w => panic!("wire type {w}"),
        };
        out.push((key >> 3, v));
    }
    out
}

fn int(v: &Val) -> u64 {
    match v {
        Val::Int(x) => *x,
        Val::Bytes(_) => panic!("expected a varint"),
    }
}

fn bytes<'a>(v: &Val<'a>) -> &'a [u8] {
    match v {
        Val::Bytes(b) => b,
        Val::Int(_) => panic!("expected bytes"),
    }
}

/// Repeated integers, packed or not.
fn ints(fs: &[(u64, Val)], field: u64) -> Vec<u64> {
    let mut out = Vec::new();
    for (f, v) in fs.iter().filter(|(f, _)| *f == field) {
        let _ = f;
        match v {
            Val::Int(x) => out.push(*x),
            Val::Bytes(b) => {
                let mut i = 0;
                while i < b.len() {
                    out.push(varint(b, &mut i));
                }
            }
        }
    }
    out
}

fn one(fs: &[(u64, Val)], field: u64) -> u64 {
    fs.iter()
        .find(|(f, _)| *f == field)
        .map(|(_, v)| int(v))
        .unwrap_or(0)
}

/// A decoded profile: sample types, and per sample its values, the
/// function names of its stack (leaf first) and its `bytes` label.
struct Decoded {
    types: Vec<(String, String)>,
    default_type: String,
    period: u64,
    samples: Vec<(Vec<i64>, Vec<String>, i64)>,
    /// Per sample (same order), the stack as (function, line), leaf first.
    lines: Vec<Vec<(String, i64)>>,
    files: Vec<String>,
}

fn decode(gz: &[u8]) -> Decoded {
    assert_eq!(&gz[..2], &[0x1f, 0x8b], "gzip magic");
    let mut raw = Vec::new();
    flate2::read::GzDecoder::new(gz)
        .read_to_end(&mut raw)
        .unwrap();
    let top = fields(&raw);
    check_viewer_requirements(&top);
    let strings: Vec<String> = top
        .iter()
        .filter(|(f, _)| *f == 6)
        .map(|(_, v)| String::from_utf8(bytes(v).to_vec()).unwrap())
        .collect();
    assert_eq!(strings[0], "");
    let s = |i: u64| strings[i as usize].clone();
    let types = top
        .iter()
        .filter(|(f, _)| *f == 1)
        .map(|(_, v)| {
            let vt = fields(bytes(v));
            (s(one(&vt, 1)), s(one(&vt, 2)))
        })
        .collect();
    let mut funcs = HashMap::new();
    let mut files = Vec::new();
    for (_, v) in top.iter().filter(|(f, _)| *f == 5) {
        let fs = fields(bytes(v));
        funcs.insert(one(&fs, 1), s(one(&fs, 2)));
        files.push(s(one(&fs, 4)));
    }
    let mut locs: HashMap<u64, Vec<(String, i64)>> = HashMap::new();
    for (_, v) in top.iter().filter(|(f, _)| *f == 4) {
        let fs = fields(bytes(v));
        let names = fs
            .iter()
            .filter(|(f, _)| *f == 4)
            .map(|(_, l)| {
                let l = fields(bytes(l));
                (funcs[&one(&l, 1)].clone(), one(&l, 2) as i64)
            })
            .collect();
        locs.insert(one(&fs, 1), names);
    }
    let lines = top
        .iter()
        .filter(|(f, _)| *f == 2)
        .map(|(_, v)| {
            ints(&fields(bytes(v)), 1)
                .iter()
                .flat_map(|id| locs[id].clone())
                .collect()
        })
        .collect();
    let samples = top
        .iter()
        .filter(|(f, _)| *f == 2)
        .map(|(_, v)| {
            let fs = fields(bytes(v));
            let stack = ints(&fs, 1)
                .iter()
                .flat_map(|id| locs[id].iter().map(|(n, _)| n.clone()))
                .collect();
            let values = ints(&fs, 2).iter().map(|&x| x as i64).collect();
            let label = fs
                .iter()
                .filter(|(f, _)| *f == 3)
                .map(|(_, l)| fields(bytes(l)))
                .find(|l| s(one(l, 1)) == "bytes")
                .map(|l| one(&l, 3) as i64)
                .unwrap_or(0);
            (values, stack, label)
        })
        .collect();
    Decoded {
        types,
        default_type: s(one(&top, 14)),
        period: one(&top, 12),
        samples,
        lines,
        files,
    }
}

/// What speedscope's pprof importer (`src/import/pprof.ts`, v1.25) and
/// `go tool pprof` rely on beyond the schema, checked on the wire:
/// - string 0 is "" (pprof rejects the profile otherwise);
/// - speedscope shows the *last* sample type whatever
///   `default_sample_type` says (it compares the int64 string indices as
///   protobuf.js `Long` objects, which never match, and falls back to the
///   last), so the default, `inuse_space`, must be the last type for both
///   tools to show the same view;
/// - function and location ids are non-zero, unique and below 2^32 (it
///   keys them by the low 32 bits), every location has a line (a location
///   without one becomes no frame), and every id a line or sample uses is
///   declared;
/// - every sample has one value per sample type (else it drops the whole
///   profile), and there is a period type.
fn check_viewer_requirements(top: &[(u64, Val)]) {
    let strings: Vec<&[u8]> = top
        .iter()
        .filter(|(f, _)| *f == 6)
        .map(|(_, v)| bytes(v))
        .collect();
    assert_eq!(
        strings.first(),
        Some(&&b""[..]),
        "string_table[0] must be \"\""
    );
    let types: Vec<u64> = top
        .iter()
        .filter(|(f, _)| *f == 1)
        .map(|(_, v)| one(&fields(bytes(v)), 1))
        .collect();
    assert!(!types.is_empty());
    assert_eq!(
        Some(&one(top, 14)),
        types.last(),
        "default_sample_type must be the last sample type (speedscope shows the last)"
    );
    assert!(top.iter().any(|(f, _)| *f == 11), "period_type is missing");
    let ids = |field: u64| -> Vec<u64> {
        top.iter()
            .filter(|(f, _)| *f == field)
            .map(|(_, v)| one(&fields(bytes(v)), 1))
            .collect()
    };
    let functions: std::collections::HashSet<u64> = ids(5).into_iter().collect();
    let locations: std::collections::HashSet<u64> = ids(4).into_iter().collect();
    assert_eq!(functions.len(), ids(5).len(), "duplicate function ids");
    assert_eq!(locations.len(), ids(4).len(), "duplicate location ids");
    for id in functions.iter().chain(&locations) {
        assert!(*id != 0 && *id < 1 << 32, "id {id}");
    }
    for (_, v) in top.iter().filter(|(f, _)| *f == 4) {
        let lines: Vec<u64> = fields(bytes(v))
            .iter()
            .filter(|(f, _)| *f == 4)
            .map(|(_, l)| one(&fields(bytes(l)), 1))
            .collect();
        assert!(!lines.is_empty(), "a location without lines");
        assert!(
            lines.iter().all(|f| functions.contains(f)),
            "undeclared function"
        );
    }
    for (_, v) in top.iter().filter(|(f, _)| *f == 2) {
        let fs = fields(bytes(v));
        assert!(
            ints(&fs, 1).iter().all(|l| locations.contains(l)),
            "undeclared location"
        );
        assert_eq!(ints(&fs, 2).len(), types.len(), "one value per sample type");
    }
}

fn profile() -> Decoded {
    let mut out = Vec::new();
    tricolor::profile::write_heap_profile(&mut out).unwrap();
    decode(&out)
}

/// The summed values of the samples allocated by function `site` of this
/// test crate (its leaf frame, past the standard library's `alloc`/`core`
/// frames), and their object size.
fn site(p: &Decoded, site: &str) -> ([i64; 4], i64) {
    let mut sum = [0i64; 4];
    let mut size = 0;
    let name = format!("profile::{site}");
    let std = |f: &&String| {
        ["alloc::", "<alloc::", "core::", "<core::"]
            .iter()
            .any(|p| f.starts_with(p))
    };
    for (v, stack, label) in &p.samples {
        let ours = stack.iter().find(|f| !std(f));
        if ours.is_some_and(|f| f == &name || f.starts_with(&format!("{name}::"))) {
            for i in 0..4 {
                sum[i] += v[i];
            }
            size = *label;
            if std::env::var_os("PROFILE_TEST_DEBUG").is_some() {
                eprintln!("{v:?} {label} {stack:?}");
            }
        }
    }
    (sum, size)
}

// ---- the allocation sites ----

#[derive(Trace)]
struct Page {
    data: [u64; 512],
}

const N: usize = 1000;

/// Allocates N pages into `out` (reserved by the caller: the only
/// allocations of this function are the pages).
#[inline(never)]
fn gc_pages<'g>(g: &'g tricolor::Guard, out: &mut Vec<tricolor::Gc<'g, Page>>) {
    for _ in 0..N {
        out.push(g.alloc(Page { data: [7; 512] }));
    }
}

/// The source line of the first call in `two_sites`.
static TWO_SITES_LINE: AtomicU32 = AtomicU32::new(0);

/// Two calls of an allocating function on consecutive lines, as in a
/// recursive tree builder: the code at the first call's return address
/// (computing the second call's argument from its result) belongs to the
/// second line, the code after the second's to the third.
#[inline(never)]
fn two_sites<'g>(g: &'g tricolor::Guard, out: &mut Vec<tricolor::Gc<'g, Page>>) -> u64 {
    TWO_SITES_LINE.store(line!() + 1, Relaxed);
    let a = one_page(g, out, 1);
    let b = one_page(g, out, a * 3 + 1);
    std::hint::black_box(a * 5 + b)
}

/// Allocates a page filled with `x`; returns the pages in `out`.
#[inline(never)]
fn one_page<'g>(g: &'g tricolor::Guard, out: &mut Vec<tricolor::Gc<'g, Page>>, x: u64) -> u64 {
    out.push(g.alloc(Page { data: [x; 512] }));
    std::hint::black_box(out.len() as u64)
}

/// The frames of `two_sites` above `one_page` carry the lines of the two
/// calls, not of the code after them (where return addresses point).
fn check_call_lines(p: &Decoded) {
    let first = i64::from(TWO_SITES_LINE.load(Relaxed));
    let mut seen = std::collections::BTreeSet::new();
    for stack in &p.lines {
        if let Some(i) = stack.iter().position(|(f, _)| f == "profile::one_page") {
            let (caller, line) = &stack[i + 1];
            assert_eq!(caller, "profile::two_sites", "{stack:?}");
            seen.insert(*line);
        }
    }
    assert_eq!(
        seen.into_iter().collect::<Vec<_>>(),
        [first, first + 1],
        "lines of the calls in two_sites"
    );
}

/// Allocates N boxes into `out` (reserved by the caller): N separate
/// allocations of 3000 bytes, the point of the test.
#[inline(never)]
#[allow(clippy::vec_box)]
fn plain_blocks(out: &mut Vec<Box<[u8; 3000]>>) {
    for _ in 0..N {
        out.push(std::hint::black_box(Box::new([1u8; 3000])));
    }
}

#[test]
fn heap_profile_matches_known_allocations() {
    tricolor::profile::set_mem_profile_rate(1);
    // Sampling state is per thread: run on a fresh thread that sees rate 1
    // from its first allocation.
    std::thread::spawn(|| {
        // GC objects: 1000 pages of 4 KiB (plus the header).
        {
            let g = tricolor::pin();
            let mut pages = Vec::with_capacity(N);
            gc_pages(&g, &mut pages);
            assert_eq!(pages[N - 1].data[511], 7);
            drop(pages);
            let p = profile();
            let (v, size) = site(&p, "gc_pages");
            assert!((4104..4104 * 5 / 4).contains(&size), "slot size {size}");
            assert_eq!(v[0], N as i64, "alloc_objects");
            assert_eq!(v[1], N as i64 * size, "alloc_space");
            assert_eq!(v[2], N as i64, "inuse_objects before the collection");
            assert_eq!(v[3], N as i64 * size, "inuse_space before the collection");
        }
        tricolor::gc();
        let p = profile();
        assert_eq!(
            p.types,
            [
                ("alloc_objects", "count"),
                ("alloc_space", "bytes"),
                ("inuse_objects", "count"),
                ("inuse_space", "bytes"),
            ]
            .map(|(a, b)| (a.to_string(), b.to_string()))
        );
        assert_eq!(p.default_type, "inuse_space");
        assert_eq!(p.period, 1);
        assert!(p.files.iter().any(|f| f.ends_with("profile.rs")));
        let (v, size) = site(&p, "gc_pages");
        assert_eq!(v, [N as i64, N as i64 * size, 0, 0], "after gc()");

        // Symbolized lines are the lines of the calls.
        {
            let g = tricolor::pin();
            let mut pages = Vec::with_capacity(2);
            assert_eq!(two_sites(&g, &mut pages), 7);
            check_call_lines(&profile());
        }

        // Plain Rust allocations through the tracking allocator.
        let before = tricolor::alloc::stats();
        let mut blocks = Vec::with_capacity(N);
        plain_blocks(&mut blocks);
        let mid = tricolor::alloc::stats();
        assert!(mid.mallocs - before.mallocs >= N as u64);
        assert!(mid.total_alloc - before.total_alloc >= (N * 3000) as u64);
        let p = profile();
        let (v, size) = site(&p, "plain_blocks");
        assert_eq!(size, 3000);
        assert_eq!(v, [N as i64, N as i64 * 3000, N as i64, N as i64 * 3000]);
        drop(blocks);
        let after = tricolor::alloc::stats();
        assert!(after.frees - mid.frees >= N as u64);
        let p = profile();
        let (v, _) = site(&p, "plain_blocks");
        assert_eq!(v, [N as i64, N as i64 * 3000, 0, 0], "after the drop");
    })
    .join()
    .unwrap();
    tricolor::profile::set_mem_profile_rate(tricolor::profile::DEFAULT_MEM_PROFILE_RATE);
}

#[test]
fn scaling_matches_go() {
    // Go: scaleHeapSample(1, 1024, 512*1024) = 1/(1-exp(-1/512)) = 512.5.
    assert_eq!(
        tricolor::profile::scale_heap_sample(1, 1024, 512 * 1024),
        (512, 524_800)
    );
    assert_eq!(tricolor::profile::scale_heap_sample(0, 0, 512), (0, 0));
}
