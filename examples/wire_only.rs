//! The baselines of `make bench`: SOAP requests sent with bare reqwest, every answer read to
//! its last byte and thrown away.
//!
//! - `cold` (the default): the exporter's cold sequence. It sends byte for byte what the mirror
//!   sends on a cold start (the envelopes come from the crate's own builders in
//!   [`vsphere_backup_exporter::vsphere::soap`], with the property specs of
//!   [`vsphere_backup_exporter::vsphere::properties`]) with the same headers, and pulls out of
//!   the answers only what the next request needs (session cookie, API version, managed object
//!   ids, the update version, `truncated`) by plain string search. The VMs with snapshots and
//!   the Windows guests, which the exporter learns by parsing the inventory, come from the
//!   simulator's facts file instead; the probe of the keyed `disk.EnableUUID` path is sent
//!   as the mirror sends it, and its answer is taken as a refusal (the simulator's) when it
//!   names InvalidProperty. So its time is what the simulator and the wire cost; the exporter's time
//!   over it is what its parsing and mirror cost.
//! - `floor`: one RetrievePropertiesEx of the VM property paths the exporter reads of every VM
//!   and of the VMs with snapshots (those scopes of `properties::VM_PROPERTIES`) for all VMs of
//!   a ContainerView, and its continuations: the least any client can ask of vCenter for the
//!   same data, whatever its protocol. The keyed `disk.EnableUUID` (refused by the simulator)
//!   and `config.extraConfig` (read for Windows guests only) are left out.
//! - alternatives to the cold sequence, to measure what the protocol costs: `two-collectors`
//!   (the ListView's filter on a second PropertyCollector, whose first WaitForUpdatesEx,
//!   version "", answers with the files at once) and `unpaged` (no `maxObjectUpdates`, so one
//!   answer per phase) and `overlap` (the ListViews filled after the inventory answer's first
//!   page, not its last: the upper bound of issue 19's "ModifyListView while it is parsed").
//!
//! It does not parse XML, build an inventory, or retry anything: any unexpected answer is an
//! error.
//!
//! ```sh
//! cargo run --release --example wire_only -- URL USER PASS CAFILE FACTSFILE [MODE]
//! ```
//!
//! Prints one JSON line on stdout. `cold`: `window_seconds` covers the same span as the
//! exporter's `vsphere_source_sync_duration_seconds{source="inventory"}` (first
//! WaitForUpdatesEx to the last answer), `total_seconds` everything from RetrieveServiceContent
//! on. `floor`: `window_seconds` is the retrieval alone (login and view are not timed). Both
//! give `done_unix`, the Unix time of the last byte, to compare with a process start, and the
//! requests and response bytes. What is created is cleaned up afterwards, outside the timed
//! span.
//!
//! `WIRE_ONLY_DUMP=DIR` also writes every WaitForUpdatesEx answer to `DIR/wait-N.xml`, the
//! recorded answers `examples/parse_bench.rs` reads.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result, anyhow, bail};
use regex::bytes::Regex;
use vsphere_backup_exporter::vsphere::client::session_cookie;
use vsphere_backup_exporter::vsphere::model::MoRef;
use vsphere_backup_exporter::vsphere::properties::backup::ENABLE_UUID_PATH;
use vsphere_backup_exporter::vsphere::properties::{
    Scope, VIEW_TYPES, VM_PROPERTIES, property_specs_with, snapshot_vm_specs, windows_vm_specs,
};
use vsphere_backup_exporter::vsphere::soap::{self, PropertySpec};

/// The same constants as the mirror's (src/vsphere/mirror/protocol.rs).
const MAX_WAIT_SECONDS: u32 = 30;
const MAX_OBJECT_UPDATES: u32 = 1000;
const PROBE_VMS: u32 = 20;
/// What the client asks before vCenter has told its API version (src/vsphere/client.rs).
const BOOTSTRAP_API_VERSION: &str = "6.5";

#[derive(Clone, Copy, PartialEq)]
enum Mode {
    Cold,
    /// The cold sequence with the ListView's filter on a second PropertyCollector, whose
    /// first WaitForUpdatesEx (version "") answers with the files at once.
    TwoCollectors,
    /// The cold sequence without `maxObjectUpdates`: one answer per phase, however large.
    Unpaged,
    /// The cold sequence with the ListViews filled as soon as the first page of the inventory
    /// answer is in, not after its last: the most any overlap of ModifyListView with the
    /// inventory's pages could gain (issue 19, point 3). The exporter can list a page's VMs
    /// only once that page is parsed; this client takes them all from the facts at once.
    Overlap,
    Floor,
}

struct Args {
    url: reqwest::Url,
    user: String,
    password: String,
    ca_file: String,
    facts_file: String,
    mode: Mode,
}

fn args() -> Result<Args> {
    let a: Vec<String> = std::env::args().skip(1).collect();
    let (url, user, password, ca_file, facts_file, mode) = match a.as_slice() {
        [url, user, password, ca_file, facts_file] => {
            (url, user, password, ca_file, facts_file, Mode::Cold)
        }
        [url, user, password, ca_file, facts_file, mode] => {
            let mode = match mode.as_str() {
                "cold" => Mode::Cold,
                "two-collectors" => Mode::TwoCollectors,
                "unpaged" => Mode::Unpaged,
                "overlap" => Mode::Overlap,
                "floor" => Mode::Floor,
                other => {
                    bail!("unknown mode {other:?}: cold, two-collectors, unpaged, overlap or floor")
                }
            };
            (url, user, password, ca_file, facts_file, mode)
        }
        _ => bail!("usage: wire_only URL USER PASS CAFILE FACTSFILE [cold|floor]"),
    };
    Ok(Args {
        url: url.parse().context("URL")?,
        user: user.clone(),
        password: password.clone(),
        ca_file: ca_file.clone(),
        facts_file: facts_file.clone(),
        mode,
    })
}

/// The VMs the exporter lists: those with snapshots and the Windows guests, in the order the
/// exporter lists them (its inventory is a BTreeMap keyed by id, so string order).
struct Listed {
    snapshot_vms: Vec<MoRef>,
    windows_vms: Vec<MoRef>,
}

fn listed_vms(facts_file: &str) -> Result<Listed> {
    let text = std::fs::read_to_string(facts_file).with_context(|| facts_file.to_string())?;
    let facts: serde_json::Value = serde_json::from_str(&text).context("facts JSON")?;
    let vms = facts["vms"]
        .as_array()
        .ok_or_else(|| anyhow!("facts without vms"))?;
    let ids = |keep: &dyn Fn(&serde_json::Value) -> bool| {
        let mut ids: Vec<String> = vms
            .iter()
            .filter(|vm| keep(vm))
            .filter_map(|vm| vm["id"].as_str().map(str::to_string))
            .collect();
        ids.sort();
        ids.iter()
            .map(|id| MoRef::new("VirtualMachine", id))
            .collect()
    };
    Ok(Listed {
        snapshot_vms: ids(&|vm| vm["snapshot_count"].as_u64().unwrap_or(0) > 0),
        windows_vms: ids(&|vm| vm["windows"].as_bool().unwrap_or(false)),
    })
}

/// The text of the first `<tag …>text</tag>` in `body`.
fn element<'a>(body: &'a str, tag: &str) -> Option<&'a str> {
    let open = format!("<{tag}");
    let mut from = 0;
    while let Some(i) = body[from..].find(&open) {
        let start = from + i + open.len();
        let rest = &body[start..];
        if rest.starts_with('>') || rest.starts_with(' ') {
            let gt = rest.find('>')?;
            let text = &rest[gt + 1..];
            let end = text.find(&format!("</{tag}>"))?;
            return Some(&text[..end]);
        }
        from = start;
    }
    None
}

/// The managed object reference of the first `<tag type="T">value</tag>`.
fn moref(body: &str, tag: &str) -> Result<MoRef> {
    let open = format!("<{tag} type=\"");
    let i = body
        .find(&open)
        .ok_or_else(|| anyhow!("no <{tag}> in the answer: {}", head(body)))?;
    let rest = &body[i + open.len()..];
    let quote = rest.find('"').ok_or_else(|| anyhow!("bad <{tag}>"))?;
    let kind = &rest[..quote];
    let gt = rest.find('>').ok_or_else(|| anyhow!("bad <{tag}>"))?;
    let value = &rest[gt + 1..];
    let end = value.find('<').ok_or_else(|| anyhow!("bad <{tag}>"))?;
    Ok(MoRef::new(kind, &value[..end]))
}

fn head(body: &str) -> &str {
    let mut end = body.len().min(400);
    while !body.is_char_boundary(end) {
        end -= 1;
    }
    &body[..end]
}

fn unix_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

/// Requests sent and response bytes read.
#[derive(Default)]
struct Count {
    requests: u64,
    bytes: u64,
    /// Of the streamed calls: seconds until the first byte of the answer (the simulator builds
    /// an answer whole before it sends it), and from it to the last.
    waiting_seconds: f64,
    transfer_seconds: f64,
}

struct Wire {
    http: reqwest::Client,
    url: reqwest::Url,
    api_version: String,
    cookie: Option<String>,
    count: Count,
    dump: Option<std::path::PathBuf>,
    dumped: u32,
}

/// What a streamed answer showed of itself: its first 4 kB and its last 512 bytes, and the
/// matches of a pattern across it.
struct Streamed {
    head: String,
    tail: String,
    matches: u64,
}

/// What the streamed answer of one WaitForUpdatesEx told.
struct WaitAnswer {
    /// `None`: an empty answer (nothing changed within the wait).
    version: Option<String>,
    truncated: bool,
    /// `<kind>enter</kind>` elements, counted only when asked.
    enters: u64,
}

/// The session: the managed objects the sequences start from.
struct Session {
    session_manager: MoRef,
    custom_fields_manager: Option<MoRef>,
    property_collector: MoRef,
    view_manager: MoRef,
    root_folder: MoRef,
}

impl Wire {
    fn request(&self, body: String) -> reqwest::RequestBuilder {
        let mut request = self
            .http
            .post(self.url.clone())
            .header("Content-Type", "text/xml; charset=utf-8")
            .header("SOAPAction", format!("\"urn:vim25/{}\"", self.api_version))
            .body(body);
        if let Some(cookie) = &self.cookie {
            request = request.header("Cookie", cookie);
        }
        request
    }

    /// A call whose (small) answer is read whole; returns the body and the session cookie it
    /// set, if any.
    async fn call(&mut self, call: &str, body: String) -> Result<(String, Option<String>)> {
        let response = self.request(body).send().await.context(call.to_string())?;
        self.count.requests += 1;
        let status = response.status();
        let cookie = session_cookie(response.headers()).map(|c| c.expose().to_string());
        let bytes = response.bytes().await.context(call.to_string())?;
        self.count.bytes += bytes.len() as u64;
        let text = String::from_utf8_lossy(&bytes).into_owned();
        if !status.is_success() {
            bail!("{call}: HTTP {status}: {}", head(&text));
        }
        Ok((text, cookie))
    }

    /// A call whose answer is read whole, a SOAP fault (HTTP 500) included: the probe, which
    /// vCenter may refuse with a fault.
    async fn call_any(&mut self, call: &str, body: String) -> Result<String> {
        let response = self.request(body).send().await.context(call.to_string())?;
        self.count.requests += 1;
        let status = response.status();
        let bytes = response.bytes().await.context(call.to_string())?;
        self.count.bytes += bytes.len() as u64;
        let text = String::from_utf8_lossy(&bytes).into_owned();
        if !status.is_success() && status.as_u16() != 500 {
            bail!("{call}: HTTP {status}: {}", head(&text));
        }
        Ok(text)
    }

    /// A call whose answer is streamed through and dropped chunk by chunk; `count` counts the
    /// matches of a pattern across chunk boundaries, with a carry-over shorter than it.
    async fn stream(
        &mut self,
        call: &str,
        body: String,
        count: Option<&Regex>,
    ) -> Result<Streamed> {
        const CARRY: usize = 64;
        const TAIL: usize = 512;
        let sent = Instant::now();
        let mut first_byte = None;
        let mut response = self
            .request(body)
            .timeout(Duration::from_secs(600))
            .send()
            .await
            .context(call.to_string())?;
        self.count.requests += 1;
        if !response.status().is_success() {
            let status = response.status();
            let text = response.text().await.unwrap_or_default();
            bail!("{call}: HTTP {status}: {}", head(&text));
        }
        let mut dump = match &self.dump {
            Some(dir) if call == "WaitForUpdatesEx" => {
                self.dumped += 1;
                let path = dir.join(format!("wait-{}.xml", self.dumped));
                Some(std::fs::File::create(&path).with_context(|| path.display().to_string())?)
            }
            _ => None,
        };
        let mut head_buf: Vec<u8> = Vec::new();
        let mut window: Vec<u8> = Vec::new();
        let mut tail: Vec<u8> = Vec::new();
        let mut matches = 0u64;
        while let Some(chunk) = response.chunk().await.context(call.to_string())? {
            first_byte.get_or_insert_with(Instant::now);
            self.count.bytes += chunk.len() as u64;
            if let Some(file) = dump.as_mut() {
                std::io::Write::write_all(file, &chunk)?;
            }
            if head_buf.len() < 4096 {
                head_buf.extend_from_slice(&chunk[..chunk.len().min(4096)]);
            }
            let keep = window.len().saturating_sub(CARRY);
            window.drain(..keep);
            window.extend_from_slice(&chunk);
            tail.extend_from_slice(&chunk[chunk.len().saturating_sub(TAIL)..]);
            let cut = tail.len().saturating_sub(TAIL);
            tail.drain(..cut);
            if let Some(re) = count {
                let start = window.len() - chunk.len();
                // Matches that end inside the carry were counted with the previous chunk.
                matches += re.find_iter(&window).filter(|m| m.end() > start).count() as u64;
            }
        }
        let first_byte = first_byte.unwrap_or_else(Instant::now);
        self.count.waiting_seconds += (first_byte - sent).as_secs_f64();
        self.count.transfer_seconds += first_byte.elapsed().as_secs_f64();
        Ok(Streamed {
            head: String::from_utf8_lossy(&head_buf).into_owned(),
            tail: String::from_utf8_lossy(&tail).into_owned(),
            matches,
        })
    }

    /// One WaitForUpdatesEx. The version is the first element of the UpdateSet and
    /// `truncated` its last, so only the head and the tail of the answer are looked at.
    async fn wait(&mut self, body: String, enters: Option<&Regex>) -> Result<WaitAnswer> {
        let answer = self.stream("WaitForUpdatesEx", body, enters).await?;
        Ok(WaitAnswer {
            version: element(&answer.head, "version").map(str::to_string),
            truncated: answer.tail.contains("<truncated>true</truncated>"),
            enters: answer.matches,
        })
    }

    async fn login(&mut self, user: &str, password: &str) -> Result<Session> {
        let (sc, early_cookie) = self
            .call("RetrieveServiceContent", soap::retrieve_service_content())
            .await?;
        let session = Session {
            session_manager: moref(&sc, "sessionManager")?,
            custom_fields_manager: moref(&sc, "customFieldsManager").ok(),
            property_collector: moref(&sc, "propertyCollector")?,
            view_manager: moref(&sc, "viewManager")?,
            root_folder: moref(&sc, "rootFolder")?,
        };
        self.api_version = element(&sc, "apiVersion")
            .unwrap_or(BOOTSTRAP_API_VERSION)
            .trim()
            .to_string();
        self.cookie = early_cookie.clone();
        let body = soap::login(&session.session_manager, user, password);
        let (_, cookie) = self.call("Login", body).await?;
        self.cookie = Some(
            cookie
                .or(early_cookie)
                .ok_or_else(|| anyhow!("no session cookie"))?,
        );
        Ok(session)
    }
}

/// The exporter's cold sequence, after the login: its JSON fields and when it ended.
async fn cold(
    wire: &mut Wire,
    session: &Session,
    listed: &Listed,
    two_collectors: bool,
    max_objects: u32,
    overlap: bool,
) -> Result<(String, Instant)> {
    let body = soap::create_property_collector(&session.property_collector);
    let (rv, _) = wire.call("CreatePropertyCollector", body.clone()).await?;
    let pc = moref(&rv, "returnval")?;
    let list_pc = if two_collectors {
        let (rv, _) = wire.call("CreatePropertyCollector", body).await?;
        moref(&rv, "returnval")?
    } else {
        pc.clone()
    };
    let body = soap::create_container_view(&session.view_manager, &session.root_folder, VIEW_TYPES);
    let (rv, _) = wire.call("CreateContainerView", body).await?;
    let view = moref(&rv, "returnval")?;
    let body = soap::create_list_view(&session.view_manager, &[]);
    let (rv, _) = wire.call("CreateListView", body).await?;
    let list = moref(&rv, "returnval")?;
    // The probe of the keyed disk.EnableUUID path, as the mirror sends it.
    let probe = [PropertySpec {
        kind: "VirtualMachine",
        paths: vec![ENABLE_UUID_PATH],
    }];
    let body =
        soap::retrieve_properties_ex(&session.property_collector, &view, &probe, Some(PROBE_VMS));
    let answer = wire.call_any("RetrievePropertiesEx", body).await?;
    let keyed = !answer.contains("InvalidProperty");
    if let Some(token) = element(&answer, "token") {
        let body = soap::cancel_retrieve_properties_ex(&session.property_collector, token);
        wire.call("CancelRetrievePropertiesEx", body).await?;
    }
    let extra: Vec<MoRef> = session.custom_fields_manager.iter().cloned().collect();
    let body = soap::create_filter_with_objects(&pc, &view, &property_specs_with(keyed), &extra);
    wire.call("CreateFilter", body).await?;
    let body = soap::create_filter(&list_pc, &list, &snapshot_vm_specs());
    wire.call("CreateFilter", body).await?;
    let windows_list = if keyed {
        None
    } else {
        let body = soap::create_list_view(&session.view_manager, &[]);
        let (rv, _) = wire.call("CreateListView", body).await?;
        let windows = moref(&rv, "returnval")?;
        let body = soap::create_filter(&list_pc, &windows, &windows_vm_specs());
        wire.call("CreateFilter", body).await?;
        Some(windows)
    };
    let setup = (wire.count.requests, wire.count.bytes);

    let window = Instant::now();
    let mut version = String::new();
    let mut waits = 0u32;
    let mut expected = 0u64;
    let mut filled = false;
    loop {
        let body = soap::wait_for_updates_ex(&pc, &version, MAX_WAIT_SECONDS, max_objects);
        let answer = wire.wait(body, None).await?;
        waits += 1;
        version = answer
            .version
            .ok_or_else(|| anyhow!("the first WaitForUpdatesEx answered empty"))?;
        if !answer.truncated {
            break;
        }
        if overlap && !filled {
            expected += fill_lists(wire, &list, windows_list.as_ref(), listed).await?;
            filled = true;
        }
    }
    let inventory_seconds = window.elapsed().as_secs_f64();
    let inventory_bytes = wire.count.bytes - setup.1;
    if !filled {
        expected += fill_lists(wire, &list, windows_list.as_ref(), listed).await?;
    }
    if expected > 0 {
        let enter = Regex::new("<kind>enter</kind>")?;
        let mut entered = 0u64;
        if two_collectors {
            version.clear();
        }
        while entered < expected {
            let body = soap::wait_for_updates_ex(&list_pc, &version, MAX_WAIT_SECONDS, max_objects);
            let answer = wire.wait(body, Some(&enter)).await?;
            waits += 1;
            let Some(v) = answer.version else {
                bail!(
                    "{} of {expected} listed VMs never reported their properties",
                    expected - entered,
                );
            };
            version = v;
            entered += answer.enters;
        }
    }
    let ended = Instant::now();
    let window_seconds = (ended - window).as_secs_f64();
    let done_unix = unix_now();
    let done = (wire.count.requests, wire.count.bytes);
    // Not timed: leave nothing behind on the server.
    for collector in [&pc, &list_pc] {
        let body = soap::destroy_property_collector(collector);
        let _ = wire.call("DestroyPropertyCollector", body).await;
        if !two_collectors {
            break;
        }
    }
    let fields = format!(
        "\"window_seconds\":{window_seconds:.6},\"done_unix\":{done_unix:.6},\
         \"window_requests\":{},\"window_response_bytes\":{},\"wait_calls\":{waits},\
         \"snapshot_vms\":{},\"windows_vms\":{},\"keyed_enable_uuid\":{keyed},\
         \"inventory_wait_seconds\":{inventory_seconds:.6},\
         \"inventory_wait_bytes\":{inventory_bytes}",
        done.0 - setup.0,
        done.1 - setup.1,
        listed.snapshot_vms.len(),
        if keyed { 0 } else { listed.windows_vms.len() },
    );
    Ok((fields, ended))
}

/// ModifyListView of both lists with the VMs the exporter lists: how many VMs will enter.
async fn fill_lists(
    wire: &mut Wire,
    list: &MoRef,
    windows_list: Option<&MoRef>,
    listed: &Listed,
) -> Result<u64> {
    let mut expected = 0u64;
    if !listed.snapshot_vms.is_empty() {
        let body = soap::modify_list_view(list, &listed.snapshot_vms, &[]);
        wire.call("ModifyListView", body).await?;
        expected += listed.snapshot_vms.len() as u64;
    }
    if let Some(windows) = windows_list
        && !listed.windows_vms.is_empty()
    {
        let body = soap::modify_list_view(windows, &listed.windows_vms, &[]);
        wire.call("ModifyListView", body).await?;
        expected += listed.windows_vms.len() as u64;
    }
    Ok(expected)
}

/// One RetrievePropertiesEx of every VM property the exporter reads, for all VMs, and its
/// continuations, after the login and the view: its JSON fields and when it ended.
async fn floor(wire: &mut Wire, session: &Session) -> Result<(String, Instant)> {
    let vms = ["VirtualMachine"];
    let body = soap::create_container_view(&session.view_manager, &session.root_folder, &vms);
    let (rv, _) = wire.call("CreateContainerView", body).await?;
    let view = moref(&rv, "returnval")?;
    let spec = [PropertySpec {
        kind: "VirtualMachine",
        paths: VM_PROPERTIES
            .iter()
            .filter(|p| {
                matches!(
                    p.scope,
                    Scope::EveryVm | Scope::VmsWithSnapshots | Scope::DiskChecks
                )
            })
            .map(|p| p.path)
            .collect(),
    }];
    let pc = &session.property_collector;
    let setup = (wire.count.requests, wire.count.bytes);
    let window = Instant::now();
    let mut call = "RetrievePropertiesEx";
    let mut body = soap::retrieve_properties_ex(pc, &view, &spec, None);
    let objects = Regex::new("<objects>")?;
    let mut count = 0;
    loop {
        let answer = wire.stream(call, body, Some(&objects)).await?;
        count += answer.matches;
        // The token is the first element of a RetrieveResult.
        let Some(token) = element(&answer.head, "token") else {
            break;
        };
        call = "ContinueRetrievePropertiesEx";
        body = soap::continue_retrieve_properties_ex(pc, token);
    }
    let ended = Instant::now();
    let window_seconds = (ended - window).as_secs_f64();
    let done_unix = unix_now();
    let done = (wire.count.requests, wire.count.bytes);
    let _ = wire.call("DestroyView", soap::destroy_view(&view)).await;
    let fields = format!(
        "\"window_seconds\":{window_seconds:.6},\"done_unix\":{done_unix:.6},\
         \"window_requests\":{},\"window_response_bytes\":{},\"objects\":{count}",
        done.0 - setup.0,
        done.1 - setup.1,
    );
    Ok((fields, ended))
}

#[tokio::main]
async fn main() -> Result<()> {
    let args = args()?;
    let listed = listed_vms(&args.facts_file)?;
    let pem = std::fs::read(&args.ca_file).with_context(|| args.ca_file.clone())?;
    let http = reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(10))
        .timeout(Duration::from_secs(600))
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!(
            "vsphere_backup_exporter/",
            env!("CARGO_PKG_VERSION")
        ))
        .tls_certs_merge(reqwest::Certificate::from_pem_bundle(&pem)?)
        .build()?;
    let mut wire = Wire {
        http,
        url: args.url.clone(),
        api_version: BOOTSTRAP_API_VERSION.to_string(),
        cookie: None,
        count: Count::default(),
        dump: std::env::var_os("WIRE_ONLY_DUMP").map(Into::into),
        dumped: 0,
    };

    let started = Instant::now();
    let session = wire.login(&args.user, &args.password).await?;
    let (fields, ended) = match args.mode {
        Mode::Cold => {
            cold(
                &mut wire,
                &session,
                &listed,
                false,
                MAX_OBJECT_UPDATES,
                false,
            )
            .await?
        }
        Mode::TwoCollectors => {
            cold(
                &mut wire,
                &session,
                &listed,
                true,
                MAX_OBJECT_UPDATES,
                false,
            )
            .await?
        }
        Mode::Unpaged => cold(&mut wire, &session, &listed, false, 0, false).await?,
        Mode::Overlap => {
            cold(
                &mut wire,
                &session,
                &listed,
                false,
                MAX_OBJECT_UPDATES,
                true,
            )
            .await?
        }
        Mode::Floor => floor(&mut wire, &session).await?,
    };
    let total_seconds = (ended - started).as_secs_f64();
    let _ = wire
        .call("Logout", soap::logout(&session.session_manager))
        .await;
    println!(
        "{{{fields},\"total_seconds\":{total_seconds:.6},\"requests\":{},\"response_bytes\":{},\
         \"waiting_seconds\":{:.6},\"transfer_seconds\":{:.6}}}",
        wire.count.requests,
        wire.count.bytes,
        wire.count.waiting_seconds,
        wire.count.transfer_seconds
    );
    Ok(())
}
