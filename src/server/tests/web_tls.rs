//! The web config over real sockets: HTTPS with certificates generated for each test (rcgen),
//! basic auth in front of every route but the health checks, client certificates, certificate
//! rotation without a restart, and a web config replaced while the server runs.

use std::path::{Path, PathBuf};

use base64::Engine as _;
use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_rustls::TlsConnector;

use super::*;
use crate::webconfig::WebConfig;

/// A certificate authority of the test's own.
struct Ca {
    issuer: Issuer<'static, KeyPair>,
    pem: String,
}

impl Ca {
    fn new(name: &str) -> Ca {
        let key = KeyPair::generate().expect("CA key");
        let mut params = CertificateParams::new(Vec::new()).expect("CA params");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, name);
        let pem = params.self_signed(&key).expect("CA cert").pem();
        Ca {
            issuer: Issuer::new(params, key),
            pem,
        }
    }

    /// A leaf certificate for `localhost` and 127.0.0.1: (certificate PEM, key PEM).
    fn leaf(&self, name: &str) -> (String, String) {
        let key = KeyPair::generate().expect("leaf key");
        let mut params =
            CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()])
                .expect("leaf params");
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, name);
        let cert = params.signed_by(&key, &self.issuer).expect("leaf cert");
        (cert.pem(), key.serialize_pem())
    }
}

/// A directory with a server certificate and key (and a client CA) and a web config naming them.
struct Files {
    dir: tempfile::TempDir,
}

impl Files {
    fn new() -> Files {
        Files {
            dir: tempfile::tempdir().expect("tempdir"),
        }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Writes `text` to `name` atomically (write then rename), as certificate tools do.
    fn write(&self, name: &str, text: &str) {
        let temporary = self.path(&format!(".{name}.new"));
        std::fs::write(&temporary, text).expect("write");
        std::fs::rename(&temporary, self.path(name)).expect("rename");
    }

    fn web(&self, yaml: &str) -> Arc<Web> {
        let path = self.path("web.yml");
        std::fs::write(&path, yaml).expect("write web.yml");
        let config = WebConfig::load(&path).expect("web config");
        Arc::new(Web::new(&config).expect("web"))
    }
}

async fn start_with(web: Arc<Web>) -> Running {
    start(ServerOptions {
        web,
        ..ServerOptions::default()
    })
    .await
}

fn bcrypt_hash(password: &str) -> String {
    // Cost 4, the minimum: these tests check the logic, not bcrypt's strength.
    bcrypt::hash(password, 4).expect("hash")
}

fn basic(user: &str, password: &str) -> String {
    let encoded = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
    format!("Basic {encoded}")
}

/// A TLS client trusting `ca_pem`, presenting `client` (certificate, key) if given.
fn connector(ca_pem: &str, client: Option<&(String, String)>) -> TlsConnector {
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(ca_pem.as_bytes()) {
        roots.add(cert.expect("CA PEM")).expect("CA");
    }
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_root_certificates(roots);
    let config = match client {
        None => builder.with_no_client_auth(),
        Some((cert, key)) => {
            let chain = CertificateDer::pem_slice_iter(cert.as_bytes())
                .collect::<Result<Vec<_>, _>>()
                .expect("client cert");
            let key = PrivateKeyDer::from_pem_slice(key.as_bytes()).expect("client key");
            builder
                .with_client_auth_cert(chain, key)
                .expect("client auth")
        }
    };
    TlsConnector::from(Arc::new(config))
}

/// One request over an established stream, read to its end (`Connection: close`).
async fn exchange<S: AsyncRead + AsyncWrite + Unpin>(
    mut stream: S,
    target: &str,
    headers: &[(&str, &str)],
) -> io::Result<Reply> {
    let mut head = format!("GET {target} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n");
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes()).await?;
    let mut raw = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut raw))
        .await
        .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "no answer"))??;
    if raw.is_empty() {
        return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "empty answer"));
    }
    Ok(parse_reply(&raw))
}

/// An HTTPS GET: the handshake, then the request; any failure is the error.
async fn https_get(
    addr: SocketAddr,
    connector: &TlsConnector,
    target: &str,
    headers: &[(&str, &str)],
) -> io::Result<Reply> {
    let tcp = TcpStream::connect(addr).await?;
    let name = ServerName::try_from("localhost").expect("server name");
    let tls = connector.connect(name, tcp).await?;
    exchange(tls, target, headers).await
}

/// The DER of the certificate the server presents.
async fn served_certificate(addr: SocketAddr, connector: &TlsConnector) -> Vec<u8> {
    let tcp = TcpStream::connect(addr).await.expect("connect");
    let name = ServerName::try_from("localhost").expect("server name");
    let tls = connector.connect(name, tcp).await.expect("handshake");
    let (_, session) = tls.get_ref();
    let chain = session.peer_certificates().expect("server certificate");
    chain.first().expect("leaf").to_vec()
}

fn der_of(pem: &str) -> Vec<u8> {
    CertificateDer::from_pem_slice(pem.as_bytes())
        .expect("PEM")
        .to_vec()
}

/// A web config with TLS from `server.pem`/`server.key` and the extra `rest` (YAML lines).
fn tls_yaml(rest: &str) -> String {
    format!("tls_server_config:\n  cert_file: server.pem\n  key_file: server.key\n{rest}")
}

fn with_server_cert(files: &Files, ca: &Ca) -> (String, String) {
    let (cert, key) = ca.leaf("server");
    files.write("server.pem", &cert);
    files.write("server.key", &key);
    (cert, key)
}

#[tokio::test]
async fn https_with_basic_auth_answers_401_without_or_with_wrong_credentials_and_200_with_right() {
    let files = Files::new();
    let ca = Ca::new("test CA");
    with_server_cert(&files, &ca);
    let yaml = tls_yaml(&format!(
        "basic_auth_users:\n  prometheus: '{}'\nhttp_server_config:\n  headers:\n    X-Frame-Options: deny\n",
        bcrypt_hash("scrape-me")
    ));
    let server = start_with(files.web(&yaml)).await;
    let client = connector(&ca.pem, None);

    let none = https_get(server.addr, &client, "/metrics", &[])
        .await
        .expect("answer");
    assert_eq!(none.status, 401);
    assert_eq!(
        none.header("www-authenticate"),
        Some("Basic realm=\"vsphere_backup_exporter\", charset=\"UTF-8\"")
    );
    assert_eq!(none.header("x-frame-options"), Some("deny"));

    let wrong = basic("prometheus", "guess");
    let reply = https_get(
        server.addr,
        &client,
        "/metrics",
        &[("Authorization", &wrong)],
    )
    .await
    .expect("answer");
    assert_eq!(reply.status, 401);
    assert!(!reply.text().contains("vsphere_"), "{}", reply.text());

    let right = basic("prometheus", "scrape-me");
    let reply = https_get(
        server.addr,
        &client,
        "/metrics",
        &[("Authorization", &right)],
    )
    .await
    .expect("answer");
    assert_eq!(reply.status, 200);
    assert_eq!(reply.header("content-type"), Some(EXPOSITION_CONTENT_TYPE));
    assert_eq!(reply.header("x-frame-options"), Some("deny"));
    assert!(
        reply.text().contains("# TYPE vsphere_up gauge"),
        "{}",
        reply.text()
    );
    server.stop().await;
}

#[tokio::test]
async fn every_route_but_the_health_checks_needs_credentials() {
    let files = Files::new();
    let yaml = format!("basic_auth_users:\n  prometheus: '{}'\n", bcrypt_hash("pw"));
    let server = start_with(files.web(&yaml)).await;
    let right = basic("prometheus", "pw");
    // Paths of routes that exist, of routes to come and of none: the auth is around the router.
    for target in [
        "/",
        "/metrics",
        "/probe?target=vc01",
        "/-/reload",
        "/not-yet-a-route",
    ] {
        let reply = get(server.addr, target).await;
        assert_eq!(reply.status, 401, "{target}");
        let authorized = request(
            server.addr,
            "GET",
            target,
            &[("Authorization", right.as_str())],
        )
        .await;
        assert_ne!(authorized.status, 401, "{target}");
    }
    for target in PUBLIC_PATHS {
        let reply = get(server.addr, target).await;
        assert_ne!(reply.status, 401, "{target}");
        assert_eq!(reply.header("www-authenticate"), None, "{target}");
    }
    server.stop().await;
}

#[tokio::test]
async fn plain_http_to_the_tls_port_gets_400_and_no_metrics() {
    let files = Files::new();
    let ca = Ca::new("test CA");
    with_server_cert(&files, &ca);
    let server = start_with(files.web(&tls_yaml(""))).await;
    let reply = get(server.addr, "/metrics").await;
    assert_eq!(reply.status, 400);
    assert_eq!(
        reply.text(),
        "Client sent an HTTP request to an HTTPS server.\n"
    );
    // The port still speaks TLS afterwards.
    let reply = https_get(server.addr, &connector(&ca.pem, None), "/metrics", &[])
        .await
        .expect("https");
    assert_eq!(reply.status, 200);
    server.stop().await;
}

#[tokio::test]
async fn a_required_client_certificate_that_is_missing_or_foreign_is_refused() {
    let files = Files::new();
    let server_ca = Ca::new("server CA");
    let client_ca = Ca::new("client CA");
    let stranger_ca = Ca::new("stranger CA");
    with_server_cert(&files, &server_ca);
    files.write("client-ca.pem", &client_ca.pem);
    let yaml = tls_yaml(
        "  client_auth_type: RequireAndVerifyClientCert\n  client_ca_file: client-ca.pem\n",
    );
    let server = start_with(files.web(&yaml)).await;

    let anonymous = connector(&server_ca.pem, None);
    let error = https_get(server.addr, &anonymous, "/metrics", &[])
        .await
        .err()
        .map(|e| e.to_string());
    // TLS 1.3 clients learn of the refusal at their first read: the server's alert.
    assert!(
        error
            .as_deref()
            .is_some_and(|e| e.contains("CertificateRequired")),
        "{error:?}"
    );

    let stranger = connector(&server_ca.pem, Some(&stranger_ca.leaf("stranger")));
    let error = https_get(server.addr, &stranger, "/metrics", &[])
        .await
        .err()
        .map(|e| e.to_string());
    assert!(
        error.as_deref().is_some_and(|e| e.contains("UnknownCA")),
        "{error:?}"
    );

    let member = connector(&server_ca.pem, Some(&client_ca.leaf("prometheus")));
    let reply = https_get(server.addr, &member, "/metrics", &[])
        .await
        .expect("client with a certificate of the client CA");
    assert_eq!(reply.status, 200);
    server.stop().await;
}

#[tokio::test]
async fn a_rotated_certificate_is_served_without_a_restart() {
    let files = Files::new();
    let ca = Ca::new("test CA");
    let (first, _) = with_server_cert(&files, &ca);
    let server = start_with(files.web(&tls_yaml(""))).await;
    let client = connector(&ca.pem, None);
    assert_eq!(
        served_certificate(server.addr, &client).await,
        der_of(&first)
    );

    let (second, _) = with_server_cert(&files, &ca);
    assert_eq!(
        served_certificate(server.addr, &client).await,
        der_of(&second)
    );

    // Half a rotation (a new certificate, the old key) is refused; the last good pair stays
    // until the key follows.
    let (third, third_key) = ca.leaf("server");
    files.write("server.pem", &third);
    assert_eq!(
        served_certificate(server.addr, &client).await,
        der_of(&second)
    );
    files.write("server.key", &third_key);
    assert_eq!(
        served_certificate(server.addr, &client).await,
        der_of(&third)
    );
    server.stop().await;
}

#[tokio::test]
async fn a_replaced_web_config_applies_to_the_next_connections_and_requests() {
    let files = Files::new();
    let ca = Ca::new("test CA");
    with_server_cert(&files, &ca);
    let web = files.web("");
    let server = start_with(Arc::clone(&web)).await;
    assert_eq!(get(server.addr, "/metrics").await.status, 200);

    let yaml = tls_yaml(&format!(
        "basic_auth_users:\n  prometheus: '{}'\n",
        bcrypt_hash("pw")
    ));
    web.replace(Arc::try_unwrap(files.web(&yaml)).expect("sole owner"));
    assert_eq!(get(server.addr, "/metrics").await.status, 400);
    let client = connector(&ca.pem, None);
    let reply = https_get(server.addr, &client, "/metrics", &[])
        .await
        .expect("https");
    assert_eq!(reply.status, 401);
    server.stop().await;
}

#[test]
fn web_new_refuses_a_key_that_does_not_match_the_certificate_naming_the_key() {
    let files = Files::new();
    let ca = Ca::new("test CA");
    let (cert, _) = ca.leaf("one");
    let (_, other_key) = ca.leaf("two");
    files.write("server.pem", &cert);
    files.write("server.key", &other_key);
    std::fs::write(files.path("web.yml"), tls_yaml("")).expect("write");
    let error = WebConfig::load(&files.path("web.yml"))
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    let web_yml = files.path("web.yml");
    let pem = files.path("server.pem");
    assert_eq!(
        error,
        format!(
            "{}:3:13: tls_server_config.key_file: does not match the certificate of cert_file {}",
            web_yml.display(),
            pem.display()
        )
    );
    assert!(Path::new(&pem).exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn password_checks_past_the_cap_are_answered_429_at_once_and_the_waiting_ones_401() {
    let files = Files::new();
    let yaml = format!("basic_auth_users:\n  prometheus: '{}'\n", bcrypt_hash("pw"));
    let web = files.web(&yaml);
    let server = start_with(Arc::clone(&web)).await;
    let state = web.current();
    let checks = state.auth.as_ref().expect("auth").checks();
    // The one bcrypt permit held: every check waits, as behind a slow one.
    let held = Arc::clone(&checks.gate)
        .acquire_owned()
        .await
        .expect("permit");
    let addr = server.addr;
    let guesses: Vec<_> = (0..super::super::auth::MAX_PENDING_CHECKS)
        .map(|i| {
            tokio::spawn(async move {
                let guess = basic("prometheus", &format!("guess {i}"));
                request(addr, "GET", "/metrics", &[("Authorization", &guess)]).await
            })
        })
        .collect();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while checks.pending() < guesses.len() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the guesses never all waited"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let one_more = basic("prometheus", "one more");
    let reply = tokio::time::timeout(
        Duration::from_secs(2),
        request(addr, "GET", "/metrics", &[("Authorization", &one_more)]),
    )
    .await
    .expect("answered at once, not queued");
    assert_eq!(reply.status, 429, "{}", reply.text());
    assert_eq!(reply.header("retry-after"), Some("1"));
    drop(held);
    for guess in guesses {
        assert_eq!(guess.await.expect("task").status, 401);
    }
    let right = basic("prometheus", "pw");
    let reply = request(addr, "GET", "/metrics", &[("Authorization", &right)]).await;
    assert_eq!(reply.status, 200);
    server.stop().await;
}

#[tokio::test]
async fn a_configured_content_security_policy_does_not_replace_the_reports_own() {
    let files = Files::new();
    let yaml = "http_server_config:\n  headers:\n    Content-Security-Policy: default-src 'self'\n    X-Frame-Options: deny\n";
    let server = start_with(files.web(yaml)).await;
    let report = get(server.addr, "/report").await;
    assert_eq!(report.status, 200);
    assert_eq!(
        report.header("content-security-policy"),
        Some(crate::report::content_security_policy())
    );
    assert_eq!(report.header("x-frame-options"), Some("deny"));
    let landing = get(server.addr, "/").await;
    assert_eq!(
        landing.header("content-security-policy"),
        Some("default-src 'self'")
    );
    assert_eq!(landing.header("x-frame-options"), Some("deny"));
    server.stop().await;
}
