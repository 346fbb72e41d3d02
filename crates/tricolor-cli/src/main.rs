//! The `tricolor` binary: see `tricolor --help`. All logic is in the library.

fn main() -> std::process::ExitCode {
    tricolor_cli::cli::main()
}
