//! The network shell around the pure SOAP functions: one [`Client`] per vCenter, holding a
//! reqwest client and the session.
//!
//! The session cookie (`vmware_soap_session`) is kept here by hand rather than in a cookie
//! store, so it is only ever sent to the one configured URL, and it is a [`Secret`]. A session
//! is reused across collections; when vCenter says `NotAuthenticated` (as a SOAP fault, or as a
//! fault inside a 200 answer's `missingSet`) the client logs in once more and retries once.
//! Every call has the configured timeout; connecting has its own.

use std::collections::BTreeMap;
use std::io::{BufRead, Read};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::{Buf, Bytes};
use tokio::sync::{Mutex, mpsc};
use tracing::{debug, error, info};

use super::error::{CallError, Error, ParseError};
use super::model::MoRef;
use super::soap;
use super::xml::{self, Limits, Node};
use crate::secret::Secret;

/// The API version asked for before vCenter has told its own (every vCenter since 6.5 has it).
const BOOTSTRAP_API_VERSION: &str = "6.5";
const SESSION_COOKIE: &str = "vmware_soap_session";
/// The most of a non-200 answer that is read, looking for the SOAP fault in it.
const MAX_FAULT_BYTES: u64 = 1 << 20;

/// The parts of `ServiceContent` the exporter uses.
#[derive(Debug, Clone, PartialEq)]
pub struct ServiceContent {
    pub root_folder: MoRef,
    pub property_collector: MoRef,
    pub view_manager: MoRef,
    pub session_manager: MoRef,
    pub api_version: String,
    /// `perfManager`; absent only on endpoints without performance statistics.
    pub perf_manager: Option<MoRef>,
    /// `setting`: the vCenter's OptionManager.
    pub setting: Option<MoRef>,
    /// `customFieldsManager` and `eventManager`: absent on a bare ESXi host.
    pub custom_fields_manager: Option<MoRef>,
    pub event_manager: Option<MoRef>,
    /// `taskManager`: the task history (CreateCollectorForTasks).
    pub task_manager: Option<MoRef>,
}

impl ServiceContent {
    pub fn from_node(rv: &Node) -> Result<Self, CallError> {
        let get = |name: &str| {
            rv.child(name)
                .and_then(Node::moref)
                .ok_or_else(|| CallError::Malformed(format!("ServiceContent without {name}")))
        };
        Ok(ServiceContent {
            root_folder: get("rootFolder")?,
            property_collector: get("propertyCollector")?,
            view_manager: get("viewManager")?,
            session_manager: get("sessionManager")?,
            api_version: rv
                .child("about")
                .and_then(|a| a.text_of("apiVersion"))
                .unwrap_or(BOOTSTRAP_API_VERSION)
                .trim()
                .to_string(),
            perf_manager: rv.child("perfManager").and_then(Node::moref),
            setting: rv.child("setting").and_then(Node::moref),
            custom_fields_manager: rv.child("customFieldsManager").and_then(Node::moref),
            event_manager: rv.child("eventManager").and_then(Node::moref),
            task_manager: rv.child("taskManager").and_then(Node::moref),
        })
    }
}

/// How a [`Client`] reaches its vCenter: the vSphere side's own options, so the client does not
/// depend on the shape of the YAML configuration.
#[derive(Debug, Clone)]
pub struct ClientOptions {
    /// The vCenter's name, for errors and logs.
    pub name: String,
    pub url: reqwest::Url,
    pub username: String,
    pub password: Secret,
    pub tls: TlsOptions,
    pub connect_timeout: Duration,
    pub request_timeout: Duration,
    /// The pause after `InvalidLogin` before the next login attempt.
    pub login_retry_interval: Duration,
    /// The largest body read whole.
    pub max_response_size: u64,
    /// The largest single value (text node, tag) of an answer read as it streams in.
    pub max_value_size: u64,
}

/// How the client trusts the vCenter's certificate.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TlsOptions {
    /// A PEM bundle of CA certificates to trust for the vCenter's certificate.
    pub ca_file: Option<std::path::PathBuf>,
    /// Accept any certificate (for a test only).
    pub insecure_skip_verify: bool,
}

/// Login attempts by result, for `vsphere_login_attempts_total`.
#[derive(Debug, Default)]
pub struct LoginCounts {
    pub success: AtomicU64,
    /// vCenter refused the credentials.
    pub invalid_login: AtomicU64,
    /// Anything else: vCenter unreachable, a fault, a malformed answer.
    pub error: AtomicU64,
}

/// The session and what the last login attempt said.
#[derive(Default)]
struct SessionSlot {
    session: Option<Session>,
    /// Set after `InvalidLogin`: no attempt before then.
    refused_until: Option<Instant>,
}

/// A logged-in session.
/// One vCenter's outages as its sources report them.
#[derive(Debug, Default)]
struct Incident {
    /// A failure has been reported (logged as a warning) and no source is in sync since.
    open: bool,
    /// When the last reported incident ended.
    closed_at: Option<Instant>,
}

impl Incident {
    /// True when a failure of a request sent at `sent` starts a new incident (and opens it).
    fn claim(&mut self, sent: Option<Instant>) -> bool {
        if self.open {
            return false;
        }
        if let (Some(sent), Some(closed)) = (sent, self.closed_at)
            && sent < closed
        {
            return false; // in flight when the last incident ended: that incident's
        }
        self.open = true;
        true
    }

    /// A source is in sync: an open incident ends now.
    fn close(&mut self, now: Instant) {
        if self.open {
            self.open = false;
            self.closed_at = Some(now);
        }
    }
}

#[derive(Debug, Clone)]
pub struct Session {
    pub content: ServiceContent,
    cookie: Secret,
}

impl Session {
    /// True when both are the same login (objects made in one live as long as it does).
    pub fn is_same(&self, other: &Session) -> bool {
        self.cookie == other.cookie
    }
}

/// A vSphere SOAP client for one vCenter.
pub struct Client {
    vcenter: String,
    url: reqwest::Url,
    username: String,
    password: Secret,
    http: reqwest::Client,
    request_timeout: Duration,
    login_retry_interval: Duration,
    max_response_size: u64,
    /// What one streamed answer may make the parser hold.
    limits: Limits,
    session: Mutex<SessionSlot>,
    login_counts: LoginCounts,
    /// Whether an outage is being reported, and when the last one ended: every source of this
    /// vCenter fails in the same outage, and it is logged once, not per source.
    incident: std::sync::Mutex<Incident>,
    /// Failed calls by call and kind of failure (a std lock: held for one increment only).
    call_errors: std::sync::Mutex<BTreeMap<(&'static str, &'static str), u64>>,
}

impl Client {
    /// Builds the client; no network traffic until the first call.
    pub fn new(config: &ClientOptions) -> Result<Self, Error> {
        let fail = |source| Error {
            vcenter: config.name.clone(),
            call: "TLS setup",
            failure: source,
            sent: None,
        };
        let mut builder = reqwest::Client::builder()
            .connect_timeout(config.connect_timeout)
            .timeout(config.request_timeout)
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!(
                "vsphere_backup_exporter/",
                env!("CARGO_PKG_VERSION")
            ))
            .tls_danger_accept_invalid_certs(config.tls.insecure_skip_verify);
        if let Some(path) = &config.tls.ca_file {
            let pem = std::fs::read(path).map_err(|e| {
                fail(CallError::Transport(format!(
                    "reading ca_file {}: {e}",
                    path.display()
                )))
            })?;
            let certs = reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| {
                fail(CallError::Transport(format!(
                    "ca_file {}: {e}",
                    path.display()
                )))
            })?;
            builder = builder.tls_certs_merge(certs);
        }
        let http = builder
            .build()
            .map_err(|e| fail(CallError::Transport(error_chain(&e))))?;
        Ok(Client {
            vcenter: config.name.clone(),
            url: config.url.clone(),
            username: config.username.clone(),
            password: config.password.clone(),
            http,
            request_timeout: config.request_timeout,
            login_retry_interval: config.login_retry_interval,
            max_response_size: config.max_response_size,
            limits: Limits {
                max_text_bytes: usize::try_from(config.max_value_size).unwrap_or(usize::MAX),
            },
            session: Mutex::new(SessionSlot::default()),
            login_counts: LoginCounts::default(),
            call_errors: std::sync::Mutex::new(BTreeMap::new()),
            incident: std::sync::Mutex::new(Incident::default()),
        })
    }

    /// The vCenter's name.
    pub fn vcenter(&self) -> &str {
        &self.vcenter
    }

    /// How many times this client has logged in successfully.
    pub fn logins(&self) -> u64 {
        self.login_counts.success.load(Ordering::Relaxed)
    }

    /// Login attempts by result.
    pub fn login_counts(&self) -> &LoginCounts {
        &self.login_counts
    }

    /// Failed calls so far, by call and kind of failure.
    pub fn call_errors(&self) -> Vec<(&'static str, &'static str, u64)> {
        match self.call_errors.lock() {
            Ok(m) => m.iter().map(|((c, k), n)| (*c, *k, *n)).collect(),
            Err(_) => Vec::new(),
        }
    }

    /// True for the first failure of a new incident: its source logs the warning, the others
    /// a debug line (one warning per incident, not per source). A failure is part of the
    /// incident in force, or of the last one when its request was sent before that one ended
    /// (`sent`: [`Error::sent`]): a request sent while vCenter hung that times out after it
    /// recovered is the same outage, not a new one.
    pub fn claim_incident(&self, sent: Option<Instant>) -> bool {
        let Ok(mut incident) = self.incident.lock() else {
            return true;
        };
        incident.claim(sent)
    }

    /// A source is in sync again: the next failure of a request sent from now on is a new
    /// incident. (Not any call's success: an answer nobody reads, such as
    /// DestroyPropertyCollector's, proves little.)
    pub fn incident_over(&self) {
        if let Ok(mut incident) = self.incident.lock() {
            incident.close(Instant::now());
        }
    }

    /// The username and password the REST client of the same vCenter logs in with.
    pub(super) fn credentials(&self) -> (&str, &Secret) {
        (&self.username, &self.password)
    }

    /// The SDK URL, the pause after a refused login and the largest answer read whole, for the
    /// REST client of the same vCenter.
    pub(super) fn rest_settings(&self) -> (&reqwest::Url, Duration, u64) {
        (&self.url, self.login_retry_interval, self.max_response_size)
    }

    /// The HTTP client (its TLS settings and connection pool), for the REST client of the same
    /// vCenter ([`super::rest`]).
    pub fn http(&self) -> &reqwest::Client {
        &self.http
    }

    /// The limits answers are read with.
    pub fn limits(&self) -> Limits {
        self.limits
    }

    /// The request timeout every call has unless it says otherwise.
    pub fn request_timeout(&self) -> Duration {
        self.request_timeout
    }

    /// The current session, logging in first when there is none. Every source of a vCenter
    /// shares it: concurrent callers wait for one login. After `InvalidLogin` no attempt is made
    /// until `login_retry_interval` has passed; callers get [`CallError::LoginSuspended`].
    pub async fn session(&self) -> Result<Session, Error> {
        let mut slot = self.session.lock().await;
        if let Some(s) = slot.session.as_ref() {
            return Ok(s.clone());
        }
        if let Some(until) = slot.refused_until {
            let left = until.saturating_duration_since(Instant::now());
            if !left.is_zero() {
                return Err(self.error("Login", CallError::LoginSuspended(left)));
            }
        }
        match self.login().await {
            Ok(s) => {
                self.login_counts.success.fetch_add(1, Ordering::Relaxed);
                slot.refused_until = None;
                slot.session = Some(s.clone());
                Ok(s)
            }
            Err(e) if e.failure.is_invalid_login() => {
                self.login_counts
                    .invalid_login
                    .fetch_add(1, Ordering::Relaxed);
                slot.refused_until = Some(Instant::now() + self.login_retry_interval);
                error!(
                    vcenter = %self.vcenter,
                    user = %self.username,
                    retry_seconds = self.login_retry_interval.as_secs_f64(),
                    "vCenter refused the login (InvalidLogin); check username and password. Not trying again before the retry interval, so the account is not locked"
                );
                Err(e)
            }
            Err(e) => {
                self.login_counts.error.fetch_add(1, Ordering::Relaxed);
                Err(e)
            }
        }
    }

    /// Forgets `session` because vCenter no longer knows it, unless another source has
    /// replaced it already (compare and replace: a newer session is never dropped).
    pub async fn invalidate(&self, session: &Session) {
        let mut slot = self.session.lock().await;
        if slot
            .session
            .as_ref()
            .is_some_and(|current| current.cookie == session.cookie)
        {
            slot.session = None;
        }
    }

    /// Destroys a PropertyCollector, a view or an event collector of the session. `Ok` once
    /// vCenter no longer holds it (destroyed, or already gone with its session); `Err` when it
    /// may still hold it (the call failed otherwise): the caller keeps it for another try.
    pub async fn destroy(&self, session: &Session, object: &MoRef) -> Result<(), Error> {
        let (call, body) = match object.kind.as_str() {
            "PropertyCollector" => (
                "DestroyPropertyCollector",
                soap::destroy_property_collector(object),
            ),
            kind if kind.ends_with("HistoryCollector") => {
                ("DestroyCollector", super::events::destroy_collector(object))
            }
            _ => ("DestroyView", soap::destroy_view(object)),
        };
        match self.call(call, session, body).await {
            Ok(_) => Ok(()),
            Err(e)
                if e.failure.is_not_authenticated()
                    || matches!(&e.failure, CallError::Fault(f) if f.kind == "ManagedObjectNotFound") =>
            {
                Ok(())
            }
            Err(e) => Err(e),
        }
    }

    /// One SOAP call in a session, its answer read whole (small answers).
    pub async fn call(
        &self,
        call: &'static str,
        session: &Session,
        body: String,
    ) -> Result<Bytes, Error> {
        self.post(call, session, body).await
    }

    /// A call whose answer `read` parses as it streams in, on a blocking thread, so a large
    /// answer is never held whole. `state` travels to the parser and back. `timeout` replaces
    /// the request timeout when given (WaitForUpdatesEx waits on purpose).
    pub async fn call_streaming<T, H>(
        &self,
        call: &'static str,
        session: &Session,
        body: String,
        timeout: Option<Duration>,
        state: T,
        read: fn(ChannelReader, &mut T) -> Result<H, ParseError>,
    ) -> Result<(H, T), Error>
    where
        T: Send + 'static,
        H: Send + 'static,
    {
        let sent = Instant::now();
        let response = self
            .request_with(
                &session.content.api_version,
                Some(&session.cookie),
                body,
                timeout.unwrap_or(self.request_timeout),
            )
            .await
            .map_err(|source| self.failed(call, sent, source))?;
        if !response.status().is_success() {
            let e = self.read_body(response).await.err();
            let source = e.unwrap_or_else(|| CallError::Malformed("unexpected status".into()));
            return Err(self.failed(call, sent, source));
        }
        // A bounded channel: the network side waits (asynchronously) while the parser is
        // behind, so an answer is never held whole.
        let (tx, rx) = mpsc::channel::<Bytes>(16);
        let reader = ChannelReader::new(rx, self.limits);
        let parser = tokio::task::spawn_blocking(move || {
            let mut state = state;
            let head = read(reader, &mut state);
            head.map(|h| (h, state))
        });
        let mut response = response;
        let mut transfer = Ok(());
        loop {
            match response.chunk().await {
                Ok(Some(chunk)) => {
                    // The parser stopped early (an error of its own): stop sending.
                    if tx.send(chunk).await.is_err() {
                        break;
                    }
                }
                Ok(None) => break,
                Err(e) => {
                    transfer = Err(transport_error(e));
                    break;
                }
            }
        }
        drop(tx);
        let parsed = parser.await.map_err(|e| {
            self.failed(
                call,
                sent,
                CallError::Malformed(format!("parser task: {e}")),
            )
        })?;
        transfer.map_err(|source| self.failed(call, sent, source))?;
        parsed.map_err(|e| self.failed(call, sent, e.into()))
    }

    /// `CurrentTime` within `timeout`: whether vCenter answers at all while a long call of the
    /// same session is outstanding. Sent as a request of its own.
    pub async fn heartbeat(&self, session: &Session, timeout: Duration) -> Result<(), Error> {
        let call = "CurrentTime";
        let sent = Instant::now();
        let response = self
            .request_with(
                &session.content.api_version,
                Some(&session.cookie),
                soap::current_time(),
                timeout,
            )
            .await
            .map_err(|source| self.failed(call, sent, source))?;
        self.read_body(response)
            .await
            .map_err(|source| self.failed(call, sent, source))?;
        Ok(())
    }

    /// The error of a call that the caller gave up on (`sent` when it was sent), counted by
    /// call and kind as every failed call is.
    pub fn abandoned(&self, call: &'static str, sent: Instant, source: CallError) -> Error {
        self.failed(call, sent, source)
    }

    /// Ends the session, if there is one, waiting at most `timeout` (shutdown must not hang on
    /// a vCenter that does not answer). Errors only get a debug line.
    pub async fn logout(&self, timeout: Duration) {
        let Some(session) = self.session.lock().await.session.take() else {
            return;
        };
        let body = soap::logout(&session.content.session_manager);
        let response = self.request_with(
            &session.content.api_version,
            Some(&session.cookie),
            body,
            timeout,
        );
        match response.await {
            Ok(r) if r.status().is_success() => info!(vcenter = %self.vcenter, "logged out"),
            Ok(r) => debug!(vcenter = %self.vcenter, status = r.status().as_u16(), "logout failed"),
            Err(e) => debug!(vcenter = %self.vcenter, error = %e, "logout failed"),
        }
    }

    async fn login(&self) -> Result<Session, Error> {
        let call = "RetrieveServiceContent";
        let sent = Instant::now();
        let response = self
            .request(
                BOOTSTRAP_API_VERSION,
                None,
                soap::retrieve_service_content(),
            )
            .await
            .map_err(|source| self.failed(call, sent, source))?;
        // Some vCenters open the session on the first request and only confirm it at Login.
        let early_cookie = session_cookie(response.headers());
        let bytes = self
            .read_body(response)
            .await
            .map_err(|source| self.failed(call, sent, source))?;
        let content = xml::read_returnval(&bytes)
            .map_err(CallError::from)
            .and_then(|rv| ServiceContent::from_node(&rv))
            .map_err(|source| self.failed(call, sent, source))?;
        let body = soap::login(
            &content.session_manager,
            &self.username,
            self.password.expose(),
        );
        let sent = Instant::now();
        let response = self
            .request(&content.api_version, early_cookie.as_ref(), body)
            .await
            .map_err(|source| self.failed("Login", sent, source))?;
        let cookie = session_cookie(response.headers()).or(early_cookie);
        self.read_body(response)
            .await
            .map_err(|source| self.failed("Login", sent, source))?;
        let Some(cookie) = cookie else {
            return Err(self.error(
                "Login",
                CallError::Malformed("no session cookie in the Login answer".into()),
            ));
        };
        debug!(vcenter = %self.vcenter, api_version = %content.api_version, "logged in");
        Ok(Session { content, cookie })
    }

    /// One SOAP call in a session.
    async fn post(
        &self,
        call: &'static str,
        session: &Session,
        body: String,
    ) -> Result<Bytes, Error> {
        self.send(
            call,
            &session.content.api_version,
            Some(&session.cookie),
            body,
        )
        .await
    }

    /// One SOAP call: its answer's body when HTTP 200, else the fault it carries.
    async fn send(
        &self,
        call: &'static str,
        api_version: &str,
        cookie: Option<&Secret>,
        body: String,
    ) -> Result<Bytes, Error> {
        let sent = Instant::now();
        let response = self
            .request(api_version, cookie, body)
            .await
            .map_err(|source| self.failed(call, sent, source))?;
        self.read_body(response)
            .await
            .map_err(|source| self.failed(call, sent, source))
    }

    async fn request(
        &self,
        api_version: &str,
        cookie: Option<&Secret>,
        body: String,
    ) -> Result<reqwest::Response, CallError> {
        self.request_with(api_version, cookie, body, self.request_timeout)
            .await
    }

    async fn request_with(
        &self,
        api_version: &str,
        cookie: Option<&Secret>,
        body: String,
        timeout: Duration,
    ) -> Result<reqwest::Response, CallError> {
        let mut request = self
            .http
            .post(self.url.clone())
            .header("Content-Type", "text/xml; charset=utf-8")
            .header("SOAPAction", format!("\"urn:vim25/{api_version}\""))
            .timeout(timeout)
            .body(body);
        if let Some(cookie) = cookie {
            request = request.header("Cookie", cookie.expose());
        }
        request.send().await.map_err(transport_error)
    }

    /// The error of a call that sent no request, counted by call and kind.
    fn error(&self, call: &'static str, source: CallError) -> Error {
        if let Ok(mut counts) = self.call_errors.lock() {
            *counts.entry((call, source.kind())).or_default() += 1;
        }
        Error {
            vcenter: self.vcenter.clone(),
            call,
            failure: source,
            sent: None,
        }
    }

    /// The error of a request sent at `sent`, counted by call and kind.
    fn failed(&self, call: &'static str, sent: Instant, source: CallError) -> Error {
        Error {
            sent: Some(sent),
            ..self.error(call, source)
        }
    }

    /// The body of an answer, at most `max_response_size` bytes: as is when HTTP 200; else the
    /// SOAP fault it holds, or the status.
    async fn read_body(&self, mut response: reqwest::Response) -> Result<Bytes, CallError> {
        let status = response.status();
        // A fault is a few kilobytes: an error page is not read further than MAX_FAULT_BYTES
        // (a proxy's 1 GB error page must not cost 256 MB of memory).
        let limit = if status.is_success() {
            self.max_response_size
        } else {
            self.max_response_size.min(MAX_FAULT_BYTES)
        };
        // The chunks are kept as they come and joined once at the end: a growing buffer would
        // hold up to half its size again while it doubles, for every call under way.
        let mut chunks: Vec<Bytes> = Vec::new();
        let mut total = 0usize;
        while let Some(chunk) = response.chunk().await.map_err(transport_error)? {
            total = total.saturating_add(chunk.len());
            if u64::try_from(total).unwrap_or(u64::MAX) > limit {
                if !status.is_success() {
                    return Err(CallError::Status(status.as_u16()));
                }
                return Err(CallError::TooLarge(self.max_response_size));
            }
            chunks.push(chunk);
        }
        let bytes = if chunks.len() == 1 {
            chunks.pop().unwrap_or_default()
        } else {
            let mut body = Vec::with_capacity(total);
            for chunk in chunks.drain(..) {
                body.extend_from_slice(&chunk);
            }
            Bytes::from(body)
        };
        if status.is_success() {
            return Ok(bytes);
        }
        // vCenter answers faults with HTTP 500 and the fault in the body.
        match xml::read_returnval(&bytes) {
            Err(e @ super::error::ParseError::Fault(_)) => Err(e.into()),
            _ => Err(CallError::Status(status.as_u16())),
        }
    }
}

/// The blocking side of a streamed answer: reads the chunks the network side sends. It runs
/// on a blocking thread, where waiting for the next chunk is allowed. The parser reads the
/// chunks where they are ([`BufRead`]), and limits any one text node to the client's limit
/// (see [`xml::Limits`]): the XML reader would otherwise buffer an endless one whole.
pub struct ChannelReader {
    rx: mpsc::Receiver<Bytes>,
    current: Bytes,
    limits: Limits,
}

impl ChannelReader {
    fn new(rx: mpsc::Receiver<Bytes>, limits: Limits) -> Self {
        ChannelReader {
            rx,
            current: Bytes::new(),
            limits,
        }
    }

    /// The limits the answer is to be read with (the client's).
    pub fn limits(&self) -> Limits {
        self.limits
    }
}

impl Read for ChannelReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let available = self.fill_buf()?;
        let n = buf.len().min(available.len());
        buf[..n].copy_from_slice(&available[..n]);
        self.consume(n);
        Ok(n)
    }
}

impl BufRead for ChannelReader {
    fn fill_buf(&mut self) -> std::io::Result<&[u8]> {
        while !self.current.has_remaining() {
            match self.rx.blocking_recv() {
                Some(chunk) => self.current = chunk,
                // The sender is gone: the answer is complete (or broken, which the network
                // side reports).
                None => break,
            }
        }
        Ok(self.current.chunk())
    }

    fn consume(&mut self, n: usize) {
        self.current.advance(n.min(self.current.remaining()));
    }
}

/// `vmware_soap_session=…` from the Login answer's Set-Cookie headers.
pub fn session_cookie(headers: &reqwest::header::HeaderMap) -> Option<Secret> {
    headers
        .get_all(reqwest::header::SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .filter_map(|v| v.split(';').next())
        .map(str::trim)
        .find(|pair| pair.starts_with(SESSION_COOKIE) && pair.contains('='))
        .map(Secret::new)
}

pub(super) fn transport_error(e: reqwest::Error) -> CallError {
    if e.is_timeout() {
        // reqwest knows the timeout it applied but does not say it; the config does.
        return CallError::Timeout(error_chain(&e));
    }
    let chain = error_chain(&e);
    if is_certificate_error(&chain) {
        return CallError::Transport(format!(
            "{chain} (the vCenter's TLS certificate is not trusted: set tls.ca_file to its CA's PEM file, or tls.insecure_skip_verify: true for a test only)"
        ));
    }
    if e.is_connect() {
        return CallError::Connect(chain);
    }
    CallError::Transport(chain)
}

/// True when a transport error is rustls refusing the server's certificate.
fn is_certificate_error(chain: &str) -> bool {
    ["invalid peer certificate", "UnknownIssuer", "certificate"]
        .iter()
        .any(|needle| chain.contains(needle))
}

/// An error and its sources on one line ("error sending request: … : connection refused"),
/// without the URL (the vCenter's name is already in the message).
fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut out = match e.downcast_ref::<reqwest::Error>() {
        Some(r) => r
            .to_string()
            .replace(&format!(" for url ({})", url_of(r)), ""),
        None => e.to_string(),
    };
    let mut source = e.source();
    while let Some(s) = source {
        let text = s.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        source = s.source();
    }
    out
}

fn url_of(e: &reqwest::Error) -> String {
    e.url().map(|u| u.to_string()).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::{HeaderMap, HeaderValue, SET_COOKIE};

    #[test]
    fn a_failure_of_a_request_sent_before_recovery_belongs_to_the_incident_it_was_sent_in() {
        let t0 = Instant::now();
        let at = |s| t0 + Duration::from_secs(s);
        let mut incident = Incident::default();
        assert!(incident.claim(Some(at(0))), "the first failure reports");
        assert!(
            !incident.claim(Some(at(1))),
            "another source's, same outage"
        );
        assert!(
            !incident.claim(None),
            "a failure without a request, same outage"
        );
        incident.close(at(10));
        // Sent during the hang, timed out after the recovery at 10 s.
        assert!(!incident.claim(Some(at(5))));
        assert!(!incident.claim(Some(at(9))));
        // Sent after the recovery: a new outage, reported once.
        assert!(incident.claim(Some(at(11))));
        assert!(!incident.claim(Some(at(12))));
        incident.close(at(20));
        assert!(
            incident.claim(None),
            "no request: judged new once the last one ended"
        );
    }

    #[test]
    fn an_in_sync_source_without_an_incident_moves_no_boundary() {
        let t0 = Instant::now();
        let mut incident = Incident::default();
        incident.close(t0 + Duration::from_secs(10));
        assert_eq!(incident.closed_at, None);
        assert!(
            incident.claim(Some(t0)),
            "nothing was reported: a new incident"
        );
    }

    #[test]
    fn session_cookie_is_taken_from_set_cookie() {
        let mut headers = HeaderMap::new();
        headers.append(SET_COOKIE, HeaderValue::from_static("other=1; Path=/"));
        headers.append(
            SET_COOKIE,
            HeaderValue::from_static("vmware_soap_session=\"52a3b8e0\"; Path=/; HttpOnly; Secure;"),
        );
        let cookie = session_cookie(&headers).unwrap();
        assert_eq!(cookie.expose(), "vmware_soap_session=\"52a3b8e0\"");
        assert_eq!(format!("{cookie:?}"), "<secret>");
        assert!(session_cookie(&HeaderMap::new()).is_none());
    }

    #[test]
    fn service_content_needs_its_managers() {
        let xml = br#"<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/"><soapenv:Body><RetrieveServiceContentResponse xmlns="urn:vim25"><returnval><rootFolder type="Folder">group-d1</rootFolder><propertyCollector type="PropertyCollector">propertyCollector</propertyCollector><viewManager type="ViewManager">ViewManager</viewManager><about><apiVersion>8.0.3.0</apiVersion></about><sessionManager type="SessionManager">SessionManager</sessionManager></returnval></RetrieveServiceContentResponse></soapenv:Body></soapenv:Envelope>"#;
        let rv = xml::read_returnval(xml).unwrap();
        let sc = ServiceContent::from_node(&rv).unwrap();
        assert_eq!(sc.api_version, "8.0.3.0");
        assert_eq!(sc.view_manager, MoRef::new("ViewManager", "ViewManager"));
        let mut partial = rv.clone();
        partial.children.retain(|c| c.name != "viewManager");
        let err = ServiceContent::from_node(&partial).unwrap_err();
        assert!(err.to_string().contains("viewManager"), "{err}");
    }
}
