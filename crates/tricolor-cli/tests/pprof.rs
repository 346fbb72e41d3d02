//! `tricolor run --heap-profile` and `tricolor pprof top`: a profile
//! written by a run is read back; bad files give a clear error (exit 2),
//! never a panic.

mod common;

use common::{stderr, stdout, tricolor};

fn tmp(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("tricolor-pprof-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(name)
}

#[test]
fn run_writes_a_profile_that_top_reads() {
    let path = tmp("bt.pb.gz");
    let p = path.to_str().unwrap();
    let o = tricolor(&["run", "binary-trees", "-n", "14", "--heap-profile", p]);
    assert!(o.status.success(), "stderr: {}", stderr(&o));
    let bytes = std::fs::read(&path).unwrap();
    assert_eq!(&bytes[..2], &[0x1f, 0x8b]);

    let o = tricolor(&["pprof", "top", p, "--sample-index", "alloc_space"]);
    assert!(o.status.success(), "stderr: {}", stderr(&o));
    let out = stdout(&o);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "Type: alloc_space");
    assert!(lines[2]
        .split_whitespace()
        .eq(["flat", "flat%", "sum%", "cum", "cum%"]));
    // Every node of binary-trees is allocated by bottom_up_tree, the top
    // site. (The binary's global allocator is `Tracking`, so the profile
    // also holds plain Rust allocations, such as the collector's mark
    // stack: the nodes are most, not all, of it.)
    assert!(lines[3].ends_with("binary_trees::bottom_up_tree"), "{out}");
    let flat_pct: f64 = lines[3]
        .split_whitespace()
        .nth(1)
        .unwrap()
        .trim_end_matches('%')
        .parse()
        .unwrap();
    assert!(flat_pct >= 50.0, "{out}");

    // The default sample type is inuse_space; the raw (gunzip'd) form reads too.
    let o = tricolor(&["pprof", "top", p, "--nodecount", "1"]);
    assert!(
        stdout(&o).starts_with("Type: inuse_space\n"),
        "{}",
        stdout(&o)
    );
    let raw = tmp("bt.pb");
    let mut data = Vec::new();
    std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(&bytes[..]), &mut data).unwrap();
    std::fs::write(&raw, &data).unwrap();
    let o = tricolor(&[
        "pprof",
        "top",
        raw.to_str().unwrap(),
        "--sample-index",
        "alloc_objects",
    ]);
    assert!(o.status.success(), "stderr: {}", stderr(&o));
    assert!(stdout(&o).starts_with("Type: alloc_objects\n"));

    // Unknown sample type.
    let o = tricolor(&["pprof", "top", p, "--sample-index", "bogus"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("no sample type \"bogus\""),
        "{}",
        stderr(&o)
    );

    // Truncated gzip, truncated protobuf.
    let cut = tmp("cut.pb.gz");
    std::fs::write(&cut, &bytes[..bytes.len() / 2]).unwrap();
    let o = tricolor(&["pprof", "top", cut.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("truncated gzip"), "{}", stderr(&o));
    std::fs::write(&cut, &data[..data.len() / 2]).unwrap();
    let o = tricolor(&["pprof", "top", cut.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("not a pprof profile"), "{}", stderr(&o));
}

#[test]
fn bad_files_give_clear_errors() {
    let cases: [(&str, &[u8], &str); 3] = [
        ("empty", b"", "empty file"),
        ("text", b"hello, world\n", "not a pprof profile"),
        (
            "badgz",
            &[0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3, 0xff, 0xff, 0xff],
            "gzip",
        ),
    ];
    for (name, content, msg) in cases {
        let f = tmp(name);
        std::fs::write(&f, content).unwrap();
        let o = tricolor(&["pprof", "top", f.to_str().unwrap()]);
        assert_eq!(o.status.code(), Some(2), "{name}");
        let e = stderr(&o);
        assert!(e.contains(msg) && !e.contains("panicked"), "{name}: {e}");
    }
    let o = tricolor(&["pprof", "top", "/nonexistent/heap.pb.gz"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("cannot read"));
}
