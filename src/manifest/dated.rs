//! Dates in paths: `{date}`, `{date-1d}`, `{date:%Y/%m/%d}`, `{hour-1h:%H}` in `prefix`,
//! `local` and `to.prefix`, expanded once per run at one moment (now, or `--at`), in UTC
//! unless the transfer sets a `timezone`.
//!
//! A placeholder is `{NAME[±N UNIT][:FORMAT]}`: NAME is `date` (formatted `%Y-%m-%d` unless
//! FORMAT says otherwise) or `hour` (`%H`); UNIT is `min`, `h`, `d`, `w`, `mo` or `y`, counted
//! in the time zone's calendar (a day back across a DST change is the same wall time the day
//! before); FORMAT is strftime's (jiff's `strtime`). Any other `{` is text, as it always was
//! in keys, so manifests written before templates existed mean what they meant.

use jiff::civil::DateTime;
use jiff::tz::TimeZone;
use jiff::{Span, Timestamp, Zoned};

/// The moment a run expands its templates at: now, or `--at`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Moment {
    /// An instant (now, or `--at` with `Z` or an offset).
    Instant(Timestamp),
    /// A wall time without a zone (`--at 2026-11-30`, `--at 2026-11-30T02:00`): read in each
    /// transfer's time zone, so a backfill of "the 30th" is the 30th wherever the data lives.
    Civil(DateTime),
}

impl Moment {
    pub fn now() -> Moment {
        Moment::Instant(Timestamp::now())
    }

    /// Reads `--at` (and a saved plan's `at`): `2026-11-30T02:00Z`, `2026-11-30T02:00:00+09:00`,
    /// `2026-11-30T02:00` or `2026-11-30`.
    pub fn parse(text: &str) -> Result<Moment, String> {
        let text = text.trim();
        if let Ok(instant) = text.parse::<Timestamp>() {
            return Ok(Moment::Instant(instant));
        }
        if let Ok(civil) = text.parse::<DateTime>() {
            return Ok(Moment::Civil(civil));
        }
        Err(format!(
            "`{text}` is not a time; write it like `2026-11-30T02:00Z` (UTC), `2026-11-30T02:00+09:00`, \
             or `2026-11-30` (midnight in each transfer's timezone)"
        ))
    }

    /// The moment in `zone`.
    pub fn in_zone(&self, zone: &TimeZone) -> Result<Zoned, String> {
        match self {
            Moment::Instant(instant) => Ok(instant.to_zoned(zone.clone())),
            Moment::Civil(civil) => civil.to_zoned(zone.clone()).map_err(|err| err.to_string()),
        }
    }
}

impl std::fmt::Display for Moment {
    /// As [`Moment::parse`] reads it back.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Moment::Instant(instant) => write!(f, "{instant}"),
            Moment::Civil(civil) => write!(f, "{civil}"),
        }
    }
}

/// When a transfer stops starting objects: `deadline` (a wall time: its next occurrence
/// after the run starts, in the transfer's time zone) and `max_duration` (from the run's
/// start), whichever comes first.
#[derive(Debug, Clone, PartialEq)]
pub struct Deadline {
    pub wall: Option<(jiff::civil::Time, TimeZone)>,
    pub max_duration: Option<std::time::Duration>,
}

impl Deadline {
    /// The instant, for a run that started at `started`.
    pub fn instant(&self, started: std::time::SystemTime) -> std::time::SystemTime {
        let mut until = self.max_duration.map(|duration| started + duration);
        if let Some((time, zone)) = &self.wall
            && let Ok(start) = Timestamp::try_from(started)
        {
            let start = start.to_zoned(zone.clone());
            let next = |date: jiff::civil::Date| date.to_datetime(*time).to_zoned(zone.clone()).ok();
            let today = next(start.date()).filter(|today| today.timestamp() > start.timestamp());
            let next = today.or_else(|| start.date().tomorrow().ok().and_then(next));
            if let Some(next) = next.map(|next| std::time::SystemTime::from(next.timestamp())) {
                until = Some(until.map_or(next, |until| until.min(next)));
            }
        }
        // Neither set is not a `Deadline`; an unreadable one stops at once, never never.
        until.unwrap_or(started)
    }
}

/// `deadline:`'s `HH:MM` (or `HH:MM:SS`).
pub fn wall_time(text: &str) -> Result<jiff::civil::Time, String> {
    text.trim()
        .parse::<jiff::civil::Time>()
        .map_err(|_| format!("`{text}` is not a time of day; write it like `06:00` or `23:30`"))
}

/// A `timezone:` value: an IANA name (`Asia/Seoul`), `UTC`, or `local` (the machine's).
pub fn time_zone(name: &str) -> Result<TimeZone, String> {
    match name.trim() {
        "local" => Ok(TimeZone::system()),
        name => TimeZone::get(name).map_err(|_| {
            format!("`{name}` is not a time zone; write an IANA name such as `UTC`, `Europe/Berlin` or `Asia/Seoul`, or `local`")
        }),
    }
}

/// What is wrong with a template, for `validate` to show at its value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TemplateError {
    pub message: String,
    pub help: String,
}

const NAMES: [(&str, &str); 2] = [("date", "%Y-%m-%d"), ("hour", "%H")];

/// Whether `text` holds a placeholder (or something that starts like one).
pub fn has_placeholders(text: &str) -> bool {
    placeholder_starts(text).next().is_some()
}

/// Byte offsets of `{date` / `{hour` followed by `}`, `+`, `-` or `:`.
fn placeholder_starts(text: &str) -> impl Iterator<Item = (usize, &'static str, &'static str)> + '_ {
    text.match_indices('{').filter_map(move |(at, _)| {
        let rest = &text[at + 1..];
        NAMES.iter().find_map(|&(name, format)| {
            let after = rest.strip_prefix(name)?;
            matches!(after.chars().next(), Some('}' | '+' | '-' | ':')).then_some((at, name, format))
        })
    })
}

/// `text` with every placeholder replaced by `at` (shifted and formatted as it says).
pub fn expand(text: &str, at: &Zoned) -> Result<String, TemplateError> {
    let mut out = String::with_capacity(text.len());
    let mut copied = 0;
    for (start, name, default_format) in placeholder_starts(text) {
        if start < copied {
            continue;
        }
        out.push_str(&text[copied..start]);
        let body_start = start + 1 + name.len();
        let Some(length) = text[body_start..].find('}') else {
            return Err(TemplateError {
                message: format!("`{}` has no closing `}}`", &text[start..]),
                help: format!("close it: `{{{name}}}`, `{{{name}-1d}}` or `{{{name}:%Y/%m/%d}}`"),
            });
        };
        let placeholder = &text[start..body_start + length + 1];
        let body = &text[body_start..body_start + length];
        let (shift, format) = match body.split_once(':') {
            Some((shift, format)) => (shift, format),
            None => (body, default_format),
        };
        let shifted = shifted(at, shift).map_err(|why| TemplateError {
            message: format!("`{placeholder}`: {why}"),
            help: format!("write an offset such as `{{{name}-1d}}`, `{{{name}-6h}}` or `{{{name}+30min}}`"),
        })?;
        if format.is_empty() {
            return Err(TemplateError {
                message: format!("`{placeholder}` has an empty format"),
                help: format!("write a format after `:`, such as `{{{name}:%Y/%m/%d}}`, or leave `:` out"),
            });
        }
        let formatted = jiff::fmt::strtime::format(format, &shifted).map_err(|err| TemplateError {
            message: format!("`{placeholder}`: the format cannot be used: {err}"),
            help:
                "use strftime's conversions, such as `%Y`, `%m`, `%d`, `%H`, `%j` (day of the year) or `%V` (ISO week)"
                    .into(),
        })?;
        out.push_str(&formatted);
        copied = start + placeholder.len();
    }
    out.push_str(&text[copied..]);
    Ok(out)
}

/// `at` moved by an offset such as `-1d`, `+6h`, `-2mo` (empty: not moved).
fn shifted(at: &Zoned, offset: &str) -> Result<Zoned, String> {
    if offset.is_empty() {
        return Ok(at.clone());
    }
    let (sign, rest) = match offset.as_bytes()[0] {
        b'-' => (-1, &offset[1..]),
        b'+' => (1, &offset[1..]),
        _ => return Err(format!("expected `+` or `-` and an offset after the name, found `{offset}`")),
    };
    let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
    let (count, unit) = rest.split_at(digits);
    let count: i64 = count.parse().map_err(|_| format!("expected a number after `{}`", &offset[..1]))?;
    if count > 100_000 {
        return Err(format!("`{offset}` is too far"));
    }
    let count = sign * count;
    let span = match unit {
        "min" => Span::new().try_minutes(count),
        "h" => Span::new().try_hours(count),
        "d" => Span::new().try_days(count),
        "w" => Span::new().try_weeks(count),
        "mo" => Span::new().try_months(count),
        "y" => Span::new().try_years(count),
        "m" => return Err("`m` could be minutes or months: write `min` or `mo`".into()),
        other => return Err(format!("unknown unit `{other}`: use `min`, `h`, `d`, `w`, `mo` or `y`")),
    }
    .map_err(|err| err.to_string())?;
    at.checked_add(span).map_err(|err| err.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str, zone: &str) -> Zoned {
        Moment::parse(text).unwrap().in_zone(&time_zone(zone).unwrap()).unwrap()
    }

    fn expanded(text: &str) -> String {
        expand(text, &at("2026-03-01T01:30Z", "UTC")).unwrap()
    }

    #[test]
    fn placeholders_expand_with_offsets_and_formats() {
        assert_eq!(expanded("daily/{date}/"), "daily/2026-03-01/");
        assert_eq!(expanded("daily/{date-1d}/"), "daily/2026-02-28/");
        assert_eq!(expanded("{date-1d:%Y/%m/%d}/part"), "2026/02/28/part");
        assert_eq!(expanded("h={hour-1h:%H}/{hour}"), "h=00/01");
        assert_eq!(expanded("{hour-2h:%Y%m%d-%H}"), "20260228-23");
        assert_eq!(expanded("{date-1mo:%Y-%m}"), "2026-02");
        assert_eq!(expanded("{date+1w}"), "2026-03-08");
        assert_eq!(expanded("{date-30min:%H%M}"), "0100");
        assert_eq!(expanded("{date-1y:%Y}"), "2025");
    }

    #[test]
    fn other_braces_are_text() {
        assert_eq!(expanded("a{b}/{data}/{dates}/{{x}}/"), "a{b}/{data}/{dates}/{{x}}/");
        assert!(!has_placeholders("a{b}/{data}/{dates}"));
        assert!(has_placeholders("x/{date}"));
        assert!(has_placeholders("x/{hour-1h"));
        // A placeholder inside braces: the outer ones stay.
        assert_eq!(expanded("{{date}}"), "{2026-03-01}");
    }

    #[test]
    fn the_time_zone_decides_the_day() {
        let seoul = at("2026-03-01T20:00Z", "Asia/Seoul");
        assert_eq!(expand("{date}", &seoul).unwrap(), "2026-03-02");
        let new_york = at("2026-03-01T02:00Z", "America/New_York");
        assert_eq!(expand("{date}", &new_york).unwrap(), "2026-02-28");
        // A wall time without a zone is that wall time in each zone.
        assert_eq!(expand("{date}", &at("2026-11-30", "Asia/Seoul")).unwrap(), "2026-11-30");
        assert_eq!(expand("{date}", &at("2026-11-30", "America/New_York")).unwrap(), "2026-11-30");
        assert_eq!(expand("{hour}", &at("2026-11-30T02:00", "Asia/Seoul")).unwrap(), "02");
    }

    #[test]
    fn a_day_back_across_a_dst_change_is_the_same_wall_time() {
        // Berlin moves to summer time on 2026-03-29: 24 hours before 03-29 12:00 is 03-28 11:00.
        let berlin = at("2026-03-29T12:00", "Europe/Berlin");
        assert_eq!(expand("{hour-1d:%d %H}", &berlin).unwrap(), "28 12");
        assert_eq!(expand("{hour-24h:%d %H}", &berlin).unwrap(), "28 11");
    }

    #[test]
    fn bad_templates_say_what_and_how() {
        let zoned = at("2026-03-01T01:30Z", "UTC");
        let error = |text: &str| expand(text, &zoned).unwrap_err();
        assert!(error("x/{date-1d").message.contains("no closing"));
        assert!(error("{date-1m}").message.contains("`min` or `mo`"));
        assert!(error("{date-1x}").message.contains("unknown unit `x`"));
        assert!(error("{date-d}").message.contains("expected a number"));
        assert!(error("{date:}").message.contains("empty format"));
        assert!(error("{date:%Y%}").message.contains("format cannot be used"));
        assert!(error("{date-999999d}").message.contains("too far"));
    }

    #[test]
    fn a_deadline_is_the_next_wall_time_or_the_duration_whichever_comes_first() {
        let started = |text: &str| std::time::SystemTime::from(text.parse::<Timestamp>().unwrap());
        let at = |time: std::time::SystemTime| Timestamp::try_from(time).unwrap().to_string();
        let six = Deadline { wall: Some((wall_time("06:00").unwrap(), TimeZone::UTC)), max_duration: None };
        assert_eq!(at(six.instant(started("2026-11-30T02:00:00Z"))), "2026-11-30T06:00:00Z");
        // Started after 06:00: the next one.
        assert_eq!(at(six.instant(started("2026-11-30T07:00:00Z"))), "2026-12-01T06:00:00Z");
        let seoul = Deadline {
            wall: Some((wall_time("06:00").unwrap(), time_zone("Asia/Seoul").unwrap())),
            max_duration: None,
        };
        assert_eq!(at(seoul.instant(started("2026-11-30T17:00:00Z"))), "2026-11-30T21:00:00Z");
        let both = Deadline { max_duration: Some(std::time::Duration::from_secs(3600)), ..six.clone() };
        assert_eq!(at(both.instant(started("2026-11-30T02:00:00Z"))), "2026-11-30T03:00:00Z");
        assert_eq!(at(both.instant(started("2026-11-30T05:30:00Z"))), "2026-11-30T06:00:00Z");
        assert!(wall_time("6am").unwrap_err().contains("time of day"));
    }

    #[test]
    fn moments_read_back_as_written() {
        for text in ["2026-11-30T02:00:00Z", "2026-11-30T02:00:00"] {
            let moment = Moment::parse(text).unwrap();
            assert_eq!(Moment::parse(&moment.to_string()).unwrap(), moment);
        }
        assert_eq!(Moment::parse("2026-11-30T02:00Z").unwrap().to_string(), "2026-11-30T02:00:00Z");
        assert_eq!(Moment::parse("2026-11-30T11:00+09:00").unwrap(), Moment::parse("2026-11-30T02:00Z").unwrap());
        assert!(matches!(Moment::parse("2026-11-30").unwrap(), Moment::Civil(_)));
        assert!(Moment::parse("yesterday").unwrap_err().contains("not a time"));
        assert!(time_zone("Mars/Olympus").unwrap_err().contains("not a time zone"));
    }
}
