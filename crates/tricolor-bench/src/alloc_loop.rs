// The allocation-heavy loop behind the `alloc-system` and `alloc-tracking`
// binaries (included by both: the global allocator is chosen at compile
// time, so the comparison needs two processes).
//
// Usage: `alloc-system [ROUNDS] [small|trees]` / `alloc-tracking [ROUNDS]
// [small|trees]`; prints the loop's wall time in ms and a checksum. Each round
// builds 256 boxed byte slices of 16 to 527 bytes, a `String` grown by
// pushes and a small `BTreeMap`, then drops them all: about 460 allocations
// and frees per round, the malloc/free mix of typical Rust code. With
// `small`, each round instead allocates 1,000 `Box<u64>`s and frees them:
// nothing but the allocator's fast paths. With `trees`, each round is
// binary-trees' inner loop on `Box`: build and walk 64 trees of depth 14
// (32,767 nodes each), then free them.

use std::collections::BTreeMap;
use std::hint::black_box;
use std::time::Instant;

fn round(i: usize) -> usize {
    let v: Vec<Box<[u8]>> = (0..256)
        .map(|j| vec![j as u8; 16 + (i * 31 + j * 17) % 512].into_boxed_slice())
        .collect();
    let mut s = String::new();
    for j in 0..64 {
        s.push_str(&format!("{j},"));
    }
    let m: BTreeMap<usize, Vec<u8>> = (0..128).map(|j| (j * 7 % 128, vec![1; j % 40])).collect();
    black_box(&v).len() + black_box(&s).len() + black_box(&m).len()
}

fn small_round(i: usize) -> usize {
    let v: Vec<Box<u64>> = (0..1000).map(|j| Box::new((i + j) as u64)).collect();
    black_box(&v).len()
}

struct Tree(Option<Box<(Tree, Tree)>>);

fn tree(depth: u32) -> Tree {
    Tree(if depth == 0 {
        None
    } else {
        Some(Box::new((tree(depth - 1), tree(depth - 1))))
    })
}

fn nodes(t: &Tree) -> usize {
    t.0.as_ref().map_or(1, |b| 1 + nodes(&b.0) + nodes(&b.1))
}

fn trees_round(i: usize) -> usize {
    (0..64).map(|j| nodes(black_box(&tree(14 - ((i + j) % 2) as u32)))).sum()
}

fn main() {
    let rounds: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(200_000);
    let mode = std::env::args().nth(2).unwrap_or_default();
    let start = Instant::now();
    let mut sum = 0usize;
    for i in 0..rounds {
        sum = sum.wrapping_add(match mode.as_str() {
            "small" => small_round(i),
            "trees" => trees_round(i),
            _ => round(i),
        });
    }
    let ms = start.elapsed().as_secs_f64() * 1e3;
    println!("{ms:.1} ms (checksum {sum})");
    report();
}
