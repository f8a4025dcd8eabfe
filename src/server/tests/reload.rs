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
