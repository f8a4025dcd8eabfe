//! The web config in force ([`Web`]): TLS, basic auth and extra headers, built from a
//! [`WebConfig`] and replaced whole on reload; and the layer that applies it around the router:
//! every path but `/-/healthy` and `/-/ready` needs the credentials, whatever routes the router
//! has now or gets later, and every response gets the configured headers.
//!
//! It does not route (see `handler`) nor run handshakes (see `tls`).

use std::convert::Infallible;
use std::sync::{Arc, RwLock};

use super::body::Chunks;
use bytes::Bytes;
use hyper::header::{CONTENT_TYPE, HeaderName, HeaderValue, RETRY_AFTER, WWW_AUTHENTICATE};
use hyper::{Request, Response, StatusCode};

use super::auth::{BasicAuth, MAX_PENDING_CHECKS, Verdict};
use super::handler;
use super::limits::Throttled;
use super::tls::Tls;
use crate::webconfig::WebConfig;

/// Paths served without credentials, so that load balancers and systemd-style health checks need
/// no password.
pub const PUBLIC_PATHS: [&str; 2] = ["/-/healthy", "/-/ready"];

/// Why a web config cannot be served; the message names the key.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct WebError(String);

/// The web config in force. Each connection takes the TLS settings current when it is accepted,
/// each request the auth and headers current when it arrives.
pub struct Web {
    current: RwLock<Arc<WebState>>,
}

pub(super) struct WebState {
    pub(super) tls: Option<Arc<Tls>>,
    pub(super) auth: Option<BasicAuth>,
    headers: Vec<(HeaderName, HeaderValue)>,
}

impl std::fmt::Debug for Web {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let state = self.current();
        f.debug_struct("Web")
            .field("tls", &state.tls.is_some())
            .field("basic_auth", &state.auth.is_some())
            .field("headers", &state.headers.len())
            .finish()
    }
}

impl Default for Web {
    fn default() -> Self {
        Web::plain()
    }
}

impl Web {
    /// Plain HTTP, no authentication, no extra headers (no `--web.config.file`).
    pub fn plain() -> Web {
        Web::from_state(WebState {
            tls: None,
            auth: None,
            headers: Vec::new(),
        })
    }

    /// Everything `config` needs, built and checked: the TLS acceptor (certificate, key and
    /// client CA read again), the authenticator. Blocking file I/O; contacts nothing.
    pub fn new(config: &WebConfig) -> Result<Web, WebError> {
        let tls = match &config.tls {
            Some(settings) => Some(Arc::new(Tls::new(settings.clone()).map_err(WebError)?)),
            None => None,
        };
        let auth = BasicAuth::new(&config.basic_auth_users)
            .map_err(|e| WebError(format!("basic_auth_users: {e}")))?;
        Ok(Web::from_state(WebState {
            tls,
            auth,
            headers: config.headers.clone(),
        }))
    }

    fn from_state(state: WebState) -> Web {
        Web {
            current: RwLock::new(Arc::new(state)),
        }
    }

    /// Puts `other`'s settings in force for the connections and requests that follow.
    pub fn replace(&self, other: Web) {
        let state = other.current();
        match self.current.write() {
            Ok(mut current) => *current = state,
            Err(poisoned) => *poisoned.into_inner() = state,
        }
    }

    /// Whether new connections must speak TLS.
    pub fn is_tls(&self) -> bool {
        self.current().tls.is_some()
    }

    /// Whether requests need credentials.
    pub fn has_auth(&self) -> bool {
        self.current().auth.is_some()
    }

    pub(super) fn current(&self) -> Arc<WebState> {
        match self.current.read() {
            Ok(current) => Arc::clone(&current),
            Err(poisoned) => Arc::clone(&poisoned.into_inner()),
        }
    }
}

/// The router behind the web config's auth and headers.
pub(super) async fn guarded<B>(
    state: Arc<handler::Shared>,
    web: Arc<Web>,
    request: Request<B>,
) -> Result<Response<Chunks>, Infallible> {
    let web = web.current();
    let public = PUBLIC_PATHS.contains(&request.uri().path());
    let verdict = match &web.auth {
        Some(auth) if !public => auth.allows(request.headers()).await,
        _ => Verdict::Allowed,
    };
    let mut response = match verdict {
        Verdict::Allowed => handler::handle(state, request).await?,
        Verdict::Denied => {
            tracing::debug!(
                method = %request.method(),
                path = request.uri().path(),
                "HTTP request without valid credentials"
            );
            unauthorized()
        }
        Verdict::Busy => too_many_checks(),
    };
    // A header the route set wins: the report's Content-Security-Policy allows its own script
    // and style by hash, which a configured policy would block.
    let headers = response.headers_mut();
    for (name, value) in &web.headers {
        if !headers.contains_key(name) {
            headers.insert(name.clone(), value.clone());
        }
    }
    Ok(response)
}

/// Logged when password checks are turned away.
static CHECKS_REFUSED: Throttled = Throttled::new();

/// 429 at once: [`MAX_PENDING_CHECKS`] password checks wait already (someone is trying many
/// passwords, or many clients came at once without a remembered login).
fn too_many_checks() -> Response<Chunks> {
    if let Some(refused) = CHECKS_REFUSED.due() {
        tracing::warn!(
            refused,
            limit = MAX_PENDING_CHECKS,
            "too many password checks waiting; answering 429 until they are done"
        );
    }
    let mut response = Response::new(Chunks::from(Bytes::from_static(
        b"Too many password checks at once; try again\n",
    )));
    *response.status_mut() = StatusCode::TOO_MANY_REQUESTS;
    let headers = response.headers_mut();
    headers.insert(RETRY_AFTER, HeaderValue::from_static("1"));
    headers.insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
}

fn unauthorized() -> Response<Chunks> {
    let mut response = Response::new(Chunks::from(Bytes::from_static(b"Unauthorized\n")));
    *response.status_mut() = StatusCode::UNAUTHORIZED;
    let headers = response.headers_mut();
    headers.insert(
        WWW_AUTHENTICATE,
        HeaderValue::from_static("Basic realm=\"vsphere_backup_exporter\", charset=\"UTF-8\""),
    );
    headers.insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
}
