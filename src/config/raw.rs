//! The configuration file as written: strict serde structs (unknown keys are errors) and the
//! scalar types that check themselves while they are parsed, so that serde_yaml_ng stamps their
//! errors with the key path and position (`bad.yml:3:10: vcenters[0].url: …`). The scalars the
//! backup checks' keys share with it (durations, regular expressions) and the [`Scalar`]
//! machinery are in [`super::scalar`].
//!
//! Nothing here reads files or the environment: credentials and CA files are checked in
//! [`super`], once the whole file has parsed.

use std::fmt;
use std::path::PathBuf;

use serde::Deserialize;

use super::Secret;
use super::backup::{RawEvents, RawSource, RawWindow, Zone};
use super::scalar::{PatternRegex, Scalar, Timeout, deserialize_scalar};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a mapping with a vcenters list")]
pub(crate) struct RawConfig {
    pub(crate) vcenters: Vec<RawVcenter>,
    /// Absent (or null) means the built-in defaults; an empty list means none.
    #[serde(default)]
    pub(crate) backup_snapshot_patterns: Option<Vec<RawPattern>>,
    // The backup checks' keys (see super::backup); serde cannot flatten with deny_unknown_fields.
    #[serde(default)]
    pub(crate) last_backup_sources: Option<Vec<RawSource>>,
    #[serde(default)]
    pub(crate) last_backup_timezone: Option<Zone>,
    #[serde(default)]
    pub(crate) blackout_windows: Vec<RawWindow>,
    #[serde(default)]
    pub(crate) consistency_required_attribute: Option<String>,
    #[serde(default)]
    pub(crate) owner_labels: Vec<String>,
    #[serde(default)]
    pub(crate) events: Option<RawEvents>,
    #[serde(default)]
    pub(crate) last_backup_event_users: Vec<String>,
    #[serde(default)]
    pub(crate) report: RawReport,
    // The tag keys (see super::tags).
    #[serde(default)]
    pub(crate) tags_interval: Option<Timeout>,
    #[serde(default)]
    pub(crate) tag_labels: Vec<String>,
    #[serde(default)]
    pub(crate) tag_info_categories: Vec<String>,
    #[serde(default)]
    pub(crate) backup_policy_categories: Vec<String>,
}

/// `report:`: the thresholds of the snapshot report's risk lines and highlights.
#[derive(Debug, Default, Deserialize)]
#[serde(
    deny_unknown_fields,
    expecting = "a mapping with old_snapshot_age and leftover_backup_age"
)]
pub(crate) struct RawReport {
    #[serde(default)]
    pub(crate) old_snapshot_age: Option<Timeout>,
    #[serde(default)]
    pub(crate) leftover_backup_age: Option<Timeout>,
}

#[derive(Debug, Deserialize)]
#[serde(
    deny_unknown_fields,
    expecting = "a vCenter: a mapping with name, url, username, …"
)]
pub(crate) struct RawVcenter {
    pub(crate) name: Name,
    pub(crate) url: SdkUrl,
    pub(crate) username: String,
    #[serde(default)]
    pub(crate) password_file: Option<PathBuf>,
    #[serde(default)]
    pub(crate) password_env: Option<String>,
    #[serde(default)]
    pub(crate) password: Option<SecretValue>,
    #[serde(default)]
    pub(crate) tls: RawTls,
    #[serde(default)]
    pub(crate) connect_timeout: Option<Timeout>,
    #[serde(default)]
    pub(crate) request_timeout: Option<Timeout>,
    #[serde(default)]
    pub(crate) login_retry_interval: Option<Timeout>,
    #[serde(default)]
    pub(crate) max_response_size: Option<ByteSize>,
    #[serde(default)]
    pub(crate) perf_interval: Option<Timeout>,
    #[serde(default)]
    pub(crate) perf_window: Option<Timeout>,
    #[serde(default)]
    pub(crate) perf_max_query_metrics: Option<u32>,
    #[serde(default)]
    pub(crate) perf_concurrency: Option<u32>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(
    deny_unknown_fields,
    expecting = "a mapping with ca_file and insecure_skip_verify"
)]
pub(crate) struct RawTls {
    #[serde(default)]
    pub(crate) ca_file: Option<PathBuf>,
    #[serde(default)]
    pub(crate) insecure_skip_verify: bool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a mapping with product and regex")]
pub(crate) struct RawPattern {
    pub(crate) product: String,
    pub(crate) regex: PatternRegex,
}

deserialize_scalar!(Name, SdkUrl, ByteSize, SecretValue);

/// A vCenter's name: the `vcenter` label and the `/probe?target=` value.
#[derive(Debug)]
pub(crate) struct Name(pub(crate) String);

impl Scalar for Name {
    const EXPECTING: &'static str = "a name made of letters, digits, '_', '.' and '-'";

    fn parse(text: &str) -> Result<Self, String> {
        let allowed = |c: char| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-');
        if text.is_empty() || !text.chars().all(allowed) {
            return Err(format!(
                "invalid name {text:?}: use only letters, digits, '_', '.' and '-'"
            ));
        }
        Ok(Name(text.to_owned()))
    }
}

/// The vSphere SDK endpoint: http or https, with a host and without credentials.
#[derive(Debug)]
pub(crate) struct SdkUrl(pub(crate) reqwest::Url);

impl Scalar for SdkUrl {
    const EXPECTING: &'static str = "a URL like https://vcenter.example.com/sdk";

    // The URL's text is never repeated: it could hold a password.
    fn parse(text: &str) -> Result<Self, String> {
        let url = reqwest::Url::parse(text).map_err(|e| format!("invalid URL: {e}"))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err("invalid URL: scheme must be http or https".to_owned());
        }
        if url.host_str().is_none_or(str::is_empty) {
            return Err("invalid URL: no host".to_owned());
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(
                "invalid URL: must not hold credentials; use username and password_file".to_owned(),
            );
        }
        sdk_path(url).map(SdkUrl)
    }
}

/// vCenter's SOAP endpoint is `/sdk`: a bare host (as the Python vmware_exporter takes) gets it
/// added; any other path is refused with the fix, rather than failing later with a 404.
fn sdk_path(mut url: reqwest::Url) -> Result<reqwest::Url, String> {
    match url.path().trim_end_matches('/') {
        "" => {
            url.set_path("/sdk");
            Ok(url)
        }
        "/sdk" => {
            url.set_path("/sdk");
            Ok(url)
        }
        _ => Err(
            "invalid URL: the path must be /sdk (vCenter's SOAP endpoint), e.g. https://vc01.example.com/sdk"
                .to_owned(),
        ),
    }
}

/// A size in bytes: a number with an optional unit (`KiB`, `MiB`, `GiB`), e.g. `256MiB`.
#[derive(Debug)]
pub(crate) struct ByteSize(pub(crate) u64);

impl Scalar for ByteSize {
    const EXPECTING: &'static str = "a size like 256MiB";

    fn parse(text: &str) -> Result<Self, String> {
        let text = text.trim();
        let split = text
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(text.len());
        let (number, unit) = text.split_at(split);
        let number: u64 = number.parse().map_err(|_| {
            format!("invalid size {text:?}: expected a number and a unit, like 256MiB")
        })?;
        let factor: u64 = match unit.trim() {
            "" | "B" => 1,
            "KiB" => 1 << 10,
            "MiB" => 1 << 20,
            "GiB" => 1 << 30,
            other => {
                return Err(format!(
                    "invalid size {text:?}: unknown unit {other:?} (B, KiB, MiB, GiB)"
                ));
            }
        };
        match number.checked_mul(factor) {
            Some(0) => Err(format!("invalid size {text:?}: must be greater than zero")),
            Some(bytes) => Ok(ByteSize(bytes)),
            None => Err(format!("invalid size {text:?}: too large")),
        }
    }
}

/// An inline `password:`; any scalar is taken as text, and no error ever repeats it.
pub(crate) struct SecretValue(pub(crate) Secret);

impl fmt::Debug for SecretValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.0, f)
    }
}

impl Scalar for SecretValue {
    const EXPECTING: &'static str = "a string";

    fn parse(text: &str) -> Result<Self, String> {
        Ok(SecretValue(Secret::new(text)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sdk_url_never_repeats_the_url() {
        let error = SdkUrl::parse("https://admin:hunter2@vc01/sdk").err();
        assert_eq!(
            error.as_deref(),
            Some("invalid URL: must not hold credentials; use username and password_file")
        );
        for text in [
            "hunter2",
            "hunter2:x",
            "ftp://hunter2/sdk",
            "http://:hunter2@",
        ] {
            let error = SdkUrl::parse(text).err().unwrap_or_default();
            assert!(!error.is_empty(), "{text} accepted");
            assert!(!error.contains("hunter2"), "{error}");
        }
    }
}
