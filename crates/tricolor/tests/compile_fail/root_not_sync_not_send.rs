// `Root<T>` is `Send` only if `T: Send + Sync`: a graph with `Cell` fields is
// single-threaded by type.
use std::cell::Cell;

use tricolor::{Root, Trace};

#[derive(Trace)]
struct Counter {
    hits: Cell<u64>,
}

fn main() {
    let root = Root::new(Counter { hits: Cell::new(0) });
    std::thread::spawn(move || root.hits.set(1)).join().unwrap();
}
