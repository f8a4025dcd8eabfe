//! The standing fault-injection suite: the exporter binary, run as a user runs it, follows the
//! simulator through [`proxy`], which injects one fault at a time. For each fault: `vsphere_up`
//! goes to 0 within its bound, every scrape answers HTTP 200, the incident costs one warning
//! line (not one per retry), nothing panics, memory stays bounded, and once the fault ends the
//! exporter recovers within its bound with correct data and the change made during the fault.
//! The password is a distinctive value that must appear in no log line (at debug level), page
//! or error.
//!
//! Each fault's figures go to `target/tmp/reliability/<fault>.tsv`; `make reliability` collects
//! them into docs/reliability.md.

mod harness;
mod proxy;

use std::time::Duration;

use harness::{Env, Injected, Outcome};
use proxy::Fault;

/// How long a fault is kept after `vsphere_up` went to 0: long enough for several retries,
/// which must not log again.
const HOLD: Duration = Duration::from_secs(4);

/// Runs one fault; `kind` is how `vsphere_call_errors_total` must count it.
async fn check(
    name: &str,
    injected: Injected,
    down_within: Duration,
    recover_within: Duration,
    kind: &str,
) {
    let env = Env::start().await;
    let outcome: Outcome = env.run(name, injected, HOLD).await;
    outcome.write_row();
    outcome.assert_holds(down_within, recover_within, kind);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fault_connection_drop() {
    check(
        "connection drop",
        Injected::Proxy(Fault::Drop),
        Duration::from_secs(5),
        Duration::from_secs(10),
        "transport",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fault_hang() {
    check(
        "hang (no answer)",
        Injected::Proxy(Fault::Hang),
        harness::hang_bound(),
        Duration::from_secs(10),
        "timeout",
    )
    .await;
}

/// At the default timeouts a hung vCenter shows as `vsphere_up 0` within 45 s (the update wait
/// of 30 s plus its 8 s grace). Once it answers again the exporter is back within one request
/// timeout (60 s: the retry that was sent while it hung has to time out) plus a backoff step.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fault_hang_at_default_settings() {
    let env = Env::start_with_default_timeouts().await;
    let outcome = env
        .run(
            "hang (no answer), default timeouts",
            Injected::Proxy(Fault::Hang),
            HOLD,
        )
        .await;
    outcome.write_row();
    outcome.assert_holds(Duration::from_secs(45), Duration::from_secs(75), "timeout");
}

/// A loaded vCenter answers the update wait late (9 s, past the suite's 4 s bound) and
/// everything else at once: the mirror follows the wait on while vCenter answers the heartbeat,
/// applies the late answer, and never starts over; `vsphere_up` stays 1 on every scrape, and
/// the slow wait is counted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_update_wait_with_a_live_heartbeat_keeps_the_mirror() {
    let env = Env::start().await;
    let synced = env.wait_current("VEEAM BACKUP TEMPORARY SNAPSHOT", Duration::from_secs(30));
    assert!(synced.await.is_some(), "the exporter never synced");
    env.proxy.set(Fault::Slow {
        method: "WaitForUpdatesEx",
        by: Duration::from_secs(9),
    });
    let name = "renamed while vCenter was slow";
    env.rename_snapshot(name).await;
    let started = std::time::Instant::now();
    let mut scrapes = 0;
    let body = loop {
        let (status, body) = env.exporter.get("/metrics").await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(
            harness::up(&body),
            Some(true),
            "vsphere_up fell during a slow wait"
        );
        scrapes += 1;
        if harness::snapshot_named(&body, name) {
            break body;
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "the late answer was never applied"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    env.proxy.set(Fault::None);
    assert!(scrapes > 10, "{scrapes} scrapes: the answer was not late");
    let samples = crate::support::parse(&body);
    assert!(
        crate::support::find(&samples, "vsphere_resyncs_total", &[])
            .iter()
            .all(|s| s.value == 0.0),
        "started over: {:?}",
        crate::support::find(&samples, "vsphere_resyncs_total", &[])
    );
    let slow = crate::support::value(&samples, "vsphere_slow_update_waits_total", &[]);
    assert!(slow >= 1.0, "{slow} slow waits counted");
    let beats = env.proxy.delivered("CurrentTime");
    assert!(beats >= 1, "no heartbeat answered");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fault_http_500_html() {
    check(
        "HTTP 500, HTML body",
        Injected::Proxy(Fault::Html(500)),
        Duration::from_secs(5),
        Duration::from_secs(10),
        "http",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fault_http_503_html() {
    check(
        "HTTP 503, HTML body",
        Injected::Proxy(Fault::Html(503)),
        Duration::from_secs(5),
        Duration::from_secs(10),
        "http",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fault_truncated_body() {
    check(
        "truncated body",
        Injected::Proxy(Fault::Truncate),
        Duration::from_secs(5),
        Duration::from_secs(10),
        "transport",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fault_garbage_and_invalid_utf8() {
    check(
        "garbage, invalid UTF-8",
        Injected::Proxy(Fault::Garbage),
        Duration::from_secs(5),
        Duration::from_secs(10),
        "malformed",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fault_huge_body_http_200() {
    check(
        "1 GB body, HTTP 200",
        Injected::Proxy(Fault::Huge(200)),
        Duration::from_secs(10),
        Duration::from_secs(10),
        "too_large",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fault_huge_body_http_500() {
    check(
        "1 GB body, HTTP 500",
        Injected::Proxy(Fault::Huge(500)),
        Duration::from_secs(10),
        Duration::from_secs(10),
        "http",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fault_redirect_to_another_port() {
    check(
        "redirect to another port",
        Injected::Redirect,
        Duration::from_secs(5),
        Duration::from_secs(10),
        "http",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fault_session_expiry() {
    check(
        "session expiry",
        Injected::SessionExpiry,
        Duration::ZERO,
        Duration::from_secs(5),
        "fault",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fault_vcenter_restart_on_the_same_port() {
    check(
        "vCenter restart",
        Injected::Restart,
        Duration::from_secs(5),
        Duration::from_secs(5),
        "transport",
    )
    .await;
}

/// A change whose `WaitForUpdatesEx` answer is cut off on the way must still reach the mirror:
/// the simulator, like any collector that has moved past a version, never sends it again, so
/// only a resynchronisation (or the periodic consistency check) brings it.
async fn change_in_a_lost_answer_is_not_lost(fault: Fault) {
    let env = Env::start().await;
    let limit = Duration::from_secs(60);
    assert!(
        env.wait_current("VEEAM BACKUP TEMPORARY SNAPSHOT", limit)
            .await
            .is_some()
    );
    env.proxy.set_once(fault);
    env.rename_snapshot("renamed while its answer was lost")
        .await;
    let seen = env
        .wait_current("renamed while its answer was lost", Duration::from_secs(15))
        .await;
    assert!(seen.is_some(), "the change was lost");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn change_in_a_truncated_update_answer_is_not_lost() {
    change_in_a_lost_answer_is_not_lost(Fault::Truncate).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn change_in_a_dropped_update_answer_is_not_lost() {
    change_in_a_lost_answer_is_not_lost(Fault::Drop).await;
}

/// After a run of faults and 1,000 scrapes the simulator holds exactly one session (the
/// exporter's), every replaced PropertyCollector was destroyed, SIGHUP does not stop the
/// process, and SIGTERM ends it within 10 s, logged out.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_session_after_faults_and_1000_scrapes_and_a_bounded_shutdown() {
    let mut env = Env::start().await;
    let short = Duration::from_secs(1);
    for fault in [
        Fault::Drop,
        Fault::Html(500),
        Fault::Garbage,
        Fault::Truncate,
    ] {
        let name = format!("{fault:?}");
        let outcome = env.run(&name, Injected::Proxy(fault), short).await;
        assert!(outcome.recovered.is_some(), "{outcome:?}");
    }
    // The session has lived through these faults: each collector the mirror and the event
    // follower replaced must be gone, only the two in use are left (with the follower's event
    // collector); of the views, the mirror's three in use (the inventory, the VMs with
    // snapshots, the Windows guests whose disk.EnableUUID the simulator does not read by
    // keyed path).
    // A destroy that failed under a fault is tried again once vCenter answers; the follower
    // retries as soon as the mirror is in sync again. Collectors count as created when their
    // creation answer reached the exporter: one whose answer a dropped connection swallowed
    // is unknown to it (the simulator made it; the session's logout takes it).
    let created = || env.proxy.delivered("CreatePropertyCollector");
    let event_collectors = || env.proxy.delivered("CreateCollectorForEvents");
    let deadline = std::time::Instant::now() + Duration::from_secs(90);
    let stats = loop {
        let stats = env.stats().await;
        let settled = created() == stats.count("DestroyPropertyCollector") + 2
            && event_collectors() == stats.count("DestroyCollector") + 1;
        if settled || std::time::Instant::now() > deadline {
            break stats;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    let (created, event_collectors) = (created(), event_collectors());
    let destroyed = stats.count("DestroyPropertyCollector");
    assert!(created >= 2 && created <= stats.count("CreatePropertyCollector"));
    assert_eq!(
        created,
        destroyed + 2,
        "PropertyCollectors created {created}, destroyed {destroyed}: {stats:?}"
    );
    let event_destroyed = stats.count("DestroyCollector");
    assert_eq!(
        event_collectors,
        event_destroyed + 1,
        "event collectors created {event_collectors}, destroyed {event_destroyed}"
    );
    let views = stats.count("CreateContainerView") + stats.count("CreateListView");
    let views_destroyed = stats.count("DestroyView");
    assert_eq!(
        views,
        views_destroyed + 3,
        "views created {views}, destroyed {views_destroyed}"
    );
    for injected in [Injected::SessionExpiry, Injected::Restart] {
        let outcome = env.run(&format!("{injected:?}"), injected, short).await;
        assert!(outcome.recovered.is_some(), "{outcome:?}");
    }
    for i in 0..1000 {
        let (status, body) = env.exporter.get("/metrics").await;
        assert_eq!(status, 200, "scrape {i}");
        assert!(!body.contains(harness::PASSWORD));
    }
    assert_eq!(
        env.stats().await.sessions,
        1,
        "sessions after 1,000 scrapes"
    );

    let exporter = &mut env.exporter;
    assert!(
        exporter
            .signal_and_wait("HUP", Duration::from_secs(2))
            .is_none(),
        "SIGHUP stopped the exporter"
    );
    assert!(exporter.alive());
    let took = exporter.signal_and_wait("TERM", Duration::from_secs(15));
    assert!(
        took.is_some_and(|t| t <= Duration::from_secs(10)),
        "SIGTERM took {took:?}"
    );
    assert_eq!(env.stats().await.sessions, 0, "the exporter logged out");
    harness::write_note(
        "shutdown",
        &format!(
            "- Through drop, HTTP 500, garbage and truncated-body faults in one session: {created} PropertyCollectors created (their creation answered), {destroyed} destroyed (the two in use, the mirror's and the event follower's, are the difference); {views} views created, {views_destroyed} destroyed (the three in use are the difference; the test oracle's reads included).\n- After those, a session expiry, a restart and 1,000 scrapes: 1 session at the simulator. SIGHUP kept the process; SIGTERM ended it in {:.2} s, logged out (0 sessions).\n",
            took.unwrap_or_default().as_secs_f64()
        ),
    );
}

/// SIGTERM ends the exporter within 10 s even while vCenter hangs (the logout has a short
/// timeout of its own) and a client holds a connection with half its request headers sent.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_ends_the_exporter_within_10_s_while_vcenter_hangs_and_a_client_stalls() {
    use tokio::io::AsyncWriteExt;

    let mut env = Env::start().await;
    let synced = env
        .wait_current("VEEAM BACKUP TEMPORARY SNAPSHOT", Duration::from_secs(60))
        .await;
    assert!(synced.is_some(), "never synced");
    env.proxy.set(Fault::Hang);
    let addr = env.exporter.base.trim_start_matches("http://").to_string();
    let mut stalled = tokio::net::TcpStream::connect(&addr).await.unwrap();
    stalled
        .write_all(b"GET /metrics HTTP/1.1\r\nHost: exporter\r\n")
        .await
        .unwrap();
    let took = env
        .exporter
        .signal_and_wait("TERM", Duration::from_secs(15));
    assert!(
        took.is_some_and(|t| t <= Duration::from_secs(10)),
        "SIGTERM took {took:?}"
    );
    harness::write_note(
        "shutdown_hung",
        &format!(
            "- SIGTERM while vCenter hangs and a client has sent half its headers: exited in {:.2} s.\n",
            took.unwrap_or_default().as_secs_f64()
        ),
    );
}
