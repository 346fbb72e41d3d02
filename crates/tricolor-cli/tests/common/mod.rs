//! Helpers shared by the CLI's integration tests: run the `tricolor`
//! binary with the default environment and read its output.

use std::process::{Command, Output};

/// Runs the `tricolor` binary with `args` and the default settings.
pub fn tricolor(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_tricolor"))
        .args(args)
        // The defaults, whatever the calling environment says.
        .env_remove("TRICOLOR_GC")
        .env_remove("TRICOLOR_MEMLIMIT")
        .env_remove("TRICOLOR_DEBUG")
        .output()
        .expect("the tricolor binary runs")
}

/// Its standard output.
pub fn stdout(o: &Output) -> String {
    String::from_utf8(o.stdout.clone()).expect("UTF-8 stdout")
}

/// Its standard error.
pub fn stderr(o: &Output) -> String {
    String::from_utf8(o.stderr.clone()).expect("UTF-8 stderr")
}
