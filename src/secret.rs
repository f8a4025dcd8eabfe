//! [`Secret`]: a value that must never appear in logs, errors or metrics (a password, a
//! session cookie, a private key). It sits at the bottom, beside the backup rules, because the
//! configuration reads secrets and the vSphere client sends them, and neither may depend on
//! the other; [`crate::config::Secret`] is the same type.
//!
//! It owns only the wrapper and its printing; where a secret comes from (files, the
//! environment) is the configuration's business, and where it goes the client's.

/// A value that must never appear in logs, errors or metrics: Debug and Display print `<secret>`.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }
    /// The secret itself, for the one place that must send it (the SOAP Login body).
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("<secret>")
    }
}

impl std::fmt::Display for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("<secret>")
    }
}
