//! An HTTP proxy between the exporter and the simulator that injects one fault at a time into
//! the SOAP answers: a dropped connection, a hang, HTTP 500/503 with an HTML page, a body cut
//! short, garbage with invalid UTF-8, a 1 GB body (200 or 500), a redirect to another port.
//!
//! A fault applies to every request that arrives while it is set, and to every answer that comes
//! back from the simulator while it is set, so a `WaitForUpdatesEx` already waiting is hit too
//! when its answer arrives. Setting [`Fault::Drop`] also closes every open connection at once,
//! as a network failure does.

use std::convert::Infallible;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body_util::BodyExt;
use http_body_util::combinators::BoxBody;
use hyper::body::{Body, Frame, Incoming};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::task::AbortHandle;

/// One gibibyte: the size of the huge answers.
pub const HUGE_BYTES: u64 = 1 << 30;

#[derive(Debug, Clone, PartialEq)]
pub enum Fault {
    None,
    /// The connection closes without an answer (and open ones close at once).
    Drop,
    /// The connection stays open and nothing is answered.
    Hang,
    /// An HTML error page with this status, as a load balancer in front of vCenter sends.
    Html(u16),
    /// The simulator's answer, announced whole, cut off halfway.
    Truncate,
    /// HTTP 200 with bytes that are neither XML nor UTF-8.
    Garbage,
    /// 1 GB with this status: for 200 a SOAP answer with an endless text node, else HTML.
    Huge(u16),
    /// A 307 to another port (which must never be contacted).
    Redirect(String),
    /// The answers to one SOAP method (`WaitForUpdatesEx`) held back this long, everything else
    /// answered at once: a loaded vCenter, slow to collect updates, alive.
    Slow {
        method: &'static str,
        by: std::time::Duration,
    },
}

type ProxyBody = BoxBody<Bytes, std::io::Error>;

struct Shared {
    upstream: String,
    fault: Mutex<Fault>,
    /// The fault hits one answer only, then goes.
    once: Mutex<bool>,
    connections: Mutex<Vec<AbortHandle>>,
    http: reqwest::Client,
    /// Bytes of huge answers actually sent (the exporter stops reading at its cap).
    huge_sent: Arc<AtomicU64>,
    /// Answers passed on whole, by the method they answer (`CreatePropertyCollector` …): a
    /// collector whose creation answer a fault swallowed is unknown to the exporter, which
    /// cannot destroy it (its session does, at logout).
    delivered: Mutex<std::collections::BTreeMap<String, u64>>,
}

pub struct Proxy {
    pub url: String,
    shared: Arc<Shared>,
}

impl Proxy {
    /// A proxy on 127.0.0.1:0 in front of `upstream` (`http://host:port`, no path).
    pub async fn start(upstream: &str) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/sdk", listener.local_addr().unwrap());
        let shared = Arc::new(Shared {
            upstream: upstream.trim_end_matches('/').to_string(),
            fault: Mutex::new(Fault::None),
            once: Mutex::new(false),
            connections: Mutex::new(Vec::new()),
            http: reqwest::Client::builder()
                .timeout(std::time::Duration::from_secs(120))
                .build()
                .unwrap(),
            huge_sent: Arc::new(AtomicU64::new(0)),
            delivered: Mutex::default(),
        });
        let accepting = shared.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let shared = accepting.clone();
                let task = tokio::spawn(async move {
                    let service = service_fn(move |req| handle(shared.clone(), req));
                    let _ = http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
                let mut connections = accepting.connections.lock().unwrap();
                connections.retain(|c| !c.is_finished());
                connections.push(task.abort_handle());
            }
        });
        Proxy { url, shared }
    }

    /// Sets the fault (replacing the last one); `Fault::Drop` also closes open connections.
    pub fn set(&self, fault: Fault) {
        let drop_all = fault == Fault::Drop;
        *self.shared.fault.lock().unwrap() = fault;
        if drop_all {
            for c in self.shared.connections.lock().unwrap().drain(..) {
                c.abort();
            }
        }
    }

    /// Sets a fault for the next answer that comes back from the simulator only (requests pass
    /// untouched): the one change that answer carried is what a lost-update test looks for.
    pub fn set_once(&self, fault: Fault) {
        *self.shared.once.lock().unwrap() = true;
        *self.shared.fault.lock().unwrap() = fault;
    }

    /// How many answers to `method` were passed on whole so far.
    pub fn delivered(&self, method: &str) -> u64 {
        self.shared
            .delivered
            .lock()
            .unwrap()
            .get(method)
            .copied()
            .unwrap_or(0)
    }

    /// Bytes of 1 GB answers sent so far.
    pub fn huge_sent(&self) -> u64 {
        self.shared.huge_sent.load(Ordering::Relaxed)
    }
}

/// The fault for a request (`answer` false) or an answer; a one-answer fault is taken here.
fn fault_of(shared: &Shared, answer: bool) -> Fault {
    let mut once = shared.once.lock().unwrap();
    let mut fault = shared.fault.lock().unwrap();
    if !*once {
        return fault.clone();
    }
    if !answer {
        return Fault::None;
    }
    *once = false;
    std::mem::replace(&mut *fault, Fault::None)
}

async fn handle(
    shared: Arc<Shared>,
    req: Request<Incoming>,
) -> Result<Response<ProxyBody>, std::io::Error> {
    let path = req.uri().path().to_string();
    let headers = req.headers().clone();
    let body = req
        .into_body()
        .collect()
        .await
        .map_err(std::io::Error::other)?
        .to_bytes();
    if let Some(answer) = injected(&shared, fault_of(&shared, false), None).await {
        return answer;
    }
    let mut forward = shared
        .http
        .post(format!("{}{path}", shared.upstream))
        .body(body);
    for name in ["content-type", "soapaction", "cookie"] {
        if let Some(v) = headers.get(name) {
            forward = forward.header(name, v.clone());
        }
    }
    let answer = forward.send().await.map_err(std::io::Error::other)?;
    let status = answer.status().as_u16();
    let mut response = Response::builder().status(status);
    for name in ["content-type", "set-cookie"] {
        for v in answer.headers().get_all(name) {
            response = response.header(name, v.clone());
        }
    }
    let bytes = answer.bytes().await.map_err(std::io::Error::other)?;
    // The fault as it is now that the answer is back: a wait that was under way is hit too.
    if let Some(answer) = injected(&shared, fault_of(&shared, true), Some(&bytes)).await {
        return answer;
    }
    if let Some(method) = answered_method(&bytes) {
        *shared.delivered.lock().unwrap().entry(method).or_default() += 1;
    }
    Ok(response.body(full(bytes)).unwrap())
}

/// The method a SOAP answer answers: `CreatePropertyCollector` for a
/// `<CreatePropertyCollectorResponse …>` body.
fn answered_method(body: &[u8]) -> Option<String> {
    let text = std::str::from_utf8(body).ok()?;
    let end = text.find("Response")?;
    let start = text[..end].rfind(['<', ':'])? + 1;
    Some(text[start..end].to_owned())
}

/// What the fault makes of a request (`answer` None) or of the simulator's answer; None to
/// pass it on.
async fn injected(
    shared: &Shared,
    fault: Fault,
    answer: Option<&Bytes>,
) -> Option<Result<Response<ProxyBody>, std::io::Error>> {
    let html = |status: u16, title: &str| {
        let page = format!(
            "<!DOCTYPE html>\n<html><head><title>{status} {title}</title></head><body><h1>{title}</h1><p>The server is temporarily unable to service your request.</p></body></html>\n"
        );
        Response::builder()
            .status(status)
            .header("content-type", "text/html; charset=utf-8")
            .body(full(Bytes::from(page)))
            .unwrap()
    };
    match fault {
        Fault::None => None,
        Fault::Drop => Some(Err(std::io::Error::other("connection dropped"))),
        Fault::Hang => std::future::pending().await,
        Fault::Html(status) => Some(Ok(html(status, "Service Unavailable"))),
        Fault::Truncate => {
            let answer = answer?;
            let half = answer.slice(..answer.len() / 2);
            let response = Response::builder()
                .status(200)
                .header("content-type", "text/xml; charset=utf-8")
                .header("content-length", answer.len().to_string())
                .body(Cut { data: Some(half) }.boxed())
                .unwrap();
            Some(Ok(response))
        }
        Fault::Garbage => {
            let mut bytes =
                b"\xff\xfe\x00<soapenv:Envelope \x80\x81 garbage \xc3\x28 <<>>&&;; \xed\xa0\x80"
                    .to_vec();
            bytes.extend((0..4096u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8));
            let response = Response::builder()
                .status(200)
                .header("content-type", "text/xml; charset=utf-8")
                .body(full(Bytes::from(bytes)))
                .unwrap();
            Some(Ok(response))
        }
        Fault::Huge(status) => {
            let (content_type, prefix, unit): (&str, &str, &[u8]) = if status == 200 {
                (
                    "text/xml; charset=utf-8",
                    r#"<?xml version="1.0" encoding="UTF-8"?><soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"><soapenv:Body><WaitForUpdatesExResponse xmlns="urn:vim25"><returnval><version>"#,
                    b"A",
                )
            } else {
                (
                    "text/html; charset=utf-8",
                    "<!DOCTYPE html><html><body><pre>",
                    b"x",
                )
            };
            let body = Repeat {
                prefix: Some(Bytes::from(prefix)),
                chunk: Bytes::from(unit.repeat(64 * 1024)),
                left: HUGE_BYTES,
                sent: shared.huge_sent.clone(),
            };
            let response = Response::builder()
                .status(status)
                .header("content-type", content_type)
                .header(
                    "content-length",
                    (prefix.len() as u64 + HUGE_BYTES).to_string(),
                )
                .body(body.boxed())
                .unwrap();
            Some(Ok(response))
        }
        Fault::Slow { method, by } => {
            if answer.and_then(|a| answered_method(a)).as_deref() == Some(method) {
                tokio::time::sleep(by).await;
            }
            None
        }
        Fault::Redirect(to) => Some(Ok(Response::builder()
            .status(307)
            .header("location", to)
            .body(full(Bytes::new()))
            .unwrap())),
    }
}

fn full(bytes: Bytes) -> ProxyBody {
    http_body_util::Full::new(bytes)
        .map_err(|never: Infallible| match never {})
        .boxed()
}

/// Half an answer, then a broken connection.
struct Cut {
    data: Option<Bytes>,
}

impl Body for Cut {
    type Data = Bytes;
    type Error = std::io::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, std::io::Error>>> {
        match self.data.take() {
            Some(data) => Poll::Ready(Some(Ok(Frame::data(data)))),
            None => Poll::Ready(Some(Err(std::io::Error::other("cut off")))),
        }
    }
}

/// A prefix, then `left` bytes of the chunk repeated.
struct Repeat {
    prefix: Option<Bytes>,
    chunk: Bytes,
    left: u64,
    /// Bytes sent, counted for the proxy.
    sent: Arc<AtomicU64>,
}

impl Body for Repeat {
    type Data = Bytes;
    type Error = std::io::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, std::io::Error>>> {
        if let Some(prefix) = self.prefix.take() {
            return Poll::Ready(Some(Ok(Frame::data(prefix))));
        }
        if self.left == 0 {
            return Poll::Ready(None);
        }
        let n = self.left.min(self.chunk.len() as u64) as usize;
        self.left -= n as u64;
        self.sent.fetch_add(n as u64, Ordering::Relaxed);
        Poll::Ready(Some(Ok(Frame::data(self.chunk.slice(..n)))))
    }
}
