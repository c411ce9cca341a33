//! One module per subcommand: each takes its parsed arguments, runs the stages it needs and
//! prints its result. What several commands share (loading a manifest with its warnings,
//! `--only`, `--shard`, SDK clients, the runtime) is here.

/// `eprint!` / `eprintln!` that never panic: a message stderr cannot take (stderr on a full
/// disk) has nowhere else to go, so it is dropped (the exit code still tells).
macro_rules! say {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stderr(), $($arg)*);
    }};
}

/// Text that ends its own lines (rendered errors and problems), to stderr as `say!` does.
fn say_text(text: &str) {
    use std::io::Write as _;
    let _ = std::io::stderr().write_all(text.as_bytes());
}

mod apply;
mod check;
mod draft;
mod generate;
mod import;
mod init;
mod ls;
mod plan;
mod schema;
mod sync;
mod validate;
mod whoami;

use std::path::Path;

use crate::cli::{Cli, Command, ShardArgs, TargetArgs};
use crate::error::{Exit, HaulError};
use crate::manifest::{self, S3Target};
use crate::render::{self, Style};
use crate::shard::Shard;

pub fn run(cli: Cli, style: Style) -> Result<Exit, HaulError> {
    match cli.command {
        Command::Validate(args) => validate::run(&args, style),
        Command::Plan(args) => plan::run(&args, style),
        Command::Apply(args) => apply::run(args, style),
        Command::Sync(args) => sync::run(&args, style),
        Command::Import(args) => import::run(&args),
        Command::Whoami(args) => whoami::run(&args, style),
        Command::Ls(args) => ls::run(&args),
        Command::Check(args) => check::run(&args, style),
        Command::Schema => schema::run(),
        Command::Init(args) => init::run(&args.path),
        Command::Completions(args) => generate::completions(args.shell),
        Command::Man => generate::man(),
    }
}

/// The shard of `--shard I/N` or `--shard auto` (from the batch engine's environment).
fn resolve_shard(args: &ShardArgs) -> Result<Option<Shard>, HaulError> {
    let shard = match args.shard.as_deref() {
        None => return Ok(None),
        Some("auto") => Shard::from_environment(|name| std::env::var(name).ok(), args.shard_count)?,
        Some(text) => {
            if let Some(count) = args.shard_count {
                return Err(crate::shard::ShardError::CountWithoutAuto { count }.into());
            }
            Shard::parse(text)?
        }
    };
    tracing::info!(%shard, "running one shard");
    Ok(Some(shard))
}

/// The target of a command that takes flags instead of a manifest.
fn flag_target(args: &TargetArgs, request_payer: bool) -> S3Target {
    S3Target {
        profile: args.profile.clone(),
        region: args.region.clone(),
        endpoint: args.endpoint.clone(),
        path_style: args.path_style,
        request_payer,
        retries: 3,
        ca_bundle: args.ca_bundle.clone(),
        checksum: Default::default(),
    }
}

/// Loads a manifest for a command that goes on to use it; its warnings go to stderr.
fn load_with_warnings(path: &Path, at: &manifest::Moment, style: Style) -> Result<manifest::Manifest, HaulError> {
    let loaded = manifest::load_manifest(path, at)?;
    print_warnings(&loaded, style);
    Ok(loaded)
}

fn print_warnings(loaded: &manifest::Manifest, style: Style) {
    if !loaded.warnings.is_empty() {
        say_text(&render::problems(&loaded.source, &loaded.warnings, style));
    }
}

/// Prints a whole output on standard output and flushes it. A closed pipe or a full disk is
/// an error here, and `HaulError::is_closed_output` tells the two apart.
fn print_all(text: &[u8]) -> Result<(), HaulError> {
    use std::io::Write as _;
    let mut stdout = std::io::stdout().lock();
    stdout.write_all(text).and_then(|()| stdout.flush()).map_err(HaulError::output)
}
