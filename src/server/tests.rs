//! The server driven over real sockets on `127.0.0.1:0`: each route's status and headers, the 400
//! of an unknown target, gzip, HEAD and graceful shutdown. The configured vCenter is a closed
//! local port, so scrapes fail fast; the assertions check the server's behaviour, not metrics.

use std::io::Read;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use super::*;
use crate::config::Config;

mod limits;
mod reload;
mod web_tls;

/// A vCenter on a closed local port: nothing listens there, so nothing can be contacted.
const CONFIG: &str = "\
vcenters:
  - name: vc01
    url: http://127.0.0.1:1/sdk
    username: monitor
    password: test-only
";

struct Running {
    addr: SocketAddr,
    exporter: Arc<Exporter>,
    stop: oneshot::Sender<()>,
    task: JoinHandle<io::Result<()>>,
}

/// Serves an exporter whose sources are not started yet (as between bind and start).
async fn start_unstarted(options: ServerOptions) -> Running {
    let reports = report::Reports::new(&options.limits);
    start_unstarted_with(options, reports).await
}

/// [`start_unstarted`] with report renders the test watches.
async fn start_unstarted_with(options: ServerOptions, reports: Arc<report::Reports>) -> Running {
    let config = Arc::new(Config::from_yaml(CONFIG, "test.yml").expect("test config"));
    let exporter = Arc::new(Exporter::build(config).expect("exporter"));
    let listener = bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("local addr");
    let (stop, stopped) = oneshot::channel::<()>();
    let shutdown = async {
        let _ = stopped.await;
    };
    let slot = ExporterSlot::new(exporter.clone());
    let task = tokio::spawn(serve_with(listener, slot, options, reports, shutdown));
    Running {
        addr,
        exporter,
        stop,
        task,
    }
}

async fn start(options: ServerOptions) -> Running {
    let running = start_unstarted(options).await;
    running.exporter.start();
    running
}

async fn start_default() -> Running {
    start(ServerOptions::default()).await
}

impl Running {
    async fn stop(self) {
        let _ = self.stop.send(());
        let result = tokio::time::timeout(Duration::from_secs(5), self.task).await;
        assert!(
            matches!(result, Ok(Ok(Ok(())))),
            "server did not stop cleanly"
        );
    }
}

struct Reply {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Reply {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// One HTTP/1.1 request on a fresh connection, read to its end (`Connection: close`).
async fn request(addr: SocketAddr, method: &str, target: &str, headers: &[(&str, &str)]) -> Reply {
    let mut stream = TcpStream::connect(addr).await.expect("connect");
    let mut head = format!("{method} {target} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n");
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes()).await.expect("write");
    let mut raw = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut raw))
        .await
        .expect("response in time")
        .expect("read");
    parse_reply(&raw)
}

fn parse_reply(raw: &[u8]) -> Reply {
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("end of headers");
    let head = std::str::from_utf8(&raw[..split]).expect("UTF-8 head");
    let mut lines = head.split("\r\n");
    let status_line = lines.next().expect("status line");
    let status = status_line
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .expect("status code");
    let headers = lines
        .filter_map(|line| line.split_once(':'))
        .map(|(n, v)| (n.trim().to_owned(), v.trim().to_owned()))
        .collect();
    Reply {
        status,
        headers,
        body: raw[split + 4..].to_vec(),
    }
}

async fn get(addr: SocketAddr, target: &str) -> Reply {
    request(addr, "GET", target, &[]).await
}

#[tokio::test]
async fn metrics_answers_200_with_the_exposition_content_type() {
    let server = start_default().await;
    let reply = get(server.addr, "/metrics").await;
    assert_eq!(reply.status, 200);
    assert_eq!(
        reply.header("content-type"),
        Some("text/plain; version=0.0.4; charset=utf-8")
    );
    assert_eq!(reply.header("content-encoding"), None);
    assert_eq!(reply.header("vary"), Some("Accept-Encoding"));
    // Sent part by part, yet with its length (not chunked).
    assert_eq!(reply.header("transfer-encoding"), None);
    assert_eq!(
        reply.header("content-length"),
        Some(reply.body.len().to_string().as_str())
    );
    server.stop().await;
}

#[tokio::test]
async fn metrics_are_gzipped_when_the_client_accepts_gzip() {
    let server = start_default().await;
    let plain = get(server.addr, "/metrics").await;
    let gzipped = request(
        server.addr,
        "GET",
        "/metrics",
        &[("Accept-Encoding", "gzip")],
    )
    .await;
    assert_eq!(gzipped.status, 200);
    assert_eq!(gzipped.header("content-encoding"), Some("gzip"));
    assert_eq!(
        gzipped.header("content-length"),
        Some(gzipped.body.len().to_string().as_str())
    );
    assert_eq!(
        gzipped.header("content-type"),
        Some("text/plain; version=0.0.4; charset=utf-8")
    );
    let mut decoded = String::new();
    flate2::read::MultiGzDecoder::new(gzipped.body.as_slice())
        .read_to_string(&mut decoded)
        .expect("valid gzip body of UTF-8 text");
    // Values change between scrapes (durations, file descriptors); the families do not.
    let families = |text: &str| -> Vec<String> {
        let types = text.lines().filter(|line| line.starts_with("# TYPE "));
        types.map(str::to_owned).collect()
    };
    assert_eq!(families(&decoded), families(&plain.text()));

    let refused = request(
        server.addr,
        "GET",
        "/metrics",
        &[("Accept-Encoding", "gzip;q=0")],
    )
    .await;
    assert_eq!(refused.header("content-encoding"), None);
    server.stop().await;
}

#[tokio::test]
async fn metrics_accepts_any_scrape_timeout_header() {
    let server = start_default().await;
    for value in ["10", "0.25", "nonsense", "-1"] {
        let headers = [("X-Prometheus-Scrape-Timeout-Seconds", value)];
        let reply = request(server.addr, "GET", "/metrics", &headers).await;
        assert_eq!(reply.status, 200, "{value}");
    }
    server.stop().await;
}

#[tokio::test]
async fn metrics_is_served_on_a_custom_telemetry_path_only() {
    let server = start(ServerOptions {
        telemetry_path: "/custom/metrics".to_owned(),
        ..ServerOptions::default()
    })
    .await;
    let reply = get(server.addr, "/custom/metrics").await;
    assert_eq!(reply.status, 200);
    assert_eq!(
        reply.header("content-type"),
        Some("text/plain; version=0.0.4; charset=utf-8")
    );
    assert_eq!(get(server.addr, "/metrics").await.status, 404);
    server.stop().await;
}

#[tokio::test]
async fn probe_of_an_unknown_target_is_400() {
    let server = start_default().await;
    let reply = get(server.addr, "/probe?target=nope").await;
    assert_eq!(reply.status, 400);
    assert_eq!(
        reply.header("content-type"),
        Some("text/plain; charset=utf-8")
    );
    assert_eq!(
        reply.text(),
        "Unknown target \"nope\": not a configured vCenter name\n"
    );
    server.stop().await;
}

#[tokio::test]
async fn probe_without_exactly_one_target_is_400() {
    let server = start_default().await;
    for target in ["/probe", "/probe?target=", "/probe?module=vc01"] {
        let reply = get(server.addr, target).await;
        assert_eq!(reply.status, 400, "{target}");
        assert_eq!(
            reply.text(),
            "Missing target parameter: /probe?target=<vCenter name>\n"
        );
    }
    let twice = get(server.addr, "/probe?target=vc01&target=vc02").await;
    assert_eq!(twice.status, 400);
    assert_eq!(twice.text(), "Give the target parameter once\n");
    server.stop().await;
}

#[tokio::test]
async fn probe_decodes_the_target_parameter() {
    let server = start_default().await;
    let reply = get(server.addr, "/probe?target=a%20b+c").await;
    assert_eq!(reply.status, 400);
    assert_eq!(
        reply.text(),
        "Unknown target \"a b c\": not a configured vCenter name\n"
    );
    server.stop().await;
}

#[tokio::test]
async fn landing_page_is_html_linking_metrics_and_targets() {
    let server = start_default().await;
    let reply = get(server.addr, "/").await;
    assert_eq!(reply.status, 200);
    assert_eq!(
        reply.header("content-type"),
        Some("text/html; charset=utf-8")
    );
    let page = reply.text();
    assert!(page.contains("<a href=\"/metrics\">"), "{page}");
    assert!(
        page.contains("<a href=\"/probe?target=vc01\">vc01</a>"),
        "{page}"
    );
    server.stop().await;
}

#[tokio::test]
async fn ready_is_503_until_every_target_tried_its_first_sync_then_200() {
    let server = start_unstarted(ServerOptions::default()).await;
    let healthy = get(server.addr, "/-/healthy").await;
    assert_eq!((healthy.status, healthy.text().as_str()), (200, "Healthy"));
    let ready = get(server.addr, "/-/ready").await;
    assert_eq!((ready.status, ready.text().as_str()), (503, "Not ready"));
    // The vCenter's port is closed: the first sync fails at once, and that is an attempt.
    server.exporter.start();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    let ready = loop {
        let ready = get(server.addr, "/-/ready").await;
        if ready.status == 200 || tokio::time::Instant::now() > deadline {
            break ready;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!((ready.status, ready.text().as_str()), (200, "Ready"));
    server.stop().await;
}

#[tokio::test]
async fn unknown_path_is_404() {
    let server = start_default().await;
    for path in ["/nope", "/metrics/", "/-/reload", "/probe/vc01"] {
        assert_eq!(get(server.addr, path).await.status, 404, "{path}");
    }
    server.stop().await;
}

#[tokio::test]
async fn other_methods_are_405_with_allow() {
    let server = start_default().await;
    for (method, path) in [
        ("POST", "/metrics"),
        ("PUT", "/probe?target=vc01"),
        ("DELETE", "/"),
    ] {
        let reply = request(server.addr, method, path, &[("Content-Length", "0")]).await;
        assert_eq!(reply.status, 405, "{method} {path}");
        assert_eq!(reply.header("allow"), Some("GET, HEAD"));
    }
    server.stop().await;
}

#[tokio::test]
async fn head_answers_headers_without_body() {
    let server = start_default().await;
    let reply = request(server.addr, "HEAD", "/-/healthy", &[]).await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.header("content-length"), Some("7"));
    assert!(reply.body.is_empty());
    server.stop().await;
}

#[tokio::test]
async fn serve_returns_after_shutdown_even_with_an_idle_connection() {
    let server = start_default().await;
    // A keep-alive connection that has sent nothing must not hold the shutdown.
    let _idle = TcpStream::connect(server.addr).await.expect("connect");
    server.stop().await;
}

#[tokio::test]
async fn bind_accepts_prometheus_style_addresses() {
    let all = bind(":0").await.expect(":0 binds every interface");
    let port = all.local_addr().expect("addr").port();
    assert!(TcpStream::connect(("127.0.0.1", port)).await.is_ok());

    let v4 = bind("127.0.0.1:0").await.expect("host:port");
    assert!(v4.local_addr().expect("addr").ip().is_loopback());

    // Containers may have no IPv6; only check the form is understood when they do.
    if let Ok(v6) = bind("[::1]:0").await {
        assert_eq!(v6.local_addr().expect("addr").ip(), Ipv6Addr::LOCALHOST);
    }
}

#[tokio::test]
async fn bind_rejects_addresses_without_a_valid_port() {
    for addr in ["localhost", "", ":http", ":70000"] {
        let error = bind(addr).await.expect_err("rejected");
        assert_eq!(
            error.kind(),
            io::ErrorKind::InvalidInput,
            "{addr:?}: {error}"
        );
    }
}

#[tokio::test]
async fn bind_reports_a_port_in_use() {
    let taken = bind("127.0.0.1:0").await.expect("bind");
    let addr = taken.local_addr().expect("addr").to_string();
    let error = bind(&addr).await.expect_err("second bind fails");
    assert_eq!(error.kind(), io::ErrorKind::AddrInUse);
}

#[tokio::test]
async fn report_routes_answer_in_their_formats_and_name_the_unreachable_vcenter() {
    let server = start_default().await;
    let page = get(server.addr, "/report").await;
    assert_eq!(page.status, 200);
    assert_eq!(
        page.header("content-type"),
        Some("text/html; charset=utf-8")
    );
    assert!(
        page.header("content-security-policy")
            .is_some_and(|p| p.starts_with("default-src 'none';")),
        "{:?}",
        page.headers
    );
    assert_eq!(page.header("cache-control"), Some("no-store"));
    let html = page.text();
    assert!(
        html.contains("vCenter <strong>vc01</strong>: not read: "),
        "{html}"
    );
    assert!(html.contains("<a href=\"/report.csv\">CSV</a>"), "{html}");
    let csv = get(server.addr, "/report.csv").await;
    assert_eq!(csv.status, 200);
    assert_eq!(
        csv.header("content-type"),
        Some("text/csv; charset=utf-8; header=present")
    );
    assert!(
        csv.text().starts_with("vcenter,datacenter_name,"),
        "{}",
        csv.text()
    );
    assert_eq!(csv.text().lines().count(), 1, "the header only");
    let json = get(server.addr, "/report.json?target=vc01").await;
    assert_eq!(json.status, 200);
    assert_eq!(json.header("content-type"), Some("application/json"));
    assert_eq!(json.text(), "[]\n");
    let gzipped = request(
        server.addr,
        "GET",
        "/report.json",
        &[("Accept-Encoding", "gzip")],
    )
    .await;
    assert_eq!(gzipped.header("content-encoding"), Some("gzip"));
    let mut text = String::new();
    flate2::read::GzDecoder::new(&gzipped.body[..])
        .read_to_string(&mut text)
        .expect("gzip");
    assert_eq!(text, "[]\n");
    server.stop().await;
}

#[tokio::test]
async fn report_of_an_unknown_target_is_400() {
    let server = start_default().await;
    for path in [
        "/report?target=nope",
        "/report.csv?target=nope",
        "/report.json?target=nope",
    ] {
        let reply = get(server.addr, path).await;
        assert_eq!(reply.status, 400, "{path}");
        assert_eq!(
            reply.text(),
            "Unknown target \"nope\": not a configured vCenter name\n"
        );
    }
    let twice = get(server.addr, "/report?target=vc01&target=vc01").await;
    assert_eq!(twice.status, 400);
    server.stop().await;
}
