//! Logging: one line per event on stderr, as logfmt or JSON with the same field names
//! (`time`, `level`, `msg`, then the event's own fields), without Rust module paths: an
//! admin reads them, not a Rust developer.

use std::fmt::{self, Write as _};

use tracing::field::{Field, Visit};
use tracing::{Event, Subscriber};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::registry::LookupSpan;

use super::flags::{LogFormat, LogLevel};

/// Installs the global subscriber: one line per event on stderr, spans left out.
pub(super) fn init_logging(level: LogLevel, format: LogFormat) {
    let builder = tracing_subscriber::fmt()
        .with_max_level(level.level())
        .with_writer(std::io::stderr)
        .with_ansi(false);
    // A subscriber already installed (tests calling `main_with` twice) keeps logging.
    let _ = match format {
        LogFormat::Logfmt => builder.event_format(Line::Logfmt).try_init(),
        LogFormat::Json => builder.event_format(Line::Json).try_init(),
    };
}

/// The two line formats, both `time`, `level`, `msg`, then the event's fields.
#[derive(Clone, Copy)]
pub(super) enum Line {
    /// `time=… level=info msg="…" key=value …`, as Prometheus' own logfmt logs.
    Logfmt,
    /// `{"time":"…","level":"info","msg":"…","key":"value",…}`.
    Json,
}

impl<S, N> FormatEvent<S, N> for Line
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        _ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let line = match self {
            Line::Logfmt => logfmt_line(jiff::Timestamp::now(), event),
            Line::Json => json_line(jiff::Timestamp::now(), event),
        };
        writer.write_str(&line)
    }
}

fn logfmt_line(time: jiff::Timestamp, event: &Event<'_>) -> String {
    let fields = Fields::of(event);
    let mut line = format!("time={time:.3} level={}", level_of(event));
    if let Some(message) = &fields.message {
        let _ = write!(line, " msg={}", logfmt_value(message));
    }
    for (name, value) in &fields.rest {
        let _ = write!(line, " {name}={}", logfmt_value(value));
    }
    line.push('\n');
    line
}

fn json_line(time: jiff::Timestamp, event: &Event<'_>) -> String {
    let fields = Fields::of(event);
    let mut object = serde_json::Map::new();
    object.insert("time".into(), format!("{time:.3}").into());
    object.insert("level".into(), level_of(event).into());
    if let Some(message) = fields.message {
        object.insert("msg".into(), message.into());
    }
    for (name, value) in fields.rest {
        object.insert(name, value.into());
    }
    let mut line = serde_json::Value::Object(object).to_string();
    line.push('\n');
    line
}

fn level_of(event: &Event<'_>) -> String {
    event.metadata().level().as_str().to_ascii_lowercase()
}

/// An event's message and other fields, in the order given.
#[derive(Default)]
struct Fields {
    message: Option<String>,
    rest: Vec<(String, String)>,
}

impl Fields {
    fn of(event: &Event<'_>) -> Self {
        let mut fields = Fields::default();
        event.record(&mut fields);
        fields
    }

    fn push(&mut self, field: &Field, value: &str) {
        match field.name() {
            "message" => self.message = Some(value.to_owned()),
            // The `log` bridge's target, module, file and line: noise in an exporter's logs.
            name if name.starts_with("log.") => {}
            name => self.rest.push((name.to_owned(), value.to_owned())),
        }
    }
}

impl Visit for Fields {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.push(field, value);
    }

    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        self.push(field, &value.to_string());
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        // `%value` fields and messages arrive here; their Debug is their Display.
        self.push(field, &format!("{value:?}"));
    }
}

/// A logfmt value: bare when it is a simple token, else quoted with `"` `\` and controls escaped.
fn logfmt_value(value: &str) -> String {
    let bare = !value.is_empty()
        && value
            .chars()
            .all(|c| c > ' ' && c != '"' && c != '=' && c != '\\' && !c.is_control());
    if bare {
        return value.to_owned();
    }
    let mut quoted = String::with_capacity(value.len() + 2);
    quoted.push('"');
    for c in value.chars() {
        match c {
            '"' => quoted.push_str("\\\""),
            '\\' => quoted.push_str("\\\\"),
            '\n' => quoted.push_str("\\n"),
            '\r' => quoted.push_str("\\r"),
            '\t' => quoted.push_str("\\t"),
            c if c.is_control() => {
                let _ = write!(quoted, "\\u{{{:04x}}}", u32::from(c));
            }
            c => quoted.push(c),
        }
    }
    quoted.push('"');
    quoted
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use tracing_subscriber::layer::SubscriberExt;

    use super::*;

    #[test]
    fn logfmt_value_quotes_only_when_needed() {
        let cases = [
            ("vc01", "vc01"),
            ("", "\"\""),
            ("two words", "\"two words\""),
            ("a=b", "\"a=b\""),
            ("say \"hi\"", "\"say \\\"hi\\\"\""),
            ("line\nbreak", "\"line\\nbreak\""),
            ("back\\slash", "\"back\\\\slash\""),
            ("bell\u{7}", "\"bell\\u{0007}\""),
        ];
        for (value, want) in cases {
            assert_eq!(logfmt_value(value), want, "{value:?}");
        }
    }

    /// Captures the logfmt lines of the events emitted by `emit`.
    fn capture_logfmt(emit: impl FnOnce()) -> String {
        #[derive(Clone, Default)]
        struct Buffer(Arc<Mutex<Vec<u8>>>);
        impl std::io::Write for Buffer {
            fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
                if let Ok(mut buffer) = self.0.lock() {
                    buffer.extend_from_slice(bytes);
                }
                Ok(bytes.len())
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        let buffer = Buffer::default();
        let writer = buffer.clone();
        let layer = tracing_subscriber::fmt::layer()
            .event_format(Line::Logfmt)
            .with_writer(move || writer.clone());
        let subscriber = tracing_subscriber::registry().with(layer);
        tracing::subscriber::with_default(subscriber, emit);
        let bytes = buffer.0.lock().map(|b| b.clone()).unwrap_or_default();
        String::from_utf8(bytes).unwrap_or_default()
    }

    #[test]
    fn logfmt_writes_one_line_per_event_with_fields() {
        let output = capture_logfmt(|| {
            let error = std::io::Error::other("connection refused");
            tracing::warn!(vcenter = "vc01", attempts = 3, up = false, err = %error, "collection failed");
        });
        let line = output.strip_suffix('\n').unwrap_or(&output);
        assert!(!line.contains('\n'), "{output}");
        let (time, rest) = line.split_once(' ').unwrap_or_default();
        assert!(time.starts_with("time=") && time.ends_with('Z'), "{time}");
        assert_eq!(
            rest,
            "level=warn msg=\"collection failed\" vcenter=vc01 attempts=3 up=false err=\"connection refused\""
        );
    }
}
