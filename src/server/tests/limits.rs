//! The server's limits over real sockets: connections past the cap answered 503, a client that
//! stops reading losing its connection after the write timeout, a request head past the read
//! buffer answered 431, and report renders shared, capped and refused past the waiters.

use std::sync::atomic::Ordering::SeqCst;

use tokio::net::TcpSocket;

use super::*;

fn with_limits(limits: Limits) -> ServerOptions {
    ServerOptions {
        limits,
        ..ServerOptions::default()
    }
}

/// Waits until `done` holds, at most 10 s.
async fn wait_until(what: &str, mut done: impl AsyncFnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !done().await {
        assert!(tokio::time::Instant::now() < deadline, "never: {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn connections_past_the_cap_are_answered_503_until_one_ends() {
    let server = start(with_limits(Limits {
        max_connections: 2,
        ..Limits::default()
    }))
    .await;
    // Two idle connections take both places (accepted in the order they connect).
    let first = TcpStream::connect(server.addr).await.expect("connect");
    let _second = TcpStream::connect(server.addr).await.expect("connect");
    let reply = get(server.addr, "/-/healthy").await;
    assert_eq!(reply.status, 503);
    assert_eq!(reply.text(), "Too many connections\n");
    assert_eq!(reply.header("retry-after"), Some("1"));
    drop(first);
    wait_until("a place is free again", async || {
        get(server.addr, "/-/healthy").await.status == 200
    })
    .await;
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_stops_reading_loses_its_connection_after_the_write_timeout() {
    let server = start(with_limits(Limits {
        max_connections: 1,
        write_timeout: Duration::from_millis(200),
        ..Limits::default()
    }))
    .await;
    // Pipelined requests for far more than the sockets buffer (each answer is the ~30 KB
    // report page), and not a byte read: the server's writes stall.
    let socket = TcpSocket::new_v4().expect("socket");
    socket.set_recv_buffer_size(4096).expect("small buffer");
    let stalled = socket.connect(server.addr).await.expect("connect");
    let (mut reading, mut writing) = stalled.into_split();
    let writer = tokio::spawn(async move {
        let request = b"GET /report HTTP/1.1\r\nHost: test\r\n\r\n";
        for _ in 0..2_000 {
            if writing.write_all(request).await.is_err() {
                break;
            }
        }
    });
    // It holds the one place until the write timeout closes it.
    wait_until("the stalled connection is closed", async || {
        get(server.addr, "/-/healthy").await.status == 200
    })
    .await;
    writer.abort();
    // What it was sent ends with the close (no more than the buffers held).
    let mut sink = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(10), reading.read_to_end(&mut sink)).await;
    assert!(read.is_ok(), "the stalled connection is still open");
    assert!(sink.len() < 2_000 * 30_000, "{} bytes", sink.len());
    server.stop().await;
}

#[tokio::test]
async fn a_request_head_past_the_read_buffer_is_431() {
    let server = start(with_limits(Limits {
        read_buffer_bytes: 16 * 1024,
        ..Limits::default()
    }))
    .await;
    let big = "x".repeat(32 * 1024);
    let reply = request(server.addr, "GET", "/-/healthy", &[("X-Big", &big)]).await;
    assert_eq!(reply.status, 431);
    let small = "x".repeat(8 * 1024);
    let reply = request(server.addr, "GET", "/-/healthy", &[("X-Small", &small)]).await;
    assert_eq!(reply.status, 200);
    server.stop().await;
}

#[test]
fn the_default_read_buffer_is_64_kib() {
    assert_eq!(Limits::default().read_buffer_bytes, 64 * 1024);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn equal_report_requests_share_one_render_head_and_gzip_included() {
    let options = ServerOptions::default();
    let reports = report::Reports::new(&options.limits);
    let server = start_unstarted_with(options, Arc::clone(&reports)).await;
    // Every render waits until the test lets go, so that all requests meet the one under way.
    let held = Arc::clone(&reports.renders)
        .acquire_many_owned(2)
        .await
        .expect("permits");
    let addr = server.addr;
    let asks: Vec<_> = (0..30)
        .map(|i| {
            tokio::spawn(async move {
                let method = if i % 3 == 0 { "HEAD" } else { "GET" };
                let gzip: &[(&str, &str)] = if i % 2 == 0 {
                    &[("Accept-Encoding", "gzip")]
                } else {
                    &[]
                };
                (method, request(addr, method, "/report.csv", gzip).await)
            })
        })
        .collect();
    wait_until("every request waits for the report", async || {
        reports.counts.asked.load(SeqCst) == 30
    })
    .await;
    drop(held);
    let mut lengths = std::collections::BTreeSet::new();
    for ask in asks {
        let (method, reply) = ask.await.expect("task");
        assert_eq!(reply.status, 200);
        let length = reply.header("content-length").expect("length").to_owned();
        if method == "GET" {
            assert_eq!(length, reply.body.len().to_string());
        }
        lengths.insert((reply.header("content-encoding").is_some(), length));
    }
    assert_eq!(
        lengths.len(),
        2,
        "one plain and one gzipped body: {lengths:?}"
    );
    assert_eq!(reports.counts.renders.load(SeqCst), 1);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn report_renders_past_the_cap_wait_and_past_the_waiters_get_503_at_once() {
    let options = with_limits(Limits {
        max_renders: 1,
        max_render_waiters: 2,
        ..Limits::default()
    });
    let reports = report::Reports::new(&options.limits);
    let server = start_unstarted_with(options, Arc::clone(&reports)).await;
    let held = Arc::clone(&reports.renders)
        .acquire_owned()
        .await
        .expect("permit");
    let addr = server.addr;
    let spawn_get = |path: &'static str| tokio::spawn(async move { get(addr, path).await });
    // Two different reports wait for the render permit; an equal request joins the first.
    let waiting = [
        spawn_get("/report.csv"),
        spawn_get("/report.json"),
        spawn_get("/report.csv"),
    ];
    wait_until("two requests wait for a render", async || {
        reports.waiting() == 2 && reports.counts.asked.load(SeqCst) == 3
    })
    .await;
    let refused = tokio::time::timeout(Duration::from_secs(2), get(addr, "/report"))
        .await
        .expect("answered at once, not queued");
    assert_eq!(refused.status, 503);
    assert_eq!(refused.header("retry-after"), Some("5"));
    assert_eq!(reports.counts.renders.load(SeqCst), 0);
    drop(held);
    for reply in waiting {
        assert_eq!(reply.await.expect("task").status, 200);
    }
    assert_eq!(reports.counts.renders.load(SeqCst), 2);
    assert_eq!(reports.counts.most_at_once.load(SeqCst), 1);
    server.stop().await;
}

#[tokio::test]
async fn a_report_is_rendered_again_when_what_it_reads_changes_or_it_is_a_second_old() {
    let options = ServerOptions::default();
    let reports = report::Reports::new(&options.limits);
    let server = start_unstarted_with(options, Arc::clone(&reports)).await;
    let renders = || reports.counts.renders.load(SeqCst);
    let before = get(server.addr, "/report").await.text();
    assert!(before.contains("not read: not started"), "{before}");
    assert_eq!(renders(), 1);
    // The vCenter's port is closed: once started, its status says why it is not read.
    server.exporter.start();
    wait_until("the report shows the failed sync", async || {
        !get(server.addr, "/report")
            .await
            .text()
            .contains("not started")
    })
    .await;
    let after_start = renders();
    assert!(after_start >= 2);
    // Unchanged inputs: rendered again only once the last render is a second old.
    wait_until("the report is rendered again", async || {
        get(server.addr, "/report").await;
        renders() > after_start
    })
    .await;
    server.stop().await;
}
