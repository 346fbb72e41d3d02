//! GCBench prints its deterministic lines.

use tricolor_cli::workloads::gcbench::{self, GcBenchParams};

#[test]
fn small_params_print_the_expected_lines() {
    let mut out = Vec::new();
    gcbench::run_with(&GcBenchParams::small(), &mut out).expect("GCBench runs");
    // NumIters(d) = 2 * TreeSize(10) / TreeSize(d) = 4094 / (2^(d+1) - 1).
    let expected = "Garbage Collector Test\n \
                    Stretching memory with a binary tree of depth 10\n \
                    Creating a long-lived binary tree of depth 8\n \
                    Creating a long-lived array of 4000 doubles\n\
                    Creating 132 trees of depth 4\n\
                    Creating 32 trees of depth 6\n\
                    Creating 8 trees of depth 8\n\
                    Completed\n";
    assert_eq!(String::from_utf8(out).unwrap(), expected);
    assert_eq!(GcBenchParams::small().expected_output(), expected);
}

#[test]
fn classic_iteration_counts() {
    let p = GcBenchParams::default();
    let iters: Vec<(u32, u64)> = p.depths().map(|d| (d, p.num_iters(d))).collect();
    assert_eq!(
        iters,
        [
            (4, 33824),
            (6, 8256),
            (8, 2052),
            (10, 512),
            (12, 128),
            (14, 32),
            (16, 8)
        ]
    );
}

#[test]
fn bad_params_are_rejected() {
    let p = GcBenchParams {
        min_tree_depth: 10,
        max_tree_depth: 8,
        ..GcBenchParams::small()
    };
    let mut out = Vec::new();
    let err = gcbench::run_with(&p, &mut out).unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput);
    assert!(err.to_string().contains("min_tree_depth"), "{err}");
    assert!(out.is_empty());
}
