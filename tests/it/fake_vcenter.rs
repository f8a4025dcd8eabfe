//! The mirror (the code the exporter runs) against a scripted SOAP server that answers with
//! envelopes in the shape of a real vCenter (`tests/fixtures/vcenter`): the paths the
//! simulator never takes (truncated update answers, a continuation token on the direct read of
//! files, expired sessions as a fault and inside a 200 answer, refused logins). The recorded
//! RetrievePropertiesEx answers are turned into the WaitForUpdatesEx answers a vCenter sends
//! for the same objects.

use std::convert::Infallible;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;

use vsphere_backup_exporter::config::Config;
use vsphere_backup_exporter::exporter::Exporter;
use vsphere_backup_exporter::source::Published;
use vsphere_backup_exporter::vsphere::mirror::Mirror;
use vsphere_backup_exporter::vsphere::{Client, Inventory};

use crate::support::{parse, value, vcenter};

const PASSWORD: &str = "S3cr3t-Pa55!";
const COOKIE: &str = "vmware_soap_session=\"52a9e1b4fake\"";

fn fixture(name: &str) -> String {
    let path = format!(
        "{}/tests/fixtures/vcenter/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// One request as the fake server saw it.
#[derive(Debug, Clone)]
struct Seen {
    method: String,
    cookie: Option<String>,
    soap_action: String,
    body: String,
}

/// What the script answers: HTTP status, whether to set the session cookie, and the body.
pub(crate) type Answer = (u16, bool, String);
/// The status a script answers a WaitForUpdatesEx with when nothing changed: the server waits
/// a moment and answers an empty update set.
const WAIT_EMPTY: u16 = 0;
type Script = dyn Fn(&str, usize) -> Answer + Send + Sync;

pub(crate) struct Fake {
    pub(crate) url: String,
    seen: Arc<Mutex<Vec<Seen>>>,
}

impl Fake {
    fn methods(&self) -> Vec<String> {
        self.seen
            .lock()
            .unwrap()
            .iter()
            .map(|s| s.method.clone())
            .collect()
    }

    fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }

    pub(crate) fn count(&self, method: &str) -> usize {
        self.methods().iter().filter(|m| *m == method).count()
    }
}

/// The SOAP method of a request: the first element inside the Body.
fn soap_method(body: &str) -> String {
    let after = body.split("<soapenv:Body>").nth(1).unwrap_or_default();
    after
        .trim_start_matches('<')
        .split([' ', '>'])
        .next()
        .unwrap_or_default()
        .to_string()
}

/// Serves `script` on 127.0.0.1:0. The script gets the method and how many times that method
/// was called before (0 for the first call).
pub(crate) async fn start(script: impl Fn(&str, usize) -> Answer + Send + Sync + 'static) -> Fake {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/sdk", listener.local_addr().unwrap());
    let seen: Arc<Mutex<Vec<Seen>>> = Arc::default();
    let script: Arc<Script> = Arc::new(script);
    let state = seen.clone();
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            let seen = state.clone();
            let script = script.clone();
            tokio::spawn(async move {
                let service = service_fn(move |req: Request<Incoming>| {
                    let seen = seen.clone();
                    let script = script.clone();
                    async move {
                        let cookie = req
                            .headers()
                            .get("cookie")
                            .map(|v| v.to_str().unwrap().to_string());
                        let soap_action = req
                            .headers()
                            .get("soapaction")
                            .map(|v| v.to_str().unwrap().to_string())
                            .unwrap_or_default();
                        let body = req.into_body().collect().await.unwrap().to_bytes();
                        let body = String::from_utf8(body.to_vec()).unwrap();
                        let method = soap_method(&body);
                        let before = {
                            let mut seen = seen.lock().unwrap();
                            let before = seen.iter().filter(|s| s.method == method).count();
                            seen.push(Seen {
                                method: method.clone(),
                                cookie,
                                soap_action,
                                body,
                            });
                            before
                        };
                        let (mut status, set_cookie, mut text) = script(&method, before);
                        if status == WAIT_EMPTY {
                            // As vCenter does when nothing changed within the wait (kept
                            // short so the mirror does not spin).
                            tokio::time::sleep(std::time::Duration::from_millis(200)).await;
                            status = 200;
                            text = envelope(
                                r#"<WaitForUpdatesExResponse xmlns="urn:vim25"></WaitForUpdatesExResponse>"#,
                            );
                        }
                        let mut response = Response::builder()
                            .status(status)
                            .header("content-type", "text/xml; charset=utf-8");
                        if set_cookie {
                            response = response.header(
                                "set-cookie",
                                format!("{COOKIE}; Path=/; HttpOnly; Secure;"),
                            );
                        }
                        Ok::<_, Infallible>(response.body(Full::new(Bytes::from(text))).unwrap())
                    }
                });
                let _ = http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    Fake { url, seen }
}

/// A body inside the SOAP envelope the fixtures use.
fn envelope(body: &str) -> String {
    format!(
        r#"<?xml version="1.0" encoding="UTF-8"?>
<soapenv:Envelope xmlns:soapenc="http://schemas.xmlsoap.org/soap/encoding/" xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" xmlns:xsd="http://www.w3.org/2001/XMLSchema" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">
<soapenv:Body>{body}</soapenv:Body></soapenv:Envelope>"#
    )
}

fn returnval(method: &str, kind: &str, id: &str) -> String {
    envelope(&format!(
        r#"<{method}Response xmlns="urn:vim25"><returnval type="{kind}">{id}</returnval></{method}Response>"#
    ))
}

/// The raw `<objects>` elements of a recorded RetrievePropertiesEx answer.
fn objects_of(fixture_name: &str) -> Vec<String> {
    let text = fixture(fixture_name);
    text.split("<objects>")
        .skip(1)
        .map(|rest| {
            format!(
                "<objects>{}</objects>",
                rest.split("</objects>").next().unwrap()
            )
        })
        .collect()
}

/// An ObjectContent as the ObjectUpdate a collector sends when the object enters its filter.
fn entered(objects: &str) -> String {
    objects
        .replacen("<objects>", "<objectSet><kind>enter</kind>", 1)
        .replace("</objects>", "</objectSet>")
        .replace("<propSet>", "<changeSet>")
        .replace("</propSet>", "</changeSet>")
        .replace("</name><val", "</name><op>assign</op><val")
}

/// A WaitForUpdatesEx answer: `version`, the object updates of one filter, maybe truncated.
fn update_set(version: &str, filter: &str, updates: &[String], truncated: bool) -> String {
    let truncated = if truncated {
        "<truncated>true</truncated>"
    } else {
        ""
    };
    envelope(&format!(
        r#"<WaitForUpdatesExResponse xmlns="urn:vim25"><returnval><version>{version}</version><filterSet><filter type="PropertyFilter">{filter}</filter>{}</filterSet>{truncated}</returnval></WaitForUpdatesExResponse>"#,
        updates.concat()
    ))
}

const INVENTORY_FILTER: &str = "session[52a9e1b4]filter-inventory";
const SNAPSHOT_FILTER: &str = "session[52a9e1b4]filter-snapshot-vms";
const ALARM_FILTER: &str = "session[52a9e1b4]filter-alarms";

/// A well-behaved vCenter, as the mirror meets it: the inventory's initial state comes in two
/// truncated WaitForUpdatesEx answers (page1's objects, then page2's); once the VM with snapshots
/// is in the ListView its files and devices come through the second filter; then nothing
/// changes. `wait` answers WaitForUpdatesEx calls from the fourth on.
fn mirror_vcenter(method: &str, before: usize, wait: &dyn Fn(usize) -> Answer) -> Answer {
    let ok = |text: String| (200, false, text);
    match method {
        "RetrieveServiceContent" => ok(fixture("service_content.xml")),
        "Login" => (200, true, fixture("login.xml")),
        "CreatePropertyCollector" => ok(returnval(
            method,
            "PropertyCollector",
            "session[52a9e1b4]pc-1",
        )),
        "CreateContainerView" => ok(fixture("create_container_view.xml")),
        "CreateListView" => ok(fixture("create_list_view.xml")),
        // Three filters a collector, in this order: the inventory, the VMs with snapshots, the
        // root folder's triggered alarms.
        "CreateFilter" => {
            let id = [INVENTORY_FILTER, SNAPSHOT_FILTER, ALARM_FILTER][before % 3];
            ok(returnval(method, "PropertyFilter", id))
        }
        "ModifyListView" => ok(envelope(
            r#"<ModifyListViewResponse xmlns="urn:vim25"></ModifyListViewResponse>"#,
        )),
        "WaitForUpdatesEx" => match before {
            0 => ok(update_set(
                "1",
                INVENTORY_FILTER,
                &objects_of("page1.xml")
                    .iter()
                    .map(|o| entered(o))
                    .collect::<Vec<_>>(),
                true,
            )),
            1 => ok(update_set(
                "2",
                INVENTORY_FILTER,
                &objects_of("page2.xml")
                    .iter()
                    .map(|o| entered(o))
                    .collect::<Vec<_>>(),
                false,
            )),
            2 => ok(update_set(
                "3",
                SNAPSHOT_FILTER,
                &objects_of("snapshot_vms.xml")
                    .iter()
                    .map(|o| entered(o))
                    .collect::<Vec<_>>(),
                false,
            )),
            n => wait(n),
        },
        "DestroyPropertyCollector" | "DestroyView" | "Logout" => ok(fixture("destroy_view.xml")),
        // The consistency check reads the ContainerView's objects: the two VMs it announced.
        "RetrievePropertiesEx" => ok(view_objects(&["vm-1044", "vm-1071"])),
        other => panic!("unexpected call {other}"),
    }
}

/// The ContainerView's `view` property listing these VMs (and a host, which does not count).
fn view_objects(vms: &[&str]) -> String {
    let refs: String = vms
        .iter()
        .map(|id| format!(r#"<ManagedObjectReference type="VirtualMachine" xsi:type="ManagedObjectReference">{id}</ManagedObjectReference>"#))
        .chain([r#"<ManagedObjectReference type="HostSystem" xsi:type="ManagedObjectReference">host-29</ManagedObjectReference>"#.to_string()])
        .collect();
    envelope(&format!(
        r#"<RetrievePropertiesExResponse xmlns="urn:vim25"><returnval><objects><obj type="ContainerView">session[52a9e1b4]view-1</obj><propSet><name>view</name><val xsi:type="ArrayOfManagedObjectReference">{refs}</val></propSet></objects></returnval></RetrievePropertiesExResponse>"#
    ))
}

fn quiet(_: usize) -> Answer {
    (WAIT_EMPTY, false, String::new())
}

fn client(fake: &Fake, password: &str) -> Arc<Client> {
    Arc::new(
        Client::new(&(&vcenter("vc01", &fake.url, "svc-monitor@vsphere.local", password)).into())
            .unwrap(),
    )
}

/// Polls the mirror's publications until `want` holds; panics with the last one after 10 s.
async fn published(
    mirror: &Mirror,
    want: impl Fn(&Published<Inventory>) -> bool,
) -> Arc<Published<Inventory>> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let latest = mirror.feed().latest();
        if want(&latest) {
            return latest;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "never published as wanted; last: {:?}",
            latest.status
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

fn synced(p: &Published<Inventory>) -> bool {
    p.status.synced
}

#[tokio::test]
async fn mirror_completes_truncated_update_answers_and_reuses_the_session_cookie() {
    let fake = start(|m, n| mirror_vcenter(m, n, &quiet)).await;
    let mirror = Mirror::start(client(&fake, PASSWORD));
    let inventory = published(&mirror, synced).await.value.clone().unwrap();

    let methods = fake.methods();
    assert_eq!(
        methods[..12],
        [
            "RetrieveServiceContent",
            "Login",
            "CreatePropertyCollector",
            "CreateContainerView",
            "CreateListView",
            // Whether the keyed path of disk.EnableUUID is read (this fake answers without a
            // refusal, so it is, and no ListView of Windows guests is made).
            "RetrievePropertiesEx",
            // The inventory, the VMs with snapshots, the root folder's triggered alarms.
            "CreateFilter",
            "CreateFilter",
            "CreateFilter",
            "WaitForUpdatesEx",
            "WaitForUpdatesEx",
            "ModifyListView",
        ]
    );
    let seen = fake.seen();
    // The truncated answer's version is asked for next, and the complete one after it.
    assert!(
        seen[10].body.contains("<version>1</version>"),
        "{}",
        seen[10].body
    );
    assert!(
        seen[9].body.contains("<maxObjectUpdates>"),
        "{}",
        seen[9].body
    );
    // Only the VM with snapshots goes into the ListView for its files and devices.
    assert!(
        seen[11]
            .body
            .contains(r#"<add type="VirtualMachine">vm-1044</add>"#)
            && !seen[11].body.contains("vm-1071"),
        "{}",
        seen[11].body
    );
    assert!(seen[..2].iter().all(|s| s.cookie.is_none()));
    assert!(
        seen[2..]
            .iter()
            .all(|s| s.cookie.as_deref() == Some(COOKIE))
    );
    assert_eq!(seen[0].soap_action, "\"urn:vim25/6.5\"");
    assert!(
        seen[1..]
            .iter()
            .all(|s| s.soap_action == "\"urn:vim25/6.7.3\"")
    );

    // Both truncated answers landed in one inventory, files and devices included.
    assert_eq!(
        inventory.vms.keys().collect::<Vec<_>>(),
        ["vm-1044", "vm-1071"]
    );
    assert_eq!(inventory.datastores["datastore-31"].name, "ds-prod-01");
    let sql = &inventory.vms["vm-1044"];
    let place = inventory.placement(sql);
    assert_eq!(
        (place.host_name, place.cluster_name, place.datacenter_name),
        ("esx01.example.com", "prod-cluster", "Frankfurt")
    );
    let snaps = sql.snapshots();
    let sizes: Vec<u64> = snaps.iter().map(|s| sql.snapshot_size_bytes(s)).collect();
    // Root: its vmsn only. Current child: vmsn + delta 1 (331 + 1862270976) + the running
    // delta 2 (338 + 218103808).
    assert_eq!(
        sizes,
        [31537, 31601 + 331 + 1_862_270_976 + 338 + 218_103_808]
    );
    assert_eq!(sql.disk_capacity_bytes(), 42_949_672_960);
    let web = &inventory.vms["vm-1071"];
    assert!(web.consolidation_needed);
    assert_eq!(web.power_state, "poweredOff");
    assert_eq!(fake.count("Login"), 1);
}

/// The snapshot property of vm-1044 as page1 has it, as a change.
fn snapshot_change(present: bool) -> String {
    let page = fixture("page1.xml");
    let start = page.find("<propSet><name>snapshot</name>").unwrap();
    let end = start + page[start..].find("</propSet>").unwrap() + "</propSet>".len();
    let change = if present {
        entered(&page[start..end])
    } else {
        "<changeSet><name>snapshot</name><op>assign</op></changeSet>".to_string()
    };
    format!(
        r#"<objectSet><kind>modify</kind><obj type="VirtualMachine">vm-1044</obj>{change}</objectSet>"#
    )
}

/// snapshot_vms.xml's object split in two pages: layoutEx, then (after the token) devices.
fn files_in_two_pages(method: &str) -> String {
    let object = &objects_of("snapshot_vms.xml")[0];
    let at = object
        .find("<propSet><name>config.hardware.device</name>")
        .unwrap();
    let obj = r#"<obj type="VirtualMachine">vm-1044</obj>"#;
    let (first, second) = (&object[..at], &object[at..]);
    match method {
        "RetrievePropertiesEx" => envelope(&format!(
            r#"<RetrievePropertiesExResponse xmlns="urn:vim25"><returnval><token>page-2</token>{first}</objects></returnval></RetrievePropertiesExResponse>"#
        )),
        _ => envelope(&format!(
            r#"<ContinueRetrievePropertiesExResponse xmlns="urn:vim25"><returnval><objects>{obj}{second}</returnval></ContinueRetrievePropertiesExResponse>"#
        )),
    }
}

#[tokio::test]
async fn files_of_a_vm_back_in_the_list_are_read_with_their_continuation_token() {
    // After the sync, vm-1044 loses its snapshot (it leaves the ListView) and gets it back: a
    // collector does not announce a VM again, so the mirror reads its files directly, and that
    // answer comes in two pages.
    let fake = start(|method, n| match method {
        "RetrievePropertiesEx" | "ContinueRetrievePropertiesEx" => {
            (200, false, files_in_two_pages(method))
        }
        _ => mirror_vcenter(method, n, &|n| match n {
            3 => (
                200,
                false,
                update_set("4", INVENTORY_FILTER, &[snapshot_change(false)], false),
            ),
            4 => (
                200,
                false,
                update_set("5", INVENTORY_FILTER, &[snapshot_change(true)], false),
            ),
            _ => quiet(n),
        }),
    })
    .await;
    let mirror = Mirror::start(client(&fake, PASSWORD));
    let back = published(&mirror, |p| {
        p.status.synced
            && fake.count("ContinueRetrievePropertiesEx") == 1
            && fake.count("WaitForUpdatesEx") > 5
    })
    .await;
    let seen = fake.seen();
    let continued = seen
        .iter()
        .find(|s| s.method == "ContinueRetrievePropertiesEx")
        .unwrap();
    assert!(
        continued.body.contains("<token>page-2</token>"),
        "{}",
        continued.body
    );
    let vm = &back.value.as_ref().unwrap().vms["vm-1044"];
    assert!(vm.layout_ex.is_some(), "layoutEx from the first page");
    assert_eq!(
        vm.disk_capacity_bytes(),
        42_949_672_960,
        "devices from the second page"
    );
    assert_eq!(
        fake.count("ModifyListView"),
        3,
        "added, removed, added again"
    );
}

#[tokio::test]
async fn not_authenticated_fault_logs_in_again_at_once() {
    let fake = start(|method, n| match (method, n) {
        ("WaitForUpdatesEx", 0) => (500, false, fixture("not_authenticated.xml")),
        ("WaitForUpdatesEx", n) => mirror_vcenter(method, n - 1, &quiet),
        ("CreateFilter", n) => mirror_vcenter(method, n % 3, &quiet),
        _ => mirror_vcenter(method, n, &quiet),
    })
    .await;
    let client = client(&fake, PASSWORD);
    let mirror = Mirror::start(client.clone());
    let started = std::time::Instant::now();
    let inventory = published(&mirror, synced).await.value.clone().unwrap();
    assert_eq!(inventory.vms.len(), 2);
    assert!(inventory.vms["vm-1044"].layout_ex.is_some());
    assert_eq!(fake.count("Login"), 2);
    assert_eq!(client.logins(), 2);
    assert_eq!(mirror.counters().resyncs(), [("session_lost", 1)]);
    // At once: no backoff step (the first is 0.5 s) between the fault and the new login.
    assert!(started.elapsed() < std::time::Duration::from_secs(5));
}

#[tokio::test]
async fn not_authenticated_inside_a_200_answer_logs_in_again() {
    // vCenter answers the first wait with 200 and every property as a NotAuthenticated fault.
    let lost = {
        let objects = objects_of("missing_set_not_authenticated.xml");
        let update = objects[0]
            .replacen("<objects>", "<objectSet><kind>enter</kind>", 1)
            .replace("</objects>", "</objectSet>");
        update_set("1", INVENTORY_FILTER, &[update], false)
    };
    let fake = start(move |method, n| match (method, n) {
        ("WaitForUpdatesEx", 0) => (200, false, lost.clone()),
        ("WaitForUpdatesEx", n) => mirror_vcenter(method, n - 1, &quiet),
        _ => mirror_vcenter(method, n, &quiet),
    })
    .await;
    let client = client(&fake, PASSWORD);
    let mirror = Mirror::start(client.clone());
    let inventory = published(&mirror, synced).await.value.clone().unwrap();
    assert_eq!(inventory.vms.len(), 2);
    assert_eq!(fake.count("Login"), 2);
    assert_eq!(mirror.counters().resyncs(), [("session_lost", 1)]);
}

#[tokio::test]
async fn a_session_that_stays_unauthenticated_backs_off_after_one_immediate_login() {
    let fake = start(|method, n| match method {
        "WaitForUpdatesEx" => (500, false, fixture("not_authenticated.xml")),
        _ => mirror_vcenter(method, n, &quiet),
    })
    .await;
    let mirror = Mirror::start(client(&fake, PASSWORD));
    let failed = published(&mirror, |p| {
        p.status.error.is_some() && fake.count("Login") >= 2
    })
    .await;
    assert_eq!(
        failed.status.error.as_deref(),
        Some(
            "vCenter vc01: WaitForUpdatesEx: fault NotAuthenticated: The session is not authenticated."
        )
    );
    // One login at once, then the backoff (0.5 s, 1 s, …): not a login storm.
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert_eq!(fake.count("Login"), 2, "{:?}", fake.methods());
}

#[tokio::test]
async fn wrong_password_is_vsphere_up_zero_and_nothing_carries_the_password() {
    let fake = start(|method, n| match method {
        "Login" => (500, false, fixture("invalid_login.xml")),
        _ => mirror_vcenter(method, n, &quiet),
    })
    .await;
    let mirror = Mirror::start(client(&fake, PASSWORD));
    let failed = published(&mirror, |p| p.status.error.is_some()).await;
    let error = failed.status.error.clone().unwrap();
    assert!(
        error.contains("Login: fault InvalidLogin: Cannot complete login"),
        "{error}"
    );
    assert!(!error.contains(PASSWORD), "{error}");

    let config = Config {
        vcenters: vec![vcenter("vc01", &fake.url, "svc", PASSWORD)],
        backup_snapshot_patterns: Vec::new(),
        ..Config::default()
    };
    let exporter = Exporter::build(Arc::new(config)).unwrap();
    exporter.start();
    let text = exporter
        .probe("vc01", Some(std::time::Duration::from_secs(10)))
        .await
        .unwrap()
        .to_text_string();
    let samples = parse(&text);
    assert_eq!(value(&samples, "vsphere_up", &[("vcenter", "vc01")]), 0.0);
    assert_eq!(
        value(&samples, "vsphere_source_up", &[("source", "inventory")]),
        0.0
    );
    assert_eq!(
        value(
            &samples,
            "vsphere_login_attempts_total",
            &[("result", "invalid_login")]
        ),
        1.0
    );
    assert!(!text.contains(PASSWORD));
}

#[tokio::test]
async fn a_malformed_update_answer_names_the_call_and_its_collector_is_destroyed_after_the_resync()
{
    let fake = start(|method, n| match (method, n) {
        ("WaitForUpdatesEx", 0) => (200, false, "<soapenv:Envelope><oops".to_string()),
        ("WaitForUpdatesEx", n) => mirror_vcenter(method, n - 1, &quiet),
        _ => mirror_vcenter(method, n, &quiet),
    })
    .await;
    let mirror = Mirror::start(client(&fake, PASSWORD));
    let failed = published(&mirror, |p| p.status.error.is_some()).await;
    let error = failed.status.error.clone().unwrap();
    assert!(
        error.starts_with("vCenter vc01: WaitForUpdatesEx: malformed response"),
        "{error}"
    );
    published(&mirror, synced).await;
    // The first collector and its two views, left when the answer broke, go once the next
    // full retrieval in the same session has worked: right after it is published.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while fake.count("DestroyView") < 2 && std::time::Instant::now() < deadline {
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert_eq!(fake.count("CreatePropertyCollector"), 2);
    assert_eq!(fake.count("DestroyPropertyCollector"), 1);
    assert_eq!(fake.count("DestroyView"), 2);
    assert_eq!(fake.count("Login"), 1);
}

#[tokio::test]
async fn a_vm_whose_update_was_lost_is_found_by_the_consistency_check() {
    // vCenter holds a third VM whose `enter` never reached the mirror (a lost update): the
    // periodic check of the view's contents finds it twice in a row and starts over.
    let fake = start(|method, n| match method {
        "RetrievePropertiesEx" => (200, false, view_objects(&["vm-1044", "vm-1071", "vm-2000"])),
        _ => mirror_vcenter(method, n, &quiet),
    })
    .await;
    let mirror = Mirror::start(client(&fake, PASSWORD));
    published(&mirror, synced).await;
    let resyncs = || mirror.counters().resyncs();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while resyncs().is_empty() {
        assert!(
            std::time::Instant::now() < deadline,
            "no resync; calls {:?}",
            fake.methods()
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(resyncs(), [("consistency_check", 1)]);
    // Checked after 20 quiet waits, then once more before acting (and the keyed-path probe
    // of disk.EnableUUID at the start).
    assert_eq!(fake.count("RetrievePropertiesEx"), 3);
    published(&mirror, synced).await;
}

#[tokio::test]
async fn a_consistent_mirror_is_checked_without_resynchronising() {
    let fake = start(|m, n| mirror_vcenter(m, n, &quiet)).await;
    let mirror = Mirror::start(client(&fake, PASSWORD));
    published(&mirror, synced).await;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while fake.count("RetrievePropertiesEx") == 0 {
        assert!(std::time::Instant::now() < deadline, "never checked");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    tokio::time::sleep(std::time::Duration::from_millis(600)).await;
    assert!(
        mirror.counters().resyncs().is_empty(),
        "{:?}",
        mirror.counters().resyncs()
    );
    assert_eq!(fake.count("CreatePropertyCollector"), 1);
}
