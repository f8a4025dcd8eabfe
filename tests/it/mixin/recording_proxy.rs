//! A TCP proxy between Prometheus and the exporter that keeps the first request and the first
//! whole response of each connection, so a test can see what Prometheus asked for
//! (`Accept-Encoding`) and what it was sent (one gzip member or several), not what a test
//! client would have been sent.

use std::io::Read;
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// One request's head and the whole response it got, as bytes on the wire.
#[derive(Debug, Clone, Default)]
pub struct Exchange {
    pub request_head: String,
    pub response_head: String,
    pub body: Vec<u8>,
}

impl Exchange {
    /// The value of a header of the request (case-insensitive name), when present.
    pub fn request_header(&self, name: &str) -> Option<String> {
        header(&self.request_head, name)
    }

    pub fn response_header(&self, name: &str) -> Option<String> {
        header(&self.response_head, name)
    }

    /// The body's gzip members, each decoded on its own (a member per element).
    pub fn gzip_members(&self) -> Vec<String> {
        let mut rest = &self.body[..];
        let mut members = Vec::new();
        while !rest.is_empty() {
            let mut decoder = flate2::bufread::GzDecoder::new(rest);
            let mut text = String::new();
            decoder
                .read_to_string(&mut text)
                .expect("each member decodes on its own");
            rest = decoder.into_inner();
            members.push(text);
        }
        members
    }
}

fn header(head: &str, name: &str) -> Option<String> {
    head.lines().find_map(|line| {
        let (key, value) = line.split_once(':')?;
        key.trim()
            .eq_ignore_ascii_case(name)
            .then(|| value.trim().to_string())
    })
}

/// A proxy to `upstream` (host:port), listening on 127.0.0.1:0.
pub struct RecordingProxy {
    pub address: String,
    exchanges: Arc<Mutex<Vec<Exchange>>>,
    task: tokio::task::JoinHandle<()>,
}

impl RecordingProxy {
    pub async fn start(upstream: String) -> RecordingProxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap().to_string();
        let exchanges = Arc::new(Mutex::new(Vec::new()));
        let kept = exchanges.clone();
        let task = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let upstream = upstream.clone();
                let kept = kept.clone();
                tokio::spawn(async move {
                    if let Ok(server) = TcpStream::connect(&upstream).await {
                        relay(client, server, kept).await;
                    }
                });
            }
        });
        RecordingProxy {
            address,
            exchanges,
            task,
        }
    }

    /// The exchanges recorded so far (the first of each connection).
    pub fn exchanges(&self) -> Vec<Exchange> {
        self.exchanges.lock().unwrap().clone()
    }
}

impl Drop for RecordingProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Relays both ways until either side closes; records the first request head and the first
/// whole response (head and `Content-Length` body).
async fn relay(client: TcpStream, server: TcpStream, kept: Arc<Mutex<Vec<Exchange>>>) {
    let (mut client_read, mut client_write) = client.into_split();
    let (mut server_read, mut server_write) = server.into_split();
    let request = Arc::new(Mutex::new(Vec::<u8>::new()));
    let seen = request.clone();
    let upward = tokio::spawn(async move {
        let mut buf = vec![0; 16 << 10];
        while let Ok(n) = client_read.read(&mut buf).await {
            if n == 0 || server_write.write_all(&buf[..n]).await.is_err() {
                break;
            }
            let mut seen = seen.lock().unwrap();
            if seen.len() < 64 << 10 {
                seen.extend_from_slice(&buf[..n]);
            }
        }
    });
    let mut response = Vec::new();
    let mut recorded = false;
    let mut buf = vec![0; 64 << 10];
    while let Ok(n) = server_read.read(&mut buf).await {
        if n == 0 || client_write.write_all(&buf[..n]).await.is_err() {
            break;
        }
        if recorded {
            continue;
        }
        response.extend_from_slice(&buf[..n]);
        if let Some(exchange) = whole_response(&request.lock().unwrap(), &response) {
            kept.lock().unwrap().push(exchange);
            recorded = true;
            response = Vec::new();
        }
    }
    upward.abort();
}

/// The first request's head and the response, once the response is whole.
fn whole_response(request: &[u8], response: &[u8]) -> Option<Exchange> {
    let end = response.windows(4).position(|w| w == b"\r\n\r\n")? + 4;
    let head = String::from_utf8_lossy(&response[..end]).into_owned();
    let length: usize = header(&head, "content-length")?.parse().ok()?;
    let body = response.get(end..end + length)?;
    let request_end = request
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or(request.len());
    Some(Exchange {
        request_head: String::from_utf8_lossy(&request[..request_end]).into_owned(),
        response_head: head,
        body: body.to_vec(),
    })
}
