//! The HTTP server: binds the listen address ([`bind`]) and serves the exporter's endpoints over
//! HTTP/1.1 with hyper until a shutdown future resolves, then lets in-flight requests finish
//! ([`serve`]). Routes and responses are in `handler`, header negotiation and gzip in
//! `negotiate`.
//!
//! It does not know what a metric is nor how a vCenter is reached (see [`crate::exporter`]), and it
//! does not install signal handlers (see [`crate::cli`]): tests drive it on `127.0.0.1:0`.

mod handler;
mod negotiate;
#[cfg(test)]
mod tests;

use std::future::Future;
use std::io;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use socket2::{Domain, Protocol, Socket, Type};
use tokio::net::TcpListener;

use crate::exporter::Exporter;
pub use handler::EXPOSITION_CONTENT_TYPE;

/// How the server serves, apart from the exporter itself.
#[derive(Debug, Clone)]
pub struct ServerOptions {
    /// The path of the metrics of every vCenter (`--web.telemetry-path`), `/metrics` by default.
    pub telemetry_path: String,
    /// How long requests in flight may run on after shutdown is asked for.
    pub shutdown_grace: Duration,
}

impl Default for ServerOptions {
    fn default() -> Self {
        ServerOptions {
            telemetry_path: "/metrics".to_owned(),
            // With the logout's own 2 s, a stop ends within 10 s (what service managers
            // wait by default before a kill): a scrape is answered from memory in well under
            // a second, and a client that sent half its headers is not waited for longer.
            shutdown_grace: Duration::from_secs(5),
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

/// Serves the exporter on `listener` until `shutdown` resolves, then stops accepting and waits up
/// to `options.shutdown_grace` for the requests in flight.
pub async fn serve(
    listener: TcpListener,
    exporter: Arc<Exporter>,
    options: ServerOptions,
    shutdown: impl Future<Output = ()>,
) -> io::Result<()> {
    let landing_page = handler::landing_page(&options.telemetry_path, &exporter.target_names());
    let state = Arc::new(handler::State {
        exporter,
        landing_page: Bytes::from(landing_page),
        telemetry_path: options.telemetry_path,
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
        let state = Arc::clone(&state);
        let service = service_fn(move |request| handler::handle(Arc::clone(&state), request));
        let connection = graceful.watch(http.serve_connection(TokioIo::new(stream), service));
        tokio::spawn(async move {
            if let Err(error) = connection.await {
                tracing::debug!(%peer, %error, "HTTP connection ended with an error");
            }
        });
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
