//! The web configuration file (`--web.config.file`) in the Prometheus exporter-toolkit format:
//! `tls_server_config`, `http_server_config.headers` and `basic_auth_users`. Strict serde
//! structs (unknown keys are errors) validated once into an immutable [`WebConfig`]; the
//! certificate, key and client CA are read and checked here too (a key that does not match its
//! certificate is an error at load, not at the first handshake). Errors are
//! [`ConfigError`]s: `file:line:column: key: what is wrong`, never with a password hash or a key.
//!
//! It does not listen, run handshakes nor check passwords (see [`crate::server`]), and it does
//! not decide when the file is (re)read (see [`crate::cli`]).
//!
//! Differences from exporter-toolkit, each refused with an error naming the key rather than
//! ignored: TLS 1.0/1.1, CBC cipher suites and the P-521 curve (rustls implements none of them),
//! `client_allowed_sans` and `rate_limit` (not implemented). `http2` is accepted; the server
//! speaks HTTP/1.1 only.

mod raw;
#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use hyper::header::{
    CONTENT_SECURITY_POLICY, HeaderName, HeaderValue, STRICT_TRANSPORT_SECURITY,
    X_CONTENT_TYPE_OPTIONS, X_FRAME_OPTIONS, X_XSS_PROTECTION,
};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::sign::CertifiedKey;
use rustls::{CipherSuite, RootCertStore};

use crate::config::locate::{KeyPath, Seg, locate};
use crate::config::{ConfigError, Secret};
pub use raw::{ClientAuth, Curve, TlsVersion};
use raw::{RawHttp, RawTls, RawWebConfig, SecretText};

/// A validated web configuration. The default is plain HTTP without authentication.
#[derive(Debug, Clone, Default)]
pub struct WebConfig {
    /// TLS, when `tls_server_config` names a certificate; else plain HTTP.
    pub tls: Option<TlsServerConfig>,
    /// User name → bcrypt hash. Empty: no authentication.
    pub basic_auth_users: BTreeMap<String, PasswordHash>,
    /// Extra headers on every response (`http_server_config.headers`).
    pub headers: Vec<(HeaderName, HeaderValue)>,
}

/// A bcrypt hash from `basic_auth_users`, checked to parse; Debug prints `<secret>`.
#[derive(Clone, PartialEq, Eq)]
pub struct PasswordHash(Secret);

impl PasswordHash {
    /// The hash, for the one place that checks a password against it.
    pub fn expose(&self) -> &str {
        self.0.expose()
    }
}

impl std::fmt::Debug for PasswordHash {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("<secret>")
    }
}

/// Where a PEM block comes from: a file (re-read when it changes) or the web config itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Pem {
    /// An absolute path, or relative to the working directory.
    File(PathBuf),
    Inline(Secret),
}

impl Pem {
    /// The file behind it, if any.
    pub fn path(&self) -> Option<&Path> {
        match self {
            Pem::File(path) => Some(path),
            Pem::Inline(_) => None,
        }
    }

    /// The PEM text; `key` names it in errors (`cert_file`, `key`, …).
    fn read(&self, key: &str) -> Result<Vec<u8>, MaterialError> {
        match self {
            Pem::Inline(text) => Ok(text.expose().as_bytes().to_vec()),
            Pem::File(path) => std::fs::read(path).map_err(|e| {
                MaterialError::new(
                    key,
                    format!("cannot read {}: {}", path.display(), io_reason(&e)),
                )
            }),
        }
    }

    fn describe(&self, key: &str) -> String {
        match self {
            Pem::File(path) => format!("{key} {}", path.display()),
            Pem::Inline(_) => key.to_owned(),
        }
    }
}

/// `tls_server_config` once validated: where the certificate, key and client CA are, and the
/// protocol settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsServerConfig {
    pub cert: Pem,
    pub key: Pem,
    pub client_auth: ClientAuth,
    /// Required by the verifying client auth types, refused with `NoClientCert`.
    pub client_ca: Option<Pem>,
    pub min_version: TlsVersion,
    pub max_version: TlsVersion,
    /// The TLS 1.2 suites allowed, in preference order; empty: rustls' defaults. TLS 1.3 suites
    /// are not configurable (as in Go).
    pub cipher_suites: Vec<CipherSuite>,
    /// Choose the suite by the server's order rather than the client's (default true).
    pub prefer_server_cipher_suites: bool,
    /// Key exchange groups, in preference order; empty: rustls' defaults.
    pub curve_preferences: Vec<Curve>,
}

/// What the TLS files hold, read and checked: the certificate chain with its key (they match)
/// and the client CAs.
#[derive(Debug, Clone)]
pub struct TlsMaterial {
    pub certified_key: Arc<CertifiedKey>,
    pub client_roots: Option<Arc<RootCertStore>>,
}

/// Why the TLS files could not be used; `key` is the web config key that names the file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{key}: {message}")]
pub struct MaterialError {
    pub key: String,
    pub message: String,
}

impl MaterialError {
    fn new(key: &str, message: String) -> Self {
        MaterialError {
            key: key.to_owned(),
            message,
        }
    }
}

impl TlsServerConfig {
    /// The web config keys of the certificate, key and client CA, for errors.
    fn keys(&self) -> (&'static str, &'static str, &'static str) {
        (
            pem_key(&self.cert, "cert_file", "cert"),
            pem_key(&self.key, "key_file", "key"),
            self.client_ca.as_ref().map_or("client_ca_file", |ca| {
                pem_key(ca, "client_ca_file", "client_ca")
            }),
        )
    }

    /// Reads and checks the certificate chain, the key and the client CAs. Blocking file I/O:
    /// at load, or off the async workers when the files change.
    pub fn read_material(&self) -> Result<TlsMaterial, MaterialError> {
        let (cert_key, key_key, ca_key) = self.keys();
        let chain = certificates(&self.cert.read(cert_key)?)
            .map_err(|m| MaterialError::new(cert_key, m))?;
        let key_pem = self.key.read(key_key)?;
        let key = PrivateKeyDer::from_pem_slice(&key_pem).map_err(|_| {
            MaterialError::new(
                key_key,
                "holds no PEM private key (PKCS#8, PKCS#1 or SEC1)".to_owned(),
            )
        })?;
        let provider = rustls::crypto::aws_lc_rs::default_provider();
        let certified_key = CertifiedKey::from_der(chain, key, &provider).map_err(|e| {
            let message = match e {
                rustls::Error::InconsistentKeys(_) => format!(
                    "does not match the certificate of {}",
                    self.cert.describe(cert_key)
                ),
                other => format!("unusable private key: {other}"),
            };
            MaterialError::new(key_key, message)
        })?;
        let client_roots = match &self.client_ca {
            None => None,
            Some(ca) => {
                let certs =
                    certificates(&ca.read(ca_key)?).map_err(|m| MaterialError::new(ca_key, m))?;
                let mut roots = RootCertStore::empty();
                for cert in certs {
                    roots.add(cert).map_err(|e| {
                        MaterialError::new(ca_key, format!("unusable CA certificate: {e}"))
                    })?;
                }
                Some(Arc::new(roots))
            }
        };
        Ok(TlsMaterial {
            certified_key: Arc::new(certified_key),
            client_roots,
        })
    }

    /// The files to watch for changes (certificate, key, client CA).
    pub fn files(&self) -> Vec<PathBuf> {
        [Some(&self.cert), Some(&self.key), self.client_ca.as_ref()]
            .into_iter()
            .flatten()
            .filter_map(|pem| pem.path().map(Path::to_path_buf))
            .collect()
    }
}

/// The key that set `pem`: `file_key` for a file, else `inline_key`.
fn pem_key(pem: &Pem, file_key: &'static str, inline_key: &'static str) -> &'static str {
    match pem {
        Pem::File(_) => file_key,
        Pem::Inline(_) => inline_key,
    }
}

/// Every certificate of a PEM bundle; at least one.
fn certificates(pem: &[u8]) -> Result<Vec<CertificateDer<'static>>, String> {
    let certs = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("invalid PEM: {e}"))?;
    if certs.is_empty() {
        return Err("holds no PEM certificate".to_owned());
    }
    Ok(certs)
}

/// An I/O error's reason without the "(os error N)" noise.
fn io_reason(error: &std::io::Error) -> String {
    let text = error.to_string();
    match text.find(" (os error") {
        Some(end) => text[..end].to_owned(),
        None => text,
    }
}

/// The headers exporter-toolkit lets a web config set (as written there), with their allowed
/// values (any if empty).
const ALLOWED_HEADERS: [(&str, HeaderName, &[&str]); 5] = [
    ("Strict-Transport-Security", STRICT_TRANSPORT_SECURITY, &[]),
    (
        "X-Content-Type-Options",
        X_CONTENT_TYPE_OPTIONS,
        &["nosniff"],
    ),
    ("X-Frame-Options", X_FRAME_OPTIONS, &["deny", "sameorigin"]),
    ("X-XSS-Protection", X_XSS_PROTECTION, &[]),
    ("Content-Security-Policy", CONTENT_SECURITY_POLICY, &[]),
];

impl WebConfig {
    /// Reads, parses and validates the web configuration file at `path`, the TLS files included.
    /// Relative paths in it are resolved against its directory. Contacts nothing.
    pub fn load(path: &Path) -> Result<WebConfig, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        let base_dir = path.parent().unwrap_or(Path::new(""));
        Loader {
            text: &text,
            origin: &path.display().to_string(),
            base_dir,
        }
        .load()
    }

    /// Parses and validates `text`; `origin` names it in errors, and relative paths are resolved
    /// against its directory.
    pub fn from_yaml(text: &str, origin: &str) -> Result<WebConfig, ConfigError> {
        let base_dir = Path::new(origin).parent().unwrap_or(Path::new(""));
        Loader {
            text,
            origin,
            base_dir,
        }
        .load()
    }
}

/// serde quotes the offending value (`invalid type: string "…"`, ``unknown field `…` ``). In a web
/// config that value can be a password hash or a key: `basic_auth_users: prometheus:$2y$…`
/// (pasted `htpasswd` output) would put the hash in the log, in `--config.check`'s output and in
/// the answer to `POST /-/reload`. So a string value is described by its length and never
/// quoted, and a field name is quoted only when it looks like one (a short word of letters,
/// digits, `_`, `-` and `.`). The main configuration describes only what looks like swallowed
/// YAML (see [`crate::config`]); a bcrypt hash is 60 characters without `: `, so that rule would
/// let it through.
fn without_secrets(message: &str) -> String {
    const QUOTES: [(&str, char); 2] = [("string \"", '"'), ("field `", '`')];
    let mut out = String::with_capacity(message.len());
    let mut rest = message;
    loop {
        let next = QUOTES
            .iter()
            .filter_map(|&(opener, closer)| rest.find(opener).map(|at| (at, opener, closer)))
            .min_by_key(|(at, _, _)| *at);
        let Some((at, opener, closer)) = next else {
            break;
        };
        let start = at + opener.len();
        let Some(length) = quoted_length(&rest[start..], closer) else {
            break;
        };
        let value = &rest[start..start + length];
        let end = start + length + closer.len_utf8();
        out.push_str(&rest[..at]);
        if closer == '`' && is_plain_name(value) {
            out.push_str(&rest[at..end]);
        } else {
            let what = opener.split(' ').next().unwrap_or("value");
            out.push_str(&format!("{what} of {} characters", value.chars().count()));
        }
        rest = &rest[end..];
    }
    out.push_str(rest);
    out
}

/// The byte length of a quoted value up to its closing `closer` (one not escaped by `\`).
fn quoted_length(text: &str, closer: char) -> Option<usize> {
    let mut escaped = false;
    text.char_indices().find_map(|(i, c)| {
        let found = c == closer && !escaped;
        escaped = c == '\\' && !escaped;
        found.then_some(i)
    })
}

/// A key as people write them (`tls_config`, `X-Frame-Options`), safe to repeat in an error.
fn is_plain_name(text: &str) -> bool {
    !text.is_empty()
        && text.len() <= 40
        && text
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
}

struct Loader<'a> {
    text: &'a str,
    origin: &'a str,
    base_dir: &'a Path,
}

impl Loader<'_> {
    fn load(&self) -> Result<WebConfig, ConfigError> {
        let raw = self.parse()?;
        if raw.rate_limit.is_some() {
            return Err(self.invalid(
                &[Seg::Key("rate_limit")],
                "not supported by vsphere_backup_exporter".to_owned(),
            ));
        }
        let tls = match raw.tls_server_config {
            Some(tls) => self.tls(tls)?,
            None => None,
        };
        let headers = match raw.http_server_config {
            Some(http) => self.headers(http)?,
            None => Vec::new(),
        };
        let basic_auth_users = self.users(raw.basic_auth_users.unwrap_or_default())?;
        Ok(WebConfig {
            tls,
            basic_auth_users,
            headers,
        })
    }

    fn parse(&self) -> Result<RawWebConfig, ConfigError> {
        // An empty file (or only comments) is a valid web config: plain HTTP, no auth.
        if self.text.lines().all(|line| {
            let line = line.trim();
            line.is_empty() || line.starts_with('#') || line == "---"
        }) {
            return Ok(RawWebConfig::default());
        }
        serde_yaml_ng::from_str(self.text).map_err(|error| {
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
                message: without_secrets(&message),
            }
        })
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

    fn tls_invalid(&self, key: &str, message: String) -> ConfigError {
        let path = [Seg::Key("tls_server_config"), Seg::Key(key)];
        if locate(self.text, &path).is_some() {
            self.invalid(&path, message)
        } else {
            self.invalid(&path[..1], message)
        }
    }

    /// One PEM source from a `*_file` key and its inline twin; at most one of them.
    fn pem(
        &self,
        (file_key, file): (&str, Option<PathBuf>),
        (inline_key, inline): (&str, Option<Secret>),
    ) -> Result<Option<Pem>, ConfigError> {
        let file = file.filter(|path| !path.as_os_str().is_empty());
        let inline = inline.filter(|text| !text.expose().is_empty());
        match (file, inline) {
            (Some(_), Some(_)) => Err(self.tls_invalid(
                inline_key,
                format!("set only one of {inline_key} and {file_key}"),
            )),
            (Some(path), None) => Ok(Some(Pem::File(self.base_dir.join(path)))),
            (None, Some(text)) => Ok(Some(Pem::Inline(text))),
            (None, None) => Ok(None),
        }
    }

    fn tls(&self, raw: RawTls) -> Result<Option<TlsServerConfig>, ConfigError> {
        if raw.client_allowed_sans.is_some() {
            return Err(self.tls_invalid(
                "client_allowed_sans",
                "not supported by vsphere_backup_exporter; use a client CA of its own".to_owned(),
            ));
        }
        let cert = self.pem(
            ("cert_file", raw.cert_file),
            ("cert", raw.cert.map(Secret::new)),
        )?;
        let key = self.pem(("key_file", raw.key_file), ("key", raw.key.map(|k| k.0)))?;
        let client_ca = self.pem(
            ("client_ca_file", raw.client_ca_file),
            ("client_ca", raw.client_ca.map(Secret::new)),
        )?;
        // As exporter-toolkit: TLS is on when any of these is set, and then it must be complete.
        let enabled = cert.is_some()
            || key.is_some()
            || client_ca.is_some()
            || raw.client_auth_type.is_some();
        if !enabled {
            return Ok(None);
        }
        let Some(cert) = cert else {
            return Err(self.invalid(
                &[Seg::Key("tls_server_config")],
                "missing one of cert_file or cert".to_owned(),
            ));
        };
        let Some(key) = key else {
            return Err(self.invalid(
                &[Seg::Key("tls_server_config")],
                "missing one of key_file or key".to_owned(),
            ));
        };
        let client_auth = raw.client_auth_type.unwrap_or(ClientAuth::NoClientCert);
        match (&client_ca, client_auth.verifies()) {
            (Some(ca), _) if client_auth == ClientAuth::NoClientCert => {
                let key = pem_key(ca, "client_ca_file", "client_ca");
                return Err(self.tls_invalid(
                    key,
                    "a client CA is set but client_auth_type is NoClientCert; \
                     use RequireAndVerifyClientCert"
                        .to_owned(),
                ));
            }
            (None, true) => {
                return Err(self.tls_invalid(
                    "client_auth_type",
                    format!("{} needs client_ca_file (or client_ca)", client_auth.name()),
                ));
            }
            _ => {}
        }
        let min_version = raw.min_version.unwrap_or(TlsVersion::Tls12);
        let max_version = raw.max_version.unwrap_or(TlsVersion::Tls13);
        if min_version > max_version {
            return Err(self.tls_invalid(
                "min_version",
                format!(
                    "{} is above max_version {}",
                    min_version.name(),
                    max_version.name()
                ),
            ));
        }
        let cipher_suites = raw
            .cipher_suites
            .unwrap_or_default()
            .into_iter()
            .filter_map(|suite| suite.tls12())
            .collect();
        let tls = TlsServerConfig {
            cert,
            key,
            client_auth,
            client_ca,
            min_version,
            max_version,
            cipher_suites,
            prefer_server_cipher_suites: raw.prefer_server_cipher_suites.unwrap_or(true),
            curve_preferences: raw.curve_preferences.unwrap_or_default(),
        };
        tls.read_material()
            .map_err(|e| self.tls_invalid(&e.key, e.message))?;
        Ok(Some(tls))
    }

    fn headers(&self, raw: RawHttp) -> Result<Vec<(HeaderName, HeaderValue)>, ConfigError> {
        let mut headers = Vec::new();
        for (name, value) in raw.headers.unwrap_or_default() {
            let path = [
                Seg::Key("http_server_config"),
                Seg::Key("headers"),
                Seg::Key(&name),
            ];
            let Some((_, header, allowed)) =
                ALLOWED_HEADERS.iter().find(|(known, _, _)| *known == name)
            else {
                let names: Vec<&str> = ALLOWED_HEADERS.iter().map(|(n, _, _)| *n).collect();
                return Err(self.invalid(
                    &path[..2],
                    format!(
                        "header {name:?} cannot be configured; allowed: {}",
                        names.join(", ")
                    ),
                ));
            };
            if value.is_empty() {
                continue;
            }
            if !allowed.is_empty() && !allowed.contains(&value.as_str()) {
                return Err(self.invalid(
                    &path,
                    format!("{value:?} is not one of {}", allowed.join(", ")),
                ));
            }
            let header_value = HeaderValue::from_str(&value)
                .map_err(|_| self.invalid(&path, "not a valid HTTP header value".to_owned()))?;
            headers.push((header.clone(), header_value));
        }
        Ok(headers)
    }

    fn users(
        &self,
        raw: BTreeMap<String, SecretText>,
    ) -> Result<BTreeMap<String, PasswordHash>, ConfigError> {
        let mut users = BTreeMap::new();
        for (name, SecretText(hash)) in raw {
            let path = [Seg::Key("basic_auth_users"), Seg::Key(&name)];
            if name.is_empty() || name.contains(':') {
                return Err(self.invalid(
                    &path[..1],
                    format!("invalid user name {name:?}: must be non-empty and without ':'"),
                ));
            }
            // The hash is never repeated: it is as good as a password to an offline attack.
            if hash.expose().parse::<bcrypt::HashParts>().is_err() {
                return Err(self.invalid(
                    &path,
                    "not a bcrypt hash; make one with: htpasswd -nBC 10 \"\" | tr -d ':\\n'"
                        .to_owned(),
                ));
            }
            users.insert(name, PasswordHash(hash));
        }
        Ok(users)
    }
}
