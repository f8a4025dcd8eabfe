//! The last successful backup of a VM as the backup products record it: a custom attribute
//! (`NB_LAST_BACKUP`, `Last Backup`, `Rubrik_Latest_Backup`) or a line of the VM's notes
//! (`Veeam Backup: Job name: [...], Time: [...]`). Each configured source says where to look,
//! which values are its own, where the time is and in which formats; times are parsed with
//! jiff. A value a source claims and cannot parse is a parse error, never a silent gap.
//!
//! Values are offered to the sources in configuration order: an attribute's value goes to the
//! first source of that attribute whose `match` matches it (no `match`: any value), each notes
//! line to the first notes source whose `match` (else its `regex`) matches it. Sources may share
//! a name (Veeam writes both its notes and an attribute); a name is one series.

use jiff::fmt::strtime;
use jiff::tz::TimeZone;
use jiff::{Timestamp, ZonedDateTime};
use regex::Regex;

/// Where a source looks.
#[derive(Debug, Clone)]
pub enum Origin {
    /// The value of the custom attribute of this name (`customValue` by field name).
    Attribute(String),
    /// Each line of the notes (`config.annotation`).
    Annotation,
}

/// The time a strftime format is checked on: a whole minute, so formats without seconds pass.
const SAMPLE_SECONDS: i64 = 1_794_999_960;

/// How a time is written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TimeFormat {
    /// RFC 3339 / ISO 8601 with an offset or `Z`: `2026-11-21T03:10:44.000Z`.
    Rfc3339,
    /// Seconds since the Unix epoch.
    Unix,
    /// A strftime-style format (jiff's `strtime`): `%m/%d/%Y %I:%M:%S %p`. Without an offset in
    /// the format, the time is read in the sources' time zone.
    Strftime(String),
}

impl TimeFormat {
    /// `rfc3339`, `unix`, or a strftime format, checked to yield a point in time: it must
    /// format a sample time and parse its own output back to the same second.
    pub fn parse(text: &str) -> Result<TimeFormat, String> {
        match text {
            "rfc3339" => return Ok(TimeFormat::Rfc3339),
            "unix" => return Ok(TimeFormat::Unix),
            "" => return Err("empty time format".to_owned()),
            _ => {}
        }
        let format = TimeFormat::Strftime(text.to_owned());
        let sample: ZonedDateTime = Timestamp::new(SAMPLE_SECONDS, 0)
            .map_err(|e| e.to_string())?
            .to_zoned_datetime(TimeZone::UTC);
        let written = strtime::format(text, &sample)
            .map_err(|e| format!("invalid time format {text:?}: {e}"))?;
        match format.read(&written, &TimeZone::UTC) {
            Some(back) if back == SAMPLE_SECONDS as f64 => Ok(format),
            _ => Err(format!(
                "time format {text:?} does not name a point in time (it needs a date and a time of day)"
            )),
        }
    }

    /// The time `text` names, in seconds since the epoch; `tz` for times without an offset.
    pub fn read(&self, text: &str, tz: &TimeZone) -> Option<f64> {
        let text = text.trim();
        let ts = match self {
            TimeFormat::Rfc3339 => text.parse::<Timestamp>().ok()?,
            TimeFormat::Unix => return text.parse::<i64>().ok().map(|s| s as f64),
            TimeFormat::Strftime(format) => {
                let tm = strtime::parse(format, text).ok()?;
                match tm.to_timestamp() {
                    Ok(ts) => ts,
                    Err(_) => tz
                        .to_ambiguous_timestamp(tm.to_datetime().ok()?)
                        .compatible()
                        .ok()?,
                }
            }
        };
        Some(ts.as_millisecond() as f64 / 1000.0)
    }
}

/// One configured source.
#[derive(Debug, Clone)]
pub struct Source {
    /// The `source` label; sources may share it.
    pub name: String,
    pub origin: Origin,
    /// Which values (lines) are this source's; `None`: every value of its attribute, or for
    /// notes the lines `regex` matches.
    pub matcher: Option<Regex>,
    /// Where the time is: the group named `time`, else the whole match. `None`: the whole value.
    pub regex: Option<Regex>,
    /// Tried in order; the first that reads the time wins.
    pub formats: Vec<TimeFormat>,
}

impl Source {
    fn claims(&self, value: &str) -> bool {
        match (&self.matcher, &self.origin) {
            (Some(m), _) => m.is_match(value),
            (None, Origin::Attribute(_)) => true,
            (None, Origin::Annotation) => self.regex.as_ref().is_some_and(|r| r.is_match(value)),
        }
    }

    /// The time in a value this source claimed, `None` when it does not parse.
    fn time_of(&self, value: &str, tz: &TimeZone) -> Option<f64> {
        let text = match &self.regex {
            Some(regex) => {
                let caps = regex.captures(value)?;
                caps.name("time").or_else(|| caps.get(0))?.as_str()
            }
            None => value,
        };
        self.formats.iter().find_map(|f| f.read(text, tz))
    }
}

/// What one source found on a VM: the newest time it read, and whether any value it claimed
/// did not parse.
#[derive(Debug, Clone, PartialEq)]
pub struct Reading<'a> {
    pub source: &'a str,
    pub timestamp: Option<f64>,
    pub parse_error: bool,
}

/// Reads a VM's values: its custom attributes as (field name, value) and its notes. One
/// reading per source name that claimed something, in configuration order.
pub fn read<'a>(
    sources: &'a [Source],
    tz: &TimeZone,
    attributes: &[(&str, &str)],
    annotation: &str,
) -> Vec<Reading<'a>> {
    let mut out: Vec<Reading<'a>> = Vec::new();
    let mut claim = |source: &'a Source, value: &str| {
        let time = source.time_of(value, tz);
        let reading = match out.iter_mut().find(|r| r.source == source.name) {
            Some(r) => r,
            None => {
                out.push(Reading {
                    source: &source.name,
                    timestamp: None,
                    parse_error: false,
                });
                let last = out.len() - 1;
                &mut out[last]
            }
        };
        match time {
            Some(t) => reading.timestamp = Some(reading.timestamp.map_or(t, |old| old.max(t))),
            None => reading.parse_error = true,
        }
    };
    for (field, value) in attributes {
        if value.trim().is_empty() {
            continue;
        }
        let first = sources.iter().find(|s| {
            matches!(&s.origin, Origin::Attribute(name) if name == field) && s.claims(value)
        });
        if let Some(source) = first {
            claim(source, value);
        }
    }
    for line in annotation.lines().filter(|l| !l.trim().is_empty()) {
        let first = sources
            .iter()
            .find(|s| matches!(s.origin, Origin::Annotation) && s.claims(line));
        if let Some(source) = first {
            claim(source, line);
        }
    }
    let order = |name: &str| sources.iter().position(|s| s.name == name);
    out.sort_by_key(|r| order(r.source));
    out
}

/// The newest time any source read on a VM, when one did.
pub fn newest(readings: &[Reading<'_>]) -> Option<f64> {
    readings
        .iter()
        .filter_map(|r| r.timestamp)
        .max_by(f64::total_cmp)
}

/// A built-in source, as the configuration would write it.
#[derive(Debug, Clone, Copy)]
pub struct DefaultSource {
    pub name: &'static str,
    /// `None`: the notes.
    pub attribute: Option<&'static str>,
    pub matcher: Option<&'static str>,
    pub regex: Option<&'static str>,
    pub formats: &'static [&'static str],
}

/// The built-in sources compiled, as a configuration without `last_backup_sources` gets them.
/// `Err` only for a broken built-in pattern or format, which a unit test rules out.
pub fn default_sources() -> Result<Vec<Source>, String> {
    let compile = |pattern: &str| Regex::new(pattern).map_err(|e| format!("invalid regex: {e}"));
    DEFAULT_SOURCES
        .iter()
        .map(|d| {
            Ok(Source {
                name: d.name.to_owned(),
                origin: d
                    .attribute
                    .map_or(Origin::Annotation, |a| Origin::Attribute(a.to_owned())),
                matcher: d.matcher.map(compile).transpose()?,
                regex: d.regex.map(compile).transpose()?,
                formats: d
                    .formats
                    .iter()
                    .map(|f| TimeFormat::parse(f))
                    .collect::<Result<_, _>>()?,
            })
        })
        .collect()
}

/// The built-in sources, used when the configuration has no `last_backup_sources`.
pub const DEFAULT_SOURCES: &[DefaultSource] = &[
    DefaultSource {
        name: "netbackup",
        attribute: Some("NB_LAST_BACKUP"),
        matcher: None,
        regex: Some(r"^\s*(?P<time>[^,]+)"),
        formats: &["%a %b %d %H:%M:%S %Y %z", "%a %b %d %H:%M:%S %Y", "rfc3339"],
    },
    DefaultSource {
        name: "veeam",
        attribute: None,
        matcher: Some(r"^\s*Veeam Backup:"),
        regex: Some(r"Time: \[(?P<time>[^\]]*)\]"),
        formats: VEEAM_FORMATS,
    },
    DefaultSource {
        name: "veeam",
        attribute: Some("Last Backup"),
        matcher: Some(r"^\s*Veeam Backup:"),
        regex: Some(r"Time: \[(?P<time>[^\]]*)\]"),
        formats: VEEAM_FORMATS,
    },
    DefaultSource {
        name: "rubrik",
        attribute: Some("Rubrik_Latest_Backup"),
        matcher: None,
        regex: None,
        formats: &["rfc3339", "%Y-%m-%d %H:%M:%S"],
    },
    DefaultSource {
        name: "generic",
        attribute: Some("Last Backup"),
        matcher: None,
        regex: None,
        formats: &[
            "rfc3339",
            "%Y-%m-%dT%H:%M:%S",
            "%Y-%m-%d %H:%M:%S",
            "%Y-%m-%d %H:%M",
            "%m/%d/%Y %I:%M:%S %p",
            "unix",
        ],
    },
];

/// Veeam writes the time in the backup server's locale; US and ISO-like European forms.
const VEEAM_FORMATS: &[&str] = &[
    "%m/%d/%Y %I:%M:%S %p",
    "%d.%m.%Y %H:%M:%S",
    "%d/%m/%Y %H:%M:%S",
    "%Y-%m-%d %H:%M:%S",
];

#[cfg(test)]
mod tests {
    use super::*;

    fn defaults() -> Vec<Source> {
        default_sources().unwrap()
    }

    fn at(text: &str) -> f64 {
        text.parse::<Timestamp>().unwrap().as_second() as f64
    }

    fn reading(source: &str, timestamp: Option<f64>, parse_error: bool) -> Reading<'_> {
        Reading {
            source,
            timestamp,
            parse_error,
        }
    }

    const VEEAM_LINE: &str = r"Veeam Backup: Job name: [Daily], Time: [11/24/2026 11:15:02 PM], Backup host: [vbr01], Backup folder: [\\repo\b]";

    #[test]
    fn every_default_source_reads_its_products_format() {
        let sources = defaults();
        let attributes = [
            ("NB_LAST_BACKUP", "Sun Nov 22 01:00:12 2026, VM_Daily, Full"),
            ("Rubrik_Latest_Backup", "2026-11-21T03:10:44.000Z"),
            ("Last Backup", "2026-11-20 22:00:00"),
            ("owner", "alice"),
        ];
        let notes = format!("File server\n{VEEAM_LINE}\n");
        let got = read(&sources, &TimeZone::UTC, &attributes, &notes);
        assert_eq!(
            got,
            vec![
                reading("netbackup", Some(at("2026-11-22T01:00:12Z")), false),
                reading("veeam", Some(at("2026-11-24T23:15:02Z")), false),
                reading("rubrik", Some(at("2026-11-21T03:10:44Z")), false),
                reading("generic", Some(at("2026-11-20T22:00:00Z")), false),
            ]
        );
    }

    #[test]
    fn a_veeam_attribute_value_goes_to_veeam_and_the_newest_time_wins() {
        let sources = defaults();
        let older = VEEAM_LINE.replace("11/24/2026", "11/23/2026");
        let got = read(
            &sources,
            &TimeZone::UTC,
            &[("Last Backup", older.as_str())],
            VEEAM_LINE,
        );
        assert_eq!(
            got,
            vec![reading("veeam", Some(at("2026-11-24T23:15:02Z")), false)]
        );
    }

    #[test]
    fn claimed_values_that_do_not_parse_are_parse_errors() {
        let sources = defaults();
        let got = read(
            &sources,
            &TimeZone::UTC,
            &[
                ("NB_LAST_BACKUP", "backup pending"),
                ("Last Backup", "last night"),
            ],
            "Veeam Backup: Job name: [Linux], Time: [yesterday]\nVeeam Backup: Job name: [x] (no time)",
        );
        assert_eq!(
            got,
            vec![
                reading("netbackup", None, true),
                reading("veeam", None, true),
                reading("generic", None, true),
            ]
        );
    }

    #[test]
    fn one_bad_value_marks_the_source_even_when_another_parses() {
        let sources = defaults();
        let notes =
            format!("{VEEAM_LINE}\nVeeam Backup: Job name: [b], Time: [24/13/2026 99:00:00 PM]");
        let got = read(&sources, &TimeZone::UTC, &[], &notes);
        assert_eq!(
            got,
            vec![reading("veeam", Some(at("2026-11-24T23:15:02Z")), true)]
        );
    }

    #[test]
    fn empty_values_and_unclaimed_notes_give_nothing() {
        let sources = defaults();
        let got = read(
            &sources,
            &TimeZone::UTC,
            &[("NB_LAST_BACKUP", "  "), ("team", "db")],
            "just notes\nTime: [11/24/2026 11:15:02 PM]",
        );
        assert!(got.is_empty(), "{got:?}");
    }

    #[test]
    fn times_without_an_offset_are_read_in_the_configured_zone() {
        let sources = defaults();
        let berlin = TimeZone::get("Europe/Berlin").unwrap();
        let got = read(
            &sources,
            &berlin,
            &[("Last Backup", "2026-07-01 02:00:00")],
            "",
        );
        assert_eq!(got[0].timestamp, Some(at("2026-07-01T00:00:00Z")));
        let got = read(
            &sources,
            &berlin,
            &[("Rubrik_Latest_Backup", "2026-07-01T02:00:00Z")],
            "",
        );
        assert_eq!(got[0].timestamp, Some(at("2026-07-01T02:00:00Z")));
        let got = read(
            &sources,
            &berlin,
            &[("NB_LAST_BACKUP", "Wed Jul 01 02:00:00 2026 -0400")],
            "",
        );
        assert_eq!(got[0].timestamp, Some(at("2026-07-01T06:00:00Z")));
    }

    #[test]
    fn time_formats_must_name_a_point_in_time() {
        assert_eq!(TimeFormat::parse("rfc3339"), Ok(TimeFormat::Rfc3339));
        assert_eq!(TimeFormat::parse("unix"), Ok(TimeFormat::Unix));
        assert!(TimeFormat::parse("%Y-%m-%d %H:%M:%S").is_ok());
        let err = TimeFormat::parse("%H:%M").unwrap_err();
        assert!(err.contains("does not name a point in time"), "{err}");
        let err = TimeFormat::parse("%Y-%m-%d %J").unwrap_err();
        assert!(
            err.starts_with("invalid time format \"%Y-%m-%d %J\": "),
            "{err}"
        );
        let err = TimeFormat::parse("%Y-%m-%d").unwrap_err();
        assert!(err.contains("does not name a point in time"), "{err}");
        assert!(TimeFormat::parse("").is_err());
    }

    #[test]
    fn hostile_values_never_panic() {
        let sources = defaults();
        for value in [
            "\u{0}",
            "Veeam Backup: Time: [",
            "Veeam Backup: Time: []",
            "99999999999999999999999",
            "9999-99-99 99:99:99",
            "-0001-01-01T00:00:00Z",
            &"9".repeat(10_000),
        ] {
            let _ = read(
                &sources,
                &TimeZone::UTC,
                &[("NB_LAST_BACKUP", value), ("Last Backup", value)],
                value,
            );
        }
    }
}
