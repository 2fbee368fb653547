//! The attribute's compile errors: each has a span on the offending token and says what is
//! accepted (snapshots in ui/*.stderr; regenerate with TRYBUILD=overwrite and review the diff).

#[test]
fn ui() {
    let cases = trybuild::TestCases::new();
    cases.compile_fail("ui/*.rs");
    cases.pass("ui/pass/*.rs");
}
