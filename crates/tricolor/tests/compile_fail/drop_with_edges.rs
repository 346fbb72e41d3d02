// INV-NODROP: a type that holds edges must not implement `Drop` (the sweeper
// may already have freed an edge's target). Finalisation is `add_cleanup`.
use tricolor::{Member, Trace};

#[derive(Trace)]
struct Node {
    value: i64,
    next: Member<Node>,
}

impl Drop for Node {
    fn drop(&mut self) {
        println!("dropping {}", self.value);
    }
}

// A type parameter may be an edge too.
#[derive(Trace)]
struct Wrapper<T> {
    inner: T,
}

impl<T> Drop for Wrapper<T> {
    fn drop(&mut self) {}
}

fn main() {}
