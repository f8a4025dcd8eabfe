//! Test helpers: configs, a minimal exposition-format reader, and metric assertions.

use std::collections::BTreeMap;
use std::time::Duration;

use vsphere_backup_exporter::config::{Secret, TlsConfig, VcenterConfig};

/// A vCenter entry pointing at `url`.
pub fn vcenter(name: &str, url: &str, user: &str, password: &str) -> VcenterConfig {
    VcenterConfig {
        name: name.to_string(),
        url: url.parse().expect("test URL"),
        username: user.to_string(),
        password: Secret::new(password),
        tls: TlsConfig::default(),
        connect_timeout: Duration::from_secs(2),
        request_timeout: Duration::from_secs(30),
        login_retry_interval: vsphere_backup_exporter::config::DEFAULT_LOGIN_RETRY_INTERVAL,
        max_response_size: vsphere_backup_exporter::config::DEFAULT_MAX_RESPONSE_SIZE,
        perf: Default::default(),
    }
}

/// One sample of a scrape.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    pub name: String,
    pub labels: BTreeMap<String, String>,
    pub value: f64,
}

/// Reads the text exposition format (as the exporter writes it; no timestamps).
pub fn parse(text: &str) -> Vec<Sample> {
    text.lines()
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|line| {
            let (series, value) = line.rsplit_once(' ').expect("sample line");
            let value = match value {
                "+Inf" => f64::INFINITY,
                "-Inf" => f64::NEG_INFINITY,
                v => v.parse().expect("sample value"),
            };
            let (name, labels) = match series.split_once('{') {
                Some((name, rest)) => (name, parse_labels(rest.trim_end_matches('}'))),
                None => (series, BTreeMap::new()),
            };
            Sample {
                name: name.to_string(),
                labels,
                value,
            }
        })
        .collect()
}

fn parse_labels(text: &str) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let mut chars = text.chars().peekable();
    loop {
        let name: String = chars.by_ref().take_while(|c| *c != '=').collect();
        if name.is_empty() {
            return out;
        }
        assert_eq!(chars.next(), Some('"'));
        let mut value = String::new();
        while let Some(c) = chars.next() {
            match c {
                '\\' => match chars.next() {
                    Some('n') => value.push('\n'),
                    Some(other) => value.push(other),
                    None => break,
                },
                '"' => break,
                c => value.push(c),
            }
        }
        out.insert(name.trim_start_matches(',').to_string(), value);
        if chars.peek() == Some(&',') {
            chars.next();
        }
    }
}

/// The samples of `name` whose labels include every pair of `want`.
pub fn find<'a>(samples: &'a [Sample], name: &str, want: &[(&str, &str)]) -> Vec<&'a Sample> {
    samples
        .iter()
        .filter(|s| s.name == name)
        .filter(|s| {
            want.iter()
                .all(|(k, v)| s.labels.get(*k).map(String::as_str) == Some(*v))
        })
        .collect()
}

/// The value of the single sample of `name` matching `want`; panics with the candidates if
/// there is not exactly one.
pub fn value(samples: &[Sample], name: &str, want: &[(&str, &str)]) -> f64 {
    let found = find(samples, name, want);
    assert_eq!(found.len(), 1, "{name} {want:?}: found {found:#?}");
    found[0].value
}
