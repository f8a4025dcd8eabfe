//! The baseline of `make bench`: the exporter's cold sequence of SOAP requests, sent with bare
//! reqwest, every answer read to its last byte and thrown away.
//!
//! It sends byte for byte what the mirror sends on a cold start (the envelopes come from the
//! crate's own builders in [`vsphere_backup_exporter::vsphere::soap`], with the property specs of
//! [`vsphere_backup_exporter::vsphere::inventory`]) with the same headers, and pulls out of the
//! answers only what the next request needs (session cookie, API version, managed object ids,
//! the update version, `truncated`) by plain string search. The VMs with snapshots, which the
//! exporter learns by parsing the snapshot trees, come from the simulator's facts file instead.
//! So its time is what the simulator and the wire cost; the exporter's time over it is what its
//! parsing and mirror cost.
//!
//! It does not parse XML, build an inventory, or retry anything: any unexpected answer is an error.
//!
//! ```sh
//! cargo run --release --example wire_only -- URL USER PASS CAFILE FACTSFILE
//! ```
//!
//! Prints one JSON line on stdout: `window_seconds` covers the same span as the exporter's
//! `vsphere_scrape_collector_duration_seconds{collector="inventory"}` (first WaitForUpdatesEx to
//! the last answer), `total_seconds` everything from RetrieveServiceContent on, and the requests
//! and response bytes of that span. The collector and session are cleaned up afterwards, outside
//! the timed span.

use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use regex::bytes::Regex;
use vsphere_backup_exporter::vsphere::client::session_cookie;
use vsphere_backup_exporter::vsphere::inventory::{VIEW_TYPES, property_specs, snapshot_vm_specs};
use vsphere_backup_exporter::vsphere::model::MoRef;
use vsphere_backup_exporter::vsphere::soap;

/// The same constants as the mirror's (src/vsphere/mirror.rs).
const MAX_WAIT_SECONDS: u32 = 30;
const MAX_OBJECT_UPDATES: u32 = 1000;
/// What the client asks before vCenter has told its API version (src/vsphere/client.rs).
const BOOTSTRAP_API_VERSION: &str = "6.5";

struct Args {
    url: reqwest::Url,
    user: String,
    password: String,
    ca_file: String,
    facts_file: String,
}

fn args() -> Result<Args> {
    let a: Vec<String> = std::env::args().skip(1).collect();
    let [url, user, password, ca_file, facts_file] = a.as_slice() else {
        bail!("usage: wire_only URL USER PASS CAFILE FACTSFILE");
    };
    Ok(Args {
        url: url.parse().context("URL")?,
        user: user.clone(),
        password: password.clone(),
        ca_file: ca_file.clone(),
        facts_file: facts_file.clone(),
    })
}

/// The ids of the VMs with snapshots, in the order the exporter lists them (its inventory is a
/// BTreeMap keyed by id, so string order).
fn snapshot_vms(facts_file: &str) -> Result<Vec<MoRef>> {
    let text = std::fs::read_to_string(facts_file).with_context(|| facts_file.to_string())?;
    let facts: serde_json::Value = serde_json::from_str(&text).context("facts JSON")?;
    let vms = facts["vms"]
        .as_array()
        .ok_or_else(|| anyhow!("facts without vms"))?;
    let mut ids: Vec<String> = vms
        .iter()
        .filter(|vm| vm["snapshot_count"].as_u64().unwrap_or(0) > 0)
        .filter_map(|vm| vm["id"].as_str().map(str::to_string))
        .collect();
    ids.sort();
    Ok(ids
        .iter()
        .map(|id| MoRef::new("VirtualMachine", id))
        .collect())
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
    &body[..body.len().min(400)]
}

/// Requests sent and response bytes read.
#[derive(Default)]
struct Count {
    requests: u64,
    bytes: u64,
}

struct Wire {
    http: reqwest::Client,
    url: reqwest::Url,
    api_version: String,
    cookie: Option<String>,
    count: Count,
}

/// What the streamed answer of one WaitForUpdatesEx told.
struct WaitAnswer {
    /// `None`: an empty answer (nothing changed within the wait).
    version: Option<String>,
    truncated: bool,
    /// `<kind>enter</kind>` elements, counted only when asked.
    enters: u64,
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

    /// One WaitForUpdatesEx, its answer streamed through and dropped chunk by chunk.
    async fn wait(&mut self, body: String, enters: Option<&Regex>) -> Result<WaitAnswer> {
        const CARRY: usize = 64;
        let mut response = self
            .request(body)
            .timeout(Duration::from_secs(600))
            .send()
            .await
            .context("WaitForUpdatesEx")?;
        self.count.requests += 1;
        if !response.status().is_success() {
            let status = response.status();
            let text = response.text().await.unwrap_or_default();
            bail!("WaitForUpdatesEx: HTTP {status}: {}", head(&text));
        }
        // The version is the first element of the UpdateSet and `truncated` its last, so only
        // the head and the tail of the answer are looked at; enters are counted across chunk
        // boundaries with a carry-over shorter than the pattern.
        let mut head_buf: Vec<u8> = Vec::new();
        let mut window: Vec<u8> = Vec::new();
        let mut count = 0u64;
        while let Some(chunk) = response.chunk().await.context("WaitForUpdatesEx body")? {
            self.count.bytes += chunk.len() as u64;
            if head_buf.len() < 4096 {
                head_buf.extend_from_slice(&chunk[..chunk.len().min(4096)]);
            }
            let keep = window.len().saturating_sub(CARRY);
            window.drain(..keep);
            window.extend_from_slice(&chunk);
            if let Some(re) = enters {
                let start = window.len() - chunk.len();
                // Matches that end inside the carry were counted with the previous chunk.
                count += re.find_iter(&window).filter(|m| m.end() > start).count() as u64;
            }
        }
        let head_text = String::from_utf8_lossy(&head_buf);
        let tail_text = String::from_utf8_lossy(&window[window.len().saturating_sub(CARRY)..]);
        Ok(WaitAnswer {
            version: element(&head_text, "version").map(str::to_string),
            truncated: tail_text.contains("<truncated>true</truncated>"),
            enters: count,
        })
    }
}

#[tokio::main]
async fn main() -> Result<()> {
    let args = args()?;
    let listed = snapshot_vms(&args.facts_file)?;
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
    };

    let started = Instant::now();
    let (sc, early_cookie) = wire
        .call("RetrieveServiceContent", soap::retrieve_service_content())
        .await?;
    let session_manager = moref(&sc, "sessionManager")?;
    let property_collector = moref(&sc, "propertyCollector")?;
    let view_manager = moref(&sc, "viewManager")?;
    let root_folder = moref(&sc, "rootFolder")?;
    wire.api_version = element(&sc, "apiVersion")
        .unwrap_or(BOOTSTRAP_API_VERSION)
        .trim()
        .to_string();
    wire.cookie = early_cookie.clone();
    let body = soap::login(&session_manager, &args.user, &args.password);
    let (_, cookie) = wire.call("Login", body).await?;
    wire.cookie = Some(
        cookie
            .or(early_cookie)
            .ok_or_else(|| anyhow!("no session cookie"))?,
    );

    let (rv, _) = wire
        .call(
            "CreatePropertyCollector",
            soap::create_property_collector(&property_collector),
        )
        .await?;
    let pc = moref(&rv, "returnval")?;
    let body = soap::create_container_view(&view_manager, &root_folder, VIEW_TYPES);
    let (rv, _) = wire.call("CreateContainerView", body).await?;
    let view = moref(&rv, "returnval")?;
    let (rv, _) = wire
        .call("CreateListView", soap::create_list_view(&view_manager, &[]))
        .await?;
    let list = moref(&rv, "returnval")?;
    wire.call(
        "CreateFilter",
        soap::create_filter(&pc, &view, &property_specs()),
    )
    .await?;
    wire.call(
        "CreateFilter",
        soap::create_filter(&pc, &list, &snapshot_vm_specs()),
    )
    .await?;
    let setup = (wire.count.requests, wire.count.bytes);

    let window = Instant::now();
    let mut version = String::new();
    let mut waits = 0u32;
    loop {
        let body = soap::wait_for_updates_ex(&pc, &version, MAX_WAIT_SECONDS, MAX_OBJECT_UPDATES);
        let answer = wire.wait(body, None).await?;
        waits += 1;
        version = answer
            .version
            .ok_or_else(|| anyhow!("the first WaitForUpdatesEx answered empty"))?;
        if !answer.truncated {
            break;
        }
    }
    let inventory_seconds = window.elapsed().as_secs_f64();
    let inventory_bytes = wire.count.bytes - setup.1;
    if !listed.is_empty() {
        let body = soap::modify_list_view(&list, &listed, &[]);
        wire.call("ModifyListView", body).await?;
        let enter = Regex::new("<kind>enter</kind>")?;
        let mut entered = 0u64;
        while entered < listed.len() as u64 {
            let body =
                soap::wait_for_updates_ex(&pc, &version, MAX_WAIT_SECONDS, MAX_OBJECT_UPDATES);
            let answer = wire.wait(body, Some(&enter)).await?;
            waits += 1;
            let Some(v) = answer.version else {
                bail!(
                    "{} of {} VMs with snapshots never reported their files",
                    listed.len() as u64 - entered,
                    listed.len()
                );
            };
            version = v;
            entered += answer.enters;
        }
    }
    let window_seconds = window.elapsed().as_secs_f64();
    let total_seconds = started.elapsed().as_secs_f64();
    let done = (wire.count.requests, wire.count.bytes);

    // Not timed: leave nothing behind on the server.
    let _ = wire
        .call(
            "DestroyPropertyCollector",
            soap::destroy_property_collector(&pc),
        )
        .await;
    let _ = wire.call("Logout", soap::logout(&session_manager)).await;

    println!(
        "{{\"window_seconds\":{window_seconds:.6},\"total_seconds\":{total_seconds:.6},\
         \"requests\":{},\"response_bytes\":{},\"window_requests\":{},\
         \"window_response_bytes\":{},\"wait_calls\":{waits},\"snapshot_vms\":{},\
         \"inventory_wait_seconds\":{inventory_seconds:.6},\
         \"inventory_wait_bytes\":{inventory_bytes}}}",
        done.0,
        done.1,
        done.0 - setup.0,
        done.1 - setup.1,
        listed.len()
    );
    Ok(())
}
