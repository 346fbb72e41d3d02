//! Programs that must not compile: the derive's checks (INV-TRACE, no `Root`
//! in the heap, INV-NODROP) and the lifetime/thread rules of guards and
//! handles (INV-GUARD, `Send`/`Sync`). Each `compile_fail/*.rs` is one case;
//! its `.stderr` is the expected error (regenerate with
//! `TRYBUILD=overwrite cargo test -p tricolor --test compile_fail`, then read
//! each one: it must be the intended error, not a typo or a missing import).

#[test]
fn compile_fail() {
    let t = trybuild::TestCases::new();
    t.compile_fail("tests/compile_fail/*.rs");
}
