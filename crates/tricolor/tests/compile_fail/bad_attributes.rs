// `#[tricolor(...)]` knows one attribute, `unsafe_allow_drop`, on the item.
// There is no `skip` (skipping an edge would be unsound). Unions are rejected.
use tricolor::Trace;

#[derive(Trace)]
#[tricolor(frobnicate)]
struct Unknown {
    a: u8,
}

#[derive(Trace)]
struct Skip {
    #[tricolor(skip)]
    a: u8,
}

#[derive(Trace)]
struct Misplaced {
    #[tricolor(unsafe_allow_drop)]
    a: u8,
}

#[derive(Trace)]
union Bits {
    int: u32,
    float: f32,
}

fn main() {}
