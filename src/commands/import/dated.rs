//! `$(date +%F)` and its kin in an aws-cli line become the manifest's date templates
//! (`{date}`, `{date-1d:%Y%m%d}`): the dated paths of a crontab, kept.

/// The time zone a line's `date` commands read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Zone {
    /// The machine's (`date` without `-u`): `timezone: local`.
    Local,
    Utc,
    /// `TZ=Asia/Seoul date ...`.
    Named(String),
}

/// `line` with every `$(date ...)` and `` `date ...` `` replaced by a template, and the zone
/// they read (`None`: the line has none). `Err` when a `date` cannot be said as a template.
pub fn templates(line: &str) -> Result<(String, Option<Zone>), String> {
    let mut out = String::with_capacity(line.len());
    let mut zone: Option<Zone> = None;
    let mut rest = line;
    loop {
        let dollar = rest.find("$(");
        let tick = rest.find('`');
        let (start, open, close) = match (dollar, tick) {
            (Some(d), Some(t)) if t < d => (t, 1, '`'),
            (Some(d), _) => (d, 2, ')'),
            (None, Some(t)) => (t, 1, '`'),
            (None, None) => break,
        };
        let inner_start = start + open;
        let Some(length) = closing(&rest[inner_start..], close) else {
            return Err(format!("`{}` is not closed", &rest[start..]));
        };
        let inner = &rest[inner_start..inner_start + length];
        out.push_str(&rest[..start]);
        let (template, its_zone) = date_template(inner)?;
        match &zone {
            Some(seen) if *seen != its_zone => {
                return Err("its `date` commands read two time zones; a transfer reads its dates in one".into());
            }
            _ => zone = Some(its_zone),
        }
        out.push_str(&template);
        rest = &rest[inner_start + length + 1..];
    }
    out.push_str(rest);
    Ok((out, zone))
}

/// Where `close` ends a substitution in `text`, outside quotes.
fn closing(text: &str, close: char) -> Option<usize> {
    let mut quote: Option<char> = None;
    for (at, c) in text.char_indices() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), _) => {}
            (None, '\'' | '"') => quote = Some(c),
            (None, c) if c == close => return Some(at),
            _ => {}
        }
    }
    None
}

/// One `date [-u] [-d EXPR | -v±N UNIT] +FORMAT` as a template.
fn date_template(command: &str) -> Result<(String, Zone), String> {
    let shown = command.trim();
    // Cron takes `%` for a new line unless written `\%`.
    let unescaped = shown.replace("\\%", "%");
    let words = shlex::split(&unescaped).ok_or_else(|| format!("`{shown}`: unbalanced quotes"))?;
    let mut words = words.iter().map(String::as_str).peekable();
    let mut zone = Zone::Local;
    while let Some((name, value)) = words.peek().and_then(|word| word.split_once('=')) {
        if name != "TZ" {
            return Err(format!("`$({shown})`: only `TZ=` may stand before `date`"));
        }
        zone = if matches!(value, "UTC" | "UTC0" | "Etc/UTC" | "GMT" | "") {
            Zone::Utc
        } else {
            Zone::Named(value.into())
        };
        words.next();
    }
    if words.next() != Some("date") {
        return Err(format!("`$({shown})` is not a `date` command; haul cannot keep what it prints"));
    }
    let unsupported = || format!("`$({shown})`: haul's dates take `-d` offsets such as `yesterday` or `2 days ago`");
    let mut offset = String::new();
    let mut format = None;
    while let Some(word) = words.next() {
        match word {
            "-u" | "--utc" | "--universal" => zone = Zone::Utc,
            "-d" | "--date" => offset = date_offset(words.next().ok_or_else(unsupported)?).ok_or_else(unsupported)?,
            _ if word.starts_with("--date=") => {
                offset = date_offset(&word["--date=".len()..]).ok_or_else(unsupported)?;
            }
            _ if word.starts_with("-v") => offset = bsd_offset(&word[2..]).ok_or_else(unsupported)?,
            _ if word.starts_with("-d") => offset = date_offset(&word[2..]).ok_or_else(unsupported)?,
            _ if word.starts_with('+') => format = Some(&word[1..]),
            _ => return Err(format!("`$({shown})`: `{word}` has no haul equivalent")),
        }
    }
    let Some(format) = format else {
        return Err(format!("`$({shown})` has no `+FORMAT`: it prints spaces and a weekday, not a path"));
    };
    if format.contains('}') || format.is_empty() {
        return Err(format!("`$({shown})`: the format `+{format}` cannot be a template"));
    }
    let template = match format {
        "%F" | "%Y-%m-%d" => format!("{{date{offset}}}"),
        _ => format!("{{date{offset}:{format}}}"),
    };
    Ok((template, zone))
}

/// GNU `date -d`'s relative forms: `yesterday`, `tomorrow`, `now`, `N unit ago`, `-N unit`.
fn date_offset(text: &str) -> Option<String> {
    let text = text.trim().to_ascii_lowercase();
    match text.as_str() {
        "now" | "today" => return Some(String::new()),
        "yesterday" => return Some("-1d".into()),
        "tomorrow" => return Some("+1d".into()),
        _ => {}
    }
    let mut words: Vec<&str> = text.split_whitespace().collect();
    let ago = words.last() == Some(&"ago");
    if ago {
        words.pop();
    }
    let (count, unit) = match words.as_slice() {
        [count, unit] => (*count, *unit),
        // `-1day`
        [joined] => joined.split_at(joined.find(|c: char| c.is_ascii_alphabetic())?),
        _ => return None,
    };
    let count: i64 = count.parse().ok()?;
    let count = if ago { -count } else { count };
    let unit = match unit.trim_end_matches('s') {
        "min" | "minute" => "min",
        "hour" => "h",
        "day" => "d",
        "week" => "w",
        "month" => "mo",
        "year" => "y",
        _ => return None,
    };
    Some(format!("{}{}{unit}", if count < 0 { '-' } else { '+' }, count.abs()))
}

/// BSD (macOS) `date -v-1d`: a sign, a number and `y m w d H M`.
fn bsd_offset(text: &str) -> Option<String> {
    let (sign, rest) = text.split_at(1);
    if sign != "-" && sign != "+" {
        return None;
    }
    let (count, unit) = rest.split_at(rest.find(|c: char| !c.is_ascii_digit())?);
    let count: u64 = count.parse().ok()?;
    let unit = match unit {
        "y" => "y",
        "m" => "mo",
        "w" => "w",
        "d" => "d",
        "H" => "h",
        "M" => "min",
        _ => return None,
    };
    Some(format!("{sign}{count}{unit}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(line: &str) -> (String, Option<Zone>) {
        templates(line).unwrap()
    }

    #[test]
    fn date_commands_become_templates() {
        assert_eq!(
            one("aws s3 sync /data/$(date +%F)/ s3://b/daily/$(date +%F)/"),
            ("aws s3 sync /data/{date}/ s3://b/daily/{date}/".into(), Some(Zone::Local))
        );
        assert_eq!(one("x/$(date -d yesterday +%Y%m%d)/").0, "x/{date-1d:%Y%m%d}/");
        assert_eq!(one("x/$(date -u -d '2 days ago' +%Y/%m/%d)/"), ("x/{date-2d:%Y/%m/%d}/".into(), Some(Zone::Utc)));
        assert_eq!(one("x/$(date --date='1 hour ago' +%H)/").0, "x/{date-1h:%H}/");
        assert_eq!(one("x/$(date --date=-30min +%H%M)").0, "x/{date-30min:%H%M}");
        assert_eq!(one("x/`date -v-1d +%F`/").0, "x/{date-1d}/");
        assert_eq!(one("x/$(date -v-1m +%Y-%m)/").0, "x/{date-1mo:%Y-%m}/");
        // As a crontab writes it.
        assert_eq!(one(r"x/$(date +\%Y-\%m-\%d)/").0, "x/{date}/");
        assert_eq!(one("x/$(TZ=Asia/Seoul date +%F)").1, Some(Zone::Named("Asia/Seoul".into())));
        assert_eq!(one("aws s3 sync a s3://b/c/"), ("aws s3 sync a s3://b/c/".into(), None));
    }

    #[test]
    fn what_cannot_be_a_template_is_said() {
        for (line, why) in [
            ("x/$(date)/", "no `+FORMAT`"),
            ("x/$(date -d 'last monday' +%F)/", "offsets such as"),
            ("x/$(hostname)/", "not a `date` command"),
            ("x/$(date +%F", "not closed"),
            ("x/$(date +%F)/$(date -u +%F)", "two time zones"),
        ] {
            let err = templates(line).unwrap_err();
            assert!(err.contains(why), "{line}: {err}");
        }
    }
}
