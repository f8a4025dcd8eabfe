//! Routing and responses: `/metrics` (the telemetry path), `/probe?target=`, `/-/healthy`,
//! `/-/ready`, the snapshot report (`/report`, `/report.csv`, `/report.json`, each with an
//! optional `?target=`, answered by `report`), `POST /-/reload` (when the program can reload)
//! and the landing page `/`. Anything else is 404; a method a known path does not take is 405. It asks the
//! [`Exporter`] in service when a request arrives for exposition text, and that one to the end of
//! the request; it never contacts a vCenter itself. Listening and connections are in [`super`].

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Instant;

use super::body::Chunks;
use bytes::Bytes;
use hyper::header::{
    ALLOW, CONTENT_ENCODING, CONTENT_TYPE, HOST, HeaderValue, ORIGIN, VARY, X_CONTENT_TYPE_OPTIONS,
};
use hyper::http::request::Parts;
use hyper::{HeaderMap, Method, Request, Response, StatusCode};

use super::limits::Throttled;
use super::negotiate::{accepts_gzip, scrape_deadline};
use super::reload::{ExporterSlot, Reload};
use super::report::Reports;
use crate::exporter::{Exporter, Page};
use crate::report::Format;

/// The Content-Type of the Prometheus text exposition format.
pub const EXPOSITION_CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

const TEXT_CONTENT_TYPE: &str = "text/plain; charset=utf-8";
const HTML_CONTENT_TYPE: &str = "text/html; charset=utf-8";

/// What every request handler shares.
pub(super) struct Shared {
    pub(super) exporters: Arc<ExporterSlot>,
    pub(super) telemetry_path: String,
    pub(super) reload: Option<Arc<dyn Reload>>,
    pub(super) reports: Arc<Reports>,
}

/// What one request works with: the exporter in service when it arrived.
struct State<'a> {
    exporter: Arc<Exporter>,
    telemetry_path: &'a str,
    reload: Option<&'a Arc<dyn Reload>>,
    reports: &'a Arc<Reports>,
}

enum Route {
    Metrics,
    Probe,
    Landing,
    Healthy,
    Ready,
    Report(Format),
    Reload,
}

impl Route {
    /// The methods the route takes.
    fn methods(&self) -> &'static [Method] {
        const READ: &[Method] = &[Method::GET, Method::HEAD];
        const CHANGE: &[Method] = &[Method::POST];
        match self {
            Route::Reload => CHANGE,
            _ => READ,
        }
    }
}

impl State<'_> {
    fn route(&self, path: &str) -> Option<Route> {
        if path == self.telemetry_path {
            return Some(Route::Metrics);
        }
        match path {
            "/probe" => Some(Route::Probe),
            "/" => Some(Route::Landing),
            "/-/healthy" => Some(Route::Healthy),
            "/-/ready" => Some(Route::Ready),
            "/report" => Some(Route::Report(Format::Html)),
            "/report.csv" => Some(Route::Report(Format::Csv)),
            "/report.json" => Some(Route::Report(Format::Json)),
            "/-/reload" if self.reload.is_some() => Some(Route::Reload),
            _ => None,
        }
    }
}

/// Answers one request; never fails (errors are HTTP statuses).
pub(super) async fn handle<B>(
    shared: Arc<Shared>,
    request: Request<B>,
) -> Result<Response<Chunks>, Infallible> {
    let started = Instant::now();
    // The body is never read; keeping only the head makes the future Send whatever `B` is.
    let (request, _body) = request.into_parts();
    let state = State {
        exporter: shared.exporters.current(),
        telemetry_path: &shared.telemetry_path,
        reload: shared.reload.as_ref(),
        reports: &shared.reports,
    };
    let response = respond(&state, &request).await;
    tracing::debug!(
        method = %request.method,
        path = request.uri.path(),
        status = response.status().as_u16(),
        duration_seconds = started.elapsed().as_secs_f64(),
        "HTTP request"
    );
    Ok(response)
}

async fn respond(state: &State<'_>, request: &Parts) -> Response<Chunks> {
    let Some(route) = state.route(request.uri.path()) else {
        return text(StatusCode::NOT_FOUND, "Not found\n");
    };
    let methods = route.methods();
    if !methods.contains(&request.method) {
        let mut response = text(StatusCode::METHOD_NOT_ALLOWED, "Method not allowed\n");
        let allow: Vec<&str> = methods.iter().map(Method::as_str).collect();
        if let Ok(allow) = HeaderValue::from_str(&allow.join(", ")) {
            response.headers_mut().insert(ALLOW, allow);
        }
        return response;
    }
    match route {
        Route::Metrics => {
            let timeout = scrape_deadline(&request.headers);
            let body = state.exporter.metrics(timeout).await;
            exposition(body, accepts_gzip(&request.headers)).await
        }
        Route::Probe => probe(state, request).await,
        Route::Landing => {
            let page = landing_page(state.telemetry_path, &state.exporter.target_names());
            with_type(StatusCode::OK, HTML_CONTENT_TYPE, Bytes::from(page))
        }
        Route::Healthy => text(StatusCode::OK, "Healthy"),
        Route::Ready if state.exporter.is_ready() => text(StatusCode::OK, "Ready"),
        Route::Ready => text(StatusCode::SERVICE_UNAVAILABLE, "Not ready"),
        Route::Report(format) => {
            let reports = state.reports;
            reports.respond(&state.exporter, request, format).await
        }
        Route::Reload => reload(state, request).await,
    }
}

/// `POST /-/reload`: 200 once the new configuration is in force, 500 with the reason when it
/// was refused (the old one stays), 403 when a browser sends it from another site.
async fn reload(state: &State<'_>, request: &Parts) -> Response<Chunks> {
    let Some(reload) = state.reload else {
        return text(StatusCode::NOT_FOUND, "Not found\n");
    };
    if let Some(reason) = cross_site(&request.headers) {
        if let Some(refused) = CROSS_SITE_RELOADS.due() {
            tracing::warn!(reason, refused, "refused a cross-site POST /-/reload");
        }
        return text(StatusCode::FORBIDDEN, "Cross-site reload refused\n");
    }
    // A task of its own: a client that hangs up must not cancel a reload halfway (removed
    // vCenters not logged out, the reload metrics not set).
    let reload = Arc::clone(reload);
    match tokio::spawn(async move { reload.reload().await }).await {
        Ok(Ok(())) => text(StatusCode::OK, "Configuration reloaded\n"),
        Ok(Err(error)) => text(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("failed to reload the configuration: {error}\n"),
        ),
        Err(error) => {
            tracing::error!(%error, "the reload task failed");
            text(
                StatusCode::INTERNAL_SERVER_ERROR,
                "failed to reload the configuration: the reload task failed\n",
            )
        }
    }
}

/// Logged when a cross-site reload is refused.
static CROSS_SITE_RELOADS: Throttled = Throttled::new();

/// Why a request is a browser's from another site, if it is: `Sec-Fetch-Site: cross-site`, or
/// an `Origin` other than the server's own (as the `Host` header names it). A form on any web
/// page can POST to `/-/reload` (a "simple" request, sent without asking), and a browser adds
/// these headers; curl, Prometheus and systemd send neither.
fn cross_site(headers: &HeaderMap) -> Option<&'static str> {
    let fetch_site = headers.get("sec-fetch-site").map(HeaderValue::as_bytes);
    if fetch_site.is_some_and(|site| site.eq_ignore_ascii_case(b"cross-site")) {
        return Some("Sec-Fetch-Site: cross-site");
    }
    let origin = headers.get(ORIGIN)?.to_str().ok();
    let host = headers.get(HOST).and_then(|h| h.to_str().ok());
    match (origin.and_then(origin_authority), host) {
        (Some((scheme, authority)), Some(host))
            if without_default_port(scheme, authority)
                .eq_ignore_ascii_case(without_default_port(scheme, host)) =>
        {
            None
        }
        _ => Some("Origin is not this server"),
    }
}

/// Scheme and `host[:port]` of an `Origin` value (`null`, or anything else, is none).
fn origin_authority(origin: &str) -> Option<(&str, &str)> {
    let (scheme, authority) = origin.split_once("://")?;
    let scheme_ok = scheme.eq_ignore_ascii_case("http") || scheme.eq_ignore_ascii_case("https");
    (scheme_ok && !authority.is_empty() && !authority.contains('/')).then_some((scheme, authority))
}

/// `host` without the scheme's default port, so `http://a` and `Host: a:80` match.
fn without_default_port<'a>(scheme: &str, host: &'a str) -> &'a str {
    let default = if scheme.eq_ignore_ascii_case("https") {
        ":443"
    } else {
        ":80"
    };
    host.strip_suffix(default).unwrap_or(host)
}

/// The value of the `target` query parameter: `Ok(None)` when absent or empty, an error
/// message when given twice.
pub(super) fn target_param(query: &str) -> Result<Option<String>, &'static str> {
    let mut targets = form_urlencoded::parse(query.as_bytes())
        .filter(|(key, _)| key == "target")
        .map(|(_, value)| value.into_owned());
    match (targets.next(), targets.next()) {
        (Some(_), Some(_)) => Err("Give the target parameter once\n"),
        (target, _) => Ok(target.filter(|t| !t.is_empty())),
    }
}

/// 400 for a target that names no configured vCenter (nothing is contacted).
pub(super) fn unknown_target(target: &str) -> Response<Chunks> {
    tracing::debug!(target = %target, "request for an unknown target");
    let shown: String = target.chars().take(100).collect();
    let message = format!("Unknown target {shown:?}: not a configured vCenter name\n");
    text(StatusCode::BAD_REQUEST, message)
}

/// `/probe?target=NAME`: one vCenter's metrics, or 400 when the target is missing or unknown
/// (the exporter contacts nothing then).
async fn probe(state: &State<'_>, request: &Parts) -> Response<Chunks> {
    let target = match target_param(request.uri.query().unwrap_or("")) {
        Ok(Some(target)) => target,
        Ok(None) => {
            return text(
                StatusCode::BAD_REQUEST,
                "Missing target parameter: /probe?target=<vCenter name>\n",
            );
        }
        Err(message) => return text(StatusCode::BAD_REQUEST, message),
    };
    let timeout = scrape_deadline(&request.headers);
    match state.exporter.probe(&target, timeout).await {
        Some(body) => exposition(body, accepts_gzip(&request.headers)).await,
        None => unknown_target(&target),
    }
}

/// An exposition-format response, gzipped when the client allows it. The page keeps its gzip
/// form (cached output only in it), so unchanged metrics are compressed once, not per scrape,
/// and are sent part by part as held, never joined into another copy. A client without gzip
/// gets the text streamed from a blocking task that decompresses chunk by chunk, a few chunks
/// ahead of the socket at most (the text of 40,000 VMs, ~70 MB, is never held whole).
async fn exposition(page: Page, gzip_allowed: bool) -> Response<Chunks> {
    let body = if gzip_allowed {
        match tokio::task::spawn_blocking(move || page.gzip_members()).await {
            Ok(members) => Chunks::new(members),
            Err(error) => {
                tracing::error!(%error, "gzipping the page failed");
                return text(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "the page could not be made\n",
                );
            }
        }
    } else {
        let chunks = page.chunks();
        let len = chunks.iter().map(|c| c.text_len() as u64).sum();
        let (tx, rx) = tokio::sync::mpsc::channel(4);
        tokio::task::spawn_blocking(move || {
            let segments = chunks.iter().flat_map(|c| c.segments());
            for segment in segments.filter(|s| !s.is_empty()) {
                if tx.blocking_send(segment).is_err() {
                    // The client went away.
                    return;
                }
            }
        });
        Chunks::streamed(rx, len)
    };
    let mut response = with_type(StatusCode::OK, EXPOSITION_CONTENT_TYPE, body);
    let headers = response.headers_mut();
    headers.insert(VARY, HeaderValue::from_static("Accept-Encoding"));
    if gzip_allowed {
        headers.insert(CONTENT_ENCODING, HeaderValue::from_static("gzip"));
    }
    response
}

pub(super) fn text(status: StatusCode, body: impl Into<Bytes>) -> Response<Chunks> {
    with_type(status, TEXT_CONTENT_TYPE, body.into())
}

pub(super) fn with_type(
    status: StatusCode,
    content_type: &'static str,
    body: impl Into<Chunks>,
) -> Response<Chunks> {
    let mut response = Response::new(body.into());
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    response
}

/// The landing page: links to the metrics, to a probe of each configured vCenter and to the
/// health endpoints. Hand-written: one small page does not warrant a template engine.
pub(super) fn landing_page(telemetry_path: &str, target_names: &[&str]) -> String {
    let mut probes = String::new();
    for name in target_names {
        let query: String = form_urlencoded::Serializer::new(String::new())
            .append_pair("target", name)
            .finish();
        probes.push_str(&format!(
            "      <li><a href=\"/probe?{}\">{}</a></li>\n",
            escape_html(&query),
            escape_html(name)
        ));
    }
    if probes.is_empty() {
        probes.push_str("      <li>no vCenter configured</li>\n");
    }
    format!(
        "<!DOCTYPE html>
<html lang=\"en\">
  <head>
    <meta charset=\"utf-8\">
    <title>vSphere Backup Exporter</title>
  </head>
  <body>
    <h1>vSphere Backup Exporter</h1>
    <p>Version {version} (revision: {revision})</p>
    <ul>
      <li><a href=\"{metrics}\">Metrics</a> of every vCenter and of the exporter</li>
      <li><a href=\"/report\">Snapshot report</a>: every snapshot of every vCenter, also as <a href=\"/report.csv\">CSV</a> and <a href=\"/report.json\">JSON</a></li>
      <li><a href=\"/-/healthy\">Health</a> and <a href=\"/-/ready\">readiness</a></li>
    </ul>
    <h2>Probe one vCenter</h2>
    <ul>
{probes}    </ul>
  </body>
</html>
",
        version = escape_html(crate::VERSION),
        revision = escape_html(crate::REVISION),
        metrics = escape_html(telemetry_path),
    )
}

fn escape_html(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => escaped.push_str("&amp;"),
            '<' => escaped.push_str("&lt;"),
            '>' => escaped.push_str("&gt;"),
            '"' => escaped.push_str("&quot;"),
            '\'' => escaped.push_str("&#39;"),
            c => escaped.push(c),
        }
    }
    escaped
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn landing_page_links_metrics_and_each_target_escaped() {
        let names = ["vc01", "a&b<c>"];
        let page = landing_page("/custom\"metrics", &names);
        assert!(
            page.contains("<a href=\"/custom&quot;metrics\">Metrics</a>"),
            "{page}"
        );
        assert!(
            page.contains("<a href=\"/probe?target=vc01\">vc01</a>"),
            "{page}"
        );
        assert!(page.contains("<a href=\"/probe?target=a%26b%3Cc%3E\">a&amp;b&lt;c&gt;</a>"));
        assert!(page.contains("<a href=\"/-/healthy\">"));
        assert!(page.contains("<a href=\"/-/ready\">"));
        assert!(page.contains("<a href=\"/report\">Snapshot report</a>"));
    }

    #[test]
    fn landing_page_says_when_no_target_is_configured() {
        assert!(landing_page("/metrics", &[]).contains("no vCenter configured"));
    }
}
