//! The client against a scripted SOAP server that answers with envelopes in the shape of a
//! real vCenter (`tests/fixtures/vcenter`): the paths the simulator never takes (paging,
//! expired sessions, faults inside 200 answers, refused logins).

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
use vsphere_backup_exporter::vsphere::Client;

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
type Answer = (u16, bool, String);
type Script = dyn Fn(&str, usize) -> Answer + Send + Sync;

struct Fake {
    url: String,
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

    fn count(&self, method: &str) -> usize {
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
async fn start(script: impl Fn(&str, usize) -> Answer + Send + Sync + 'static) -> Fake {
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
                        let (status, set_cookie, text) = script(&method, before);
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

/// A well-behaved vCenter that pages the inventory in two, then answers for the VMs with
/// snapshots over a ListView. RetrievePropertiesEx alternates between the two views.
fn paging_vcenter(method: &str, before: usize) -> Answer {
    match method {
        "RetrieveServiceContent" => (200, false, fixture("service_content.xml")),
        "Login" => (200, true, fixture("login.xml")),
        "CreateContainerView" => (200, false, fixture("create_container_view.xml")),
        "CreateListView" => (200, false, fixture("create_list_view.xml")),
        "RetrievePropertiesEx" if before % 2 == 1 => (200, false, fixture("snapshot_vms.xml")),
        "RetrievePropertiesEx" => (200, false, fixture("page1.xml")),
        "ContinueRetrievePropertiesEx" => (200, false, fixture("page2.xml")),
        "DestroyView" | "Logout" => (200, false, fixture("destroy_view.xml")),
        other => panic!("unexpected call {other}"),
    }
}

/// The paging vCenter, except that the first RetrievePropertiesEx gets `fixture_name`.
fn first_retrieval_fails(status: u16, fixture_name: &str, method: &str, before: usize) -> Answer {
    match (method, before) {
        ("RetrievePropertiesEx", 0) => (status, false, fixture(fixture_name)),
        ("RetrievePropertiesEx", n) => paging_vcenter(method, n - 1),
        _ => paging_vcenter(method, before),
    }
}

fn client(fake: &Fake, password: &str) -> Client {
    Client::new(&(&vcenter("vc01", &fake.url, "svc-monitor@vsphere.local", password)).into())
        .unwrap()
}

#[tokio::test]
async fn paged_retrieval_follows_the_token_and_reuses_the_session_cookie() {
    let fake = start(paging_vcenter).await;
    let inventory = client(&fake, PASSWORD)
        .with_page_size(100)
        .retrieve_inventory()
        .await
        .unwrap();

    assert_eq!(
        fake.methods(),
        [
            "RetrieveServiceContent",
            "Login",
            "CreateContainerView",
            "RetrievePropertiesEx",
            "ContinueRetrievePropertiesEx",
            "DestroyView",
            "CreateListView",
            "RetrievePropertiesEx",
            "DestroyView"
        ]
    );
    let seen = fake.seen();
    assert!(
        seen[4].body.contains("<token>0</token>"),
        "{}",
        seen[4].body
    );
    // Only the VM with snapshots is asked for its files and devices, over the ListView.
    assert!(
        seen[6]
            .body
            .contains(r#"<obj type="VirtualMachine">vm-1044</obj>"#)
            && !seen[6].body.contains("vm-1071"),
        "{}",
        seen[6].body
    );
    assert!(
        seen[7]
            .body
            .contains("<pathSet>config.hardware.device</pathSet>")
    );
    assert!(
        !seen[3]
            .body
            .contains("<pathSet>config.hardware.device</pathSet>")
    );
    assert!(seen[..2].iter().all(|s| s.cookie.is_none()));
    assert!(
        seen[2..]
            .iter()
            .all(|s| s.cookie.as_deref() == Some(COOKIE))
    );
    // After RetrieveServiceContent, calls ask for the API version vCenter announced.
    assert_eq!(seen[0].soap_action, "\"urn:vim25/6.5\"");
    assert!(
        seen[1..]
            .iter()
            .all(|s| s.soap_action == "\"urn:vim25/6.7.3\"")
    );

    // Both pages landed in one inventory.
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
}

#[tokio::test]
async fn session_is_reused_across_collections() {
    let fake = start(paging_vcenter).await;
    let client = client(&fake, PASSWORD);
    for _ in 0..3 {
        client.retrieve_inventory().await.unwrap();
    }
    assert_eq!(fake.count("Login"), 1);
    assert_eq!(client.logins(), 1);
    assert_eq!(fake.count("RetrievePropertiesEx"), 6);
}

#[tokio::test]
async fn not_authenticated_fault_logs_in_again_once_and_retries() {
    let fake = start(move |method, before| {
        first_retrieval_fails(500, "not_authenticated.xml", method, before)
    })
    .await;
    let client = client(&fake, PASSWORD);
    let inventory = client.retrieve_inventory().await.unwrap();
    assert_eq!(inventory.vms.len(), 2);
    assert!(inventory.vms["vm-1044"].layout_ex.is_some());
    assert_eq!(fake.count("Login"), 2);
    assert_eq!(fake.count("RetrievePropertiesEx"), 3);
}

#[tokio::test]
async fn not_authenticated_inside_a_200_missing_set_logs_in_again() {
    let fake = start(move |method, before| {
        first_retrieval_fails(200, "missing_set_not_authenticated.xml", method, before)
    })
    .await;
    let client = client(&fake, PASSWORD);
    let inventory = client.retrieve_inventory().await.unwrap();
    assert_eq!(inventory.vms.len(), 2);
    assert_eq!(fake.count("Login"), 2);
}

#[tokio::test]
async fn a_session_that_stays_unauthenticated_fails_after_one_retry() {
    let fake = start(|method, before| match method {
        "RetrievePropertiesEx" => (500, false, fixture("not_authenticated.xml")),
        _ => paging_vcenter(method, before),
    })
    .await;
    let err = client(&fake, PASSWORD)
        .retrieve_inventory()
        .await
        .unwrap_err();
    assert_eq!(fake.count("Login"), 2);
    assert_eq!(
        err.to_string(),
        "vCenter vc01: RetrievePropertiesEx: fault NotAuthenticated: The session is not authenticated."
    );
}

#[tokio::test]
async fn wrong_password_is_vsphere_up_zero_and_the_error_does_not_carry_the_password() {
    let fake = start(|method, before| match method {
        "Login" => (500, false, fixture("invalid_login.xml")),
        _ => paging_vcenter(method, before),
    })
    .await;
    let err = client(&fake, PASSWORD)
        .retrieve_inventory()
        .await
        .unwrap_err();
    let text = format!("{err} {err:?}");
    assert!(
        text.contains("Login: fault InvalidLogin: Cannot complete login"),
        "{text}"
    );
    assert!(!text.contains(PASSWORD), "{text}");

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
async fn a_malformed_answer_is_an_error_naming_the_call() {
    let fake = start(|method, before| match method {
        "RetrievePropertiesEx" => (200, false, "<soapenv:Envelope><oops".to_string()),
        _ => paging_vcenter(method, before),
    })
    .await;
    let err = client(&fake, PASSWORD)
        .retrieve_inventory()
        .await
        .unwrap_err();
    assert!(
        err.to_string()
            .starts_with("vCenter vc01: RetrievePropertiesEx: malformed response"),
        "{err}"
    );
    // The view is cleaned up even when the retrieval failed.
    assert_eq!(fake.count("DestroyView"), 1);
}
