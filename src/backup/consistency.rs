//! Achievable backup consistency: what a backup of a VM can be, given its power state, VMware
//! Tools and guest. A powered-off VM is application-consistent as it is. A running Windows
//! guest gets application-consistent (VSS) snapshots when Tools run and `disk.EnableUUID` is
//! TRUE; any guest with running Tools gets file-system-consistent (quiesced) ones; without
//! Tools a snapshot is only crash-consistent. A VM that cannot be snapshotted at all (a shared
//! SCSI bus, a multi-writer disk, PCI passthrough, Fault Tolerance) gets no image-level backup:
//! level none, whatever else holds.

/// A consistency level, from the weakest.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    /// No snapshot is possible, so no image-level backup at all.
    None,
    Crash,
    Filesystem,
    Application,
}

impl Level {
    /// The `level` label value.
    pub fn as_str(self) -> &'static str {
        match self {
            Level::None => "none",
            Level::Crash => "crash",
            Level::Filesystem => "filesystem",
            Level::Application => "application",
        }
    }

    /// A required level as written in a custom attribute: the label values, case-insensitive,
    /// and the usual short forms (`app`, `fs`, `file system`, `crash-consistent` …).
    pub fn parse(text: &str) -> Option<Level> {
        let normal: String = text
            .trim()
            .to_ascii_lowercase()
            .chars()
            .filter(|c| c.is_ascii_alphanumeric())
            .collect();
        let normal = normal.strip_suffix("consistent").unwrap_or(&normal);
        match normal {
            "application" | "app" | "applicationaware" => Some(Level::Application),
            "filesystem" | "fs" | "file" => Some(Level::Filesystem),
            "crash" => Some(Level::Crash),
            _ => None,
        }
    }
}

/// What the rule looks at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Facts<'a> {
    /// `runtime.powerState`.
    pub power_state: &'a str,
    /// Tools run (guestToolsRunning or guestToolsExecutingScripts).
    pub tools_running: bool,
    pub windows: bool,
    /// `disk.EnableUUID` from `config.extraConfig`, `None` when unset or not read.
    pub disk_enable_uuid: Option<bool>,
    /// A device or setting makes a snapshot impossible.
    pub snapshot_blocked: bool,
}

/// The best consistency a backup of the VM can get.
pub fn achievable(facts: &Facts<'_>) -> Level {
    if facts.snapshot_blocked {
        return Level::None;
    }
    if facts.power_state == "poweredOff" {
        return Level::Application;
    }
    if !facts.tools_running {
        return Level::Crash;
    }
    if facts.windows && facts.disk_enable_uuid == Some(true) {
        return Level::Application;
    }
    Level::Filesystem
}

/// A Windows guest: `guest.guestFamily` says so, or (Tools not reporting) `config.guestId`
/// starts with `win`.
pub fn is_windows(guest_family: Option<&str>, guest_id: &str) -> bool {
    match guest_family {
        Some(family) if !family.is_empty() => family == "windowsGuest",
        _ => guest_id.starts_with("win"),
    }
}

/// An extraConfig boolean as VMware writes them (`TRUE`, `true`, `1`; else false).
pub fn option_true(value: &str) -> bool {
    matches!(
        value.trim().to_ascii_lowercase().as_str(),
        "true" | "1" | "yes"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts(power: &str, tools: bool, windows: bool, uuid: Option<bool>) -> Facts<'_> {
        Facts {
            power_state: power,
            tools_running: tools,
            windows,
            disk_enable_uuid: uuid,
            snapshot_blocked: false,
        }
    }

    #[test]
    fn the_rule_gives_each_level_in_its_case() {
        let cases = [
            (facts("poweredOff", false, false, None), Level::Application),
            (
                facts("poweredOff", true, true, Some(false)),
                Level::Application,
            ),
            (
                facts("poweredOn", true, true, Some(true)),
                Level::Application,
            ),
            (
                facts("poweredOn", true, true, Some(false)),
                Level::Filesystem,
            ),
            (facts("poweredOn", true, true, None), Level::Filesystem),
            (
                facts("poweredOn", true, false, Some(true)),
                Level::Filesystem,
            ),
            (facts("poweredOn", false, true, Some(true)), Level::Crash),
            (facts("suspended", false, false, None), Level::Crash),
        ];
        for (f, want) in cases {
            assert_eq!(achievable(&f), want, "{f:?}");
            let blocked = Facts {
                snapshot_blocked: true,
                ..f
            };
            assert_eq!(achievable(&blocked), Level::None, "{blocked:?}");
        }
        assert!(Level::None < Level::Crash);
        assert_eq!(Level::None.as_str(), "none");
        assert_eq!(Level::parse("none"), None, "not a level to require");
    }

    #[test]
    fn required_levels_parse_in_their_usual_spellings_and_nothing_else() {
        for (text, want) in [
            ("application", Some(Level::Application)),
            (" Application-consistent ", Some(Level::Application)),
            ("APP", Some(Level::Application)),
            ("file system", Some(Level::Filesystem)),
            ("FS", Some(Level::Filesystem)),
            ("crash-consistent", Some(Level::Crash)),
            ("gold", None),
            ("", None),
        ] {
            assert_eq!(Level::parse(text), want, "{text:?}");
        }
    }

    #[test]
    fn windows_is_told_by_family_then_guest_id() {
        assert!(is_windows(Some("windowsGuest"), "otherGuest64"));
        assert!(!is_windows(Some("linuxGuest"), "windows9Server64Guest"));
        assert!(is_windows(None, "windows9Server64Guest"));
        assert!(is_windows(Some(""), "win2000ServGuest"));
        assert!(!is_windows(None, "rhel7_64Guest"));
        assert!(
            option_true("TRUE") && option_true("true") && !option_true("FALSE") && !option_true("")
        );
    }
}
