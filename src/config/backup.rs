//! The backup checks' settings: where backup products record the last backup
//! (`last_backup_sources`, `last_backup_timezone`), `blackout_windows`,
//! `consistency_required_attribute`, `owner_labels` and the event follower (`events`). Strict
//! like the rest: unknown keys, bad regexes, time zones, cron expressions and time formats are
//! errors naming the key and line.
//!
//! The rules themselves live in [`crate::backup`]; this module only builds them.

use std::collections::HashMap;
use std::marker::PhantomData;
use std::time::Duration;

use jiff::tz::TimeZone;
use serde::Deserialize;
use serde::de::Deserializer;

use super::locate::Seg;
use super::scalar::{PatternRegex, Scalar, ScalarVisitor, Timeout};
use super::{ConfigError, Loader};
use crate::backup::blackout::{Window, parse_cron};
use crate::backup::history::same_user;
use crate::backup::labels::label_name;
use crate::backup::last_backup::{Origin, Source, TimeFormat, default_sources};

/// What the backup checks are told.
#[derive(Debug, Clone)]
pub struct BackupConfig {
    /// In order: a value goes to the first source that claims it.
    pub last_backup_sources: Vec<Source>,
    /// How times without an offset are read (default UTC).
    pub last_backup_timezone: TimeZone,
    pub blackout_windows: Vec<Window>,
    /// The custom attribute holding the consistency a VM needs, if any.
    pub consistency_required_attribute: Option<String>,
    /// Custom attributes that become labels of `vsphere_vm_info`, in order.
    pub owner_labels: Vec<OwnerLabel>,
    pub events: EventsConfig,
    /// The backup products' service accounts (`last_backup_event_users`), as vCenter writes
    /// them in events (`VSPHERE.LOCAL\\svc-veeam`, `svc-nbu@vsphere.local`), matched without
    /// regard to case: the newest successful snapshot removal one of them ran on a VM is its
    /// last backup with `source="events"`.
    pub last_backup_event_users: Vec<String>,
}

/// One `owner_labels` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OwnerLabel {
    /// The custom attribute's name.
    pub attribute: String,
    /// Its label name (see [`label_name`]).
    pub label: String,
}

/// The event follower's settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventsConfig {
    pub enabled: bool,
    /// How far back the history is read at start (default 24 h).
    pub read_back: Duration,
    /// How often the history is read where vCenter cannot push it (default 10 s), and how often
    /// unfinished tasks are looked at.
    pub poll_interval: Duration,
}

impl Default for EventsConfig {
    fn default() -> Self {
        EventsConfig {
            enabled: true,
            read_back: Duration::from_secs(24 * 3600),
            poll_interval: Duration::from_secs(10),
        }
    }
}

impl Default for BackupConfig {
    /// The built-in sources (their patterns and formats are checked by a unit test), UTC, no
    /// windows, no required-consistency attribute, no owner labels, events on.
    fn default() -> Self {
        BackupConfig {
            last_backup_sources: default_sources().unwrap_or_default(),
            last_backup_timezone: TimeZone::UTC,
            blackout_windows: Vec::new(),
            consistency_required_attribute: None,
            owner_labels: Vec::new(),
            events: EventsConfig::default(),
            last_backup_event_users: Vec::new(),
        }
    }
}

/// The labels `vsphere_vm_info` has without owner labels; an owner label may not take one.
pub const VM_INFO_LABELS: &[&str] = &[
    "vcenter",
    "vm_id",
    "vm_name",
    "host_name",
    "cluster_name",
    "datacenter_name",
    "guest_id",
    "power_state",
    "template",
];

#[derive(Debug, Deserialize)]
#[serde(
    deny_unknown_fields,
    expecting = "a mapping with name, attribute or annotation, and format"
)]
pub(crate) struct RawSource {
    name: String,
    #[serde(default)]
    attribute: Option<String>,
    #[serde(default)]
    annotation: bool,
    #[serde(default, rename = "match")]
    matcher: Option<PatternRegex>,
    #[serde(default)]
    regex: Option<PatternRegex>,
    #[serde(default)]
    format: Option<Format>,
    #[serde(default)]
    formats: Option<Vec<Format>>,
}

#[derive(Debug, Deserialize)]
#[serde(
    deny_unknown_fields,
    expecting = "a mapping with name, cron, duration and timezone"
)]
pub(crate) struct RawWindow {
    name: String,
    cron: CronExpression,
    duration: Timeout,
    #[serde(default)]
    timezone: Option<Zone>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(
    deny_unknown_fields,
    expecting = "a mapping with enabled, read_back and poll_interval"
)]
pub(crate) struct RawEvents {
    #[serde(default)]
    enabled: Option<bool>,
    #[serde(default)]
    read_back: Option<Timeout>,
    #[serde(default)]
    poll_interval: Option<Timeout>,
}

/// The backup keys of the top level, taken out of [`super::raw::RawConfig`].
#[derive(Debug, Default)]
pub(crate) struct RawBackup {
    /// Absent (or null): the built-in sources; an empty list: none.
    pub(crate) last_backup_sources: Option<Vec<RawSource>>,
    pub(crate) last_backup_timezone: Option<Zone>,
    pub(crate) blackout_windows: Vec<RawWindow>,
    pub(crate) consistency_required_attribute: Option<String>,
    pub(crate) owner_labels: Vec<String>,
    pub(crate) events: Option<RawEvents>,
    pub(crate) last_backup_event_users: Vec<String>,
}

/// An IANA time zone name (or `UTC`), looked up in jiff's bundled database.
#[derive(Debug)]
pub(crate) struct Zone(TimeZone);

impl Scalar for Zone {
    const EXPECTING: &'static str = "an IANA time zone name like Europe/Berlin";

    fn parse(text: &str) -> Result<Self, String> {
        TimeZone::get(text).map(Zone).map_err(|_| {
            format!("unknown time zone {text:?}: use an IANA name like Europe/Berlin or UTC")
        })
    }
}

/// A 5-field cron expression.
#[derive(Debug)]
pub(crate) struct CronExpression(String);

impl Scalar for CronExpression {
    const EXPECTING: &'static str = "a cron expression like \"0 1 * * 1\"";

    fn parse(text: &str) -> Result<Self, String> {
        parse_cron(text).map(|_| CronExpression(text.to_owned()))
    }
}

/// A time format: `rfc3339`, `unix` or a strftime format.
#[derive(Debug)]
pub(crate) struct Format(TimeFormat);

impl Scalar for Format {
    const EXPECTING: &'static str = "a time format like \"%Y-%m-%d %H:%M:%S\", rfc3339 or unix";

    fn parse(text: &str) -> Result<Self, String> {
        TimeFormat::parse(text).map(Format)
    }
}

macro_rules! deserialize_scalar {
    ($($ty:ty),*) => {$(
        impl<'de> Deserialize<'de> for $ty {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                deserializer.deserialize_str(ScalarVisitor::<$ty>(PhantomData))
            }
        }
    )*};
}

deserialize_scalar!(Zone, CronExpression, Format);

impl Loader<'_> {
    /// Builds the backup checks' settings from the raw keys.
    pub(super) fn backup(&self, raw: RawBackup) -> Result<BackupConfig, ConfigError> {
        let defaults = BackupConfig::default();
        let last_backup_sources = match raw.last_backup_sources {
            Some(sources) => sources
                .into_iter()
                .enumerate()
                .map(|(i, s)| self.source(i, s))
                .collect::<Result<_, _>>()?,
            None => default_sources()
                .map_err(|m| self.invalid(&[Seg::Key("last_backup_sources")], m))?,
        };
        let timezone = raw.last_backup_timezone.map_or(TimeZone::UTC, |z| z.0);
        let events = raw.events.unwrap_or_default();
        let events_enabled = events.enabled.unwrap_or(defaults.events.enabled);
        let last_backup_event_users =
            self.event_users(raw.last_backup_event_users, events_enabled)?;
        Ok(BackupConfig {
            last_backup_event_users,
            last_backup_sources,
            last_backup_timezone: timezone,
            blackout_windows: self.windows(raw.blackout_windows)?,
            consistency_required_attribute: self.attribute_name(
                raw.consistency_required_attribute,
                &[Seg::Key("consistency_required_attribute")],
            )?,
            owner_labels: self.owner_labels(raw.owner_labels)?,
            events: EventsConfig {
                enabled: events.enabled.unwrap_or(defaults.events.enabled),
                read_back: events.read_back.map_or(defaults.events.read_back, |t| t.0),
                poll_interval: events
                    .poll_interval
                    .map_or(defaults.events.poll_interval, |t| t.0),
            },
        })
    }

    /// `last_backup_event_users`: names as vCenter writes them, each once (without regard to
    /// case, as they are matched), and only with the event follower on.
    fn event_users(
        &self,
        users: Vec<String>,
        events_enabled: bool,
    ) -> Result<Vec<String>, ConfigError> {
        for (index, user) in users.iter().enumerate() {
            let path = [Seg::Key("last_backup_event_users"), Seg::Index(index)];
            if user.trim().is_empty() {
                return Err(self.invalid(&path, "must name a user, as vCenter writes it in events (DOMAIN\\user or user@domain)".to_owned()));
            }
            if user.trim() != user {
                return Err(self.invalid(
                    &path,
                    format!("{user:?} has spaces around the name; vCenter writes none"),
                ));
            }
            if let Some(other) = users[..index].iter().position(|u| same_user(u, user)) {
                return Err(self.invalid(&path, format!("{user:?} is listed already as last_backup_event_users[{other}] (names match without regard to case)")));
            }
        }
        if !users.is_empty() && !events_enabled {
            return Err(self.invalid(
                &[Seg::Key("last_backup_event_users")],
                "needs the event follower, which events.enabled: false turns off".to_owned(),
            ));
        }
        Ok(users)
    }

    fn source(&self, index: usize, raw: RawSource) -> Result<Source, ConfigError> {
        let key = |name| {
            vec![
                Seg::Key("last_backup_sources"),
                Seg::Index(index),
                Seg::Key(name),
            ]
        };
        let whole = [Seg::Key("last_backup_sources"), Seg::Index(index)];
        if raw.name.trim().is_empty() {
            return Err(self.invalid(&key("name"), "must not be empty".to_owned()));
        }
        let origin = match (raw.attribute, raw.annotation) {
            (Some(attribute), false) if !attribute.trim().is_empty() => {
                Origin::Attribute(attribute)
            }
            (Some(_), false) => {
                return Err(self.invalid(&key("attribute"), "must not be empty".to_owned()));
            }
            (None, true) => Origin::Annotation,
            (Some(_), true) => {
                return Err(self.invalid(
                    &key("annotation"),
                    "set either attribute or annotation: true, not both".to_owned(),
                ));
            }
            (None, false) => {
                return Err(self.invalid(
                    &whole,
                    "set attribute (a custom attribute's name) or annotation: true (the notes)"
                        .to_owned(),
                ));
            }
        };
        if matches!(origin, Origin::Annotation) && raw.matcher.is_none() && raw.regex.is_none() {
            return Err(self.invalid(
                &whole,
                "a notes source needs match or regex to find its line".to_owned(),
            ));
        }
        let formats = match (raw.format, raw.formats) {
            (Some(f), None) => vec![f.0],
            (None, Some(list)) if !list.is_empty() => list.into_iter().map(|f| f.0).collect(),
            (None, Some(_)) => {
                return Err(
                    self.invalid(&key("formats"), "must list at least one format".to_owned())
                );
            }
            (Some(_), Some(_)) => {
                return Err(self.invalid(
                    &key("formats"),
                    "set format or formats, not both".to_owned(),
                ));
            }
            (None, None) => {
                return Err(self.invalid(
                    &whole,
                    "set format (or formats): a strftime format, rfc3339 or unix".to_owned(),
                ));
            }
        };
        Ok(Source {
            name: raw.name,
            origin,
            matcher: raw.matcher.map(|m| m.0),
            regex: raw.regex.map(|r| r.0),
            formats,
            requires: None,
        })
    }

    fn windows(&self, raw: Vec<RawWindow>) -> Result<Vec<Window>, ConfigError> {
        let mut first: HashMap<String, usize> = HashMap::new();
        let mut out = Vec::with_capacity(raw.len());
        for (index, w) in raw.into_iter().enumerate() {
            let key = |name| {
                [
                    Seg::Key("blackout_windows"),
                    Seg::Index(index),
                    Seg::Key(name),
                ]
            };
            if w.name.trim().is_empty() {
                return Err(self.invalid(&key("name"), "must not be empty".to_owned()));
            }
            if let Some(other) = first.insert(w.name.clone(), index) {
                let message = format!(
                    "duplicate name {:?} (also blackout_windows[{other}].name)",
                    w.name
                );
                return Err(self.invalid(&key("name"), message));
            }
            let timezone = w.timezone.map_or(TimeZone::UTC, |z| z.0);
            let window = Window::new(&w.name, &w.cron.0, w.duration.0, timezone)
                .map_err(|m| self.invalid(&key("cron"), m))?;
            out.push(window);
        }
        Ok(out)
    }

    fn attribute_name(
        &self,
        name: Option<String>,
        path: &[Seg<'_>],
    ) -> Result<Option<String>, ConfigError> {
        match name {
            Some(n) if n.trim().is_empty() => {
                Err(self.invalid(path, "must name a custom attribute".to_owned()))
            }
            other => Ok(other),
        }
    }

    fn owner_labels(&self, attributes: Vec<String>) -> Result<Vec<OwnerLabel>, ConfigError> {
        let mut out: Vec<OwnerLabel> = Vec::with_capacity(attributes.len());
        for (index, attribute) in attributes.into_iter().enumerate() {
            let path = [Seg::Key("owner_labels"), Seg::Index(index)];
            if attribute.trim().is_empty() {
                return Err(self.invalid(&path, "must name a custom attribute".to_owned()));
            }
            let label = label_name(&attribute);
            if VM_INFO_LABELS.contains(&label.as_str()) {
                let message = format!(
                    "{attribute:?} becomes label {label:?}, which vsphere_vm_info already has"
                );
                return Err(self.invalid(&path, message));
            }
            if let Some(other) = out.iter().position(|o| o.label == label) {
                let message =
                    format!("{attribute:?} becomes label {label:?}, as owner_labels[{other}] does");
                return Err(self.invalid(&path, message));
            }
            out.push(OwnerLabel { attribute, label });
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backup::last_backup::DEFAULT_SOURCES;
    use crate::config::Config;

    const VCENTER: &str =
        "vcenters:\n  - {name: vc01, url: \"https://vc01/sdk\", username: u, password_env: HOME}\n";

    fn load(extra: &str) -> Result<Config, ConfigError> {
        Config::from_yaml(&format!("{VCENTER}{extra}"), "bad.yml")
    }

    #[test]
    fn the_built_in_sources_compile() {
        let sources = default_sources().unwrap();
        assert_eq!(sources.len(), DEFAULT_SOURCES.len());
        assert_eq!(
            BackupConfig::default().last_backup_sources.len(),
            sources.len()
        );
    }

    #[test]
    fn without_backup_keys_the_defaults_apply() {
        let config = load("").unwrap();
        let b = &config.backup;
        let names: Vec<&str> = b
            .last_backup_sources
            .iter()
            .map(|s| s.name.as_str())
            .collect();
        assert_eq!(
            names,
            [
                "netbackup",
                "veeam",
                "veeam",
                "veeam",
                "veeam",
                "rubrik",
                "vproxy",
                "cohesity",
                "spectrum_protect",
                "generic"
            ]
        );
        assert_eq!(b.last_backup_timezone, TimeZone::UTC);
        assert!(b.blackout_windows.is_empty() && b.owner_labels.is_empty());
        assert_eq!(b.consistency_required_attribute, None);
        assert_eq!(b.events, EventsConfig::default());
        assert_eq!(b.events.read_back, Duration::from_secs(86_400));
        assert_eq!(b.events.poll_interval, Duration::from_secs(10));
    }

    #[test]
    fn every_backup_key_loads() {
        let config = load(concat!(
            "last_backup_sources:\n",
            "  - {name: netbackup, attribute: NB_LAST_BACKUP, regex: \"^(?P<time>[^,]+)\", format: \"%a %b %d %H:%M:%S %Y\"}\n",
            "  - {name: veeam, annotation: true, regex: \"Time: \\\\[(?P<time>[^\\\\]]+)\\\\]\", formats: [\"%m/%d/%Y %I:%M:%S %p\", rfc3339]}\n",
            "last_backup_timezone: Europe/Berlin\n",
            "blackout_windows:\n",
            "  - {name: payroll, cron: \"0 1 * * 1\", duration: 3h, timezone: Europe/Berlin}\n",
            "  - {name: antivirus-scan, cron: \"0 22 * * *\", duration: 2h}\n",
            "consistency_required_attribute: backup-consistency\n",
            "owner_labels: [owner, Cost Center]\n",
            "events: {enabled: false, read_back: 6h, poll_interval: 30s}\n",
        ))
        .unwrap();
        let b = &config.backup;
        assert!(b.last_backup_event_users.is_empty());
        assert_eq!(b.last_backup_sources.len(), 2);
        assert_eq!(
            b.last_backup_sources[1].formats,
            [
                TimeFormat::Strftime("%m/%d/%Y %I:%M:%S %p".into()),
                TimeFormat::Rfc3339
            ]
        );
        assert_eq!(
            b.last_backup_timezone,
            TimeZone::get("Europe/Berlin").unwrap()
        );
        let windows: Vec<(&str, Duration)> = b
            .blackout_windows
            .iter()
            .map(|w| (w.name.as_str(), w.duration))
            .collect();
        assert_eq!(
            windows,
            [
                ("payroll", Duration::from_secs(10_800)),
                ("antivirus-scan", Duration::from_secs(7_200))
            ]
        );
        assert_eq!(b.blackout_windows[1].timezone, TimeZone::UTC);
        assert_eq!(
            b.consistency_required_attribute.as_deref(),
            Some("backup-consistency")
        );
        let labels: Vec<(&str, &str)> = b
            .owner_labels
            .iter()
            .map(|o| (o.attribute.as_str(), o.label.as_str()))
            .collect();
        assert_eq!(labels, [("owner", "owner"), ("Cost Center", "cost_center")]);
        assert_eq!(
            b.events,
            EventsConfig {
                enabled: false,
                read_back: Duration::from_secs(21_600),
                poll_interval: Duration::from_secs(30)
            }
        );
        let users = load(
            "last_backup_event_users: [\"VSPHERE.LOCAL\\\\svc-veeam\", svc-nbu@vsphere.local]\n",
        )
        .unwrap();
        assert_eq!(
            users.backup.last_backup_event_users,
            ["VSPHERE.LOCAL\\svc-veeam", "svc-nbu@vsphere.local"]
        );
        let empty = load("last_backup_sources: []\n").unwrap();
        assert!(empty.backup.last_backup_sources.is_empty());
    }

    #[test]
    fn bad_backup_keys_get_exact_errors_naming_key_and_line() {
        let cases: &[(&str, &str)] = &[
            (
                "last_backup_timezone: Mars/Olympus\n",
                "bad.yml:3:23: last_backup_timezone: unknown time zone \"Mars/Olympus\": use an IANA name like Europe/Berlin or UTC",
            ),
            (
                "blackout_windows:\n  - {name: w, cron: \"0 25 * * *\", duration: 1h}\n",
                "bad.yml:4:21: blackout_windows[0].cron: invalid cron expression \"0 25 * * *\": Component error: Number out of bounds",
            ),
            (
                "blackout_windows:\n  - {name: w, cron: \"0 1 * * 1\", duration: 1h, timezone: Europe/Nowhere}\n",
                "bad.yml:4:58: blackout_windows[0].timezone: unknown time zone \"Europe/Nowhere\": use an IANA name like Europe/Berlin or UTC",
            ),
            (
                "blackout_windows:\n  - {name: w, cron: \"0 1 * * 1\", duration: 0s}\n",
                "bad.yml:4:44: blackout_windows[0].duration: invalid duration \"0s\": must be greater than zero",
            ),
            (
                "blackout_windows:\n  - {name: w, cron: \"0 1 * * 1\", duration: 1h}\n  - {name: w, cron: \"0 2 * * 1\", duration: 1h}\n",
                "bad.yml:5:12: blackout_windows[1].name: duplicate name \"w\" (also blackout_windows[0].name)",
            ),
            (
                "last_backup_sources:\n  - {name: x, attribute: A, regex: \"(?P<time>[\", format: rfc3339}\n",
                "bad.yml:4:36: last_backup_sources[0].regex: invalid regex: unclosed character class",
            ),
            (
                "last_backup_sources:\n  - {name: x, attribute: A, format: \"%H:%M\"}\n",
                "bad.yml:4:37: last_backup_sources[0].format: time format \"%H:%M\" does not name a point in time (it needs a date and a time of day)",
            ),
            (
                "last_backup_sources:\n  - {name: x, attribute: A}\n",
                "bad.yml:4:5: last_backup_sources[0]: set format (or formats): a strftime format, rfc3339 or unix",
            ),
            (
                "last_backup_sources:\n  - {name: x, format: rfc3339}\n",
                "bad.yml:4:5: last_backup_sources[0]: set attribute (a custom attribute's name) or annotation: true (the notes)",
            ),
            (
                "last_backup_sources:\n  - {name: x, attribute: A, annotation: true, format: rfc3339}\n",
                "bad.yml:4:41: last_backup_sources[0].annotation: set either attribute or annotation: true, not both",
            ),
            (
                "last_backup_sources:\n  - {name: x, annotation: true, format: rfc3339}\n",
                "bad.yml:4:5: last_backup_sources[0]: a notes source needs match or regex to find its line",
            ),
            (
                "last_backup_sources:\n  - {name: x, attribute: A, format: rfc3339, zone: UTC}\n",
                "bad.yml:4:46: last_backup_sources[0]: unknown field `zone`, expected one of `name`, `attribute`, `annotation`, `match`, `regex`, `format`, `formats`",
            ),
            (
                "owner_labels: [owner, Owner]\n",
                "bad.yml:3:23: owner_labels[1]: \"Owner\" becomes label \"owner\", as owner_labels[0] does",
            ),
            (
                "owner_labels: [VM Name]\n",
                "bad.yml:3:16: owner_labels[0]: \"VM Name\" becomes label \"vm_name\", which vsphere_vm_info already has",
            ),
            (
                "consistency_required_attribute: \"\"\n",
                "bad.yml:3:33: consistency_required_attribute: must name a custom attribute",
            ),
            (
                "events: {read_back: forever}\n",
                "bad.yml:3:21: events.read_back: invalid duration \"forever\": expected a number and a unit (ms, s, m, h), like 10s or 1m30s",
            ),
            (
                "last_backup_event_users: [\"VSPHERE.LOCAL\\\\svc-veeam\", \"vsphere.local\\\\SVC-VEEAM\"]\n",
                "bad.yml:3:55: last_backup_event_users[1]: \"vsphere.local\\\\SVC-VEEAM\" is listed already as last_backup_event_users[0] (names match without regard to case)",
            ),
            (
                "last_backup_event_users: [svc-veeam@vsphere.local, \"\"]\n",
                "bad.yml:3:52: last_backup_event_users[1]: must name a user, as vCenter writes it in events (DOMAIN\\user or user@domain)",
            ),
            (
                "last_backup_event_users: [\" svc\"]\n",
                "bad.yml:3:27: last_backup_event_users[0]: \" svc\" has spaces around the name; vCenter writes none",
            ),
            (
                "last_backup_event_users: [svc]\nevents: {enabled: false}\n",
                "bad.yml:3:26: last_backup_event_users: needs the event follower, which events.enabled: false turns off",
            ),
            (
                "last_backup_event_users: svc\n",
                "bad.yml:3:26: last_backup_event_users: invalid type: string \"svc\", expected a sequence",
            ),
            (
                "events: {enabled: yes please}\n",
                "bad.yml:3:19: events.enabled: invalid type: string \"yes please\", expected a boolean",
            ),
        ];
        let mut failures = Vec::new();
        for (yaml, want) in cases {
            match load(yaml) {
                Ok(_) => failures.push(format!("{yaml}: loaded, want {want:?}")),
                Err(e) if e.to_string() != *want => {
                    failures.push(format!("{yaml}   got {:?}\n  want {want:?}", e.to_string()));
                }
                Err(_) => {}
            }
        }
        assert!(failures.is_empty(), "{}", failures.join("\n"));
    }
}
