//! The documentation names what the code reads: every `GPU_TEST_*` variable in the README's table
//! and in the runtime crate's docs.

use gpu_test_tests::workspace_root;

/// The variables the runtime's settings module lists as read.
fn variables_read() -> Vec<String> {
    let source = std::fs::read_to_string(workspace_root().join("gpu-test-runtime/src/settings.rs")).unwrap();
    let start = source.find("pub(crate) const VARIABLES: &[&str] = &[").unwrap();
    let list = &source[start..];
    let list = &list[..list.find("];").unwrap()];
    list.split('"')
        .filter(|piece| piece.starts_with("GPU_TEST_"))
        .map(str::to_string)
        .collect()
}

#[test]
fn every_variable_gpu_test_reads_has_a_row_in_the_readme_and_the_crate_docs() {
    let variables = variables_read();
    assert!(variables.len() >= 10, "{variables:?}");
    let root = workspace_root();
    for doc in ["README.md", "gpu-test-runtime/src/lib.rs"] {
        let text = std::fs::read_to_string(root.join(doc)).unwrap();
        let rows: Vec<&str> = text
            .lines()
            .map(|line| line.trim_start_matches("//!").trim_start())
            .filter(|line| line.starts_with("| `GPU_TEST_"))
            .collect();
        for variable in &variables {
            assert!(
                rows.iter()
                    .any(|row| row.starts_with(&format!("| `{variable}` |"))),
                "{doc} has no row for {variable}"
            );
        }
        assert_eq!(
            rows.len(),
            variables.len(),
            "{doc}: a row for a variable gpu-test does not read?\n{rows:#?}"
        );
    }
}
