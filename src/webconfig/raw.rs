//! The web configuration file as written: strict serde structs (unknown keys are errors) and the
//! names exporter-toolkit gives client auth types, TLS versions, cipher suites and curves,
//! parsed while deserializing so that errors carry the key path and line.
//!
//! Nothing here reads files; see [`super`].

use std::collections::BTreeMap;
use std::fmt;
use std::marker::PhantomData;
use std::path::PathBuf;

use rustls::CipherSuite;
use serde::Deserialize;
use serde::de::{self, Deserializer, IgnoredAny, Visitor};

use crate::config::Secret;

#[derive(Debug, Default, Deserialize)]
#[serde(
    deny_unknown_fields,
    expecting = "a mapping with tls_server_config, http_server_config or basic_auth_users"
)]
pub(super) struct RawWebConfig {
    #[serde(default)]
    pub(super) tls_server_config: Option<RawTls>,
    #[serde(default)]
    pub(super) http_server_config: Option<RawHttp>,
    #[serde(default)]
    pub(super) basic_auth_users: Option<BTreeMap<String, SecretText>>,
    /// Known to exporter-toolkit, refused with a clear error rather than as an unknown key.
    #[serde(default)]
    pub(super) rate_limit: Option<IgnoredAny>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(
    deny_unknown_fields,
    expecting = "a mapping with cert_file, key_file, …"
)]
pub(super) struct RawTls {
    #[serde(default)]
    pub(super) cert: Option<String>,
    #[serde(default)]
    pub(super) key: Option<SecretText>,
    #[serde(default)]
    pub(super) client_ca: Option<String>,
    #[serde(default)]
    pub(super) cert_file: Option<PathBuf>,
    #[serde(default)]
    pub(super) key_file: Option<PathBuf>,
    #[serde(default)]
    pub(super) client_auth_type: Option<ClientAuth>,
    #[serde(default)]
    pub(super) client_ca_file: Option<PathBuf>,
    #[serde(default)]
    pub(super) client_allowed_sans: Option<IgnoredAny>,
    #[serde(default)]
    pub(super) min_version: Option<TlsVersion>,
    #[serde(default)]
    pub(super) max_version: Option<TlsVersion>,
    #[serde(default)]
    pub(super) cipher_suites: Option<Vec<CipherName>>,
    #[serde(default)]
    pub(super) prefer_server_cipher_suites: Option<bool>,
    #[serde(default)]
    pub(super) curve_preferences: Option<Vec<Curve>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a mapping with http2 and headers")]
pub(super) struct RawHttp {
    /// Accepted for compatibility; the server speaks HTTP/1.1 only.
    #[serde(default, rename = "http2")]
    pub(super) _http2: Option<bool>,
    #[serde(default)]
    pub(super) headers: Option<BTreeMap<String, String>>,
}

/// Parses a scalar with its `TryFrom<String>` inside the deserializer's `visit_str`, so that
/// serde_yaml_ng stamps the error with the scalar's own key path and position (serde's
/// `try_from` attribute would report the enclosing mapping's).
struct TextVisitor<T>(PhantomData<T>);

impl<T: TryFrom<String, Error = String>> Visitor<'_> for TextVisitor<T> {
    type Value = T;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a string")
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<T, E> {
        T::try_from(v.to_owned()).map_err(E::custom)
    }
}

macro_rules! deserialize_from_text {
    ($($ty:ty),*) => {$(
        impl<'de> Deserialize<'de> for $ty {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                deserializer.deserialize_str(TextVisitor::<$ty>(PhantomData))
            }
        }
    )*};
}

deserialize_from_text!(ClientAuth, TlsVersion, CipherName, Curve);

/// A string that no error repeats (a password hash, an inline key).
#[derive(Deserialize)]
#[serde(from = "String")]
pub(super) struct SecretText(pub(super) Secret);

impl From<String> for SecretText {
    fn from(text: String) -> Self {
        SecretText(Secret::new(text))
    }
}

impl fmt::Debug for SecretText {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.0, f)
    }
}

/// `client_auth_type`, as Go's `tls.ClientAuthType` names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientAuth {
    /// No client certificate asked for (the default).
    NoClientCert,
    /// Asked for, not required, not verified.
    RequestClientCert,
    /// Required, not verified (exporter-toolkit also calls it RequireClientCert).
    RequireAnyClientCert,
    /// Not required; verified against the client CA when given.
    VerifyClientCertIfGiven,
    /// Required and verified against the client CA: the one that authenticates clients.
    RequireAndVerifyClientCert,
}

const CLIENT_AUTH_TYPES: [(&str, ClientAuth); 5] = [
    ("NoClientCert", ClientAuth::NoClientCert),
    ("RequestClientCert", ClientAuth::RequestClientCert),
    ("RequireAnyClientCert", ClientAuth::RequireAnyClientCert),
    (
        "VerifyClientCertIfGiven",
        ClientAuth::VerifyClientCertIfGiven,
    ),
    (
        "RequireAndVerifyClientCert",
        ClientAuth::RequireAndVerifyClientCert,
    ),
];

impl ClientAuth {
    pub fn name(self) -> &'static str {
        CLIENT_AUTH_TYPES
            .iter()
            .find(|(_, auth)| *auth == self)
            .map_or("NoClientCert", |(name, _)| name)
    }

    /// Whether client certificates are checked against a CA.
    pub fn verifies(self) -> bool {
        matches!(
            self,
            ClientAuth::VerifyClientCertIfGiven | ClientAuth::RequireAndVerifyClientCert
        )
    }
}

impl TryFrom<String> for ClientAuth {
    type Error = String;

    fn try_from(text: String) -> Result<Self, String> {
        match text.as_str() {
            "" => return Ok(ClientAuth::NoClientCert),
            "RequireClientCert" => return Ok(ClientAuth::RequireAnyClientCert),
            _ => {}
        }
        CLIENT_AUTH_TYPES
            .iter()
            .find(|(name, _)| *name == text)
            .map(|(_, auth)| *auth)
            .ok_or_else(|| {
                let names: Vec<&str> = CLIENT_AUTH_TYPES.iter().map(|(n, _)| *n).collect();
                format!(
                    "unknown client_auth_type {text:?}; one of {}",
                    names.join(", ")
                )
            })
    }
}

/// `min_version` / `max_version`. rustls speaks TLS 1.2 and 1.3 only.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum TlsVersion {
    Tls12,
    Tls13,
}

impl TlsVersion {
    pub fn name(self) -> &'static str {
        match self {
            TlsVersion::Tls12 => "TLS12",
            TlsVersion::Tls13 => "TLS13",
        }
    }
}

impl TryFrom<String> for TlsVersion {
    type Error = String;

    fn try_from(text: String) -> Result<Self, String> {
        match text.as_str() {
            "TLS12" => Ok(TlsVersion::Tls12),
            "TLS13" => Ok(TlsVersion::Tls13),
            "TLS10" | "TLS11" => Err(format!(
                "{text} is not supported: rustls speaks TLS 1.2 and 1.3 only; use TLS12 or TLS13"
            )),
            _ => Err(format!("unknown TLS version {text:?}; use TLS12 or TLS13")),
        }
    }
}

/// A cipher suite by its Go name (`tls.CipherSuites()`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct CipherName(CipherSuite);

/// The TLS 1.2 suites both Go and rustls implement.
const TLS12_SUITES: [(&str, CipherSuite); 6] = [
    (
        "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256",
        CipherSuite::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
    ),
    (
        "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384",
        CipherSuite::TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
    ),
    (
        "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256",
        CipherSuite::TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
    ),
    (
        "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
        CipherSuite::TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
    ),
    (
        "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384",
        CipherSuite::TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
    ),
    (
        "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256",
        CipherSuite::TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
    ),
];

/// TLS 1.3 suites: Go accepts their names and ignores them (TLS 1.3 suites are not
/// configurable); so do we.
const TLS13_SUITES: [(&str, CipherSuite); 3] = [
    (
        "TLS_AES_128_GCM_SHA256",
        CipherSuite::TLS13_AES_128_GCM_SHA256,
    ),
    (
        "TLS_AES_256_GCM_SHA384",
        CipherSuite::TLS13_AES_256_GCM_SHA384,
    ),
    (
        "TLS_CHACHA20_POLY1305_SHA256",
        CipherSuite::TLS13_CHACHA20_POLY1305_SHA256,
    ),
];

/// Suites Go offers that rustls deliberately does not implement (CBC, no forward secrecy).
const GO_ONLY_SUITES: [&str; 4] = [
    "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA",
    "TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA",
    "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA",
    "TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA",
];

impl CipherName {
    /// The suite when it is a TLS 1.2 one (the only kind that is configurable).
    pub(super) fn tls12(self) -> Option<CipherSuite> {
        TLS12_SUITES
            .iter()
            .any(|(_, suite)| *suite == self.0)
            .then_some(self.0)
    }
}

impl TryFrom<String> for CipherName {
    type Error = String;

    fn try_from(text: String) -> Result<Self, String> {
        if let Some((_, suite)) = TLS12_SUITES
            .iter()
            .chain(TLS13_SUITES.iter())
            .find(|(name, _)| *name == text)
        {
            return Ok(CipherName(*suite));
        }
        let supported: Vec<&str> = TLS12_SUITES.iter().map(|(n, _)| *n).collect();
        if GO_ONLY_SUITES.contains(&text.as_str()) {
            return Err(format!(
                "{text} is not supported by rustls (no CBC suites); use one of {}",
                supported.join(", ")
            ));
        }
        Err(format!(
            "unknown cipher suite {text:?}; use one of {}",
            supported.join(", ")
        ))
    }
}

/// `curve_preferences`, as Go's `tls.CurveID` names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Curve {
    X25519,
    P256,
    P384,
}

impl TryFrom<String> for Curve {
    type Error = String;

    fn try_from(text: String) -> Result<Self, String> {
        match text.as_str() {
            "X25519" => Ok(Curve::X25519),
            "CurveP256" => Ok(Curve::P256),
            "CurveP384" => Ok(Curve::P384),
            "CurveP521" => Err(
                "CurveP521 is not supported by rustls; use X25519, CurveP256 or CurveP384"
                    .to_owned(),
            ),
            _ => Err(format!(
                "unknown curve {text:?}; use X25519, CurveP256 or CurveP384"
            )),
        }
    }
}
