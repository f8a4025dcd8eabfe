//! `/-/reload` over real sockets with a reload of the test's own: POST runs it (200, or 500 with
//! its reason), any other method is 405 naming POST, and without a reload the path is 404.

use std::sync::atomic::{AtomicUsize, Ordering};

use super::*;

/// A reload that counts its runs and fails while `fail` is set.
#[derive(Debug, Default)]
struct Counted {
    runs: AtomicUsize,
    fail: std::sync::atomic::AtomicBool,
}

impl Reload for Counted {
    fn reload(&self) -> ReloadFuture<'_> {
        Box::pin(async move {
            self.runs.fetch_add(1, Ordering::SeqCst);
            if self.fail.load(Ordering::SeqCst) {
                Err("web.yml:3:5: tls_server_config.cert_file: cannot read x.pem".to_owned())
            } else {
                Ok(())
            }
        })
    }
}

#[tokio::test]
async fn post_reload_runs_the_reload_and_answers_200_or_500_with_the_reason() {
    let counted = Arc::new(Counted::default());
    let server = start(ServerOptions {
        reload: Some(counted.clone()),
        ..ServerOptions::default()
    })
    .await;
    let reply = request(server.addr, "POST", "/-/reload", &[]).await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    assert_eq!(counted.runs.load(Ordering::SeqCst), 1);

    counted.fail.store(true, Ordering::SeqCst);
    let reply = request(server.addr, "POST", "/-/reload", &[]).await;
    assert_eq!(reply.status, 500);
    assert_eq!(
        reply.text(),
        "failed to reload the configuration: web.yml:3:5: tls_server_config.cert_file: cannot read x.pem\n"
    );
    assert_eq!(counted.runs.load(Ordering::SeqCst), 2);
    server.stop().await;
}

#[tokio::test]
async fn reload_by_get_or_head_is_405_naming_post_and_runs_nothing() {
    let counted = Arc::new(Counted::default());
    let server = start(ServerOptions {
        reload: Some(counted.clone()),
        ..ServerOptions::default()
    })
    .await;
    for method in ["GET", "HEAD", "PUT"] {
        let reply = request(server.addr, method, "/-/reload", &[]).await;
        assert_eq!(reply.status, 405, "{method}");
        assert_eq!(reply.header("allow"), Some("POST"), "{method}");
    }
    assert_eq!(counted.runs.load(Ordering::SeqCst), 0);
    // The other routes still take GET only.
    let reply = request(server.addr, "POST", "/metrics", &[]).await;
    assert_eq!(reply.status, 405);
    assert_eq!(reply.header("allow"), Some("GET, HEAD"));
    server.stop().await;
}

#[tokio::test]
async fn without_a_reload_the_path_is_404() {
    let server = start_default().await;
    let reply = request(server.addr, "POST", "/-/reload", &[]).await;
    assert_eq!(reply.status, 404);
    server.stop().await;
}

#[tokio::test]
async fn a_request_uses_the_exporter_in_the_slot_when_it_arrives() {
    let config = |name: &str| {
        let yaml = CONFIG.replace("vc01", name);
        Arc::new(
            Exporter::build(Arc::new(Config::from_yaml(&yaml, "t.yml").expect("config")))
                .expect("exporter"),
        )
    };
    let exporters = ExporterSlot::new(config("vc01"));
    let listener = bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(serve_slot(
        listener,
        Arc::clone(&exporters),
        ServerOptions::default(),
        async {
            let _ = stopped.await;
        },
    ));
    assert_eq!(get(addr, "/probe?target=vc01").await.status, 200);
    let previous = exporters.replace(config("vc02"));
    assert_eq!(previous.target_names(), vec!["vc01"]);
    assert_eq!(get(addr, "/probe?target=vc01").await.status, 400);
    assert_eq!(get(addr, "/probe?target=vc02").await.status, 200);
    assert!(get(addr, "/").await.text().contains("target=vc02"));
    let _ = stop.send(());
    let _ = tokio::time::timeout(Duration::from_secs(5), task).await;
}

#[tokio::test]
async fn a_cross_site_reload_is_refused_with_403_and_runs_nothing() {
    let counted = Arc::new(Counted::default());
    let server = start(ServerOptions {
        reload: Some(counted.clone()),
        ..ServerOptions::default()
    })
    .await;
    // What a form on another site makes a browser send (the request helper sends `Host: test`).
    for headers in [
        &[("Origin", "https://evil.example")][..],
        &[("Origin", "http://test.evil.example")],
        &[("Origin", "http://test:8080")],
        &[("Origin", "null")],
        &[("Sec-Fetch-Site", "cross-site")],
        &[("Origin", "http://test"), ("Sec-Fetch-Site", "cross-site")],
    ] {
        let reply = request(server.addr, "POST", "/-/reload", headers).await;
        assert_eq!(reply.status, 403, "{headers:?}");
        assert_eq!(reply.text(), "Cross-site reload refused\n");
    }
    assert_eq!(counted.runs.load(Ordering::SeqCst), 0);
    // The server's own page, curl and Prometheus' tools.
    for headers in [
        &[("Origin", "http://test")][..],
        &[("Origin", "HTTP://TEST:80")],
        &[("Sec-Fetch-Site", "same-origin")],
        &[],
    ] {
        let reply = request(server.addr, "POST", "/-/reload", headers).await;
        assert_eq!(reply.status, 200, "{headers:?}");
    }
    assert_eq!(counted.runs.load(Ordering::SeqCst), 4);
    server.stop().await;
}

/// A reload that says when it starts, waits to be let through, and says when it ends.
#[derive(Debug)]
struct Held {
    started: tokio::sync::Notify,
    proceed: tokio::sync::Semaphore,
    finished: std::sync::atomic::AtomicBool,
}

impl Reload for Held {
    fn reload(&self) -> ReloadFuture<'_> {
        Box::pin(async move {
            self.started.notify_one();
            let _ = self.proceed.acquire().await;
            self.finished.store(true, Ordering::SeqCst);
            Ok(())
        })
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reload_runs_to_its_end_when_the_client_hangs_up() {
    let held = Arc::new(Held {
        started: tokio::sync::Notify::new(),
        proceed: tokio::sync::Semaphore::new(0),
        finished: std::sync::atomic::AtomicBool::new(false),
    });
    let server = start(ServerOptions {
        reload: Some(held.clone()),
        ..ServerOptions::default()
    })
    .await;
    let mut stream = TcpStream::connect(server.addr).await.expect("connect");
    stream
        .write_all(b"POST /-/reload HTTP/1.1\r\nHost: test\r\nContent-Length: 0\r\n\r\n")
        .await
        .expect("write");
    tokio::time::timeout(Duration::from_secs(10), held.started.notified())
        .await
        .expect("the reload started");
    // The client gives up; the server closes the connection without an answer.
    stream.shutdown().await.expect("shutdown");
    let mut answer = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut answer))
        .await
        .expect("the server closed the connection")
        .expect("read");
    assert!(answer.is_empty(), "{}", String::from_utf8_lossy(&answer));
    held.proceed.add_permits(1);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !held.finished.load(Ordering::SeqCst) {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the reload was cancelled with its request"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    server.stop().await;
}
