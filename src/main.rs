//! The `tether` binary: everything is in the library.

fn main() -> std::process::ExitCode {
    tether::cli::main()
}
