//! The `airgate` binary: a thin shell over [`airgate::cli`].

fn main() -> std::process::ExitCode {
    airgate::cli::main()
}
