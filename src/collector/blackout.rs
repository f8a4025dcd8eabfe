//! Blackout windows (`blackout_windows`): whether each is open now and when it opens next.
//! These series belong to the exporter, not to a vCenter: they carry no `vcenter` label, are
//! rendered on every scrape from the clock (never cached), and are served on `/metrics` and on
//! every `/probe` page, so an alert can join them with any vCenter's backup snapshots.

use bytes::Bytes;

use super::Sink;
use super::catalogue::{BLACKOUT_ACTIVE, BLACKOUT_NEXT_START};
use crate::config::Config;

/// The blackout families at `now` (Unix seconds), in catalogue order.
pub fn families(config: &Config, now: f64) -> Vec<Bytes> {
    let mut out = Sink::exporter_level();
    let Ok(now) = jiff::Timestamp::from_millisecond((now * 1000.0) as i64) else {
        return out.into_families();
    };
    for window in &config.backup.blackout_windows {
        let state = window.state(now);
        out.gauge(
            &BLACKOUT_ACTIVE,
            &[&window.name],
            f64::from(u8::from(state.active)),
        );
        if let Some(next) = state.next_start_seconds {
            out.gauge(&BLACKOUT_NEXT_START, &[&window.name], next);
        }
    }
    out.into_families()
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use jiff::tz::TimeZone;

    use super::*;
    use crate::backup::blackout::Window;
    use crate::collector::test_support::{config, samples, value};
    use crate::collector::{concat, render, text};

    #[test]
    fn windows_render_without_a_vcenter_label_at_the_given_time() {
        let mut cfg = config();
        cfg.backup.blackout_windows = vec![
            Window::new(
                "payroll",
                "0 1 * * 1",
                Duration::from_secs(3 * 3600),
                TimeZone::get("Europe/Berlin").unwrap(),
            )
            .unwrap(),
            Window::new(
                "scan",
                "0 22 * * *",
                Duration::from_secs(2 * 3600),
                TimeZone::UTC,
            )
            .unwrap(),
        ];
        // Monday 2026-11-30 01:30 Berlin = 00:30 UTC.
        let now = 1_795_998_600.0;
        let families = families(&cfg, now);
        let refs: Vec<&[Bytes]> = vec![families.as_slice()];
        let page = String::from_utf8_lossy(&concat(&render(&refs))).into_owned();
        let out = text::parse(&page).unwrap();
        assert_eq!(
            value(
                &out,
                "vsphere_backup_blackout_active",
                &[("window", "payroll")]
            ),
            Some(1.0)
        );
        assert_eq!(
            value(
                &out,
                "vsphere_backup_blackout_active",
                &[("window", "scan")]
            ),
            Some(0.0)
        );
        assert_eq!(
            value(
                &out,
                "vsphere_backup_blackout_next_start_timestamp_seconds",
                &[("window", "scan")]
            ),
            Some(1_796_076_000.0),
            "22:00 UTC the same day"
        );
        assert!(
            samples(&out, "vsphere_backup_blackout_active")
                .iter()
                .all(|s| !s.labels.contains_key("vcenter"))
        );
        assert!(
            page.contains("vsphere_backup_blackout_active{window=\"payroll\"} 1\n"),
            "{page}"
        );
    }
}
