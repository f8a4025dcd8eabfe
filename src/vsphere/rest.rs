//! The vSphere Automation REST API, as far as tags need it: a session, the tag categories,
//! the tags, and the tags attached to VMs in batches.
//!
//! It shares the SOAP [`Client`]'s HTTP client (so the same TLS settings and connection pool),
//! its credentials and its error counters (`vsphere_call_errors_total`), but has a session of
//! its own: the REST API does not take the SOAP session cookie. It logs in with HTTP basic
//! authentication at `POST /api/session` (vCenter 7.0 U2 and later; the answer is the token
//! as a JSON string) and falls back to `POST /rest/com/vmware/cis/session` (`{"value": token}`)
//! when `/api` answers 404; every later request sends the token in `vmware-api-session-id`, on
//! the same flavour of paths. 404 on both session paths means there is no such API (a bare
//! ESXi host). A refused login (401) is not tried again before `login_retry_interval`, as the
//! SOAP client does, so the account is not locked; a request answered 401 (the session
//! expired) logs in once more and is retried once. The password and the token are
//! [`Secret`]s and never printed.
//!
//! The answers' shapes are read by the pure functions at the bottom (tested on recorded
//! answers); the schedule, the cache of names and the snapshot are the `tags` source's.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use serde::Deserialize;
use tokio::sync::Mutex;
use tracing::{debug, error, info};

use super::client::Client;
use super::error::{CallError, Error, Fault};
use crate::secret::Secret;

/// The header the session token travels in.
const SESSION_HEADER: &str = "vmware-api-session-id";
/// The most of an error answer read.
const MAX_ERROR_BYTES: u64 = 64 << 10;
/// VMs per `list-attached-tags-on-objects` request: some 40 bytes of request and 150 bytes of
/// answer each, so a batch stays near 200 kB.
pub const ATTACHED_BATCH: usize = 1000;

/// Which flavour of paths the vCenter serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flavour {
    /// `/api/…` (vCenter 7.0 U2 and later): answers are bare JSON.
    Api,
    /// `/rest/com/vmware/…` (vCenter 6.5 to 7.0): answers are wrapped in `{"value": …}`.
    Rest,
}

impl Flavour {
    fn session_path(self) -> &'static str {
        match self {
            Flavour::Api => "/api/session",
            Flavour::Rest => "/rest/com/vmware/cis/session",
        }
    }

    fn tagging(self) -> &'static str {
        match self {
            Flavour::Api => "/api/cis/tagging",
            Flavour::Rest => "/rest/com/vmware/cis/tagging",
        }
    }

    /// The path of one category or tag: `/api/…/{id}`, `/rest/…/id:{id}`.
    fn item(self, kind: &str, id: &str) -> String {
        let id = encode_segment(id);
        match self {
            Flavour::Api => format!("{}/{kind}/{id}", self.tagging()),
            Flavour::Rest => format!("{}/{kind}/id:{id}", self.tagging()),
        }
    }

    fn attached_on_objects(self) -> String {
        match self {
            Flavour::Api => format!(
                "{}/tag-association?action=list-attached-tags-on-objects",
                self.tagging()
            ),
            Flavour::Rest => format!(
                "{}/tag-association?~action=list-attached-tags-on-objects",
                self.tagging()
            ),
        }
    }
}

/// A tag category: its id and name.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Category {
    pub id: String,
    pub name: String,
}

/// A tag: its id, name and category's id.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Tag {
    pub id: String,
    pub name: String,
    pub category_id: String,
}

/// Requests sent and answer bytes read, for the cost of a cycle.
#[derive(Debug, Default)]
pub struct Traffic {
    pub requests: AtomicU64,
    pub bytes: AtomicU64,
}

#[derive(Clone)]
struct RestSession {
    token: Secret,
    flavour: Flavour,
}

#[derive(Default)]
struct Slot {
    session: Option<RestSession>,
    /// Set after a refused login: no attempt before then.
    refused_until: Option<Instant>,
}

/// What one request can end in, before it becomes an [`Error`].
enum Outcome {
    Ok(Bytes),
    /// HTTP 401: the session is gone (or the login refused).
    Unauthenticated,
    Failed(CallError),
}

/// A REST client for one vCenter.
pub struct RestClient {
    soap: Arc<Client>,
    base: reqwest::Url,
    slot: Mutex<Slot>,
    traffic: Traffic,
}

impl RestClient {
    /// A client beside `soap`, on the same host and port; no network traffic until the first
    /// call.
    pub fn new(soap: Arc<Client>) -> Self {
        let mut base = soap.rest_settings().0.clone();
        base.set_path("/");
        base.set_query(None);
        RestClient {
            soap,
            base,
            slot: Mutex::new(Slot::default()),
            traffic: Traffic::default(),
        }
    }

    /// The vCenter's name.
    pub fn vcenter(&self) -> &str {
        self.soap.vcenter()
    }

    /// Requests sent and bytes read so far.
    pub fn traffic(&self) -> (u64, u64) {
        (
            self.traffic.requests.load(Ordering::Relaxed),
            self.traffic.bytes.load(Ordering::Relaxed),
        )
    }

    /// The flavour of the current session, if any.
    pub async fn flavour(&self) -> Option<Flavour> {
        self.slot.lock().await.session.as_ref().map(|s| s.flavour)
    }

    /// `GET …/category`: every category's id.
    pub async fn category_ids(&self) -> Result<Vec<String>, Error> {
        let call = "tagging.category.list";
        let (bytes, flavour) = self
            .request(
                call,
                reqwest::Method::GET,
                |f| format!("{}/category", f.tagging()),
                None,
            )
            .await?;
        self.parsed(call, parse_list(&bytes, flavour))
    }

    /// `GET …/tag`: every tag's id.
    pub async fn tag_ids(&self) -> Result<Vec<String>, Error> {
        let call = "tagging.tag.list";
        let (bytes, flavour) = self
            .request(
                call,
                reqwest::Method::GET,
                |f| format!("{}/tag", f.tagging()),
                None,
            )
            .await?;
        self.parsed(call, parse_list(&bytes, flavour))
    }

    /// `GET …/category/{id}`; `None` when it is gone (404).
    pub async fn category(&self, id: &str) -> Result<Option<Category>, Error> {
        let call = "tagging.category.get";
        let answer = self
            .request(call, reqwest::Method::GET, |f| f.item("category", id), None)
            .await;
        match answer {
            Ok((bytes, flavour)) => self.parsed(call, parse_value(&bytes, flavour)).map(Some),
            Err(e) if matches!(e.failure, CallError::Status(404)) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// `GET …/tag/{id}`; `None` when it is gone (404).
    pub async fn tag(&self, id: &str) -> Result<Option<Tag>, Error> {
        let call = "tagging.tag.get";
        let answer = self
            .request(call, reqwest::Method::GET, |f| f.item("tag", id), None)
            .await;
        match answer {
            Ok((bytes, flavour)) => self.parsed(call, parse_value(&bytes, flavour)).map(Some),
            Err(e) if matches!(e.failure, CallError::Status(404)) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// The tag ids attached to each of `vms` (VirtualMachine ids), one request; VMs without
    /// tags may be left out of the answer.
    pub async fn attached_tags(&self, vms: &[&str]) -> Result<Vec<(String, Vec<String>)>, Error> {
        let call = "tagging.tag-association.list-attached-tags-on-objects";
        let body = attached_request(vms);
        let (bytes, flavour) = self
            .request(
                call,
                reqwest::Method::POST,
                Flavour::attached_on_objects,
                Some(body),
            )
            .await?;
        self.parsed(call, parse_attached(&bytes, flavour))
    }

    /// Ends the session, if there is one, waiting at most `timeout`. Errors get a debug line.
    pub async fn logout(&self, timeout: Duration) {
        let Some(session) = self.slot.lock().await.session.take() else {
            return;
        };
        let vcenter = self.soap.vcenter();
        let Ok(url) = self.base.join(session.flavour.session_path()) else {
            return;
        };
        let request = self
            .soap
            .http()
            .delete(url)
            .header(SESSION_HEADER, session.token.expose())
            .timeout(timeout)
            .send();
        match request.await {
            Ok(r) if r.status().is_success() => info!(vcenter, "tags: logged out of the REST API"),
            Ok(r) => debug!(
                vcenter,
                status = r.status().as_u16(),
                "tags: REST logout failed"
            ),
            Err(e) => debug!(vcenter, error = %e, "tags: REST logout failed"),
        }
    }

    fn parsed<T>(&self, call: &'static str, parsed: Result<T, String>) -> Result<T, Error> {
        parsed.map_err(|m| {
            self.soap
                .abandoned(call, Instant::now(), CallError::Malformed(m))
        })
    }

    /// One request in the session (logging in first when there is none); on 401 the session
    /// is dropped, and the request sent once more in a new one.
    async fn request(
        &self,
        call: &'static str,
        method: reqwest::Method,
        path: impl Fn(Flavour) -> String,
        body: Option<String>,
    ) -> Result<(Bytes, Flavour), Error> {
        let mut retried = false;
        loop {
            let session = self.session().await?;
            let sent = Instant::now();
            let url = self.base.join(&path(session.flavour)).map_err(|e| {
                self.soap
                    .abandoned(call, sent, CallError::Malformed(e.to_string()))
            })?;
            let mut request = self
                .soap
                .http()
                .request(method.clone(), url)
                .header(SESSION_HEADER, session.token.expose());
            if let Some(body) = &body {
                request = request
                    .header("Content-Type", "application/json")
                    .body(body.clone());
            }
            match self.send(request).await {
                Outcome::Ok(bytes) => return Ok((bytes, session.flavour)),
                Outcome::Unauthenticated if !retried => {
                    retried = true;
                    self.invalidate(&session).await;
                }
                Outcome::Unauthenticated => {
                    return Err(self.soap.abandoned(call, sent, CallError::Status(401)));
                }
                Outcome::Failed(failure) => return Err(self.soap.abandoned(call, sent, failure)),
            }
        }
    }

    async fn invalidate(&self, session: &RestSession) {
        let mut slot = self.slot.lock().await;
        if slot
            .session
            .as_ref()
            .is_some_and(|s| s.token == session.token)
        {
            slot.session = None;
        }
    }

    /// The current session, logging in first when there is none; after a refused login no
    /// attempt is made before `login_retry_interval` has passed.
    async fn session(&self) -> Result<RestSession, Error> {
        let mut slot = self.slot.lock().await;
        if let Some(s) = &slot.session {
            return Ok(s.clone());
        }
        let call = "cis.session.create";
        if let Some(until) = slot.refused_until {
            let left = until.saturating_duration_since(Instant::now());
            if !left.is_zero() {
                return Err(self.soap.abandoned(
                    call,
                    Instant::now(),
                    CallError::LoginSuspended(left),
                ));
            }
        }
        let sent = Instant::now();
        match self.login().await {
            Ok(session) => {
                slot.refused_until = None;
                slot.session = Some(session.clone());
                Ok(session)
            }
            Err(failure) => {
                if failure.is_invalid_login() {
                    let (_, retry, _) = self.soap.rest_settings();
                    slot.refused_until = Some(Instant::now() + retry);
                    error!(
                        vcenter = %self.soap.vcenter(),
                        user = %self.soap.credentials().0,
                        retry_seconds = retry.as_secs_f64(),
                        "tags: the vSphere REST API refused the login (HTTP 401); check username and password. Not trying again before the retry interval, so the account is not locked"
                    );
                }
                Err(self.soap.abandoned(call, sent, failure))
            }
        }
    }

    /// Logs in at `/api/session`, else (404) at `/rest/com/vmware/cis/session`.
    async fn login(&self) -> Result<RestSession, CallError> {
        for flavour in [Flavour::Api, Flavour::Rest] {
            let url = self
                .base
                .join(flavour.session_path())
                .map_err(|e| CallError::Malformed(e.to_string()))?;
            let (username, password) = self.soap.credentials();
            let request = self
                .soap
                .http()
                .post(url)
                .basic_auth(username, Some(password.expose()));
            match self.send(request).await {
                Outcome::Ok(bytes) => {
                    let token: String =
                        parse_value(&bytes, flavour).map_err(CallError::Malformed)?;
                    debug!(vcenter = %self.soap.vcenter(), ?flavour, "tags: logged in to the REST API");
                    return Ok(RestSession {
                        token: Secret::new(token),
                        flavour,
                    });
                }
                Outcome::Unauthenticated => {
                    return Err(CallError::Fault(Fault {
                        kind: "InvalidLogin".into(),
                        message: format!(
                            "the vSphere REST API refused the credentials (HTTP 401 on {})",
                            flavour.session_path()
                        ),
                    }));
                }
                Outcome::Failed(CallError::Status(404)) => continue,
                Outcome::Failed(other) => return Err(other),
            }
        }
        Err(CallError::Absent(
            "the vSphere Automation REST API is absent (HTTP 404 on /api/session and /rest/com/vmware/cis/session): tags need a vCenter, a bare ESXi host has none".into(),
        ))
    }

    /// Sends a request and reads its answer: the body on success, at most
    /// `max_response_size` bytes.
    async fn send(&self, request: reqwest::RequestBuilder) -> Outcome {
        self.traffic.requests.fetch_add(1, Ordering::Relaxed);
        let mut response = match request.send().await {
            Ok(r) => r,
            Err(e) => return Outcome::Failed(super::client::transport_error(e)),
        };
        let status = response.status();
        if status == reqwest::StatusCode::UNAUTHORIZED {
            return Outcome::Unauthenticated;
        }
        let (_, _, max) = self.soap.rest_settings();
        let limit = if status.is_success() {
            max
        } else {
            max.min(MAX_ERROR_BYTES)
        };
        let mut body: Vec<u8> = Vec::new();
        loop {
            match response.chunk().await {
                Ok(Some(chunk)) => {
                    self.traffic
                        .bytes
                        .fetch_add(chunk.len() as u64, Ordering::Relaxed);
                    if (body.len() + chunk.len()) as u64 > limit {
                        if !status.is_success() {
                            return Outcome::Failed(CallError::Status(status.as_u16()));
                        }
                        return Outcome::Failed(CallError::TooLarge(max));
                    }
                    body.extend_from_slice(&chunk);
                }
                Ok(None) => break,
                Err(e) => return Outcome::Failed(super::client::transport_error(e)),
            }
        }
        if status.is_success() {
            Outcome::Ok(Bytes::from(body))
        } else {
            Outcome::Failed(CallError::Status(status.as_u16()))
        }
    }
}

/// A path segment with everything but unreserved characters and `:` percent-encoded (tag ids
/// are URNs such as `urn:vmomi:InventoryServiceTag:…:GLOBAL`).
fn encode_segment(id: &str) -> String {
    let mut out = String::with_capacity(id.len());
    for b in id.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~' | b':') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The body of `list-attached-tags-on-objects` for VMs.
pub fn attached_request(vms: &[&str]) -> String {
    #[derive(serde::Serialize)]
    struct Object<'a> {
        #[serde(rename = "type")]
        kind: &'static str,
        id: &'a str,
    }
    #[derive(serde::Serialize)]
    struct Body<'a> {
        object_ids: Vec<Object<'a>>,
    }
    let body = Body {
        object_ids: vms
            .iter()
            .map(|id| Object {
                kind: "VirtualMachine",
                id,
            })
            .collect(),
    };
    serde_json::to_string(&body).unwrap_or_default()
}

/// An answer's value: bare under `/api`, in `{"value": …}` under `/rest`.
pub fn parse_value<T: serde::de::DeserializeOwned>(
    bytes: &[u8],
    flavour: Flavour,
) -> Result<T, String> {
    #[derive(Deserialize)]
    struct Wrapped<T> {
        value: T,
    }
    let parsed = match flavour {
        Flavour::Api => serde_json::from_slice::<T>(bytes),
        Flavour::Rest => serde_json::from_slice::<Wrapped<T>>(bytes).map(|w| w.value),
    };
    parsed.map_err(|e| format!("unexpected JSON: {e}"))
}

/// A list answer; `null` is an empty list (govmomi's vapi simulator, written in Go, sends a nil
/// slice as `{"value":null}` when there is no category or tag yet).
pub fn parse_list<T: serde::de::DeserializeOwned>(
    bytes: &[u8],
    flavour: Flavour,
) -> Result<Vec<T>, String> {
    parse_value::<Option<Vec<T>>>(bytes, flavour).map(Option::unwrap_or_default)
}

/// The answer of `list-attached-tags-on-objects`: per VM id, its tag ids. Objects of other
/// types are left out.
pub fn parse_attached(
    bytes: &[u8],
    flavour: Flavour,
) -> Result<Vec<(String, Vec<String>)>, String> {
    #[derive(Deserialize)]
    struct Object {
        #[serde(rename = "type")]
        kind: String,
        id: String,
    }
    #[derive(Deserialize)]
    struct Attached {
        object_id: Object,
        #[serde(default)]
        tag_ids: Option<Vec<String>>,
    }
    // The /rest form may omit an empty value altogether.
    if flavour == Flavour::Rest
        && serde_json::from_slice::<serde_json::Value>(bytes)
            .is_ok_and(|v| v.get("value").is_none() && v.is_object())
    {
        return Ok(Vec::new());
    }
    let list: Vec<Attached> = parse_list(bytes, flavour)?;
    Ok(list
        .into_iter()
        .filter(|a| a.object_id.kind == "VirtualMachine")
        .map(|a| (a.object_id.id, a.tag_ids.unwrap_or_default()))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_of_both_flavours_parse() {
        // As vCenter 8 answers GET /api/cis/tagging/category and govmomi's simulator
        // GET /rest/com/vmware/cis/tagging/category.
        let api = br#"["urn:vmomi:InventoryServiceCategory:a:GLOBAL","urn:vmomi:InventoryServiceCategory:b:GLOBAL"]"#;
        let rest = br#"{"value":["urn:vmomi:InventoryServiceCategory:a:GLOBAL"]}"#;
        let ids: Vec<String> = parse_value(api, Flavour::Api).unwrap();
        assert_eq!(ids.len(), 2);
        let ids: Vec<String> = parse_value(rest, Flavour::Rest).unwrap();
        assert_eq!(ids, ["urn:vmomi:InventoryServiceCategory:a:GLOBAL"]);
        let tag = br#"{"value":{"id":"urn:t1","description":"","name":"gold","category_id":"urn:c1","used_by":[]}}"#;
        let tag: Tag = parse_value(tag, Flavour::Rest).unwrap();
        assert_eq!(
            tag,
            Tag {
                id: "urn:t1".into(),
                name: "gold".into(),
                category_id: "urn:c1".into()
            }
        );
        let category = br#"{"id":"urn:c1","name":"Backup Policy","description":"","cardinality":"MULTIPLE","associable_types":["VirtualMachine"],"used_by":[]}"#;
        let category: Category = parse_value(category, Flavour::Api).unwrap();
        assert_eq!(category.name, "Backup Policy");
        let token: String = parse_value(br#""b6c1e2a0f3""#, Flavour::Api).unwrap();
        assert_eq!(token, "b6c1e2a0f3");
        let token: String = parse_value(br#"{"value":"b6c1e2a0f3"}"#, Flavour::Rest).unwrap();
        assert_eq!(token, "b6c1e2a0f3");
        assert!(parse_value::<String>(b"<html>", Flavour::Api).is_err());
    }

    #[test]
    fn a_null_list_is_an_empty_one() {
        // govmomi's vapi simulator before any category exists: GET …/tagging/category.
        let ids: Vec<String> = parse_list(br#"{"value":null}"#, Flavour::Rest).unwrap();
        assert!(ids.is_empty());
        let ids: Vec<String> = parse_list(b"null", Flavour::Api).unwrap();
        assert!(ids.is_empty());
        assert!(
            parse_attached(br#"{"value":null}"#, Flavour::Rest)
                .unwrap()
                .is_empty()
        );
        let ids: Vec<String> = parse_list(br#"{"value":["urn:c1"]}"#, Flavour::Rest).unwrap();
        assert_eq!(ids, ["urn:c1"]);
        assert!(parse_list::<String>(br#"{"value":{}}"#, Flavour::Rest).is_err());
    }

    #[test]
    fn attached_tags_are_read_per_vm() {
        let api = br#"[{"object_id":{"type":"VirtualMachine","id":"vm-1"},"tag_ids":["t1","t2"]},{"object_id":{"type":"VirtualMachine","id":"vm-2"},"tag_ids":[]},{"object_id":{"type":"HostSystem","id":"host-1"},"tag_ids":["t3"]}]"#;
        let got = parse_attached(api, Flavour::Api).unwrap();
        assert_eq!(
            got,
            [
                ("vm-1".to_string(), vec!["t1".to_string(), "t2".to_string()]),
                ("vm-2".to_string(), vec![])
            ]
        );
        // govmomi's simulator leaves out tag_ids of an untagged VM, and the value of an empty
        // answer.
        let rest = br#"{"value":[{"object_id":{"type":"VirtualMachine","id":"vm-3"}}]}"#;
        assert_eq!(
            parse_attached(rest, Flavour::Rest).unwrap(),
            [("vm-3".to_string(), vec![])]
        );
        assert_eq!(parse_attached(b"{}", Flavour::Rest).unwrap(), []);
    }

    #[test]
    fn requests_name_vms_and_encode_ids() {
        assert_eq!(
            attached_request(&["vm-1", "vm-22"]),
            r#"{"object_ids":[{"type":"VirtualMachine","id":"vm-1"},{"type":"VirtualMachine","id":"vm-22"}]}"#
        );
        assert_eq!(
            Flavour::Rest.item("tag", "urn:vmomi:InventoryServiceTag:a b/c:GLOBAL"),
            "/rest/com/vmware/cis/tagging/tag/id:urn:vmomi:InventoryServiceTag:a%20b%2Fc:GLOBAL"
        );
        assert_eq!(
            Flavour::Api.item("category", "urn:c1"),
            "/api/cis/tagging/category/urn:c1"
        );
        assert_eq!(
            Flavour::Api.attached_on_objects(),
            "/api/cis/tagging/tag-association?action=list-attached-tags-on-objects"
        );
    }
}
