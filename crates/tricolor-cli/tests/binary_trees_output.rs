//! binary-trees prints exactly the Benchmarks Game output.

use tricolor_cli::workloads::binary_trees;

fn output(depth: u32) -> String {
    let mut out = Vec::new();
    binary_trees::run(depth, &mut out).expect("binary-trees runs");
    String::from_utf8(out).expect("UTF-8 output")
}

#[test]
fn depth_6_matches_the_benchmarks_game_output() {
    // N = 6: stretch depth 7 has 2^8 - 1 nodes; 1 << (6 - 4 + 4) = 64 trees
    // of depth 4 (31 nodes each); 1 << (6 - 6 + 4) = 16 trees of depth 6
    // (127 nodes each); the long-lived tree of depth 6 has 127 nodes.
    let expected = "stretch tree of depth 7\t check: 255\n\
                    64\t trees of depth 4\t check: 1984\n\
                    16\t trees of depth 6\t check: 2032\n\
                    long lived tree of depth 6\t check: 127\n";
    assert_eq!(output(6), expected);
}

#[test]
fn small_depths_run_as_min_depth_plus_two() {
    // max(min_depth + 2, n): every depth below 6 is the depth-6 program.
    let six = output(6);
    for depth in [0, 4, 5] {
        assert_eq!(output(depth), six, "depth {depth}");
    }
}

#[test]
fn depth_10_matches_the_benchmarks_game_output() {
    // The Benchmarks Game's published output for N = 10.
    let expected = "stretch tree of depth 11\t check: 4095\n\
                    1024\t trees of depth 4\t check: 31744\n\
                    256\t trees of depth 6\t check: 32512\n\
                    64\t trees of depth 8\t check: 32704\n\
                    16\t trees of depth 10\t check: 32752\n\
                    long lived tree of depth 10\t check: 2047\n";
    assert_eq!(output(10), expected);
}

#[test]
fn node_count_formula() {
    // 255 + 127 + 64 * 31 + 16 * 127
    assert_eq!(binary_trees::nodes_allocated(6), 4398);
}

#[test]
fn too_deep_is_an_error() {
    let mut out = Vec::new();
    let err = binary_trees::run(binary_trees::MAX_DEPTH + 1, &mut out).unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput);
    assert!(out.is_empty());
}
