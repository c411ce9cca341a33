use std::io::IsTerminal;
use std::process::ExitCode;

use clap::Parser;
use haul::cli::{Cli, ColorChoice};
use haul::render::{self, Style};

fn main() -> ExitCode {
    limit_malloc_arenas();
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

/// glibc's malloc gives threads up to 8 arenas per core and keeps what is freed in each: a
/// download at a 100 ms round trip (hundreds of objects in flight, bodies freed on other
/// threads than the ones that allocated them, 257 threads with the blocking pool) peaked at
/// 667 MiB; with one arena per core (the runtime has a worker per core) and hyper's read
/// buffers capped, 96-150 MiB (bench/results/latency-w7-memory-20261203.md). Set first,
/// before any thread starts.
fn limit_malloc_arenas() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        let cores = std::thread::available_parallelism().map_or(2, std::num::NonZero::get);
        // SAFETY: mallopt only changes a malloc setting; no other thread exists yet.
        unsafe {
            libc::mallopt(libc::M_ARENA_MAX, cores.clamp(2, 64) as libc::c_int);
        }
    }
}
