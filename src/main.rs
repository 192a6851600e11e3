//! The `halyard` binary: parse arguments, run the subcommand, report errors once.

mod cli;

fn main() -> std::process::ExitCode {
    cli::main()
}
