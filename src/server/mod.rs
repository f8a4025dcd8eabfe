//! The HTTP server: binds the listen address ([`bind`]) and serves the exporter's endpoints over
//! HTTP/1.1 (or HTTPS) with hyper until a shutdown future resolves, then lets in-flight requests
//! finish ([`serve`]). Routes and responses are in `handler`, header negotiation and gzip in
//! `negotiate`, the response body that sends a page part by part in `body`; the web config
//! (TLS, basic auth, headers) is applied around the router by `web`, with handshakes and
//! certificate rotation in `tls` and password checks in `auth`.
//!
//! It does not know what a metric is nor how a vCenter is reached (see [`crate::exporter`]), and it
//! does not install signal handlers (see [`crate::cli`]): tests drive it on `127.0.0.1:0`.

mod auth;
mod body;
mod handler;
mod limits;
mod negotiate;
mod reload;
#[cfg(test)]
mod tests;
mod tls;
mod web;

use std::future::Future;
use std::io;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::{GracefulShutdown, Watcher};
use socket2::{Domain, Protocol, Socket, Type};
use tokio::net::TcpListener;

use crate::exporter::Exporter;
pub use handler::EXPOSITION_CONTENT_TYPE;
pub use reload::{ExporterSlot, Reload, ReloadFuture};
pub use web::{PUBLIC_PATHS, Web, WebError};

/// How the server serves, apart from the exporter itself.
#[derive(Debug, Clone)]
pub struct ServerOptions {
    /// The path of the metrics of every vCenter (`--web.telemetry-path`), `/metrics` by default.
    pub telemetry_path: String,
    /// How long requests in flight may run on after shutdown is asked for.
    pub shutdown_grace: Duration,
    /// TLS, basic auth and headers (`--web.config.file`); plain HTTP by default. Shared, so a
    /// reload can replace what it holds while the server runs.
    pub web: Arc<Web>,
    /// What `POST /-/reload` runs; without it, `/-/reload` is 404.
    pub reload: Option<Arc<dyn Reload>>,
}

impl Default for ServerOptions {
    fn default() -> Self {
        ServerOptions {
            telemetry_path: "/metrics".to_owned(),
            // With the logout's own 2 s, a stop ends within 10 s (what service managers
            // wait by default before a kill): a scrape is answered from memory in well under
            // a second, and a client that sent half its headers is not waited for longer.
            shutdown_grace: Duration::from_secs(5),
            web: Arc::new(Web::plain()),
            reload: None,
        }
    }
}

/// How long a client may take to send a request's headers.
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(30);
/// Pause after a failed `accept` (e.g. out of file descriptors), so as not to spin.
const ACCEPT_ERROR_PAUSE: Duration = Duration::from_millis(100);

/// Listens on `addr`: `:PORT` (every interface, IPv6 and IPv4), `host:port` or `[v6addr]:port`.
pub async fn bind(addr: &str) -> io::Result<TcpListener> {
    let Some((host, port)) = addr.rsplit_once(':') else {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("listen address {addr:?} has no port; use host:port or :port"),
        ));
    };
    if !host.is_empty() {
        return TcpListener::bind(addr).await;
    }
    let port: u16 = port.parse().map_err(|_| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("listen address {addr:?} has an invalid port"),
        )
    })?;
    // `[::]` with IPV6_V6ONLY off takes IPv4 too; without IPv6, fall back to IPv4 alone.
    match listen_on(SocketAddr::from((Ipv6Addr::UNSPECIFIED, port))) {
        Ok(listener) => Ok(listener),
        Err(error) if error.kind() == io::ErrorKind::AddrInUse => Err(error),
        Err(_) => listen_on(SocketAddr::from((Ipv4Addr::UNSPECIFIED, port))),
    }
}

fn listen_on(addr: SocketAddr) -> io::Result<TcpListener> {
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    if addr.is_ipv6() {
        socket.set_only_v6(false)?;
    }
    // Like Go and std on Unix: a restarted exporter can bind while old connections linger.
    #[cfg(unix)]
    socket.set_reuse_address(true)?;
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    socket.listen(1024)?;
    TcpListener::from_std(socket.into())
}

/// One accepted connection and what serving it needs.
struct Connection {
    state: Arc<handler::Shared>,
    web: Arc<Web>,
    http: http1::Builder,
    watcher: Watcher,
    peer: SocketAddr,
}

impl Connection {
    /// Serves HTTP/1.1 on `io` (a TCP or TLS stream) until the client or a shutdown ends it.
    async fn serve<I>(self, io: I)
    where
        I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
    {
        let Connection {
            state,
            web,
            http,
            watcher,
            peer,
        } = self;
        let service =
            service_fn(move |request| web::guarded(Arc::clone(&state), Arc::clone(&web), request));
        let connection = watcher.watch(http.serve_connection(TokioIo::new(io), service));
        if let Err(error) = connection.await {
            tracing::debug!(%peer, %error, "HTTP connection ended with an error");
        }
    }
}

/// Serves the exporter on `listener` until `shutdown` resolves, then stops accepting and waits up
/// to `options.shutdown_grace` for the requests in flight.
pub async fn serve(
    listener: TcpListener,
    exporter: Arc<Exporter>,
    options: ServerOptions,
    shutdown: impl Future<Output = ()>,
) -> io::Result<()> {
    serve_slot(listener, ExporterSlot::new(exporter), options, shutdown).await
}

/// [`serve`] with the exporter taken from `exporters` for each request, so that a reload can
/// put another in service.
pub async fn serve_slot(
    listener: TcpListener,
    exporters: Arc<ExporterSlot>,
    options: ServerOptions,
    shutdown: impl Future<Output = ()>,
) -> io::Result<()> {
    let state = Arc::new(handler::Shared {
        exporters,
        telemetry_path: options.telemetry_path,
        reload: options.reload,
    });
    let graceful = GracefulShutdown::new();
    let mut http = http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(HEADER_READ_TIMEOUT);
    tokio::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    tracing::warn!(%error, "cannot accept a connection");
                    tokio::time::sleep(ACCEPT_ERROR_PAUSE).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let connection = Connection {
            state: Arc::clone(&state),
            web: Arc::clone(&options.web),
            http: http.clone(),
            watcher: graceful.watcher(),
            peer,
        };
        // The handshake runs in the connection's task, so a slow client delays nobody else.
        match options.web.current().tls.clone() {
            None => tokio::spawn(connection.serve(stream)),
            Some(tls) => tokio::spawn(async move {
                match tls.accept(stream).await {
                    Ok(stream) => connection.serve(stream).await,
                    Err(error) => {
                        tracing::debug!(%peer, %error, "TLS handshake failed");
                    }
                }
            }),
        };
    }
    drop(listener);
    tracing::debug!("HTTP server stopped accepting; waiting for requests in flight");
    tokio::select! {
        () = graceful.shutdown() => {}
        () = tokio::time::sleep(options.shutdown_grace) => {
            tracing::warn!(
                grace_seconds = options.shutdown_grace.as_secs_f64(),
                "requests still in flight after the shutdown grace period; dropping them"
            );
        }
    }
    Ok(())
}
