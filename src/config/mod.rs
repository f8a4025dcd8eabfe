//! The YAML configuration: strict serde structs (unknown keys are errors), validated once into
//! an immutable [`Config`]. Credentials are read here (from `password_file`, `password_env` or
//! `password`) into a [`Secret`] that never prints; CA files are checked to hold PEM
//! certificates. Every error names the file, the key path and, when known, the line.
//!
//! It does not connect to anything nor build TLS clients (see [`crate::vsphere`]), and it does
//! not decide when the configuration is (re)loaded (see [`crate::cli`]).

mod backup;
mod duration;
pub(crate) mod locate;
mod raw;
mod scalar;
mod tags;
#[cfg(test)]
mod tests;

use std::collections::{BTreeSet, HashMap};
use std::io;
use std::path::{Path, PathBuf};
use std::time::Duration;

use locate::{KeyPath, Seg, locate};
use raw::{RawConfig, RawPattern, RawVcenter};

pub use crate::backup::last_backup::default_sources;
/// Re-exported from the bottom layer, where the vSphere client can use it too.
pub use crate::secret::Secret;
pub use backup::{BackupConfig, EventsConfig, OwnerLabel, VM_INFO_LABELS};
pub use tags::{DEFAULT_TAGS_INTERVAL, TagLabel, TagsConfig};

#[derive(Debug, Clone, Default)]
pub struct Config {
    pub vcenters: Vec<VcenterConfig>,
    pub backup_snapshot_patterns: Vec<BackupPattern>,
    /// The backup checks' settings (last backup, blackout windows, consistency, owner labels,
    /// events).
    pub backup: BackupConfig,
    pub report: ReportConfig,
    /// The vSphere tags read from the Automation REST API (`tag_*` keys).
    pub tags: TagsConfig,
    /// Collectors turned off on the command line (`--no-collector.<name>`); not a YAML key.
    pub disabled_collectors: BTreeSet<String>,
}

/// `report:`: what the snapshot report (`/report`, the `report` command) calls a risk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReportConfig {
    /// A snapshot older than this is old (default 72 h).
    pub old_snapshot_age: Duration,
    /// A backup product's snapshot older than this is a leftover: the job that took it should
    /// have removed it long since (default 6 h).
    pub leftover_backup_age: Duration,
}

impl Default for ReportConfig {
    fn default() -> Self {
        ReportConfig {
            old_snapshot_age: Duration::from_secs(72 * 3600),
            leftover_backup_age: Duration::from_secs(6 * 3600),
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct VcenterConfig {
    /// The `vcenter` label and the `/probe?target=` name.
    pub name: String,
    /// The SDK URL, e.g. `https://vc01.example.com/sdk`.
    pub url: reqwest::Url,
    pub username: String,
    pub password: Secret,
    pub tls: TlsConfig,
    /// Timeout to establish a connection (default 10 s).
    pub connect_timeout: Duration,
    /// Timeout of every SOAP call (default 60 s); the update wait, a long poll, has its own.
    pub request_timeout: Duration,
    /// How long to wait after vCenter refused the credentials (`InvalidLogin`) before trying
    /// again (default 10 minutes): vCenter and Active Directory lock an account after a few
    /// failures, for everyone who uses it.
    pub login_retry_interval: Duration,
    /// The largest answer body read whole (default 256 MiB); a larger one fails that call
    /// instead of growing the exporter. A single value of a streamed answer is limited to
    /// 64 MiB, or to this when lower (`ClientOptions::max_value_size`).
    pub max_response_size: u64,
    /// The host I/O counters (`perf_*` keys).
    pub perf: PerfConfig,
}

/// How the perf source reads a vCenter's host counters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PerfConfig {
    /// Time between two cycles (`perf_interval`, default 20 s: vCenter's real-time period).
    pub interval: Duration,
    /// At most this much history per cycle (`perf_window`, default 60 s, 20 s to 1 h).
    pub window: Duration,
    /// A cap on metrics per QueryPerf below the vCenter's `config.vpxd.stats.maxQueryMetrics`
    /// (`perf_max_query_metrics`; `None`: the vCenter's, 64 when it has none).
    pub max_query_metrics: Option<usize>,
    /// QueryPerf requests in flight at once (`perf_concurrency`, default 4, at most 32).
    pub concurrency: usize,
}

impl Default for PerfConfig {
    fn default() -> Self {
        PerfConfig {
            interval: Duration::from_secs(20),
            window: Duration::from_secs(60),
            max_query_metrics: None,
            concurrency: 4,
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct TlsConfig {
    /// A PEM bundle of CA certificates, resolved against the configuration file's directory and
    /// checked to hold at least one certificate when the configuration was loaded.
    pub ca_file: Option<PathBuf>,
    pub insecure_skip_verify: bool,
}

#[derive(Debug, Clone)]
pub struct BackupPattern {
    pub product: String,
    pub regex: regex::Regex,
}

/// Default timeout to establish a connection to a vCenter.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Default timeout of one SOAP call.
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(60);
/// Default wait before logging in again after vCenter refused the credentials.
pub const DEFAULT_LOGIN_RETRY_INTERVAL: Duration = Duration::from_secs(600);
/// Default cap on an answer read whole, or on one value of a streamed answer: far above the
/// largest real answer (a layoutEx of a VM with hundreds of disks is a few MB).
pub const DEFAULT_MAX_RESPONSE_SIZE: u64 = 256 << 20;

/// The snapshot names that backup products give their temporary snapshots, used when the
/// configuration has no `backup_snapshot_patterns` key. Matched case-insensitively, unanchored.
pub const DEFAULT_BACKUP_SNAPSHOT_PATTERNS: [(&str, &str); 5] = [
    ("veeam", "VEEAM BACKUP TEMPORARY SNAPSHOT"),
    ("vcb", "_VCB-BACKUP_"),
    ("netbackup", "NBU_SNAPSHOT"),
    ("commvault", "GX_BACKUP"),
    ("rubrik", "RUBRIK"),
];

/// Why a configuration could not be loaded. The Display form is one line:
/// `file:line:column: key.path: what is wrong`, without any secret.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The configuration file itself could not be read.
    #[error("{}: cannot read the configuration file: {source}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    /// The YAML is malformed or does not fit the schema (unknown key, missing key, wrong type,
    /// bad URL, duration, name or regex). `message` starts with the key path, as serde_yaml_ng
    /// gives it.
    #[error("{origin}{}: {message}", at(*line, *column))]
    Parse {
        origin: String,
        line: Option<usize>,
        column: Option<usize>,
        message: String,
    },
    /// The YAML parsed but a value is unusable: missing credentials, unset environment variable,
    /// unreadable file, duplicate name, empty list.
    #[error("{origin}{}: {key}: {message}", at(*line, *column))]
    Invalid {
        origin: String,
        key: String,
        line: Option<usize>,
        column: Option<usize>,
        message: String,
    },
}

impl ConfigError {
    /// The line (from 1) of the offending value, when the YAML parser knows it.
    pub fn line(&self) -> Option<usize> {
        match self {
            ConfigError::Read { .. } => None,
            ConfigError::Parse { line, .. } | ConfigError::Invalid { line, .. } => *line,
        }
    }
}

/// serde quotes the offending value (`invalid type: string "…"`, ``unknown field `…` ``). A
/// quote left open swallows the lines after it, passwords included, into one string that would
/// then be printed; such a value (one that holds `key: value` text, or is long) is described
/// instead of quoted.
fn without_swallowed_yaml(message: &str) -> String {
    let message = describe_quoted(message, "string \"", '"');
    describe_quoted(&message, "field `", '`')
}

/// `message` with the value quoted after `opener` (up to the first `closer` that is not
/// escaped) replaced by a description when it looks like swallowed YAML.
fn describe_quoted(message: &str, opener: &str, closer: char) -> String {
    let Some((head, rest)) = message.split_once(opener) else {
        return message.to_owned();
    };
    let mut escaped = false;
    let end = rest.char_indices().find_map(|(i, c)| {
        let found = c == closer && !escaped;
        escaped = c == '\\' && !escaped;
        found.then_some(i)
    });
    let Some(end) = end else {
        return message.to_owned();
    };
    let value = &rest[..end];
    if !value.contains(": ") && value.chars().count() <= 64 {
        return message.to_owned();
    }
    let what = opener.split(' ').next().unwrap_or("value");
    format!(
        "{head}{what} of {} characters holding YAML (a quote left open?){}",
        value.chars().count(),
        &rest[end + closer.len_utf8()..]
    )
}

/// `:line:column` when the position is known, else nothing.
fn at(line: Option<usize>, column: Option<usize>) -> String {
    match (line, column) {
        (Some(line), Some(column)) => format!(":{line}:{column}"),
        (Some(line), None) => format!(":{line}"),
        _ => String::new(),
    }
}

impl Config {
    /// Reads, parses and validates the configuration file at `path`. Relative `password_file`
    /// and `ca_file` paths are resolved against the file's directory.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        let base_dir = path.parent().unwrap_or(Path::new(""));
        Loader::new(&text, &path.display().to_string(), base_dir).load()
    }

    /// Parses and validates `text`; `origin` names it in errors (the file name). Relative paths
    /// in it are resolved against `origin`'s directory (the working directory when it has none).
    pub fn from_yaml(text: &str, origin: &str) -> Result<Config, ConfigError> {
        let base_dir = Path::new(origin).parent().unwrap_or(Path::new(""));
        Loader::new(text, origin, base_dir).load()
    }

    /// The configured vCenter called `name`.
    pub fn vcenter(&self, name: &str) -> Option<&VcenterConfig> {
        self.vcenters.iter().find(|v| v.name == name)
    }

    /// The `product` of the first backup pattern matching a snapshot name, else "".
    pub fn backup_product(&self, snapshot_name: &str) -> &str {
        self.backup_snapshot_patterns
            .iter()
            .find(|p| p.regex.is_match(snapshot_name))
            .map_or("", |p| p.product.as_str())
    }
}

/// One load: the text, where it came from, and what relative paths are relative to.
struct Loader<'a> {
    text: &'a str,
    origin: &'a str,
    base_dir: &'a Path,
}

impl<'a> Loader<'a> {
    fn new(text: &'a str, origin: &'a str, base_dir: &'a Path) -> Self {
        Loader {
            text,
            origin,
            base_dir,
        }
    }

    fn load(&self) -> Result<Config, ConfigError> {
        let raw = self.parse()?;
        if raw.vcenters.is_empty() {
            return Err(self.invalid(
                &[Seg::Key("vcenters")],
                "must list at least one vCenter".to_owned(),
            ));
        }
        self.check_unique_names(&raw.vcenters)?;
        let vcenters = raw
            .vcenters
            .into_iter()
            .enumerate()
            .map(|(index, vcenter)| self.vcenter(index, vcenter))
            .collect::<Result<Vec<_>, _>>()?;
        let backup_snapshot_patterns = match raw.backup_snapshot_patterns {
            Some(patterns) => self.patterns(patterns)?,
            None => self.default_patterns()?,
        };
        let backup = self.backup(backup::RawBackup {
            last_backup_sources: raw.last_backup_sources,
            last_backup_timezone: raw.last_backup_timezone,
            blackout_windows: raw.blackout_windows,
            consistency_required_attribute: raw.consistency_required_attribute,
            owner_labels: raw.owner_labels,
            events: raw.events,
            last_backup_event_users: raw.last_backup_event_users,
        })?;
        let tags = self.tags(tags::RawTags {
            tags_interval: raw.tags_interval,
            tag_labels: raw.tag_labels,
            tag_info_categories: raw.tag_info_categories,
            backup_policy_categories: raw.backup_policy_categories,
        })?;
        self.check_tag_labels(&tags, &backup)?;
        let defaults = ReportConfig::default();
        let report = ReportConfig {
            old_snapshot_age: raw
                .report
                .old_snapshot_age
                .map_or(defaults.old_snapshot_age, |t| t.0),
            leftover_backup_age: raw
                .report
                .leftover_backup_age
                .map_or(defaults.leftover_backup_age, |t| t.0),
        };
        Ok(Config {
            vcenters,
            backup_snapshot_patterns,
            report,
            disabled_collectors: BTreeSet::new(),
            backup,
            tags,
        })
    }

    /// A tag label may take none of the labels `vsphere_vm_info` has already, owner labels
    /// included.
    fn check_tag_labels(
        &self,
        tags: &TagsConfig,
        backup: &BackupConfig,
    ) -> Result<(), ConfigError> {
        for (index, tag) in tags.labels.iter().enumerate() {
            let (category, label) = (&tag.category, &tag.label);
            let clash = if VM_INFO_LABELS.contains(&label.as_str()) {
                Some("which vsphere_vm_info already has".to_owned())
            } else {
                backup
                    .owner_labels
                    .iter()
                    .position(|o| &o.label == label)
                    .map(|other| format!("as owner_labels[{other}] does"))
            };
            if let Some(clash) = clash {
                let message = format!("{category:?} becomes label {label:?}, {clash}");
                return Err(self.invalid(&[Seg::Key("tag_labels"), Seg::Index(index)], message));
            }
        }
        Ok(())
    }

    fn parse(&self) -> Result<RawConfig, ConfigError> {
        if self.text.lines().all(|line| {
            let line = line.trim();
            line.is_empty() || line.starts_with('#') || line == "---"
        }) {
            return Err(ConfigError::Parse {
                origin: self.origin.to_owned(),
                line: None,
                column: None,
                message: "the configuration is empty; it needs a vcenters list".to_owned(),
            });
        }
        serde_yaml_ng::from_str(self.text).map_err(|e| self.parse_error(&e))
    }

    /// The serde_yaml_ng error as `Parse`, its position moved out of the message.
    fn parse_error(&self, error: &serde_yaml_ng::Error) -> ConfigError {
        let location = error.location();
        let mut message = error.to_string();
        if let Some(location) = &location {
            let suffix = format!(" at line {} column {}", location.line(), location.column());
            message = message.replacen(&suffix, "", 1);
        }
        ConfigError::Parse {
            origin: self.origin.to_owned(),
            line: location.as_ref().map(|l| l.line()),
            column: location.as_ref().map(|l| l.column()),
            message: without_swallowed_yaml(&message),
        }
    }

    fn invalid(&self, path: &[Seg<'_>], message: String) -> ConfigError {
        let position = locate(self.text, path);
        ConfigError::Invalid {
            origin: self.origin.to_owned(),
            key: KeyPath(path).to_string(),
            line: position.map(|(line, _)| line),
            column: position.map(|(_, column)| column),
            message,
        }
    }

    fn check_unique_names(&self, vcenters: &[RawVcenter]) -> Result<(), ConfigError> {
        let mut first_index: HashMap<&str, usize> = HashMap::new();
        for (index, vcenter) in vcenters.iter().enumerate() {
            let name = vcenter.name.0.as_str();
            if let Some(first) = first_index.insert(name, index) {
                let path = [Seg::Key("vcenters"), Seg::Index(index), Seg::Key("name")];
                let message = format!("duplicate name {name:?} (also vcenters[{first}].name)");
                return Err(self.invalid(&path, message));
            }
        }
        Ok(())
    }

    fn vcenter(&self, index: usize, raw: RawVcenter) -> Result<VcenterConfig, ConfigError> {
        let key = |name| [Seg::Key("vcenters"), Seg::Index(index), Seg::Key(name)];
        if raw.username.trim().is_empty() {
            return Err(self.invalid(&key("username"), "must not be empty".to_owned()));
        }
        let password = self.password(index, &raw)?;
        let perf = self.perf(index, &raw)?;
        let ca_file = match &raw.tls.ca_file {
            Some(path) => {
                let path_key = [
                    Seg::Key("vcenters"),
                    Seg::Index(index),
                    Seg::Key("tls"),
                    Seg::Key("ca_file"),
                ];
                Some(self.ca_file(path).map_err(|m| self.invalid(&path_key, m))?)
            }
            None => None,
        };
        Ok(VcenterConfig {
            name: raw.name.0,
            url: raw.url.0,
            username: raw.username,
            password,
            tls: TlsConfig {
                ca_file,
                insecure_skip_verify: raw.tls.insecure_skip_verify,
            },
            connect_timeout: raw.connect_timeout.map_or(DEFAULT_CONNECT_TIMEOUT, |t| t.0),
            request_timeout: raw.request_timeout.map_or(DEFAULT_REQUEST_TIMEOUT, |t| t.0),
            login_retry_interval: raw
                .login_retry_interval
                .map_or(DEFAULT_LOGIN_RETRY_INTERVAL, |t| t.0),
            max_response_size: raw
                .max_response_size
                .map_or(DEFAULT_MAX_RESPONSE_SIZE, |s| s.0),
            perf,
        })
    }

    /// The `perf_*` keys of vCenter `index`, checked against what vCenter's real-time
    /// statistics allow.
    fn perf(&self, index: usize, raw: &RawVcenter) -> Result<PerfConfig, ConfigError> {
        let key = |name| [Seg::Key("vcenters"), Seg::Index(index), Seg::Key(name)];
        let defaults = PerfConfig::default();
        let window = raw.perf_window.as_ref().map_or(defaults.window, |t| t.0);
        if window < Duration::from_secs(20) || window > Duration::from_secs(3600) {
            return Err(self.invalid(
                &key("perf_window"),
                "must be between 20s (one real-time sample) and 1h (the real-time samples vCenter keeps)".to_owned(),
            ));
        }
        let concurrency = raw.perf_concurrency.unwrap_or(4);
        if !(1..=32).contains(&concurrency) {
            return Err(self.invalid(
                &key("perf_concurrency"),
                "must be between 1 and 32".to_owned(),
            ));
        }
        if raw.perf_max_query_metrics == Some(0) {
            return Err(self.invalid(
                &key("perf_max_query_metrics"),
                "must be at least 1".to_owned(),
            ));
        }
        Ok(PerfConfig {
            interval: raw
                .perf_interval
                .as_ref()
                .map_or(defaults.interval, |t| t.0),
            window,
            max_query_metrics: raw.perf_max_query_metrics.map(|n| n as usize),
            concurrency: concurrency as usize,
        })
    }

    /// The password from exactly one of `password_file`, `password_env` and `password`.
    fn password(&self, index: usize, raw: &RawVcenter) -> Result<Secret, ConfigError> {
        let key = |name| [Seg::Key("vcenters"), Seg::Index(index), Seg::Key(name)];
        match (&raw.password_file, &raw.password_env, &raw.password) {
            (Some(path), None, None) => self
                .password_file(path)
                .map_err(|m| self.invalid(&key("password_file"), m)),
            (None, Some(variable), None) => password_env(variable, std::env::var(variable))
                .map_err(|m| self.invalid(&key("password_env"), m)),
            (None, None, Some(inline)) if inline.0.expose().is_empty() => {
                Err(self.invalid(&key("password"), "must not be empty".to_owned()))
            }
            (None, None, Some(inline)) => {
                tracing::warn!(
                    vcenter = raw.name.0.as_str(),
                    "password is written in the configuration file; prefer password_file or password_env"
                );
                Ok(inline.0.clone())
            }
            (None, None, None) => {
                let message =
                    "no password: set one of password_file, password_env or password".to_owned();
                Err(self.invalid(&[Seg::Key("vcenters"), Seg::Index(index)], message))
            }
            (file, env, inline) => {
                let given: Vec<&str> = [
                    ("password_file", file.is_some()),
                    ("password_env", env.is_some()),
                    ("password", inline.is_some()),
                ]
                .into_iter()
                .filter_map(|(name, set)| set.then_some(name))
                .collect();
                let message = format!(
                    "set only one of password_file, password_env and password (found {})",
                    given.join(", ")
                );
                let second = given.get(1).copied().unwrap_or("password");
                Err(self.invalid(&key(second), message))
            }
        }
    }

    fn resolve(&self, path: &Path) -> PathBuf {
        self.base_dir.join(path)
    }

    /// The file's contents without one trailing line ending (`\n` or `\r\n`).
    fn password_file(&self, path: &Path) -> Result<Secret, String> {
        let path = self.resolve(path);
        let bytes = std::fs::read(&path)
            .map_err(|e| format!("cannot read {}: {}", path.display(), io_reason(&e)))?;
        let text = String::from_utf8(bytes)
            .map_err(|_| format!("{} is not valid UTF-8", path.display()))?;
        let password = text
            .strip_suffix('\n')
            .map_or(text.as_str(), |t| t.strip_suffix('\r').unwrap_or(t));
        if password.is_empty() {
            return Err(format!("{} is empty", path.display()));
        }
        if let Some(warning) = loose_permissions(&path) {
            tracing::warn!(file = %path.display(), "{warning}");
        }
        Ok(Secret::new(password))
    }

    /// The resolved path of a readable PEM bundle holding at least one certificate.
    fn ca_file(&self, path: &Path) -> Result<PathBuf, String> {
        let path = self.resolve(path);
        let bytes = std::fs::read(&path)
            .map_err(|e| format!("cannot read {}: {}", path.display(), io_reason(&e)))?;
        let certificates = reqwest::Certificate::from_pem_bundle(&bytes)
            .map_err(|_| format!("{} holds an invalid PEM certificate", path.display()))?;
        if certificates.is_empty() {
            return Err(format!("{} holds no PEM certificate", path.display()));
        }
        Ok(path)
    }

    fn patterns(&self, raw: Vec<RawPattern>) -> Result<Vec<BackupPattern>, ConfigError> {
        raw.into_iter()
            .enumerate()
            .map(|(index, pattern)| {
                if pattern.product.trim().is_empty() {
                    let path = [
                        Seg::Key("backup_snapshot_patterns"),
                        Seg::Index(index),
                        Seg::Key("product"),
                    ];
                    return Err(self.invalid(&path, "must not be empty".to_owned()));
                }
                Ok(BackupPattern {
                    product: pattern.product,
                    regex: pattern.regex.0,
                })
            })
            .collect()
    }

    fn default_patterns(&self) -> Result<Vec<BackupPattern>, ConfigError> {
        DEFAULT_BACKUP_SNAPSHOT_PATTERNS
            .iter()
            .map(|(product, literal)| {
                let regex = scalar::compile_regex(&format!("(?i){}", regex::escape(literal)))
                    .map_err(|m| {
                        self.invalid(
                            &[Seg::Key("backup_snapshot_patterns")],
                            format!("built-in pattern of {product}: {m}"),
                        )
                    })?;
                Ok(BackupPattern {
                    product: (*product).to_owned(),
                    regex,
                })
            })
            .collect()
    }
}

/// The password from `password_env`, given the variable's `value`: set and not empty.
fn password_env(
    variable: &str,
    value: Result<String, std::env::VarError>,
) -> Result<Secret, String> {
    if variable.is_empty() {
        return Err("must name an environment variable".to_owned());
    }
    match value {
        Ok(value) if value.is_empty() => Err(format!("environment variable {variable} is empty")),
        Ok(value) => Ok(Secret::new(value)),
        Err(std::env::VarError::NotPresent) => {
            Err(format!("environment variable {variable} is not set"))
        }
        Err(std::env::VarError::NotUnicode(_)) => Err(format!(
            "environment variable {variable} is not valid UTF-8"
        )),
    }
}

/// A warning when the password file at `path` can be read by others, or by a group this
/// process is not in. A file of the exporter's own group (`root:vsphere_backup_exporter 0640`,
/// a Kubernetes Secret mounted with the pod's `fsGroup`) is how a service is given a secret.
#[cfg(unix)]
fn loose_permissions(path: &Path) -> Option<String> {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    let meta = std::fs::metadata(path).ok()?;
    let groups = own_groups();
    let readable = readable_by(meta.permissions().mode(), meta.gid(), &groups)?;
    Some(format!(
        "password file {} is readable by {readable} (mode {:03o}); fix: chmod 600 {}",
        path.display(),
        meta.permissions().mode() & 0o777,
        path.display()
    ))
}

/// Who beyond its owner can read a file of `mode` and group `gid`, for a process in `groups`:
/// `None` when nobody else, or only a group the process is in.
#[cfg(unix)]
fn readable_by(mode: u32, gid: u32, groups: &[u32]) -> Option<&'static str> {
    if mode & 0o004 != 0 {
        Some("everyone")
    } else if mode & 0o040 != 0 && !groups.contains(&gid) {
        Some("its group")
    } else {
        None
    }
}

/// The process's effective and supplementary group ids, read from `/proc/self/status` (no
/// `unsafe` for getegid); empty where there is no /proc, so every group counts as foreign.
#[cfg(unix)]
fn own_groups() -> Vec<u32> {
    let Ok(status) = std::fs::read_to_string("/proc/self/status") else {
        return Vec::new();
    };
    let ids = |prefix: &str| -> Vec<u32> {
        status
            .lines()
            .find_map(|l| l.strip_prefix(prefix))
            .map(|rest| {
                rest.split_whitespace()
                    .filter_map(|g| g.parse().ok())
                    .collect()
            })
            .unwrap_or_default()
    };
    let mut groups: Vec<u32> = ids("Gid:").into_iter().skip(1).take(1).collect();
    groups.extend(ids("Groups:"));
    groups
}

#[cfg(not(unix))]
fn loose_permissions(_path: &Path) -> Option<String> {
    None
}

/// An I/O error's reason without the "(os error N)" noise.
fn io_reason(error: &io::Error) -> String {
    let text = error.to_string();
    match text.find(" (os error") {
        Some(end) => text[..end].to_owned(),
        None => text,
    }
}
