//! `halyard completions` and `halyard man`: shell completions and manual pages, generated
//! from the same clap definitions as the command line itself, so they cannot drift from it.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::CommandFactory;
use clap_complete::Shell;

use super::Cli;

/// Print a shell completion script.
#[derive(Debug, clap::Args)]
#[command(after_help = "\
Examples:
  halyard completions bash > /etc/bash_completion.d/halyard
  halyard completions zsh > \"${fpath[1]}/_halyard\"
  halyard completions fish > ~/.config/fish/completions/halyard.fish")]
pub struct CompletionsArgs {
    /// The shell.
    #[arg(value_enum)]
    shell: Shell,
}

/// Writes the completion script for `args.shell` to stdout.
pub fn completions(args: CompletionsArgs) -> Result<ExitCode> {
    let mut command = Cli::command();
    command.set_bin_name("halyard");
    command.build();
    let mut out = std::io::stdout().lock();
    // `try_generate`, not `generate`: a closed pipe is an error to report, not a panic.
    clap_complete::Generator::try_generate(&args.shell, &command, &mut out)?;
    out.flush()?;
    Ok(ExitCode::SUCCESS)
}

/// Write manual pages (roff): halyard(1) and one per subcommand.
#[derive(Debug, clap::Args)]
#[command(after_help = "\
Examples:
  halyard man --dir /usr/local/share/man/man1 && man halyard-report
  halyard man | man -l -")]
pub struct ManArgs {
    /// Write halyard.1 and halyard-SUBCOMMAND.1 into this directory instead of printing
    /// halyard.1 to stdout.
    #[arg(long, value_name = "DIR")]
    dir: Option<PathBuf>,
}

/// Prints halyard(1), or writes every page into `args.dir`.
pub fn man(args: ManArgs) -> Result<ExitCode> {
    let command = Cli::command();
    let Some(dir) = args.dir else {
        let mut out = std::io::stdout().lock();
        clap_mangen::Man::new(command).render(&mut out)?;
        out.flush()?;
        return Ok(ExitCode::SUCCESS);
    };
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let mut pages = vec![("halyard".to_owned(), command.clone())];
    for sub in command.get_subcommands() {
        let name = format!("halyard-{}", sub.get_name());
        pages.push((
            name.clone(),
            sub.clone().display_name(name.clone()).bin_name(name),
        ));
    }
    for (name, page) in pages {
        let path = dir.join(format!("{name}.1"));
        let mut text = Vec::new();
        clap_mangen::Man::new(page)
            .title(name.clone())
            .render(&mut text)?;
        std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))?;
        eprintln!("halyard man: wrote {}", path.display());
    }
    Ok(ExitCode::SUCCESS)
}
