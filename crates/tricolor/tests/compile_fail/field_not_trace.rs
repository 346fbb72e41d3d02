// INV-TRACE: every field of a derived type must implement `Trace`; the error
// points at the offending field.
use tricolor::{Member, Trace};

struct NotTraced {
    id: u32,
}

#[derive(Trace)]
struct Node {
    value: i64,
    extra: NotTraced,
    next: Member<Node>,
}

fn main() {
    let _ = Node {
        value: 1,
        extra: NotTraced { id: 2 },
        next: Member::null(),
    };
}
