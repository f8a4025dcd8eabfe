//! The Prometheus text exposition format (version 0.0.4), both ways: the few writing helpers
//! the [`super::Sink`] needs (escaping, values, HELP/TYPE lines), and [`parse`], which reads
//! the format back. The parser serves the tests and the benchmark, which check the exporter's
//! real output; it accepts what this writer and the `prometheus` crate write (no timestamps).

use std::collections::BTreeMap;
use std::fmt::Write;

use super::catalogue::{Kind, MetricSpec};

/// A label value escaped for the text format: `\` `"` and newline.
pub fn escape_label(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    push_escaped_label(&mut out, value);
    out
}

pub fn push_escaped_label(out: &mut String, value: &str) {
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
}

/// A sample value as Prometheus writes it (`+Inf`, `-Inf`, `NaN`, else the shortest form).
pub fn push_value(out: &mut String, value: f64) {
    if value.is_nan() {
        out.push_str("NaN");
    } else if value == f64::INFINITY {
        out.push_str("+Inf");
    } else if value == f64::NEG_INFINITY {
        out.push_str("-Inf");
    } else {
        // Writing to a String cannot fail.
        let _ = write!(out, "{value}");
    }
}

/// `# HELP` and `# TYPE` of a family (help text escapes `\` and newline).
pub fn push_header(out: &mut String, spec: &MetricSpec) {
    let help = spec.help.replace('\\', "\\\\").replace('\n', "\\n");
    let kind = match spec.kind {
        Kind::Gauge => "gauge",
        Kind::Counter => "counter",
        Kind::Histogram => "histogram",
    };
    let _ = write!(
        out,
        "# HELP {name} {help}\n# TYPE {name} {kind}\n",
        name = spec.name
    );
}

/// One sample read back.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    pub name: String,
    pub labels: BTreeMap<String, String>,
    pub value: f64,
}

/// Reads exposition text into samples; comment lines are skipped. An error names the line.
pub fn parse(text: &str) -> Result<Vec<Sample>, String> {
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.is_empty() && !l.starts_with('#'))
        .map(|(i, line)| parse_line(line).map_err(|e| format!("line {}: {e}: {line}", i + 1)))
        .collect()
}

fn parse_line(line: &str) -> Result<Sample, String> {
    let (series, value) = line.rsplit_once(' ').ok_or("no value")?;
    let value = match value {
        "+Inf" => f64::INFINITY,
        "-Inf" => f64::NEG_INFINITY,
        v => v.parse().map_err(|_| "bad value")?,
    };
    let (name, labels) = match series.split_once('{') {
        Some((name, rest)) => {
            let inner = rest.strip_suffix('}').ok_or("unclosed labels")?;
            (name, parse_labels(inner)?)
        }
        None => (series, BTreeMap::new()),
    };
    Ok(Sample {
        name: name.to_string(),
        labels,
        value,
    })
}

fn parse_labels(text: &str) -> Result<BTreeMap<String, String>, String> {
    let mut out = BTreeMap::new();
    let mut rest = text;
    while !rest.is_empty() {
        let (name, after) = rest.split_once("=\"").ok_or("label without a value")?;
        let mut value = String::new();
        let mut chars = after.char_indices();
        let end = loop {
            match chars.next() {
                Some((_, '\\')) => match chars.next() {
                    Some((_, 'n')) => value.push('\n'),
                    Some((_, c)) => value.push(c),
                    None => return Err("dangling escape".into()),
                },
                Some((i, '"')) => break i,
                Some((_, c)) => value.push(c),
                None => return Err("unclosed label value".into()),
            }
        };
        out.insert(name.to_string(), value);
        rest = after[end + 1..].trim_start_matches(',');
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escaped_labels_and_special_values_read_back() {
        let mut line = String::from("m{a=\"");
        push_escaped_label(&mut line, "x\\y \"q\"\nz,w=}");
        line.push_str("\",b=\"\"} ");
        push_value(&mut line, 1_795_168_800.5);
        let samples = parse(&line).unwrap();
        assert_eq!(samples[0].labels["a"], "x\\y \"q\"\nz,w=}");
        assert_eq!(samples[0].labels["b"], "");
        assert_eq!(samples[0].value, 1_795_168_800.5);
        let mut v = String::new();
        for x in [f64::INFINITY, f64::NEG_INFINITY, 42_949_672_960.0, 0.25] {
            push_value(&mut v, x);
            v.push(' ');
        }
        assert_eq!(v, "+Inf -Inf 42949672960 0.25 ");
    }

    #[test]
    fn parse_names_the_bad_line() {
        let err = parse("# HELP x\nok 1\nbad{a=\"1} 2\n").unwrap_err();
        assert!(err.starts_with("line 3: "), "{err}");
    }
}
