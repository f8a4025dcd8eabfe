//! What a scrape's request headers ask of the response: the deadline Prometheus gives it
//! (`X-Prometheus-Scrape-Timeout-Seconds`) and whether the body may be gzipped
//! (`Accept-Encoding`); and the gzip itself. Pure functions over headers and bytes; routing and
//! responses are in [`super::handler`].

use std::time::Duration;

use hyper::HeaderMap;
use hyper::header::ACCEPT_ENCODING;

/// The header in which Prometheus sends its scrape timeout, in (fractional) seconds.
pub const SCRAPE_TIMEOUT_HEADER: &str = "X-Prometheus-Scrape-Timeout-Seconds";

/// Taken off the scrape timeout so that the answer reaches Prometheus before it gives up, like
/// blackbox_exporter's `--timeout-offset`.
pub const TIMEOUT_OFFSET: Duration = Duration::from_millis(500);

/// The time the exporter has to answer: the scrape timeout less [`TIMEOUT_OFFSET`] (less half the
/// timeout when it is shorter than twice the offset). `None` when the header is absent or is not
/// a positive number of seconds: the exporter then uses its own timeouts.
pub fn scrape_deadline(headers: &HeaderMap) -> Option<Duration> {
    let text = headers.get(SCRAPE_TIMEOUT_HEADER)?.to_str().ok()?;
    let seconds: f64 = text.trim().parse().ok()?;
    if !seconds.is_finite() || seconds <= 0.0 {
        return None;
    }
    let offset = TIMEOUT_OFFSET.as_secs_f64().min(seconds / 2.0);
    Duration::try_from_secs_f64(seconds - offset).ok()
}

/// Whether `Accept-Encoding` allows gzip: `gzip` (or `x-gzip`) with a non-zero quality, or else a
/// `*` with a non-zero quality.
pub fn accepts_gzip(headers: &HeaderMap) -> bool {
    let mut gzip = None;
    let mut any = None;
    let codings = headers
        .get_all(ACCEPT_ENCODING)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','));
    for coding in codings {
        let mut parts = coding.split(';');
        let name = parts.next().unwrap_or("").trim();
        let quality = parts
            .filter_map(|param| param.trim().strip_prefix("q="))
            .find_map(|q| q.trim().parse::<f64>().ok())
            .unwrap_or(1.0);
        if name.eq_ignore_ascii_case("gzip") || name.eq_ignore_ascii_case("x-gzip") {
            gzip = Some(quality > 0.0);
        } else if name == "*" {
            any = Some(quality > 0.0);
        }
    }
    gzip.or(any).unwrap_or(false)
}

#[cfg(test)]
mod tests {

    use hyper::header::HeaderValue;

    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(*name, HeaderValue::from_static(value));
        }
        map
    }

    #[test]
    fn scrape_deadline_is_the_timeout_less_the_offset() {
        let cases = [
            ("10", Some(9_500)),
            ("9.5", Some(9_000)),
            (" 30 ", Some(29_500)),
            ("1e1", Some(9_500)),
            ("0.6", Some(300)),
            ("0.2", Some(100)),
        ];
        for (value, want_ms) in cases {
            let map = headers(&[(SCRAPE_TIMEOUT_HEADER, value)]);
            let got = scrape_deadline(&map).map(|d| d.as_millis());
            assert_eq!(got, want_ms, "{value:?}");
        }
    }

    #[test]
    fn scrape_deadline_ignores_a_missing_or_bad_header() {
        assert_eq!(scrape_deadline(&HeaderMap::new()), None);
        for value in ["", "ten", "0", "-5", "NaN", "inf", "1e400", "10s"] {
            let map = headers(&[(SCRAPE_TIMEOUT_HEADER, value)]);
            assert_eq!(scrape_deadline(&map), None, "{value:?}");
        }
    }

    #[test]
    fn scrape_deadline_header_name_is_case_insensitive() {
        let map = headers(&[("x-prometheus-scrape-timeout-seconds", "2")]);
        assert_eq!(scrape_deadline(&map), Some(Duration::from_millis(1_500)));
    }

    #[test]
    fn accepts_gzip_follows_codings_and_qualities() {
        let cases: &[(&[&'static str], bool)] = &[
            (&[], false),
            (&["gzip"], true),
            (&["GZip"], true),
            (&["x-gzip"], true),
            (&["deflate, gzip;q=1.0, *;q=0.5"], true),
            (&["br", "gzip"], true),
            (&["identity"], false),
            (&["gzip;q=0"], false),
            (&["gzip; q=0.0"], false),
            (&["*"], true),
            (&["*;q=0"], false),
            (&["gzip;q=0, *"], false),
            (&["gzip;q=0.001"], true),
        ];
        for (values, want) in cases {
            let pairs: Vec<_> = values.iter().map(|v| ("accept-encoding", *v)).collect();
            assert_eq!(accepts_gzip(&headers(&pairs)), *want, "{values:?}");
        }
    }
}
