//! A plain Rust program (no GC objects) on the tracking allocator: it
//! allocates, prints the MemStats subset and writes a heap profile.
//!
//! ```text
//! cargo run --release -p tricolor --example tracking -- heap.pb.gz
//! tricolor pprof top heap.pb.gz            # or: go tool pprof -top heap.pb.gz
//! ```

use std::collections::HashMap;

use tricolor::alloc::Tracking;

#[global_allocator]
static A: Tracking = Tracking::new();

/// Keeps about 8 MiB of strings live.
#[inline(never)]
fn build_index(n: usize) -> HashMap<usize, String> {
    (0..n)
        .map(|i| (i, format!("value number {i:>10}").repeat(4)))
        .collect()
}

/// Allocates about 64 MiB of short-lived buffers.
#[inline(never)]
fn churn(rounds: usize) -> usize {
    (0..rounds)
        .map(|i| std::hint::black_box(vec![i as u8; 4096]).len())
        .sum()
}

fn main() {
    let path = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "heap.pb.gz".into());
    let index = build_index(100_000);
    let churned = churn(16_384);
    let s = tricolor::alloc::stats();
    println!(
        "index: {} entries; churned {churned} bytes\nmallocs {} frees {} heap_objects {} alloc {} B total_alloc {} B",
        index.len(),
        s.mallocs,
        s.frees,
        s.heap_objects,
        s.alloc_bytes,
        s.total_alloc
    );
    let f = std::fs::File::create(&path).expect("create the profile file");
    tricolor::profile::write_heap_profile(std::io::BufWriter::new(f)).expect("write the profile");
    println!("heap profile written to {path}");
    drop(index);
}
