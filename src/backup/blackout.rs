//! Blackout windows: times when no backup should run (payroll, virus scans), each a 5-field
//! cron expression (croner) for its start, a duration, and the time zone the expression is read
//! in (jiff). Whether a window is open and when it next opens depend only on the clock.

use std::cmp::Ordering;
use std::time::Duration;

use croner::errors::CronError;
use croner::parser::{CronParser, Seconds};
use croner::{CivilDate, CivilDateTime, CivilTime, Cron, CronDateTime, Resolution, Weekday};
use jiff::tz::{AmbiguousOffset, TimeZone};
use jiff::{SignedDuration, Timestamp, ZonedDateTime};

/// One configured window.
#[derive(Debug, Clone)]
pub struct Window {
    pub name: String,
    /// The expression as written, for messages.
    pub expression: String,
    cron: Cron,
    pub duration: Duration,
    pub timezone: TimeZone,
}

/// A window's state at one moment.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct State {
    /// The last start is less than `duration` ago.
    pub active: bool,
    /// The next start after the moment, in seconds since the epoch; `None` if it never starts
    /// again (an expression for a date in the past).
    pub next_start_seconds: Option<f64>,
}

impl Window {
    /// A window from its configuration; the error says what is wrong with the expression.
    pub fn new(
        name: &str,
        expression: &str,
        duration: Duration,
        timezone: TimeZone,
    ) -> Result<Window, String> {
        Ok(Window {
            name: name.to_owned(),
            expression: expression.to_owned(),
            cron: parse_cron(expression)?,
            duration,
            timezone,
        })
    }

    /// Whether the window is open at `now` and when it next opens.
    pub fn state(&self, now: Timestamp) -> State {
        let here = Zoned(now.to_zoned_datetime(self.timezone.clone()));
        let active = self
            .cron
            .find_previous_occurrence(&here, true)
            .ok()
            .is_some_and(|start| {
                let since = now.duration_since(start.0.timestamp());
                since >= SignedDuration::ZERO && since.unsigned_abs() < self.duration
            });
        let next_start_seconds = self
            .cron
            .find_next_occurrence(&here, false)
            .ok()
            .map(|next| next.0.timestamp().as_second() as f64);
        State {
            active,
            next_start_seconds,
        }
    }
}

/// A 5-field cron expression (minute hour day-of-month month day-of-week, or `@daily` …).
pub fn parse_cron(expression: &str) -> Result<Cron, String> {
    CronParser::builder()
        .seconds(Seconds::Disallowed)
        .build()
        .parse(expression)
        .map_err(|e| {
            format!(
                "invalid cron expression {expression:?}: {}",
                cron_reason(&e)
            )
        })
}

/// croner's error as one line, without a trailing period.
fn cron_reason(error: &CronError) -> String {
    error.to_string().trim_end_matches('.').to_owned()
}

/// A jiff zoned date and time that croner can search over (croner's own jiff support is for
/// an older jiff).
#[derive(Debug, Clone)]
struct Zoned(ZonedDateTime);

fn to_civil(dt: jiff::civil::DateTime) -> CivilDateTime {
    CivilDateTime::new(
        CivilDate::from_parts_unchecked(i32::from(dt.year()), dt.month() as u32, dt.day() as u32),
        CivilTime::from_parts_unchecked(dt.hour() as u32, dt.minute() as u32, dt.second() as u32),
    )
}

impl CronDateTime for Zoned {
    fn to_civil(&self) -> CivilDateTime {
        to_civil(self.0.datetime())
    }

    fn civil_weekday(&self) -> Weekday {
        Weekday::from_days_from_sunday(self.0.weekday().to_sunday_zero_offset() as u32)
    }

    fn resolve_civil(&self, civil: CivilDateTime) -> Result<Resolution<Self>, CronError> {
        let year = i16::try_from(civil.year()).map_err(|_| CronError::InvalidDate)?;
        let dt = jiff::civil::DateTime::new(
            year,
            civil.month() as i8,
            civil.day() as i8,
            civil.hour() as i8,
            civil.minute() as i8,
            civil.second() as i8,
            0,
        )
        .map_err(|_| CronError::InvalidDate)?;
        let ambiguous = self.0.time_zone().to_ambiguous_zoned_datetime(dt);
        Ok(match ambiguous.offset() {
            AmbiguousOffset::Unambiguous { .. } => Resolution::Single(Zoned(
                ambiguous
                    .unambiguous()
                    .map_err(|_| CronError::InvalidTime)?,
            )),
            AmbiguousOffset::Fold { .. } => {
                let earlier = ambiguous
                    .clone()
                    .earlier()
                    .map_err(|_| CronError::InvalidTime)?;
                let later = ambiguous.later().map_err(|_| CronError::InvalidTime)?;
                Resolution::Ambiguous(Zoned(earlier), Zoned(later))
            }
            AmbiguousOffset::Gap { .. } => Resolution::Gap,
        })
    }

    fn checked_add_seconds(&self, seconds: i64) -> Option<Self> {
        self.0
            .checked_add(SignedDuration::from_secs(seconds))
            .ok()
            .map(Zoned)
    }

    fn cmp_instant(&self, other: &Self) -> Ordering {
        self.0.timestamp().cmp(&other.0.timestamp())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(text: &str) -> Timestamp {
        text.parse().unwrap()
    }

    fn secs(text: &str) -> Option<f64> {
        Some(ts(text).as_second() as f64)
    }

    fn payroll() -> Window {
        // Mondays 01:00 Berlin time for 3 h.
        Window::new(
            "payroll",
            "0 1 * * 1",
            Duration::from_secs(3 * 3600),
            TimeZone::get("Europe/Berlin").unwrap(),
        )
        .unwrap()
    }

    #[test]
    fn a_window_is_active_from_its_start_for_its_duration_in_its_zone() {
        let w = payroll();
        // Monday 2026-11-30 01:00 CET = 00:00 UTC.
        let cases = [
            ("2026-11-29T23:59:59Z", false, "2026-11-30T00:00:00Z"),
            ("2026-11-30T00:00:00Z", true, "2026-12-07T00:00:00Z"),
            ("2026-11-30T02:59:59Z", true, "2026-12-07T00:00:00Z"),
            ("2026-11-30T03:00:00Z", false, "2026-12-07T00:00:00Z"),
        ];
        for (now, active, next) in cases {
            assert_eq!(
                w.state(ts(now)),
                State {
                    active,
                    next_start_seconds: secs(next)
                },
                "{now}"
            );
        }
        // In summer Berlin is UTC+2: Monday 2026-07-06 01:00 CEST = 2026-07-05 23:00 UTC.
        assert_eq!(
            w.state(ts("2026-07-05T23:30:00Z")),
            State {
                active: true,
                next_start_seconds: secs("2026-07-12T23:00:00Z")
            }
        );
    }

    #[test]
    fn a_window_longer_than_a_day_spans_midnight() {
        let w = Window::new(
            "scan",
            "0 22 * * *",
            Duration::from_secs(26 * 3600),
            TimeZone::UTC,
        )
        .unwrap();
        assert!(w.state(ts("2026-11-30T23:00:00Z")).active);
        assert!(w.state(ts("2026-12-01T01:00:00Z")).active);
    }

    #[test]
    fn bad_expressions_are_refused_with_the_reason() {
        for bad in [
            "",
            "0 1 * *",
            "61 1 * * *",
            "0 1 * * 1 2026 x",
            "every monday",
            "0 0 1 * * 1",
        ] {
            let err = Window::new("w", bad, Duration::from_secs(60), TimeZone::UTC).unwrap_err();
            assert!(
                err.starts_with(&format!("invalid cron expression {bad:?}: ")),
                "{bad}: {err}"
            );
        }
    }

    #[test]
    fn a_time_skipped_by_daylight_saving_does_not_hang_or_panic() {
        // 02:30 does not exist in Berlin on 2027-03-28.
        let w = Window::new(
            "dst",
            "30 2 * * *",
            Duration::from_secs(600),
            TimeZone::get("Europe/Berlin").unwrap(),
        )
        .unwrap();
        let state = w.state(ts("2027-03-28T00:00:00Z"));
        assert!(!state.active);
        assert!(state.next_start_seconds.is_some());
    }
}
