//! vSphere tags (the `tags` source, the Automation REST API) against the simulator's tagging
//! API (`pitfalls` scenario, tests/vcsim/tags.go): every VM's backup policy count, tag info
//! series and tag labels against the facts, a tag made while the exporter runs, what one read
//! costs, the logout at shutdown; and, through a proxy that answers the REST paths itself while
//! SOAP reaches the simulator, a REST API that refuses the login and one that is absent (a bare
//! ESXi host): a clear error, `vsphere_source_up{source="tags"} 0`, the rest of the vCenter's
//! metrics up, the account not asked again before `login_retry_interval`; and the `/api` paths
//! of vCenter 7.0 U2 and later (the simulator serves only `/rest`), with a session that expires
//! and is renewed once.

use std::collections::BTreeSet;
use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use serde_json::{Value as Json, json};
use tokio::net::TcpListener;
use vsphere_backup_exporter::config::{TagLabel, TagsConfig};

use crate::support::{Sample, find, parse, value};
use crate::vcsim::{TagFacts, Vcsim};
use crate::{Served, config_for, serve_config};

const POLICY: &str = "Backup Policy";
const OWNER: &str = "Owner";

/// `Owner` as a label, `Owner` and `Backup Policy` as info series, `Backup Policy` as the
/// policy category (the scenario's `Unused` category is named nowhere).
fn tags_config(interval: Duration) -> TagsConfig {
    TagsConfig {
        interval,
        labels: vec![TagLabel {
            category: OWNER.into(),
            label: "owner".into(),
        }],
        info_categories: vec![OWNER.into(), POLICY.into()],
        backup_policy_categories: vec![POLICY.into()],
    }
}

async fn serve_tags(sim: &Vcsim, interval: Duration) -> Served {
    let mut config = config_for(vec![sim.vcenter("vc01")]);
    config.tags = tags_config(interval);
    serve_config(config).await
}

type Series = (String, String, String, String);

/// `vsphere_vm_tag_info` as (vm_id, vm_name, category, tag).
fn tag_info(samples: &[Sample]) -> BTreeSet<Series> {
    find(samples, "vsphere_vm_tag_info", &[])
        .into_iter()
        .map(|s| {
            assert_eq!(s.value, 1.0, "{s:?}");
            let l = |k: &str| s.labels[k].clone();
            (l("vm_id"), l("vm_name"), l("category"), l("tag"))
        })
        .collect()
}

fn facts_of(tags: &[TagFacts], categories: &[&str]) -> BTreeSet<Series> {
    tags.iter()
        .filter(|t| categories.contains(&t.category.as_str()))
        .map(|t| {
            (
                t.vm_id.clone(),
                t.vm_name.clone(),
                t.category.clone(),
                t.tag.clone(),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_vms_policy_count_tag_series_and_tag_label_match_the_simulators_tags() {
    let sim = Vcsim::start(&["-scenario", "pitfalls"]);
    let before = sim.stats().await;
    let served = serve_tags(&sim, Duration::from_secs(300)).await;
    let page = served.scrape_when_synced("vc01", "tags", 60).await;
    let samples = parse(&page);
    let facts = &sim.facts;

    // The situations the scenario promises are there.
    let owners_of = |id: &str| -> Vec<&str> {
        let mut names: Vec<&str> = facts
            .tags
            .iter()
            .filter(|t| t.vm_id == id && t.category == OWNER)
            .map(|t| t.tag.as_str())
            .collect();
        names.sort_unstable();
        names
    };
    let policies_of = |id: &str| {
        facts
            .tags
            .iter()
            .filter(|t| t.vm_id == id && t.category == POLICY)
            .count()
    };
    assert!(facts.vms.iter().any(|v| owners_of(&v.id).len() == 2));
    assert!(
        facts
            .vms
            .iter()
            .any(|v| v.template && facts.tags.iter().all(|t| t.vm_id != v.id))
    );
    assert!(
        facts
            .vms
            .iter()
            .any(|v| !v.template && v.power_state == "poweredOn" && policies_of(&v.id) == 0)
    );
    assert!(facts.vms.iter().any(|v| policies_of(&v.id) == 2));

    for vm in &facts.vms {
        let ids = [("vm_id", vm.id.as_str())];
        let policy = find(&samples, "vsphere_vm_backup_policy_tags", &ids);
        if vm.template {
            assert!(policy.is_empty(), "template {}: {policy:?}", vm.name);
        } else {
            let got = value(&samples, "vsphere_vm_backup_policy_tags", &ids);
            assert_eq!(got, policies_of(&vm.id) as f64, "{}", vm.name);
        }
        let info = find(&samples, "vsphere_vm_info", &ids);
        assert_eq!(info.len(), 1, "{}", vm.name);
        assert_eq!(
            info[0].labels["owner"],
            owners_of(&vm.id).join(","),
            "{}",
            vm.name
        );
    }
    assert_eq!(tag_info(&samples), facts_of(&facts.tags, &[OWNER, POLICY]));
    assert!(
        !page.contains("Unused"),
        "a category named nowhere is left out"
    );
    assert_eq!(
        value(&samples, "vsphere_source_up", &[("source", "tags")]),
        1.0
    );
    assert!(
        !find(
            &samples,
            "vsphere_source_last_update_timestamp_seconds",
            &[("source", "tags")]
        )
        .is_empty()
    );

    // One read: /api/session (404 on this vCenter, which predates 7.0 U2) then the /rest
    // login, the two lists, one read per category and tag, one batch of VMs; no error.
    let after = sim.stats().await;
    let spent = |route: &str| after.count(route) - before.count(route);
    let bytes = |route: &str| {
        after.response_bytes.get(route).copied().unwrap_or(0)
            - before.response_bytes.get(route).copied().unwrap_or(0)
    };
    let rest = "REST GET /rest/com/vmware/cis/tagging";
    let categories = facts
        .tags
        .iter()
        .map(|t| &t.category)
        .collect::<BTreeSet<_>>()
        .len() as u64;
    let tags = facts
        .tags
        .iter()
        .map(|t| (&t.category, &t.tag))
        .collect::<BTreeSet<_>>()
        .len() as u64;
    assert_eq!(spent("REST POST /api/session"), 1);
    assert_eq!(spent("REST POST /rest/com/vmware/cis/session"), 1);
    assert_eq!(spent(&format!("{rest}/category")), 1);
    assert_eq!(spent(&format!("{rest}/category/{{id}}")), categories);
    assert_eq!(spent(&format!("{rest}/tag")), 1);
    assert_eq!(spent(&format!("{rest}/tag/{{id}}")), tags);
    let batch = "REST POST /rest/com/vmware/cis/tagging/tag-association?~action=list-attached-tags-on-objects";
    assert_eq!(spent(batch), 1);
    assert!(!page.contains("call=\"tagging") && !page.contains("call=\"cis."));
    eprintln!(
        "tags: one read of {} VMs: attached-tags answer {} bytes ({:.1} per VM, {} tags attached), lists {} + {} bytes, names {} + {} bytes",
        facts.vms.len(),
        bytes(batch),
        bytes(batch) as f64 / facts.vms.len() as f64,
        facts.tags.len(),
        bytes(&format!("{rest}/category")),
        bytes(&format!("{rest}/tag")),
        bytes(&format!("{rest}/category/{{id}}")),
        bytes(&format!("{rest}/tag/{{id}}")),
    );

    // The report's line names the powered-on VMs in no policy.
    let (status, html) = served.get("/report").await;
    assert_eq!(status, 200);
    let uncovered: Vec<&str> = facts
        .vms
        .iter()
        .filter(|v| !v.template && v.power_state == "poweredOn" && policies_of(&v.id) == 0)
        .map(|v| v.name.as_str())
        .collect();
    let line = format!(
        "<li id=\"risk-not_in_backup_policy\" class=\"risk present\"><span class=\"count\">{}</span> Powered-on VMs in no backup policy (no tag of {POLICY}): <span class=\"named\">{}</span></li>",
        uncovered.len(),
        uncovered.join(", ")
    );
    assert!(html.contains(&line), "{line}\nnot in\n{html}");

    // Logged out at shutdown.
    served.exporter().shutdown().await;
    let end = sim.stats().await;
    assert_eq!(
        end.count("REST DELETE /rest/com/vmware/cis/session")
            - after.count("REST DELETE /rest/com/vmware/cis/session"),
        1
    );
}

/// Calls the simulator's REST API as an operator would (`/rest`, in a session of its own).
struct Rest {
    base: String,
    http: reqwest::Client,
    token: String,
}

impl Rest {
    async fn login(sim: &Vcsim) -> Rest {
        let (base, http) = sim.http();
        let answer = http
            .post(format!("{base}/rest/com/vmware/cis/session"))
            .basic_auth(&sim.facts.username, Some(&sim.facts.password))
            .send()
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap();
        let answer: Json = serde_json::from_slice(&answer).unwrap();
        let token = answer["value"].as_str().unwrap().to_string();
        Rest { base, http, token }
    }

    /// A tagging call (`path` after `…/cis/tagging/`); its answer's `value`.
    async fn call(&self, method: reqwest::Method, path: &str, body: Option<Json>) -> Json {
        let mut request = self
            .http
            .request(
                method,
                format!("{}/rest/com/vmware/cis/tagging/{path}", self.base),
            )
            .header("vmware-api-session-id", &self.token);
        if let Some(body) = body {
            request = request
                .header("Content-Type", "application/json")
                .body(body.to_string());
        }
        let response = request.send().await.unwrap();
        assert!(
            response.status().is_success(),
            "{path}: {}",
            response.status()
        );
        let bytes = response.bytes().await.unwrap();
        serde_json::from_slice::<Json>(&bytes)
            .map(|v| v["value"].clone())
            .unwrap_or(Json::Null)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tag_made_while_the_exporter_runs_shows_at_the_next_read() {
    let sim = Vcsim::start(&["-scenario", "pitfalls"]);
    let served = serve_tags(&sim, Duration::from_secs(1)).await;
    let page = served.scrape_when_synced("vc01", "tags", 60).await;
    let vm = sim
        .facts
        .vms
        .iter()
        .find(|v| v.name == "pitfall-chain-5")
        .unwrap();
    let ids = [("vm_id", vm.id.as_str())];
    assert_eq!(
        value(&parse(&page), "vsphere_vm_backup_policy_tags", &ids),
        0.0
    );

    // A new tag of the policy category (an id the exporter has not seen), on the VM that had
    // none.
    let rest = Rest::login(&sim).await;
    let mut policy_id = None;
    let categories = rest.call(reqwest::Method::GET, "category", None).await;
    for id in categories.as_array().unwrap() {
        let id = id.as_str().unwrap();
        let c = rest
            .call(reqwest::Method::GET, &format!("category/id:{id}"), None)
            .await;
        if c["name"] == POLICY {
            policy_id = Some(id.to_string());
        }
    }
    let policy_id = policy_id.expect("the scenario's policy category");
    let spec = json!({"create_spec": {"name": "bronze", "category_id": policy_id}});
    let tag = rest.call(reqwest::Method::POST, "tag", Some(spec)).await;
    let tag_id = tag.as_str().unwrap().to_string();
    let object = json!({"object_id": {"type": "VirtualMachine", "id": vm.id}});
    let attach = format!("tag-association/id:{tag_id}?~action=attach");
    rest.call(reqwest::Method::POST, &attach, Some(object))
        .await;

    let want = format!(
        "vsphere_vm_tag_info{{vcenter=\"vc01\",vm_id=\"{}\",vm_name=\"{}\",category=\"{POLICY}\",tag=\"bronze\"}} 1\n",
        vm.id, vm.name
    );
    let page = served
        .scrape_until("/probe?target=vc01", Duration::from_secs(30), |p| {
            p.contains(&want)
        })
        .await;
    let samples = parse(&page);
    assert_eq!(value(&samples, "vsphere_vm_backup_policy_tags", &ids), 1.0);
    let mut want_info = facts_of(&sim.facts.tags, &[OWNER, POLICY]);
    want_info.insert((
        vm.id.clone(),
        vm.name.clone(),
        POLICY.into(),
        "bronze".into(),
    ));
    assert_eq!(tag_info(&samples), want_info);
}

/// What the proxy answers on the REST paths.
#[derive(Clone, Copy, PartialEq)]
enum RestApi {
    /// 401 on the session paths: the credentials are refused.
    Refuses,
    /// 404 everywhere under /api and /rest: a bare ESXi host.
    Absent,
    /// The `/api` paths of vCenter 7.0 U2 and later, with one category ("Backup Policy"), one
    /// tag ("gold") on the VM named in [`FakeState::tagged_vm`], and a session that expires
    /// once, after the first attached-tags answer.
    Serves,
}

/// What the fake saw and holds.
#[derive(Default)]
struct FakeState {
    rest_requests: AtomicU64,
    logins: AtomicU64,
    logouts: AtomicU64,
    /// Requests that named the batch action `?action=` (the `/api` form, not `~action`).
    batches: AtomicU64,
    token: std::sync::Mutex<Option<String>>,
    expired_once: std::sync::atomic::AtomicBool,
    tagged_vm: std::sync::Mutex<String>,
}

/// A proxy that answers `/api/…` and `/rest/…` itself and passes everything else (SOAP) on to
/// the simulator (served over http); it counts the REST requests it answered.
struct RestFake {
    url: String,
    state: Arc<FakeState>,
}

impl RestFake {
    async fn start(upstream: String, api: RestApi) -> RestFake {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/sdk", listener.local_addr().unwrap());
        let state = Arc::new(FakeState::default());
        let shared = state.clone();
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(120))
            .build()
            .unwrap();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let (upstream, http, shared) = (upstream.clone(), http.clone(), shared.clone());
                tokio::spawn(async move {
                    let service = service_fn(move |req| {
                        answer(req, upstream.clone(), http.clone(), shared.clone(), api)
                    });
                    let _ = http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        RestFake { url, state }
    }
}

fn reply(status: u16, body: String) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = hyper::StatusCode::from_u16(status).unwrap();
    response
}

/// The `/api` tagging API as vCenter 8 answers it (bare JSON, ids as URNs).
async fn serve_api(req: Request<Incoming>, state: &FakeState) -> Response<Full<Bytes>> {
    let path = req.uri().path().to_string();
    let query = req.uri().query().unwrap_or("").to_string();
    let method = req.method().clone();
    let token = req
        .headers()
        .get("vmware-api-session-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    if path == "/api/session" && method == hyper::Method::POST {
        let auth = req
            .headers()
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        // "user:Tags-S3cret" in base64.
        if auth != "Basic dXNlcjpUYWdzLVMzY3JldA==" {
            return reply(401, String::new());
        }
        let n = state.logins.fetch_add(1, Ordering::Relaxed) + 1;
        let issued = format!("token-{n}");
        *state.token.lock().unwrap() = Some(issued.clone());
        return reply(201, format!("\"{issued}\""));
    }
    let current = state.token.lock().unwrap().clone();
    if token.is_none() || token != current {
        return reply(401, String::new());
    }
    let category = "urn:vmomi:InventoryServiceCategory:c1:GLOBAL";
    let tag = "urn:vmomi:InventoryServiceTag:t1:GLOBAL";
    match (method.as_str(), path.as_str()) {
        ("DELETE", "/api/session") => {
            state.logouts.fetch_add(1, Ordering::Relaxed);
            *state.token.lock().unwrap() = None;
            reply(204, String::new())
        }
        ("GET", "/api/cis/tagging/category") => reply(200, json!([category]).to_string()),
        ("GET", "/api/cis/tagging/tag") => reply(200, json!([tag]).to_string()),
        ("GET", p) if p == format!("/api/cis/tagging/category/{category}") => reply(
            200,
            json!({"id": category, "name": POLICY, "description": "", "cardinality": "MULTIPLE",
                "associable_types": ["VirtualMachine"], "used_by": []})
            .to_string(),
        ),
        ("GET", p) if p == format!("/api/cis/tagging/tag/{tag}") => reply(
            200,
            json!({"id": tag, "name": "gold", "category_id": category, "description": "",
                "used_by": []})
            .to_string(),
        ),
        ("POST", "/api/cis/tagging/tag-association")
            if query == "action=list-attached-tags-on-objects" =>
        {
            state.batches.fetch_add(1, Ordering::Relaxed);
            let body = req.into_body().collect().await.map(|b| b.to_bytes());
            let body: Json = serde_json::from_slice(&body.unwrap_or_default()).unwrap_or_default();
            let tagged = state.tagged_vm.lock().unwrap().clone();
            let answer: Vec<Json> = body["object_ids"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|o| {
                    let tags: Vec<&str> = if o["id"] == tagged.as_str() {
                        vec![tag]
                    } else {
                        vec![]
                    };
                    json!({"object_id": o, "tag_ids": tags})
                })
                .collect();
            // The session expires once, after this answer: the next call gets 401.
            if !state.expired_once.swap(true, Ordering::Relaxed) {
                *state.token.lock().unwrap() = None;
            }
            reply(200, Json::Array(answer).to_string())
        }
        _ => reply(404, String::new()),
    }
}

async fn answer(
    req: Request<Incoming>,
    upstream: String,
    http: reqwest::Client,
    state: Arc<FakeState>,
    api: RestApi,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let path = req.uri().path().to_string();
    if path.starts_with("/api/") || path.starts_with("/rest/") {
        state.rest_requests.fetch_add(1, Ordering::Relaxed);
        return Ok(match api {
            RestApi::Refuses => reply(401, "{}".into()),
            RestApi::Absent => reply(404, "{}".into()),
            RestApi::Serves => serve_api(req, &state).await,
        });
    }
    let method = reqwest::Method::from_bytes(req.method().as_str().as_bytes()).unwrap();
    let mut forward = http.request(method, format!("{upstream}{}", req.uri()));
    for (name, value) in req.headers() {
        if !matches!(name.as_str(), "host" | "content-length" | "connection") {
            forward = forward.header(name.as_str(), value.as_bytes());
        }
    }
    let body = req.into_body().collect().await.map(|b| b.to_bytes());
    let upstream_answer = forward.body(body.unwrap_or_default()).send().await;
    let Ok(upstream_answer) = upstream_answer else {
        let mut response = Response::new(Full::new(Bytes::new()));
        *response.status_mut() = hyper::StatusCode::BAD_GATEWAY;
        return Ok(response);
    };
    let status = upstream_answer.status().as_u16();
    let headers = upstream_answer.headers().clone();
    let bytes = upstream_answer.bytes().await.unwrap_or_default();
    let mut response = Response::new(Full::new(bytes));
    *response.status_mut() = hyper::StatusCode::from_u16(status).unwrap();
    for (name, value) in &headers {
        if matches!(name.as_str(), "set-cookie" | "content-type") {
            response.headers_mut().append(
                name.as_str().parse::<hyper::header::HeaderName>().unwrap(),
                value.as_bytes().try_into().unwrap(),
            );
        }
    }
    Ok(response)
}

/// Serves the exporter for the simulator (over http) behind a [`RestFake`], tags read every
/// 300 ms.
async fn serve_behind(api: RestApi) -> (Vcsim, RestFake, Served) {
    let sim = Vcsim::start(&[
        "-scenario",
        "pitfalls",
        "-tls=false",
        "-password",
        "Tags-S3cret",
    ]);
    let fake = RestFake::start(sim.url.trim_end_matches("/sdk").to_string(), api).await;
    let mut vcenter = sim.vcenter("vc01");
    vcenter.url = fake.url.parse().unwrap();
    let mut config = config_for(vec![vcenter]);
    config.tags = tags_config(Duration::from_millis(300));
    let served = serve_config(config).await;
    (sim, fake, served)
}

/// Scrapes until the tags source has failed at least `n` times; the page.
async fn after_failures(served: &Served, n: u64) -> String {
    served
        .scrape_until("/probe?target=vc01", Duration::from_secs(60), |p| {
            parse(p)
                .iter()
                .filter(|s| {
                    s.name == "vsphere_call_errors_total"
                        && s.labels["call"] == "cis.session.create"
                })
                .map(|s| s.value as u64)
                .sum::<u64>()
                >= n
        })
        .await
}

fn assert_inventory_up_and_tags_down(page: &str) {
    let samples = parse(page);
    assert_eq!(value(&samples, "vsphere_up", &[]), 1.0);
    assert_eq!(
        value(&samples, "vsphere_source_up", &[("source", "inventory")]),
        1.0
    );
    assert_eq!(
        value(&samples, "vsphere_source_up", &[("source", "tags")]),
        0.0
    );
    assert!(!find(&samples, "vsphere_vm_info", &[]).is_empty());
    // Nothing about policies is guessed while the tags cannot be read.
    assert!(find(&samples, "vsphere_vm_backup_policy_tags", &[]).is_empty());
    assert!(find(&samples, "vsphere_vm_tag_info", &[]).is_empty());
    assert!(
        find(&samples, "vsphere_vm_info", &[])
            .iter()
            .all(|s| s.labels["owner"].is_empty())
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rest_api_that_refuses_the_login_is_asked_once_per_retry_interval_and_the_rest_stays_up()
{
    let (sim, fake, served) = serve_behind(RestApi::Refuses).await;
    let start = Instant::now();
    // Three cycles: the refused login, then two that do not try before login_retry_interval.
    let page = after_failures(&served, 3).await;
    assert_inventory_up_and_tags_down(&page);
    let samples = parse(&page);
    assert_eq!(
        value(
            &samples,
            "vsphere_call_errors_total",
            &[("call", "cis.session.create"), ("kind", "fault")]
        ),
        find(
            &samples,
            "vsphere_call_errors_total",
            &[("call", "cis.session.create")]
        )
        .iter()
        .map(|s| s.value)
        .sum::<f64>()
    );
    assert_eq!(
        fake.state.rest_requests.load(Ordering::Relaxed),
        1,
        "one login attempt (POST /api/session), not one per cycle, within {:?}",
        start.elapsed()
    );
    let error = served.target().source_error("tags").unwrap_or_default();
    assert!(
        error.starts_with("vCenter vc01: cis.session.create: not logging in again for "),
        "{error}"
    );
    assert!(error.contains("refused the credentials"), "{error}");
    assert!(!error.contains(&sim.facts.password), "{error}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_absent_rest_api_says_the_tagging_api_is_absent_and_the_rest_stays_up() {
    let (sim, fake, served) = serve_behind(RestApi::Absent).await;
    let page = after_failures(&served, 2).await;
    assert_inventory_up_and_tags_down(&page);
    let samples = parse(&page);
    assert!(
        value(
            &samples,
            "vsphere_call_errors_total",
            &[("call", "cis.session.create"), ("kind", "http")]
        ) >= 2.0
    );
    // Both session paths, once per cycle.
    assert!(fake.state.rest_requests.load(Ordering::Relaxed) >= 4);
    let error = served.target().source_error("tags").unwrap_or_default();
    assert_eq!(
        error,
        "vCenter vc01: cis.session.create: the vSphere Automation REST API is absent (HTTP 404 on /api/session and /rest/com/vmware/cis/session): tags need a vCenter, a bare ESXi host has none"
    );
    assert!(!error.contains(&sim.facts.password));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_api_paths_of_a_newer_vcenter_are_read_and_an_expired_session_is_renewed_once() {
    let (sim, fake, served) = serve_behind(RestApi::Serves).await;
    let vm = sim
        .facts
        .vms
        .iter()
        .find(|v| !v.template)
        .expect("a VM that is not a template");
    *fake.state.tagged_vm.lock().unwrap() = vm.id.clone();
    // Reads until one after the session expired (a second login) shows the tag: no error.
    let tagged = format!(
        "vsphere_vm_backup_policy_tags{{vcenter=\"vc01\",vm_id=\"{}\",vm_name=\"{}\"}} 1\n",
        vm.id, vm.name
    );
    let page = served
        .scrape_until("/probe?target=vc01", Duration::from_secs(60), |p| {
            fake.state.logins.load(Ordering::Relaxed) >= 2
                && fake.state.batches.load(Ordering::Relaxed) >= 2
                && p.contains(&tagged)
        })
        .await;
    let samples = parse(&page);
    for v in sim.facts.vms.iter().filter(|v| !v.template) {
        let want = if v.id == vm.id { 1.0 } else { 0.0 };
        let ids = [("vm_id", v.id.as_str())];
        assert_eq!(
            value(&samples, "vsphere_vm_backup_policy_tags", &ids),
            want,
            "{}",
            v.name
        );
    }
    assert_eq!(
        tag_info(&samples),
        BTreeSet::from([(vm.id.clone(), vm.name.clone(), POLICY.into(), "gold".into())])
    );
    assert!(
        find(&samples, "vsphere_call_errors_total", &[])
            .iter()
            .all(|s| !s.labels["call"].starts_with("tagging")
                && s.labels["call"] != "cis.session.create"),
        "the expired session was renewed without a failed call"
    );
    assert_eq!(fake.state.logins.load(Ordering::Relaxed), 2);
    served.exporter().shutdown().await;
    assert_eq!(fake.state.logouts.load(Ordering::Relaxed), 1);
}
