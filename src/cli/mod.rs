//! Command-line entry: one file per subcommand, each with its `Args` and `run`.
//!
//! This module owns exit codes: 0 success, 1 the command ran but found a problem it reports
//! (documented per subcommand), 2 an error (bad arguments, unreadable input). A closed stdout
//! (`halyard parse x.log | head`) is success.

mod check;
mod completions;
mod ctl;
mod demo;
mod listen;
mod output;
mod parse;
mod report;
mod run;
mod tail;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// The HAProxy log pipeline in one binary.
#[derive(Debug, Parser)]
#[command(
    name = "halyard",
    version,
    about = "The HAProxy log pipeline in one binary: a load balancer that reads haproxy.cfg and \
             logs like HAProxy, a syslog receiver writing rotating files, and the tools that read \
             and report HAProxy logs",
    after_help = "Examples:\n  halyard demo\n  halyard check -f haproxy.cfg && halyard run -f haproxy.cfg\n  \
                  halyard listen --udp 127.0.0.1:5514 --rotate-size 100M --compress\n  \
                  halyard report /var/log/haproxy.log /var/log/haproxy.log.1\n  \
                  halyard parse --format stats /var/log/haproxy.log",
    propagate_version = true
)]
pub(crate) struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    Check(check::Args),
    Completions(completions::CompletionsArgs),
    Ctl(ctl::Args),
    Demo(demo::Args),
    Listen(Box<listen::Args>),
    Man(completions::ManArgs),
    Parse(parse::Args),
    Report(Box<report::Args>),
    Run(run::Args),
    Tail(Box<tail::Args>),
}

/// Parses `args` as subcommand `name`'s flags alone, as the command line would: the flag
/// tests of every subcommand go through here.
#[cfg(test)]
fn parse_args<A: clap::Args>(name: &'static str, args: &[&str]) -> Result<A, clap::Error> {
    let command = A::augment_args(clap::Command::new(name));
    let matches =
        command.try_get_matches_from(std::iter::once(name).chain(args.iter().copied()))?;
    <A as clap::FromArgMatches>::from_arg_matches(&matches)
}

/// Runs the command line and maps the outcome to an exit code.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Check(args) => check::run(args),
        Command::Completions(args) => completions::completions(args),
        Command::Ctl(args) => ctl::run(args),
        Command::Demo(args) => demo::run(args),
        Command::Listen(args) => listen::run(*args),
        Command::Man(args) => completions::man(args),
        Command::Parse(args) => parse::run(args),
        Command::Report(args) => report::run(*args),
        Command::Run(args) => run::run(args),
        Command::Tail(args) => tail::run(*args),
    };
    match result {
        Ok(code) => code,
        Err(err) if output::is_broken_pipe(&err) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("halyard: {err:#}");
            ExitCode::from(2)
        }
    }
}
