//! The last successful backup of a VM as the backup products record it: a custom attribute
//! (`NB_LAST_BACKUP`, `Last Backup`, `Rubrik_Latest_Backup`, `Last EMC vProxy Backup`, `Last
//! Cohesity Backup Attempt Time`) or a line of the VM's notes (Veeam's `Last backup: [...]`
//! and its older `Veeam Backup: Job name: [...], Time: [...]`, IBM Spectrum Protect's `Last Run
//! Time='...'`). Each configured source says where to look, which values are its own, where
//! the time is and in which formats; times are parsed with jiff. A value a source claims and
//! cannot parse is a parse error, never a silent gap. A source may also require another value
//! of the VM (Cohesity's status attribute, Spectrum Protect's status line) to say the backup
//! succeeded; without it the source claims nothing.
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
    /// Another value of the VM that must say the backup succeeded, else the source claims
    /// nothing (the built-in Cohesity and Spectrum Protect sources; not a configuration key).
    pub requires: Option<Requirement>,
}

/// A value that must be present: the attribute's value, or for the notes some line, matches.
#[derive(Debug, Clone)]
pub struct Requirement {
    pub origin: Origin,
    pub regex: Regex,
}

impl Requirement {
    fn met(&self, attributes: &[(&str, &str)], annotation: &str) -> bool {
        match &self.origin {
            Origin::Attribute(name) => attributes
                .iter()
                .any(|(field, value)| field == name && self.regex.is_match(value)),
            Origin::Annotation => annotation.lines().any(|l| self.regex.is_match(l)),
        }
    }
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
    let met = |s: &Source| {
        s.requires
            .as_ref()
            .is_none_or(|r| r.met(attributes, annotation))
    };
    for (field, value) in attributes {
        if value.trim().is_empty() {
            continue;
        }
        let first = sources.iter().find(|s| {
            matches!(&s.origin, Origin::Attribute(name) if name == field)
                && s.claims(value)
                && met(s)
        });
        if let Some(source) = first {
            claim(source, value);
        }
    }
    for line in annotation.lines().filter(|l| !l.trim().is_empty()) {
        let first = sources
            .iter()
            .find(|s| matches!(s.origin, Origin::Annotation) && s.claims(line) && met(s));
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
    /// (attribute, regex), or (`None`: a notes line, regex): see [`Source::requires`].
    pub requires: Option<(Option<&'static str>, &'static str)>,
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
                requires: d
                    .requires
                    .map(|(attribute, pattern)| {
                        Ok::<_, String>(Requirement {
                            origin: attribute
                                .map_or(Origin::Annotation, |a| Origin::Attribute(a.to_owned())),
                            regex: compile(pattern)?,
                        })
                    })
                    .transpose()?,
            })
        })
        .collect()
}

/// The built-in sources, used when the configuration has no `last_backup_sources`. Where each
/// product's value and format come from:
/// - NetBackup `NB_LAST_BACKUP`: `Mon Nov 11 07:36:41 2019 +0100,<server>,<policy>` (Icinga
///   vspheredb issue 6).
/// - Veeam 11 and 12, notes (or the attribute Veeam is told to write):
///   `Last backup: [30.10.2021 21:56:04]; Veeam server: [vbr01]; Job: [Daily]; Repository:
///   [repo01]`; Veeam 9.5 and 10: `Veeam Backup: Job name: [...], Time: [...], Backup host:
///   [...], Backup folder: [...]` (both in Icinga vspheredb issue 279). The time is in the
///   backup server's locale: see [`VEEAM_FORMATS`].
/// - Rubrik `Rubrik_Latest_Backup`: RFC 3339.
/// - Dell NetWorker / PowerProtect vProxy `Last EMC vProxy Backup`: `Backup Server=backup01,
///   Policy=RZ, Workflow=vm_day_backup, Action=backup, JobId=71687619,
///   StartTime=2024-06-10T19:59:13Z, EndTime=2024-06-10T19:59:38Z` (Icinga vspheredb pull
///   request 608): the backup's end.
/// - Cohesity `Last Cohesity Backup Attempt Time`: `2026/01/30-15:10:26-GMT+0100`, with `Last
///   Cohesity Backup Status` `Success` (Icinga vspheredb pull request 608). It is the last
///   attempt: it counts only while the status says it succeeded.
/// - IBM Spectrum Protect for Virtual Environments, a block in the notes (atc0005/check-vmware
///   issue 512): `<Last Backup (IBM Spectrum Protect)>`, `Last Run Time='11/09/2021 00:10:18'`,
///   `Status='Successful'`, … `</Last Backup>`, one per line; it counts only with the status line.
/// - `generic` `Last Backup`: what scripts and other products write there.
///
/// Commvault, Nakivo and Arcserve document no vCenter attribute or notes line of their own;
/// their accounts' snapshot removals give the last backup from events
/// (`last_backup_event_users`).
pub const DEFAULT_SOURCES: &[DefaultSource] = &[
    DefaultSource {
        name: "netbackup",
        attribute: Some("NB_LAST_BACKUP"),
        matcher: None,
        regex: Some(r"^\s*(?P<time>[^,]+)"),
        formats: &["%a %b %d %H:%M:%S %Y %z", "%a %b %d %H:%M:%S %Y", "rfc3339"],
        requires: None,
    },
    DefaultSource {
        name: "veeam",
        attribute: None,
        matcher: Some(r"^\s*Veeam Backup:"),
        regex: Some(r"Time: \[(?P<time>[^\]]*)\]"),
        formats: VEEAM_FORMATS,
        requires: None,
    },
    DefaultSource {
        name: "veeam",
        attribute: None,
        matcher: Some(VEEAM_CURRENT),
        regex: Some(VEEAM_CURRENT_TIME),
        formats: VEEAM_FORMATS,
        requires: None,
    },
    DefaultSource {
        name: "veeam",
        attribute: Some("Last Backup"),
        matcher: Some(r"^\s*Veeam Backup:"),
        regex: Some(r"Time: \[(?P<time>[^\]]*)\]"),
        formats: VEEAM_FORMATS,
        requires: None,
    },
    DefaultSource {
        name: "veeam",
        attribute: Some("Last Backup"),
        matcher: Some(VEEAM_CURRENT),
        regex: Some(VEEAM_CURRENT_TIME),
        formats: VEEAM_FORMATS,
        requires: None,
    },
    DefaultSource {
        name: "rubrik",
        attribute: Some("Rubrik_Latest_Backup"),
        matcher: None,
        regex: None,
        formats: &["rfc3339", "%Y-%m-%d %H:%M:%S"],
        requires: None,
    },
    DefaultSource {
        name: "vproxy",
        attribute: Some("Last EMC vProxy Backup"),
        matcher: None,
        regex: Some(r"EndTime=(?P<time>[^,\s]*)"),
        formats: &["rfc3339"],
        requires: None,
    },
    DefaultSource {
        name: "cohesity",
        attribute: Some("Last Cohesity Backup Attempt Time"),
        matcher: None,
        regex: None,
        formats: &[
            "%Y/%m/%d-%H:%M:%S-GMT%z",
            "%Y/%m/%d-%H:%M:%S-GMT%:z",
            "rfc3339",
        ],
        requires: Some((
            Some("Last Cohesity Backup Status"),
            r"(?i)^\s*k?success\s*$",
        )),
    },
    DefaultSource {
        name: "spectrum_protect",
        attribute: None,
        matcher: Some(r"^\s*Last Run Time='"),
        regex: Some(r"Last Run Time='(?P<time>[^']*)'"),
        formats: &["%m/%d/%Y %H:%M:%S", "%Y-%m-%d %H:%M:%S"],
        requires: Some((None, r"^\s*Status='Successful'")),
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
        requires: None,
    },
];

/// Veeam 11 and 12's line, and where its time is.
const VEEAM_CURRENT: &str = r"^\s*Last backup: \[";
const VEEAM_CURRENT_TIME: &str = r"Last backup: \[(?P<time>[^\]]*)\]";

/// Veeam writes the time in the backup server's locale (.NET's short date and long time), in
/// the server's time zone (`last_backup_timezone`). The formats are tried in order:
/// - `M/d/yyyy h:mm:ss tt` (en-US): only a time with AM/PM is read month first;
/// - `dd.MM.yyyy HH:mm:ss` (de, ru, pl, …);
/// - `dd/MM/yyyy HH:mm:ss` (en-GB, fr, es, it, …): a 24-hour time with slashes is read day
///   first, so a US server set to a 24-hour clock is misread (say so with `last_backup_sources`);
/// - `yyyy-MM-dd HH:mm:ss` (sv, ISO), `yyyy/MM/dd H:mm:ss` (ja, zh), `dd-MM-yyyy HH:mm:ss` (nl).
///
/// jiff reads one-digit days, months and hours in the two-digit fields.
pub const VEEAM_FORMATS: &[&str] = &[
    "%m/%d/%Y %I:%M:%S %p",
    "%d.%m.%Y %H:%M:%S",
    "%d/%m/%Y %H:%M:%S",
    "%Y-%m-%d %H:%M:%S",
    "%Y/%m/%d %H:%M:%S",
    "%d-%m-%Y %H:%M:%S",
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

    /// Veeam 11 and 12's line among other notes lines, in the locales Veeam writes: the
    /// US form with AM/PM is month first, a 24-hour slashed form day first.
    #[test]
    fn veeams_current_line_is_read_in_each_common_locale() {
        let sources = defaults();
        let line = |time: &str| {
            format!(
                "SQL server, owner: dba\nLast backup: [{time}]; Veeam server: [vbr01]; Job: [Daily SQL]; Repository: [repo01]\nDo not power off"
            )
        };
        let cases = [
            ("30.10.2021 21:56:04", "2021-10-30T21:56:04Z"),
            ("10/30/2021 9:56:04 PM", "2021-10-30T21:56:04Z"),
            ("3/4/2021 9:56:04 AM", "2021-03-04T09:56:04Z"),
            ("04/03/2021 21:56:04", "2021-03-04T21:56:04Z"),
            ("2021-10-30 21:56:04", "2021-10-30T21:56:04Z"),
            ("2021/10/30 21:56:04", "2021-10-30T21:56:04Z"),
            ("30-10-2021 21:56:04", "2021-10-30T21:56:04Z"),
        ];
        for (time, want) in cases {
            let got = read(&sources, &TimeZone::UTC, &[], &line(time));
            assert_eq!(got, vec![reading("veeam", Some(at(want)), false)], "{time}");
        }
        // In the backup server's zone, as configured.
        let berlin = TimeZone::get("Europe/Berlin").unwrap();
        let got = read(&sources, &berlin, &[], &line("30.10.2021 21:56:04"));
        assert_eq!(got[0].timestamp, Some(at("2021-10-30T19:56:04Z")));
        // The same line in the attribute; the old line beside it: the newest wins.
        let attribute = "Last backup: [31.10.2021 01:00:00]; Veeam server: [vbr01]; Job: [Daily]; Repository: [repo01]";
        let got = read(
            &sources,
            &TimeZone::UTC,
            &[("Last Backup", attribute)],
            VEEAM_LINE,
        );
        assert_eq!(
            got,
            vec![reading("veeam", Some(at("2026-11-24T23:15:02Z")), false)]
        );
        let got = read(&sources, &TimeZone::UTC, &[("Last Backup", attribute)], "");
        assert_eq!(
            got,
            vec![reading("veeam", Some(at("2021-10-31T01:00:00Z")), false)],
            "not the generic source"
        );
        let got = read(&sources, &TimeZone::UTC, &[], &line("gestern"));
        assert_eq!(got, vec![reading("veeam", None, true)]);
    }

    #[test]
    fn vproxy_cohesity_and_spectrum_protect_values_are_read_with_their_status() {
        let sources = defaults();
        let vproxy = "Backup Server=backup01.example.com, Policy=Gold, Workflow=vm_day_backup, Action=backup, JobId=71687619, StartTime=2026-11-20T19:59:13Z, EndTime=2026-11-20T20:04:38Z";
        let got = read(
            &sources,
            &TimeZone::UTC,
            &[("Last EMC vProxy Backup", vproxy)],
            "",
        );
        assert_eq!(
            got,
            vec![reading("vproxy", Some(at("2026-11-20T20:04:38Z")), false)],
            "the end, not the start"
        );
        let got = read(
            &sources,
            &TimeZone::UTC,
            &[("Last EMC vProxy Backup", "Backup Server=backup01, JobId=1")],
            "",
        );
        assert_eq!(got, vec![reading("vproxy", None, true)]);

        let attempt = (
            "Last Cohesity Backup Attempt Time",
            "2026/01/30-15:10:26-GMT+0100",
        );
        let status = |s| ("Last Cohesity Backup Status", s);
        let got = read(&sources, &TimeZone::UTC, &[attempt, status("Success")], "");
        assert_eq!(
            got,
            vec![reading("cohesity", Some(at("2026-01-30T14:10:26Z")), false)]
        );
        for failed in ["Failure", "Running", ""] {
            let got = read(&sources, &TimeZone::UTC, &[attempt, status(failed)], "");
            assert!(got.is_empty(), "{failed}: {got:?}");
        }
        let got = read(&sources, &TimeZone::UTC, &[attempt], "");
        assert!(got.is_empty(), "no status: {got:?}");

        let block = |status: &str| {
            format!(
                "vm1.example.com\nClient Contact: John Doe\n<Last Backup (IBM Spectrum Protect)>\nLast Run Time='11/09/2026 00:10:18'\nStatus='{status}'\nData Transmitted='104.83 GB'\nDuration='03:59:36'\nType='Incremental Forever - Incremental'\nSchedule='TSMVE3_BACKUP1'\nData Mover='TSMVE3_DM3'\nSnapshot Type='VMware Tools'\nApplication Protection=' '\nTransport='(nbd)'\n</Last Backup>"
            )
        };
        let got = read(&sources, &TimeZone::UTC, &[], &block("Successful"));
        assert_eq!(
            got,
            vec![reading(
                "spectrum_protect",
                Some(at("2026-11-09T00:10:18Z")),
                false
            )]
        );
        let got = read(&sources, &TimeZone::UTC, &[], &block("Failed"));
        assert!(got.is_empty(), "{got:?}");
    }
}
