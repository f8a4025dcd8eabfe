//! The scalars of the configuration that check themselves while they are parsed: the
//! [`Scalar`] trait, the serde visitor that runs it (so that serde_yaml_ng stamps its error
//! with the key path and position, `bad.yml:3:10: vcenters[0].url: …`), and the scalar types
//! both the file's structs ([`super::raw`]) and the backup checks' keys ([`super::backup`])
//! use: durations, regular expressions.
//!
//! It owns no key of the file: which key takes which scalar is in those two modules, which
//! both build on this one (and not on each other's helpers).

use std::fmt;
use std::marker::PhantomData;
use std::time::Duration;

use serde::de::{self, Visitor};

use super::duration::parse_duration;

/// A scalar parsed from its text by [`Scalar::parse`], whose error becomes the YAML error.
pub(crate) trait Scalar: Sized {
    /// What serde says it expected when the value is not a scalar at all.
    const EXPECTING: &'static str;
    fn parse(text: &str) -> Result<Self, String>;
}

/// Parses inside the deserializer's `visit_str`, so the error gets the scalar's path and line.
pub(crate) struct ScalarVisitor<T>(pub(crate) PhantomData<T>);

impl<T: Scalar> Visitor<'_> for ScalarVisitor<T> {
    type Value = T;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(T::EXPECTING)
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<T, E> {
        T::parse(v).map_err(E::custom)
    }
}

/// `Deserialize` for [`Scalar`] types, through [`ScalarVisitor`].
macro_rules! deserialize_scalar {
    ($($ty:ty),*) => {$(
        impl<'de> ::serde::Deserialize<'de> for $ty {
            fn deserialize<D: ::serde::de::Deserializer<'de>>(
                deserializer: D,
            ) -> Result<Self, D::Error> {
                deserializer.deserialize_str($crate::config::scalar::ScalarVisitor::<$ty>(
                    ::std::marker::PhantomData,
                ))
            }
        }
    )*};
}
pub(crate) use deserialize_scalar;

deserialize_scalar!(Timeout, PatternRegex);

/// A strictly positive Prometheus-style duration.
#[derive(Debug)]
pub(crate) struct Timeout(pub(crate) Duration);

impl Scalar for Timeout {
    const EXPECTING: &'static str = "a duration like 10s";

    fn parse(text: &str) -> Result<Self, String> {
        parse_duration(text).map(Timeout)
    }
}

/// A snapshot-name pattern, compiled as written (unanchored; add `(?i)` for case-insensitive).
#[derive(Debug)]
pub(crate) struct PatternRegex(pub(crate) regex::Regex);

impl Scalar for PatternRegex {
    const EXPECTING: &'static str = "a regular expression";

    fn parse(text: &str) -> Result<Self, String> {
        compile_regex(text).map(PatternRegex)
    }
}

/// Compiles `pattern`, condensing the regex crate's multi-line message into one line.
pub(crate) fn compile_regex(pattern: &str) -> Result<regex::Regex, String> {
    regex::Regex::new(pattern).map_err(|e| {
        let message = e.to_string();
        let reason = message
            .lines()
            .rev()
            .find_map(|line| line.strip_prefix("error: "))
            .unwrap_or(message.trim());
        format!("invalid regex: {reason}")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compile_regex_reports_one_line() {
        let error = compile_regex("(?i)[unclosed").err();
        assert_eq!(
            error.as_deref(),
            Some("invalid regex: unclosed character class")
        );
    }
}
