//! The HTTP server: binds the listen address ([`bind`]) and serves the exporter's endpoints over
//! HTTP/1.1 (or HTTPS) with hyper until a shutdown future resolves, then lets in-flight requests
//! finish ([`serve`]). Routes and responses are in `handler` (the report's in `report`), header
//! negotiation and gzip in `negotiate`, the response body that sends a page part by part in
//! `body`; the web config (TLS, basic auth, headers) is applied around the router by `web`,
//! with handshakes and certificate rotation in `tls` and password checks in `auth`.
//!
//! What clients can make it hold is bounded ([`Limits`]): connections (one more is answered 503
//! and closed), the request head's buffer, the time a response write may stall (`timeout`), the
//! password checks waiting (`auth`) and the report renders (`report`).
//!
//! It does not know what a metric is nor how a vCenter is reached (see [`crate::exporter`]), and it
//! does not install signal handlers (see [`crate::cli`]): tests drive it on `127.0.0.1:0`.

mod auth;
mod body;
mod handler;
mod limits;
mod negotiate;
mod reload;
mod report;
#[cfg(test)]
mod tests;
mod timeout;
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
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::exporter::Exporter;
pub use handler::EXPOSITION_CONTENT_TYPE;
pub use limits::Limits;
use limits::Throttled;
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
    /// What clients can make the server hold or do.
    pub limits: Limits,
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
            limits: Limits::default(),
        }
    }
}

/// How long a client may take to send a request's headers (and an idle kept-alive connection
/// may wait for its next request).
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(30);
/// hyper's smallest read buffer.
const MIN_READ_BUFFER: usize = 8192;
/// Pause after a failed `accept` (e.g. out of file descriptors), so as not to spin.
const ACCEPT_ERROR_PAUSE: Duration = Duration::from_millis(100);
/// Connections past the cap being answered 503 at once; past these, they are closed unanswered.
const MAX_REFUSING: usize = 64;
/// How long answering a connection past the cap may take.
const REFUSAL_TIMEOUT: Duration = Duration::from_secs(1);
/// What a connection past the cap is told (plain HTTP; a TLS one is closed).
const TOO_MANY_CONNECTIONS: &[u8] = b"HTTP/1.1 503 Service Unavailable\r\nConnection: close\r\n\
Content-Type: text/plain; charset=utf-8\r\nRetry-After: 1\r\nContent-Length: 21\r\n\r\n\
Too many connections\n";

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
    write_timeout: Duration,
    /// Its place among the connections served at once, given back when it ends.
    _slot: OwnedSemaphorePermit,
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
            write_timeout,
            _slot,
        } = self;
        let service =
            service_fn(move |request| web::guarded(Arc::clone(&state), Arc::clone(&web), request));
        let io = TokioIo::new(timeout::WriteTimeout::new(io, write_timeout));
        let connection = watcher.watch(http.serve_connection(io, service));
        if let Err(error) = connection.await {
            // hyper's message names the step ("error writing a body to connection"), its
            // source what went wrong (the write timeout, a reset).
            let cause = std::error::Error::source(&error).map(ToString::to_string);
            tracing::debug!(
                %peer,
                %error,
                cause = cause.as_deref(),
                "HTTP connection ended with an error"
            );
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
    let reports = report::Reports::new(&options.limits);
    serve_with(listener, exporters, options, reports, shutdown).await
}

/// [`serve_slot`] with the report renders of the caller's (the tests watch them).
async fn serve_with(
    listener: TcpListener,
    exporters: Arc<ExporterSlot>,
    options: ServerOptions,
    reports: Arc<report::Reports>,
    shutdown: impl Future<Output = ()>,
) -> io::Result<()> {
    let limits = options.limits;
    let state = Arc::new(handler::Shared {
        exporters,
        telemetry_path: options.telemetry_path,
        reload: options.reload,
        reports,
    });
    let graceful = GracefulShutdown::new();
    let mut http = http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(HEADER_READ_TIMEOUT)
        .max_buf_size(limits.read_buffer_bytes.max(MIN_READ_BUFFER));
    let connections = Arc::new(Semaphore::new(limits.max_connections));
    let refusing = Arc::new(Semaphore::new(MAX_REFUSING));
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
        // Responses go out in several writes (head, then the page part by part): without
        // TCP_NODELAY the last small one waits for the client's delayed ACK (40 ms on Linux).
        if let Err(error) = stream.set_nodelay(true) {
            tracing::debug!(%peer, %error, "cannot set TCP_NODELAY");
        }
        let tls = options.web.current().tls.clone();
        let Ok(slot) = Arc::clone(&connections).try_acquire_owned() else {
            refuse(
                stream,
                peer,
                tls.is_none(),
                &refusing,
                limits.max_connections,
            );
            continue;
        };
        let connection = Connection {
            state: Arc::clone(&state),
            web: Arc::clone(&options.web),
            http: http.clone(),
            watcher: graceful.watcher(),
            peer,
            write_timeout: limits.write_timeout,
            _slot: slot,
        };
        // The handshake runs in the connection's task, so a slow client delays nobody else.
        match tls {
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

/// Logged when connections are turned away.
static CONNECTIONS_REFUSED: Throttled = Throttled::new();

/// A connection past [`Limits::max_connections`]: answered 503 and closed (plain HTTP), or
/// closed at once (TLS, or when [`MAX_REFUSING`] are being answered already).
fn refuse(stream: TcpStream, peer: SocketAddr, plain: bool, refusing: &Arc<Semaphore>, cap: usize) {
    if let Some(refused) = CONNECTIONS_REFUSED.due() {
        tracing::warn!(
            refused,
            limit = cap,
            "too many connections; refusing new ones with 503"
        );
    }
    tracing::debug!(%peer, "connection refused: too many connections");
    let Some(answering) = plain
        .then(|| Arc::clone(refusing).try_acquire_owned().ok())
        .flatten()
    else {
        return;
    };
    tokio::spawn(async move {
        let _answering = answering;
        let answer = async {
            let mut stream = stream;
            stream.write_all(TOO_MANY_CONNECTIONS).await?;
            stream.shutdown().await?;
            // Read what the client sent, so that closing sends FIN, not a reset that could
            // destroy the answer before the client reads it.
            let mut sink = [0u8; 4096];
            while stream.read(&mut sink).await? > 0 {}
            Ok::<_, io::Error>(())
        };
        let _ = tokio::time::timeout(REFUSAL_TIMEOUT, answer).await;
    });
}
