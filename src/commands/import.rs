//! `haul import FILE|-`: `aws s3 sync` and `aws s3 cp --recursive` lines (a script, a crontab,
//! shell history) become a manifest, one transfer per line. What has no haul equivalent is
//! named, on stderr and as a comment above its transfer; nothing is dropped silently.

use std::io::{Read as _, Write as _};
use std::path::Path;

use super::draft::{self, Draft, Side};

mod dated;
use crate::cli::ImportArgs;
use crate::error::{Exit, HaulError};

pub(super) fn run(args: &ImportArgs) -> Result<Exit, HaulError> {
    let text = read_input(&args.input)?;
    let imported = import(&text);
    for (line, note) in &imported.notes {
        say!("line {line}: {}", crate::text::printable(note));
    }
    if imported.drafts.is_empty() {
        return Err(HaulError::SyncUsage {
            message: "no `aws s3 sync` or `aws s3 cp --recursive` command found".into(),
            help: "give a file (a script, a crontab) or `-` for stdin, with lines such as \
                   `aws s3 sync s3://bucket/prefix/ ./data --exclude '*' --include '*.csv'`"
                .into(),
        });
    }
    let header = [
        format!("Written by `haul import` from {}.", display_input(&args.input)),
        "Check it: haul validate FILE   preview: haul plan FILE   run it: haul apply FILE".to_string(),
    ];
    let manifest = draft::manifest(&header, &imported.drafts)?;
    // What was written must load: a translation haul cannot read back is a bug, said here.
    crate::manifest::load_source(
        crate::manifest::SourceFile { path: "(imported)".into(), text: manifest.clone().into() },
        Path::new("."),
        &crate::manifest::Moment::now(),
    )?;
    match &args.out {
        Some(path) => {
            std::fs::File::options()
                .write(true)
                .create_new(true)
                .open(path)
                .and_then(|mut file| file.write_all(manifest.as_bytes()))
                .map_err(|source| match source.kind() {
                    std::io::ErrorKind::AlreadyExists => HaulError::SyncUsage {
                        message: format!("`{}` already exists; haul import does not overwrite files", path.display()),
                        help: "choose another file name, or remove the file first".into(),
                    },
                    _ => HaulError::Write { path: path.clone(), source },
                })?;
            say!("wrote {} transfer(s) to {}", imported.drafts.len(), path.display());
        }
        None => {
            super::print_all(manifest.as_bytes())?;
        }
    }
    Ok(Exit::Success)
}

fn display_input(input: &Path) -> String {
    if input == Path::new("-") { "stdin".into() } else { format!("`{}`", input.display()) }
}

fn read_input(input: &Path) -> Result<String, HaulError> {
    let mut text = String::new();
    let read = if input == Path::new("-") {
        std::io::stdin().read_to_string(&mut text).map(|_| ())
    } else {
        std::fs::read_to_string(input).map(|read| text = read)
    };
    read.map_err(|source| {
        HaulError::Manifest(crate::manifest::ManifestError::Read { path: input.to_path_buf(), source })
    })?;
    Ok(text)
}

/// The transfers found, and what could not be carried over (by line number).
#[derive(Debug, Default)]
pub struct Imported {
    pub drafts: Vec<Draft>,
    pub notes: Vec<(usize, String)>,
}

/// The lines of a script with `\`-continued lines joined, each with the number of its first.
fn logical_lines(text: &str) -> Vec<(usize, String)> {
    let mut lines = Vec::new();
    let mut pending: Option<(usize, String)> = None;
    for (index, raw) in text.lines().enumerate() {
        let (number, mut line) = match pending.take() {
            Some((number, head)) => (number, head + raw),
            None => (index + 1, raw.to_string()),
        };
        // An odd number of trailing backslashes continues the line (`\\` is a backslash).
        let trailing = line.bytes().rev().take_while(|&b| b == b'\\').count();
        if trailing % 2 == 1 {
            line.pop();
            line.push(' ');
            pending = Some((number, line));
        } else {
            lines.push((number, line));
        }
    }
    lines.extend(pending);
    lines
}

/// Environment variables aws-cli reads that a transfer keeps: from `export` lines (for the
/// lines after them) and `VAR=value` before a command (for it alone).
#[derive(Debug, Clone, Default)]
struct Environment {
    profile: Option<String>,
    region: Option<String>,
    endpoint: Option<String>,
    ca_bundle: Option<String>,
    /// `AWS_REQUEST_CHECKSUM_CALCULATION=when_required`: how aws-cli users reach services that
    /// refuse checksum headers.
    checksum_off: bool,
}

impl Environment {
    /// Takes `NAME=value`; `Err` with a note for a variable haul does not carry over.
    fn set(&mut self, name: &str, value: &str) -> Result<(), String> {
        let value = Some(value.to_string()).filter(|value| !value.is_empty());
        match name {
            "AWS_PROFILE" | "AWS_DEFAULT_PROFILE" => self.profile = value,
            "AWS_REGION" | "AWS_DEFAULT_REGION" => self.region = value,
            "AWS_ENDPOINT_URL" | "AWS_ENDPOINT_URL_S3" => self.endpoint = value,
            "AWS_CA_BUNDLE" => self.ca_bundle = value,
            "AWS_REQUEST_CHECKSUM_CALCULATION" => {
                self.checksum_off = value.is_some_and(|value| value.eq_ignore_ascii_case("when_required"))
            }
            // Read by haul itself from the environment it runs in, as aws-cli reads them.
            "AWS_ACCESS_KEY_ID"
            | "AWS_SECRET_ACCESS_KEY"
            | "AWS_SESSION_TOKEN"
            | "AWS_CONFIG_FILE"
            | "AWS_SHARED_CREDENTIALS_FILE" => {
                return Err(format!(
                    "`{name}` is read from the environment haul runs in, as aws-cli reads it: set it there \
                     (a manifest keeps no secrets)"
                ));
            }
            // `date` reads it; a `date` template says which zone it uses.
            "TZ" => {}
            _ => return Err(format!("`{name}=…` has no haul equivalent: not carried over")),
        }
        Ok(())
    }
}

/// `NAME=value`, as the shell reads a word before a command.
fn assignment(word: &str) -> Option<(&str, &str)> {
    let (name, value) = word.split_once('=')?;
    let shell_name = !name.is_empty()
        && !name.starts_with(|c: char| c.is_ascii_digit())
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    shell_name.then_some((name, value))
}

/// Reads every line; each `aws s3 sync` or `aws s3 cp --recursive` becomes a transfer.
pub fn import(text: &str) -> Imported {
    let mut imported = Imported::default();
    let mut names = std::collections::HashSet::new();
    let mut exported = Environment::default();
    for (number, raw) in logical_lines(text) {
        let trimmed = raw.trim();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        // `export AWS_PROFILE=prod` (or `AWS_PROFILE=prod` alone) applies to the lines after it.
        if let Some(words) = shlex::split(trimmed)
            && let Some(first) = words.first()
            && (first == "export" || (words.len() == 1 && assignment(first).is_some()))
        {
            let assignments = if first == "export" { &words[1..] } else { &words[..] };
            for (name, value) in assignments.iter().filter_map(|word| assignment(word)) {
                if name.starts_with("AWS_")
                    && let Err(note) = exported.set(name, value)
                {
                    imported.notes.push((number, note));
                }
            }
            continue;
        }
        if !trimmed.contains("s3") {
            continue;
        }
        let (line, zone) = match dated::templates(trimmed) {
            Ok(templated) => templated,
            Err(why) => {
                imported.notes.push((number, format!("not imported: {why}")));
                continue;
            }
        };
        let Some(split) = shlex::split(&line) else {
            imported.notes.push((number, "unbalanced quotes: line skipped".into()));
            continue;
        };
        // `--delete; echo done`: the shell ends a command at `;` even without a space.
        let mut words = Vec::with_capacity(split.len());
        for word in split {
            match word.strip_suffix(';') {
                Some(head) if !head.is_empty() => words.extend([head.to_string(), ";".to_string()]),
                _ => words.push(word),
            }
        }
        // Each command of the line (`a && b; c | d`) on its own.
        for command in words.split(|word| matches!(word.as_str(), "&&" | "||" | ";" | "|")) {
            let Some(aws) = command.iter().position(|word| word == "aws" || word.ends_with("/aws")) else {
                continue;
            };
            // aws-cli's global options may stand before `s3` (`aws --profile p s3 sync ...`):
            // they are read with the command's own.
            let Some(s3) = command[aws..].iter().position(|word| word == "s3").map(|at| aws + at) else {
                continue;
            };
            let mut words: Vec<String> = command[s3 + 1..].to_vec();
            words.extend(command[aws + 1..s3].iter().cloned());
            // `AWS_PROFILE=prod aws s3 sync ...`: for this command, over what was exported.
            // Other words before `aws` (`sudo`, `timeout 3600`, a cron schedule) are not its.
            let mut environment = exported.clone();
            let mut environment_notes = Vec::new();
            for (name, value) in command[..aws].iter().filter_map(|word| assignment(word)) {
                if let Err(note) = environment.set(name, value) {
                    environment_notes.push(note);
                }
            }
            match translate(&words) {
                Ok(Some(mut draft)) => {
                    draft.notes.extend(environment_notes);
                    // The command line's own flags win, as in aws-cli.
                    draft.profile = draft.profile.or(environment.profile);
                    draft.region = draft.region.or(environment.region);
                    if draft.endpoint.is_none() && environment.endpoint.is_some() {
                        draft.endpoint = environment.endpoint;
                        draft.path_style = true;
                    }
                    if environment.checksum_off {
                        draft.settings.push(("checksum", "off".into()));
                        draft.remarks.push((
                            "checksum",
                            "for AWS_REQUEST_CHECKSUM_CALCULATION=when_required: no checksum headers, Content-MD5"
                                .into(),
                        ));
                    }
                    if let Some(bundle) = environment.ca_bundle
                        && !draft.settings.iter().any(|(key, _)| *key == "ca_bundle")
                    {
                        set_ca_bundle(&mut draft, &bundle);
                    }
                    match &zone {
                        Some(dated::Zone::Local) => {
                            draft.timezone = Some("local".into());
                            draft.remarks.push((
                                "timezone",
                                "`date` read the machine's time zone; write an IANA name (`Asia/Seoul`) to pin it"
                                    .into(),
                            ));
                        }
                        Some(dated::Zone::Named(name)) => draft.timezone = Some(name.clone()),
                        Some(dated::Zone::Utc) | None => {}
                    }
                    draft.name = unique_name(&draft, &mut names);
                    for note in &draft.notes {
                        imported.notes.push((number, format!("`{}`: {note}", draft.name)));
                    }
                    draft.notes.insert(0, format!("line {number}: {}", crate::text::printable(trimmed)));
                    imported.drafts.push(draft);
                }
                Ok(None) => {}
                Err(why) => imported.notes.push((number, format!("not imported: {why}"))),
            }
        }
    }
    imported
}

/// One `aws s3 ...` command after `s3`: `None` when it is not a sync or a recursive copy.
fn translate(words: &[String]) -> Result<Option<Draft>, String> {
    let Some(verb) = words.first() else { return Ok(None) };
    if verb != "sync" && verb != "cp" {
        return Ok(None);
    }
    let mut draft = Draft::default();
    let mut places = Vec::new();
    let mut filters: Vec<(bool, String)> = Vec::new();
    let mut recursive = verb == "sync";
    let mut exact_timestamps = false;
    let mut rest = words[1..].iter();
    while let Some(word) = rest.next() {
        // Shell redirections end the command.
        if word.starts_with('>') || word.starts_with("2>") || word.starts_with("1>") || word == "<" {
            break;
        }
        let (flag, inline) = match word.split_once('=') {
            Some((flag, value)) if flag.starts_with("--") => (flag, Some(value.to_string())),
            _ => (word.as_str(), None),
        };
        let mut value = |name: &str| -> Result<String, String> {
            inline.clone().or_else(|| rest.next().cloned()).ok_or_else(|| format!("`{name}` needs a value"))
        };
        match flag {
            "--recursive" | "-r" => recursive = true,
            "--exclude" => filters.push((false, value(flag)?)),
            "--include" => filters.push((true, value(flag)?)),
            "--delete" => {
                draft.delete = true;
                draft.max_delete = Some(1000);
                draft.remarks.push((
                    "max_delete",
                    "aws-cli has no cap; haul needs one: set the most objects one run may delete".into(),
                ));
            }
            "--request-payer" => {
                // `--request-payer` alone, or with its only value.
                if inline.is_none() && rest.as_slice().first().is_some_and(|next| next == "requester") {
                    rest.next();
                }
                draft.request_payer = true;
            }
            "--size-only" => draft.compare = Some("size".into()),
            "--exact-timestamps" => exact_timestamps = true,
            "--profile" => draft.profile = Some(value(flag)?),
            "--region" => draft.region = Some(value(flag)?),
            "--endpoint-url" => {
                draft.endpoint = Some(value(flag)?);
                draft.path_style = true;
                draft.remarks.push((
                    "path_style",
                    "most S3-compatible servers want it; remove it for virtual-host style".into(),
                ));
            }
            "--ca-bundle" => set_ca_bundle(&mut draft, &value(flag)?),
            "--no-verify-ssl" => draft.notes.push(
                "`--no-verify-ssl` is not carried over: haul always checks certificates; trust a private CA with \
                 `ca_bundle:` (its PEM file)"
                    .into(),
            ),
            "--storage-class" => draft.storage_class = Some(value(flag)?),
            "--acl" => {
                let acl = value(flag)?;
                if serde_json::from_value::<crate::manifest::CannedAcl>(serde_json::Value::String(acl.clone())).is_ok()
                {
                    draft.acl = Some(acl);
                } else {
                    draft.notes.push(format!("`--acl {acl}` is not a canned ACL haul knows: not carried over"));
                }
            }
            "--content-type" => draft.content_type = Some(value(flag)?),
            "--cache-control" => draft.cache_control = Some(value(flag)?),
            "--content-disposition" => draft.content_disposition = Some(value(flag)?),
            "--metadata" => {
                let text = value(flag)?;
                match metadata_pairs(&text) {
                    Some(pairs) => draft.metadata = pairs,
                    None => draft.notes.push(format!("`--metadata {text}` cannot be read: not carried over")),
                }
            }
            "--sse" => {
                // `--sse` alone means AES256; its values are AES256 and aws:kms.
                let given = inline.clone().or_else(|| {
                    rest.as_slice().first().filter(|next| matches!(next.as_str(), "AES256" | "aws:kms")).cloned()
                });
                if inline.is_none() && given.is_some() {
                    rest.next();
                }
                draft.sse = Some(given.unwrap_or_else(|| "AES256".into()));
            }
            "--sse-kms-key-id" => draft.sse_kms_key_id = Some(value(flag)?),
            "--follow-symlinks" => draft.follow_symlinks = Some(true),
            "--no-follow-symlinks" => draft.follow_symlinks = Some(false),
            "--quiet" | "--only-show-errors" | "--no-progress" => {
                draft.notes.push(format!("`{flag}`: run `haul apply FILE --quiet` for the same"))
            }
            "--dryrun" => draft.notes.push("`--dryrun`: preview with `haul plan FILE`".into()),
            other if other.starts_with('-') => {
                // A flag with a value takes the next word with it, unless that is a flag too.
                if inline.is_none() && rest.as_slice().first().is_some_and(|next| !next.starts_with('-')) {
                    let looks_like_place = rest.as_slice().first().is_some_and(|next| next.starts_with("s3://"));
                    if !looks_like_place && takes_value(other) {
                        rest.next();
                    }
                }
                draft.notes.push(format!("`{other}` has no haul equivalent: not carried over"));
            }
            place => places.push(place.to_string()),
        }
    }
    if !recursive {
        return Err(
            "`aws s3 cp` of a single object: haul transfers prefixes (add `--recursive`, or use `aws s3 cp`)".into()
        );
    }
    let [source, destination] = places.as_slice() else {
        return Err(format!("expected a source and a destination, found {}", places.len()));
    };
    draft.source = Some(Side::parse(source, None).map_err(|err| err.to_string())?);
    draft.destination = Some(Side::parse(destination, None).map_err(|err| err.to_string())?);
    if let (Some(Side::Folder(_)), Some(Side::Folder(_))) = (&draft.source, &draft.destination) {
        return Err("both sides are local folders".into());
    }
    for folder in [&draft.source, &draft.destination].into_iter().flatten() {
        if let Side::Folder(path) = folder
            && path.is_relative()
        {
            draft.notes.push(format!(
                "`{}` is relative: in a manifest it starts at the manifest's folder, not where the command ran",
                path.display()
            ));
        }
    }
    if exact_timestamps {
        exact_timestamps_rule(&mut draft);
    }
    filter_rules(&filters, &mut draft);
    Ok(Some(draft))
}

/// aws-cli's `--exact-timestamps` (S3 to local only): a same-size file is downloaded again
/// unless its time is the object's exactly, so a local file edited after its download is
/// replaced. haul's times compare "the object is newer", which leaves such a file alone; the
/// rule that replaces it is `compare: checksum` (by content, reading each same-size file).
fn exact_timestamps_rule(draft: &mut Draft) {
    let download = matches!((&draft.source, &draft.destination), (Some(Side::Bucket { .. }), Some(Side::Folder(_))));
    if !download {
        draft.notes.push("`--exact-timestamps` applies to S3-to-local syncs only (aws-cli ignores it here)".into());
    } else if draft.compare.is_some() {
        draft.notes.push(
            "`--exact-timestamps` with `--size-only`: sizes alone decide (`compare: size`); times are not compared"
                .into(),
        );
    } else {
        draft.compare = Some("checksum".into());
        draft.remarks.push((
            "compare",
            "from --exact-timestamps: a same-size local file that differs from the object is downloaded again \
             (by content: each same-size file is read)"
                .into(),
        ));
    }
}

/// aws-cli's `--metadata`: `key=value,key2=value2` (shorthand) or a JSON object.
fn metadata_pairs(text: &str) -> Option<Vec<(String, String)>> {
    if text.trim_start().starts_with('{') {
        let map: std::collections::BTreeMap<String, String> = serde_json::from_str(text).ok()?;
        return Some(map.into_iter().collect());
    }
    text.split(',')
        .map(|pair| pair.split_once('=').map(|(key, value)| (key.trim().to_string(), value.trim().to_string())))
        .collect()
}

/// aws-cli flags that take a value, so the value is not taken for a path.
/// `ca_bundle:` from `--ca-bundle` or AWS_CA_BUNDLE.
fn set_ca_bundle(draft: &mut Draft, bundle: &str) {
    draft.settings.push(("ca_bundle", draft::quoted(bundle)));
    if !std::path::Path::new(bundle).is_absolute() && !bundle.starts_with('~') && !bundle.starts_with('$') {
        draft
            .remarks
            .push(("ca_bundle", "a relative path is read from the manifest's folder, not the script's".into()));
    }
}

fn takes_value(flag: &str) -> bool {
    matches!(
        flag,
        "--acl"
            | "--grants"
            | "--cache-control"
            | "--content-disposition"
            | "--content-encoding"
            | "--content-language"
            | "--content-type"
            | "--expires"
            | "--metadata"
            | "--metadata-directive"
            | "--website-redirect"
            | "--sse-c"
            | "--sse-c-key"
            | "--sse-c-copy-source"
            | "--sse-c-copy-source-key"
            | "--source-region"
            | "--page-size"
            | "--ca-bundle"
            | "--cli-read-timeout"
            | "--cli-connect-timeout"
            | "--output"
            | "--checksum-algorithm"
            | "--checksum-mode"
    )
}

/// aws-cli's filters apply in order (the last that matches wins, everything is included to
/// start with); haul's exclude wins over any include. The usual shapes translate exactly:
/// `--exclude '*' --include '*.csv'` is `extensions: [csv]`, `--exclude 'tmp/*'` an exclude.
/// An include after another exclude (bringing back part of what was excluded) cannot be
/// said in haul: it is left out and named.
fn filter_rules(filters: &[(bool, String)], draft: &mut Draft) {
    let everything = |pattern: &str| pattern == "*" || pattern == "**";
    let mut excluded_all = false;
    let mut excluded_some = false;
    for (index, (include, pattern)) in filters.iter().enumerate() {
        let pattern_text = pattern.clone();
        match (include, excluded_all, excluded_some) {
            (false, _, _) if everything(pattern) && index == 0 => excluded_all = true,
            (false, _, _) if everything(pattern) => draft.notes.push(
                "`--exclude '*'` after other filters excludes everything before it; left out (it would leave \
                 nothing to move)"
                    .into(),
            ),
            (false, _, _) => {
                draft.exclude.push(haul_pattern(&pattern_text));
                excluded_some = true;
            }
            (true, true, false) => match bare_extension(pattern) {
                Some(extension) => draft.extensions.push(extension),
                None => draft.include.push(haul_pattern(&pattern_text)),
            },
            (true, false, false) => draft.notes.push(format!(
                "`--include '{pattern}'` before any exclude changes nothing in aws-cli (everything is included to \
                 start with); left out"
            )),
            (true, _, true) => draft.notes.push(format!(
                "`--include '{pattern}'` after an exclude brings files back in aws-cli; haul's excludes always win, \
                 so it is left out: check the `exclude` list"
            )),
        }
    }
    if excluded_all && draft.extensions.is_empty() && draft.include.is_empty() {
        draft.notes.push("`--exclude '*'` with nothing included moves nothing; left out".into());
    }
}

/// `*.csv` -> `csv`.
fn bare_extension(pattern: &str) -> Option<String> {
    let extension = pattern.strip_prefix("*.")?;
    let plain = !extension.is_empty() && extension.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    plain.then(|| extension.to_string())
}

/// aws-cli's `*` crosses folders; haul's does not where a pattern has a `/`: `tmp/*` becomes
/// `tmp/**`, `data/*.csv` becomes `data/**/*.csv`. Without a `/` a pattern matches the name at
/// any depth in both.
fn haul_pattern(pattern: &str) -> String {
    let Some((head, last)) = pattern.rsplit_once('/') else { return pattern.to_string() };
    if !pattern.contains('*') {
        return pattern.to_string();
    }
    let head = head.replace("/*/", "/**/");
    match last {
        "*" => format!("{head}/**"),
        _ if last.contains('*') && !head.ends_with("**") => format!("{head}/**/{last}"),
        _ => format!("{head}/{last}"),
    }
}

/// `daily/{date-1d:%Y/%m/%d}/` without its dates: `daily//`.
fn without_templates(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find("{date").or_else(|| rest.find("{hour")) {
        let Some(end) = rest[start..].find('}') else { break };
        out.push_str(&rest[..start]);
        rest = &rest[start + end + 1..];
    }
    out.push_str(rest);
    out
}

/// A transfer name from its bucket and prefix: `analytics-exports-reports`, made unique.
fn unique_name(draft: &Draft, taken: &mut std::collections::HashSet<String>) -> String {
    let remote = [&draft.source, &draft.destination].into_iter().flatten().find_map(|side| match side {
        Side::Bucket { bucket, prefix } => Some(format!("{bucket}-{prefix}")),
        Side::Folder(_) => None,
    });
    let mut base: String = without_templates(&remote.unwrap_or_else(|| "transfer".into()))
        .chars()
        .map(|c| if c.is_alphanumeric() || c == '-' || c == '_' { c } else { '-' })
        .fold(String::new(), |mut name, c| {
            // `daily/{date}/` gives `daily-date`, not `daily--date--`.
            if !(c == '-' && name.ends_with('-')) {
                name.push(c);
            }
            name
        });
    while base.ends_with('-') {
        base.pop();
    }
    let mut name = base.clone();
    let mut n = 2;
    while !taken.insert(name.clone()) {
        name = format!("{base}-{n}");
        n += 1;
    }
    name
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(line: &str) -> Draft {
        let imported = import(line);
        assert_eq!(imported.drafts.len(), 1, "{line}: {:?}", imported.notes);
        imported.drafts.into_iter().next().unwrap()
    }

    #[test]
    fn patterns_keep_their_meaning() {
        assert_eq!(haul_pattern("*.csv"), "*.csv");
        assert_eq!(haul_pattern("tmp/*"), "tmp/**");
        assert_eq!(haul_pattern("data/*.csv"), "data/**/*.csv");
        assert_eq!(haul_pattern("a/*/b/*"), "a/**/b/**");
        assert_eq!(haul_pattern("logs/app.log"), "logs/app.log");
        assert_eq!(bare_extension("*.parquet").as_deref(), Some("parquet"));
        assert_eq!(bare_extension("*.tar.gz"), None);
    }

    #[test]
    fn filters_in_order_become_haul_rules_or_are_named() {
        let draft = one("aws s3 sync s3://b/p/ d --exclude '*.tmp' --include 'keep.tmp'");
        assert_eq!(draft.exclude, ["*.tmp"]);
        assert!(draft.notes.iter().any(|n| n.contains("brings files back")), "{:?}", draft.notes);
        let draft = one("aws s3 sync s3://b/p/ d --include '*.csv' --exclude 'tmp/*'");
        assert_eq!((draft.include.len(), draft.exclude.as_slice()), (0, &["tmp/**".to_string()][..]));
        assert!(draft.notes.iter().any(|n| n.contains("changes nothing")));
        let draft = one("aws s3 sync s3://b/p/ d --exclude '*' --include 'reports/*.csv' --exclude 'reports/old/*'");
        assert_eq!(draft.include, ["reports/**/*.csv"]);
        assert_eq!(draft.exclude, ["reports/old/**"]);
    }

    #[test]
    fn a_ca_bundle_and_checksum_calculation_are_kept_and_no_verify_ssl_is_named() {
        let bundle = |draft: &Draft| draft.settings.iter().find(|(key, _)| *key == "ca_bundle").map(|(_, v)| v.clone());
        let draft = one("AWS_CA_BUNDLE=/etc/pki/env.pem aws s3 sync s3://b/p/ /d");
        assert_eq!(bundle(&draft).as_deref(), Some("\"/etc/pki/env.pem\""));
        let draft =
            one("AWS_CA_BUNDLE=/etc/pki/env.pem aws s3 sync s3://b/p/ /d --ca-bundle certs/ca.pem --no-verify-ssl");
        assert_eq!(bundle(&draft).as_deref(), Some("\"certs/ca.pem\""));
        assert!(draft.remarks.iter().any(|(key, remark)| *key == "ca_bundle" && remark.contains("manifest's folder")));
        assert!(
            draft.notes.iter().any(|note| note.contains("`--no-verify-ssl` is not carried over")),
            "{:?}",
            draft.notes
        );
    }
}
