//! `haul completions SHELL` and `haul man`: generated from the same clap definitions as
//! `--help`, so they cannot drift from it.

use crate::cli::Cli;
use crate::error::{Exit, HaulError};

pub(super) fn completions(shell: clap_complete::Shell) -> Result<Exit, HaulError> {
    let mut command = <Cli as clap::CommandFactory>::command();
    // Into a buffer first: clap_complete panics when its writer fails (a closed pipe).
    let mut script = Vec::new();
    clap_complete::generate(shell, &mut command, "haul", &mut script);
    super::print_all(&script)?;
    Ok(Exit::Success)
}

pub(super) fn man() -> Result<Exit, HaulError> {
    let page = clap_mangen::Man::new(<Cli as clap::CommandFactory>::command());
    let mut text = Vec::new();
    page.render(&mut text).expect("a man page renders into memory");
    super::print_all(&text)?;
    Ok(Exit::Success)
}
