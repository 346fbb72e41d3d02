// A `Root` inside a managed object would keep its own cycle alive forever:
// the derive rejects any field type that mentions `Root`, at any depth.
use tricolor::{Member, Root, Trace};

#[derive(Trace)]
struct Node {
    value: i64,
    next: Member<Node>,
}

#[derive(Trace)]
struct Cache {
    direct: Root<Node>,
    nested: Vec<Option<Root<Node>>>,
    size: usize,
}

#[derive(Trace)]
enum Slot {
    Empty,
    Held(tricolor::Root<Node>),
}

fn main() {}
