//! TLS for the server: turns the web config's `tls_server_config` into a rustls `ServerConfig`
//! (protocol versions, TLS 1.2 cipher suites, key exchange groups, client-certificate policy),
//! runs handshakes, and answers a plain HTTP request on the TLS port with 400 as Go's servers do.
//!
//! Certificate rotation needs no restart: before each handshake the certificate, key and client
//! CA files are `stat`ed (off the async workers); when any changed, they are read again and a new
//! `ServerConfig` replaces the old one for the connections that follow. A half-rotated pair (the
//! new certificate written, the old key still there) is refused with one warning, and the
//! previous pair is served until the files are consistent again.
//!
//! It does not parse the web config (see [`crate::webconfig`]) nor decide who may see a page
//! (see `auth`).

use std::io;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use rustls::client::danger::HandshakeSignatureValid;
use rustls::crypto::{CryptoProvider, WebPkiSupportedAlgorithms, aws_lc_rs};
use rustls::pki_types::{CertificateDer, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::server::{ClientHello, ResolvesServerCert, WebPkiClientVerifier};
use rustls::sign::CertifiedKey;
use rustls::{DigitallySignedStruct, DistinguishedName, ServerConfig, SignatureScheme};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;

use crate::webconfig::{ClientAuth, Curve, TlsMaterial, TlsServerConfig, TlsVersion};

/// How long a client may take to start and finish its handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// The first byte of every TLS connection: a handshake record.
const TLS_HANDSHAKE_RECORD: u8 = 0x16;

/// What Go's HTTPS servers answer to plain HTTP, so that `curl http://` says what is wrong.
const PLAIN_HTTP_ANSWER: &[u8] =
    b"HTTP/1.0 400 Bad Request\r\n\r\nClient sent an HTTP request to an HTTPS server.\n";

/// The TLS side of the server for one web config: the acceptor in use and what it was built from.
pub(super) struct Tls {
    settings: TlsServerConfig,
    files: Vec<PathBuf>,
    current: Mutex<Current>,
}

struct Current {
    acceptor: TlsAcceptor,
    /// The files' state the acceptor was built from.
    stamp: Stamp,
    /// A state of the files that could not be used, so it is reported once, not per handshake.
    rejected: Option<Stamp>,
}

/// Size, modification time and inode of each watched file (None when it cannot be read).
#[derive(Debug, Clone, PartialEq, Eq)]
struct Stamp(Vec<Option<(u64, Option<SystemTime>, u64)>>);

impl Stamp {
    fn of(files: &[PathBuf]) -> Stamp {
        Stamp(
            files
                .iter()
                .map(|path| {
                    let meta = std::fs::metadata(path).ok()?;
                    #[cfg(unix)]
                    let inode = std::os::unix::fs::MetadataExt::ino(&meta);
                    #[cfg(not(unix))]
                    let inode = 0;
                    Some((meta.len(), meta.modified().ok(), inode))
                })
                .collect(),
        )
    }
}

impl Tls {
    /// Reads the certificate, key and client CA and builds the first acceptor. Blocking file I/O.
    pub(super) fn new(settings: TlsServerConfig) -> Result<Tls, String> {
        let files = settings.files();
        let stamp = Stamp::of(&files);
        let acceptor = acceptor(&settings)?;
        Ok(Tls {
            settings,
            files,
            current: Mutex::new(Current {
                acceptor,
                stamp,
                rejected: None,
            }),
        })
    }

    /// Accepts one TLS connection: refuses plain HTTP with 400, then runs the handshake with the
    /// newest usable certificate. Times out after [`HANDSHAKE_TIMEOUT`].
    pub(super) async fn accept(
        self: Arc<Self>,
        stream: TcpStream,
    ) -> io::Result<TlsStream<TcpStream>> {
        let handshake = async {
            let mut stream = stream;
            let mut first = [0u8; 1];
            if stream.peek(&mut first).await? == 0 {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "closed before the TLS handshake",
                ));
            }
            if first[0] != TLS_HANDSHAKE_RECORD {
                let _ = stream.write_all(PLAIN_HTTP_ANSWER).await;
                let _ = stream.shutdown().await;
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    "plain HTTP request on the TLS port",
                ));
            }
            let acceptor = self.fresh_acceptor().await;
            acceptor.accept(stream).await
        };
        tokio::time::timeout(HANDSHAKE_TIMEOUT, handshake)
            .await
            .unwrap_or_else(|_| {
                Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    "TLS handshake timed out",
                ))
            })
    }

    /// The acceptor for a new connection, rebuilt first if the files changed.
    async fn fresh_acceptor(self: &Arc<Self>) -> TlsAcceptor {
        if self.files.is_empty() {
            return self.acceptor_in_use();
        }
        let this = Arc::clone(self);
        match tokio::task::spawn_blocking(move || this.refresh()).await {
            Ok(acceptor) => acceptor,
            Err(_) => self.acceptor_in_use(),
        }
    }

    fn acceptor_in_use(&self) -> TlsAcceptor {
        match self.current.lock() {
            Ok(current) => current.acceptor.clone(),
            Err(poisoned) => poisoned.into_inner().acceptor.clone(),
        }
    }

    /// Blocking: compares the files with the state in use and rebuilds the acceptor when they
    /// changed. The lock is not held while the files are read.
    fn refresh(&self) -> TlsAcceptor {
        let stamp = Stamp::of(&self.files);
        {
            let current = match self.current.lock() {
                Ok(current) => current,
                Err(poisoned) => poisoned.into_inner(),
            };
            if current.stamp == stamp || current.rejected.as_ref() == Some(&stamp) {
                return current.acceptor.clone();
            }
        }
        let rebuilt = acceptor(&self.settings);
        let mut current = match self.current.lock() {
            Ok(current) => current,
            Err(poisoned) => poisoned.into_inner(),
        };
        match rebuilt {
            Ok(acceptor) => {
                tracing::info!("TLS certificate files changed; serving the new certificate");
                current.acceptor = acceptor;
                current.stamp = stamp;
                current.rejected = None;
            }
            Err(error) => {
                tracing::warn!(
                    err = error.as_str(),
                    "TLS certificate files changed but cannot be used; still serving the previous certificate"
                );
                current.rejected = Some(stamp);
            }
        }
        current.acceptor.clone()
    }
}

/// Reads the files and builds an acceptor. Blocking file I/O.
fn acceptor(settings: &TlsServerConfig) -> Result<TlsAcceptor, String> {
    let material = settings
        .read_material()
        .map_err(|e| format!("tls_server_config.{e}"))?;
    let config =
        server_config(settings, material).map_err(|e| format!("tls_server_config: {e}"))?;
    Ok(TlsAcceptor::from(Arc::new(config)))
}

/// The rustls configuration for `settings` with certificate, key and client CAs from `material`.
fn server_config(
    settings: &TlsServerConfig,
    material: TlsMaterial,
) -> Result<ServerConfig, String> {
    let provider = Arc::new(provider(settings));
    let versions: Vec<&'static rustls::SupportedProtocolVersion> = [
        (TlsVersion::Tls12, &rustls::version::TLS12),
        (TlsVersion::Tls13, &rustls::version::TLS13),
    ]
    .into_iter()
    .filter(|(version, _)| (settings.min_version..=settings.max_version).contains(version))
    .map(|(_, supported)| supported)
    .collect();
    let verifier = client_verifier(settings, &material, &provider)?;
    let mut config = ServerConfig::builder_with_provider(Arc::clone(&provider))
        .with_protocol_versions(&versions)
        .map_err(|e| format!("min_version/max_version/cipher_suites: {e}"))?
        .with_client_cert_verifier(verifier)
        .with_cert_resolver(Arc::new(OneCertificate(material.certified_key)));
    config.ignore_client_order = settings.prefer_server_cipher_suites;
    // The server speaks HTTP/1.1 only (exporter-toolkit's `http2` is accepted and has no effect).
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(config)
}

/// aws-lc-rs with the configured TLS 1.2 suites and key exchange groups.
fn provider(settings: &TlsServerConfig) -> CryptoProvider {
    let mut provider = aws_lc_rs::default_provider();
    if !settings.cipher_suites.is_empty() {
        let tls13 = provider
            .cipher_suites
            .iter()
            .filter(|suite| suite.version() == &rustls::version::TLS13)
            .copied();
        let tls12 = settings.cipher_suites.iter().filter_map(|wanted| {
            aws_lc_rs::ALL_CIPHER_SUITES
                .iter()
                .find(|suite| suite.suite() == *wanted)
                .copied()
        });
        provider.cipher_suites = tls13.chain(tls12).collect();
    }
    if !settings.curve_preferences.is_empty() {
        provider.kx_groups = settings
            .curve_preferences
            .iter()
            .map(|curve| match curve {
                Curve::X25519 => aws_lc_rs::kx_group::X25519,
                Curve::P256 => aws_lc_rs::kx_group::SECP256R1,
                Curve::P384 => aws_lc_rs::kx_group::SECP384R1,
            })
            .collect();
    }
    provider
}

fn client_verifier(
    settings: &TlsServerConfig,
    material: &TlsMaterial,
    provider: &Arc<CryptoProvider>,
) -> Result<Arc<dyn ClientCertVerifier>, String> {
    let algorithms = provider.signature_verification_algorithms;
    let verifying = |roots: &Option<Arc<rustls::RootCertStore>>| {
        let roots = roots
            .clone()
            .ok_or_else(|| format!("{} needs a client CA", settings.client_auth.name()))?;
        Ok::<_, String>(WebPkiClientVerifier::builder_with_provider(
            roots,
            Arc::clone(provider),
        ))
    };
    let build_error = |e: rustls::server::VerifierBuilderError| format!("client CA: {e}");
    match settings.client_auth {
        ClientAuth::NoClientCert => Ok(WebPkiClientVerifier::no_client_auth()),
        ClientAuth::RequestClientCert => Ok(Arc::new(AnyClientCert {
            mandatory: false,
            algorithms,
        })),
        ClientAuth::RequireAnyClientCert => Ok(Arc::new(AnyClientCert {
            mandatory: true,
            algorithms,
        })),
        ClientAuth::VerifyClientCertIfGiven => verifying(&material.client_roots)?
            .allow_unauthenticated()
            .build()
            .map_err(build_error),
        ClientAuth::RequireAndVerifyClientCert => verifying(&material.client_roots)?
            .build()
            .map_err(build_error),
    }
}

/// Serves the one configured certificate whatever the client asks for (as exporter-toolkit).
#[derive(Debug)]
struct OneCertificate(Arc<CertifiedKey>);

impl ResolvesServerCert for OneCertificate {
    fn resolve(&self, _client_hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(Arc::clone(&self.0))
    }
}

/// `RequestClientCert` / `RequireAnyClientCert`: a client certificate is asked for (and
/// required when `mandatory`) but its chain is not verified, as Go does; the client must still
/// prove it holds the certificate's key. Authenticates nobody: the README says to use
/// `RequireAndVerifyClientCert`.
#[derive(Debug)]
struct AnyClientCert {
    mandatory: bool,
    algorithms: WebPkiSupportedAlgorithms,
}

impl ClientCertVerifier for AnyClientCert {
    fn client_auth_mandatory(&self) -> bool {
        self.mandatory
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &[]
    }

    fn verify_client_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        Ok(ClientCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}
