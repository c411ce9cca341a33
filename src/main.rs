use std::io::IsTerminal;
use std::process::ExitCode;

use clap::Parser;
use haul::cli::{Cli, ColorChoice};
use haul::render::{self, Style};

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(err) => {
            let _ = err.print();
            // --help and --version are successes; every other parse failure is a usage error.
            return ExitCode::from(if err.use_stderr() { haul::Exit::Invalid.code() } else { 0 });
        }
    };
    let color = match cli.color {
        ColorChoice::Always => true,
        ColorChoice::Never => false,
        ColorChoice::Auto => std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none(),
    };
    let style = Style { color };
    match haul::run(cli, style) {
        Ok(exit) => ExitCode::from(exit.code()),
        // `haul ls | head`: the reader has what it wanted.
        Err(err) if err.is_closed_output() => ExitCode::SUCCESS,
        Err(err) => {
            // Nothing to do if stderr itself is gone.
            let _ = std::io::Write::write_all(&mut std::io::stderr(), render::error(&err, style).as_bytes());
            ExitCode::from(err.exit().code())
        }
    }
}
