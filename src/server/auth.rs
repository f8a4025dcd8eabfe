//! HTTP basic authentication against the web config's bcrypt hashes.
//!
//! bcrypt is slow on purpose (about 50-100 ms at cost 10), so a check that succeeded is
//! remembered: per user, an HMAC of the user and password under a key drawn at random when the
//! web config was loaded, compared in constant time. A remembered success lasts [`CACHE_TTL`]
//! after its last use, so a scraper that comes back within it never waits for bcrypt again,
//! whatever else is queued. Failures are never remembered.
//!
//! A check that needs bcrypt is a task of its own, not part of the request: a client that gives
//! up (`curl -m 0.05`) leaves its check to finish, and the next one does not start until it has.
//! Checks run one at a time, each holding the one permit inside its blocking thread; requests
//! with the same credentials share one check, so 50 concurrent scrapes cost one bcrypt round.
//! At most [`MAX_PENDING_CHECKS`] checks (distinct credentials) wait at once; a request that
//! would need one more is answered at once ([`Verdict::Busy`], HTTP 429) and costs nothing.
//!
//! Unknown users are checked against one dummy hash at the highest cost of the configured
//! users, so the answer's timing does not tell which users exist (a known user's own cost can
//! be lower; that tells only that the user exists with a cheaper hash, which the configuration
//! chose).
//!
//! It does not decide which paths are public (see [`super`]).

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aws_lc_rs::{constant_time, hmac, rand};
use base64::Engine as _;
use hyper::HeaderMap;
use hyper::header::AUTHORIZATION;
use tokio::sync::{Semaphore, watch};

use crate::webconfig::PasswordHash;

/// How long a successful check is remembered after its last use.
const CACHE_TTL: Duration = Duration::from_secs(300);

/// How many bcrypt checks (of distinct credentials) may wait at once; past it, 429.
pub(super) const MAX_PENDING_CHECKS: usize = 16;

/// The salt and hash of the dummy hash unknown users are checked against (from a real bcrypt
/// hash, so that it parses); its cost is set to the highest configured one.
const DUMMY_SALT_AND_HASH: &str = "L6Bc/AlTQHyd9liGgGEZyOFLPHNgyxeEPfgYfBCVxJ7JIlwxyVU3u";

/// What a request's credentials get.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Verdict {
    Allowed,
    /// No credentials, or wrong ones.
    Denied,
    /// Too many checks waiting: try again later (HTTP 429).
    Busy,
}

/// The users and what their checks share; the checks' tasks hold it too.
pub(super) struct BasicAuth {
    checks: Arc<Checks>,
}

pub(super) struct Checks {
    users: BTreeMap<String, PasswordHash>,
    /// The hash unknown users are checked against.
    dummy: String,
    key: hmac::Key,
    /// User → HMAC of the credentials that last passed, and when they were last used.
    passed: Mutex<HashMap<String, (Vec<u8>, Instant)>>,
    /// HMAC of the credentials → the result of their check under way.
    pending: Mutex<HashMap<Vec<u8>, watch::Receiver<Option<bool>>>>,
    /// One bcrypt check at a time; the permit lives in the blocking thread that runs it.
    pub(super) gate: Arc<Semaphore>,
    #[cfg(test)]
    pub(super) counts: TestCounts,
}

/// What the tests watch of the bcrypt runs.
#[cfg(test)]
#[derive(Default)]
pub(super) struct TestCounts {
    pub(super) runs: std::sync::atomic::AtomicU64,
    pub(super) running: std::sync::atomic::AtomicU64,
    pub(super) most_at_once: std::sync::atomic::AtomicU64,
    pub(super) last_cost: std::sync::atomic::AtomicU64,
}

impl BasicAuth {
    /// None when there are no users (no authentication).
    pub(super) fn new(users: &BTreeMap<String, PasswordHash>) -> Result<Option<BasicAuth>, String> {
        if users.is_empty() {
            return Ok(None);
        }
        let mut key = [0u8; 32];
        rand::fill(&mut key).map_err(|_| "cannot draw a random key".to_owned())?;
        let cost = users
            .values()
            .filter_map(|hash| hash.expose().parse::<bcrypt::HashParts>().ok())
            .map(|parts| parts.get_cost())
            .max()
            .unwrap_or(bcrypt::DEFAULT_COST);
        Ok(Some(BasicAuth {
            checks: Arc::new(Checks {
                users: users.clone(),
                dummy: format!("$2b${cost:02}${DUMMY_SALT_AND_HASH}"),
                key: hmac::Key::new(hmac::HMAC_SHA256, &key),
                passed: Mutex::new(HashMap::new()),
                pending: Mutex::new(HashMap::new()),
                gate: Arc::new(Semaphore::new(1)),
                #[cfg(test)]
                counts: TestCounts::default(),
            }),
        }))
    }

    /// What the request's `Authorization: Basic` credentials get.
    pub(super) async fn allows(&self, headers: &HeaderMap) -> Verdict {
        self.allows_at(headers, Instant::now()).await
    }

    /// [`BasicAuth::allows`] at `now` (the tests move the clock).
    pub(super) async fn allows_at(&self, headers: &HeaderMap, now: Instant) -> Verdict {
        let Some((user, password)) = credentials(headers) else {
            return Verdict::Denied;
        };
        let tag = self.checks.tag(&user, &password);
        if self.checks.remembered(&user, &tag, now) {
            return Verdict::Allowed;
        }
        let Some(mut result) = self.checks.check(user, password, tag) else {
            return Verdict::Busy;
        };
        let passed = result
            .wait_for(Option::is_some)
            .await
            .map(|result| *result == Some(true));
        match passed {
            Ok(true) => Verdict::Allowed,
            Ok(false) | Err(_) => Verdict::Denied,
        }
    }

    #[cfg(test)]
    pub(super) fn checks(&self) -> &Checks {
        &self.checks
    }
}

impl Checks {
    fn tag(&self, user: &str, password: &[u8]) -> Vec<u8> {
        let mut context = hmac::Context::with_key(&self.key);
        context.update(&(user.len() as u64).to_be_bytes());
        context.update(user.as_bytes());
        context.update(password);
        context.sign().as_ref().to_vec()
    }

    /// Whether `tag` passed for `user` within [`CACHE_TTL`] of `now`; a hit counts as a use.
    fn remembered(&self, user: &str, tag: &[u8], now: Instant) -> bool {
        let mut passed = lock(&self.passed);
        let Some((known, used)) = passed.get_mut(user) else {
            return false;
        };
        let fresh = now.saturating_duration_since(*used) < CACHE_TTL;
        if !fresh || constant_time::verify_slices_are_equal(known, tag).is_err() {
            return false;
        }
        *used = (*used).max(now);
        true
    }

    fn remember(&self, user: String, tag: Vec<u8>) {
        lock(&self.passed).insert(user, (tag, Instant::now()));
    }

    /// The result of the check of these credentials: the one under way, or a new one; `None`
    /// when [`MAX_PENDING_CHECKS`] are waiting already.
    fn check(
        self: &Arc<Self>,
        user: String,
        password: Vec<u8>,
        tag: Vec<u8>,
    ) -> Option<watch::Receiver<Option<bool>>> {
        let mut pending = lock(&self.pending);
        if let Some(result) = pending.get(&tag) {
            return Some(result.clone());
        }
        if pending.len() >= MAX_PENDING_CHECKS {
            return None;
        }
        let (done, result) = watch::channel(None);
        pending.insert(tag.clone(), result.clone());
        drop(pending);
        // A task of its own: the check ends, and leaves `pending`, whoever still waits for it.
        tokio::spawn(Arc::clone(self).run_check(user, password, tag, done));
        Some(result)
    }

    async fn run_check(
        self: Arc<Self>,
        user: String,
        password: Vec<u8>,
        tag: Vec<u8>,
        done: watch::Sender<Option<bool>>,
    ) {
        let passed = self.verify(&user, password).await;
        if passed {
            self.remember(user, tag.clone());
        }
        lock(&self.pending).remove(&tag);
        let _ = done.send(Some(passed));
    }

    /// Waits for the permit, then runs bcrypt on a blocking thread that holds it to the end.
    async fn verify(self: &Arc<Self>, user: &str, password: Vec<u8>) -> bool {
        let Ok(permit) = Arc::clone(&self.gate).acquire_owned().await else {
            return false;
        };
        let known = self.users.get(user);
        let hash = known
            .map_or(self.dummy.as_str(), PasswordHash::expose)
            .to_owned();
        let checks = Arc::clone(self);
        let verified = tokio::task::spawn_blocking(move || {
            let _one_at_a_time = permit;
            checks.bcrypt(&password, &hash)
        })
        .await
        .unwrap_or(false);
        verified && known.is_some()
    }

    fn bcrypt(&self, password: &[u8], hash: &str) -> bool {
        #[cfg(test)]
        let _running = self.counts.enter(hash);
        bcrypt::verify(password, hash).unwrap_or(false)
    }
}

#[cfg(test)]
impl TestCounts {
    /// Counts a bcrypt run until the guard drops.
    fn enter(&self, hash: &str) -> impl Drop + '_ {
        use std::sync::atomic::Ordering::SeqCst;
        self.runs.fetch_add(1, SeqCst);
        let cost = hash
            .parse::<bcrypt::HashParts>()
            .map_or(0, |p| p.get_cost());
        self.last_cost.store(u64::from(cost), SeqCst);
        let now = self.running.fetch_add(1, SeqCst) + 1;
        self.most_at_once.fetch_max(now, SeqCst);
        struct Leave<'a>(&'a std::sync::atomic::AtomicU64);
        impl Drop for Leave<'_> {
            fn drop(&mut self) {
                self.0.fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
            }
        }
        Leave(&self.running)
    }

    pub(super) fn runs(&self) -> u64 {
        self.runs.load(std::sync::atomic::Ordering::SeqCst)
    }
}

impl Checks {
    /// How many checks are under way or waiting.
    #[cfg(test)]
    pub(super) fn pending(&self) -> usize {
        lock(&self.pending).len()
    }
}

/// A std mutex guard, poisoned or not (what it guards is replaced whole, never half-written).
fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    match m.lock() {
        Ok(g) => g,
        Err(poisoned) => poisoned.into_inner(),
    }
}

/// User and password of an `Authorization: Basic` header; the user must be UTF-8.
fn credentials(headers: &HeaderMap) -> Option<(String, Vec<u8>)> {
    let value = headers.get(AUTHORIZATION)?.as_bytes();
    let (scheme, encoded) = value.split_at(value.iter().position(|b| *b == b' ')?);
    if !scheme.eq_ignore_ascii_case(b"basic") {
        return None;
    }
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim_ascii())
        .ok()?;
    let colon = decoded.iter().position(|b| *b == b':')?;
    let user = String::from_utf8(decoded[..colon].to_vec()).ok()?;
    Some((user, decoded[colon + 1..].to_vec()))
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::Ordering::SeqCst;

    use hyper::header::HeaderValue;

    use super::*;
    use crate::webconfig::WebConfig;

    /// The cost of the tests' hashes where a check must take a while (~0.1 s).
    const SLOW_COST: u32 = 10;

    fn auth_of(users: &[(&str, String)]) -> BasicAuth {
        let mut yaml = "basic_auth_users:\n".to_owned();
        for (user, hash) in users {
            yaml.push_str(&format!("  {user}: '{hash}'\n"));
        }
        let config = WebConfig::from_yaml(&yaml, "web.yml").expect("web config");
        BasicAuth::new(&config.basic_auth_users)
            .expect("auth")
            .expect("users")
    }

    fn auth_for(password: &str) -> BasicAuth {
        let hash = bcrypt::hash(password, 4).expect("hash");
        auth_of(&[("alice", hash.clone()), ("bob", hash)])
    }

    fn basic(user: &str, password: &str) -> HeaderMap {
        let encoded =
            base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
        let mut headers = HeaderMap::new();
        headers.insert(
            AUTHORIZATION,
            HeaderValue::from_str(&format!("Basic {encoded}")).expect("header"),
        );
        headers
    }

    /// Waits until `done` holds, at most 10 s.
    async fn wait_until(what: &str, done: impl Fn() -> bool) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while !done() {
            assert!(Instant::now() < deadline, "never: {what}");
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }

    #[tokio::test]
    async fn right_password_passes_wrong_password_and_unknown_user_do_not() {
        let auth = auth_for("s3cret:with colon");
        let allows = async |user, password| auth.allows(&basic(user, password)).await;
        assert_eq!(allows("alice", "s3cret:with colon").await, Verdict::Allowed);
        assert_eq!(allows("alice", "s3cret").await, Verdict::Denied);
        assert_eq!(allows("carol", "s3cret:with colon").await, Verdict::Denied);
        assert_eq!(auth.allows(&HeaderMap::new()).await, Verdict::Denied);
    }

    #[tokio::test]
    async fn unknown_users_are_checked_against_one_dummy_hash_at_the_highest_cost() {
        // The first user (alice) has the cheapest hash: checking unknown users against it would
        // answer them faster than bob, and so tell that bob exists.
        let auth = auth_of(&[
            ("alice", bcrypt::hash("pw", 4).expect("hash")),
            ("bob", bcrypt::hash("pw", 6).expect("hash")),
        ]);
        let counts = &auth.checks().counts;
        for user in ["mallory", "eve"] {
            assert_eq!(auth.allows(&basic(user, "pw")).await, Verdict::Denied);
            assert_eq!(counts.last_cost.load(SeqCst), 6, "{user}");
        }
        assert_eq!(counts.runs(), 2);
        // The dummy hash verifies nothing, whatever the password.
        assert!(!bcrypt::verify("", &auth.checks().dummy).expect("a valid bcrypt hash"));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn fifty_concurrent_checks_with_the_same_credentials_cost_one_bcrypt_round() {
        let auth = Arc::new(auth_for("pw"));
        let checks: Vec<_> = (0..50)
            .map(|_| {
                let auth = Arc::clone(&auth);
                tokio::spawn(async move { auth.allows(&basic("alice", "pw")).await })
            })
            .collect();
        for check in checks {
            assert_eq!(check.await.expect("task"), Verdict::Allowed);
        }
        assert_eq!(auth.checks().counts.runs(), 1);
        // A remembered user with another password is checked again, and fails.
        assert_eq!(auth.allows(&basic("alice", "other")).await, Verdict::Denied);
        assert_eq!(auth.checks().counts.runs(), 2);
    }

    #[tokio::test]
    async fn failures_are_not_cached() {
        let auth = auth_for("pw");
        for _ in 0..3 {
            assert_eq!(auth.allows(&basic("alice", "nope")).await, Verdict::Denied);
        }
        assert_eq!(auth.checks().counts.runs(), 3);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_client_that_gives_up_does_not_let_the_next_check_start_before_its_own_ends() {
        let auth = Arc::new(auth_of(&[(
            "alice",
            bcrypt::hash("pw", SLOW_COST).expect("hash"),
        )]));
        let counts = &auth.checks().counts;
        let first = {
            let auth = Arc::clone(&auth);
            tokio::spawn(async move { auth.allows(&basic("alice", "wrong")).await })
        };
        wait_until("the first check runs bcrypt", || {
            counts.running.load(SeqCst) == 1
        })
        .await;
        // As `curl -m 0.05` does: the request is gone while its bcrypt runs on.
        first.abort();
        let (again, unknown) = (basic("alice", "wrong again"), basic("mallory", "pw"));
        let (second, third) = tokio::join!(auth.allows(&again), auth.allows(&unknown));
        assert_eq!((second, third), (Verdict::Denied, Verdict::Denied));
        assert_eq!(counts.runs(), 3);
        assert_eq!(
            counts.most_at_once.load(SeqCst),
            1,
            "bcrypt ran beside itself"
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn checks_past_the_cap_are_refused_at_once_and_equal_credentials_share_one() {
        let auth = Arc::new(auth_for("pw"));
        // Hold the one permit: every check waits.
        let held = Arc::clone(&auth.checks().gate)
            .acquire_owned()
            .await
            .expect("permit");
        let mut waiting = Vec::new();
        for i in 0..MAX_PENDING_CHECKS {
            for _ in 0..3 {
                let auth = Arc::clone(&auth);
                waiting.push(tokio::spawn(async move {
                    auth.allows(&basic("alice", &format!("guess {i}"))).await
                }));
            }
        }
        wait_until("every distinct guess waits", || {
            auth.checks().pending() == MAX_PENDING_CHECKS
        })
        .await;
        let refused = tokio::time::timeout(
            Duration::from_secs(1),
            auth.allows(&basic("bob", "one more")),
        )
        .await;
        assert_eq!(refused, Ok(Verdict::Busy));
        drop(held);
        for check in waiting {
            assert_eq!(check.await.expect("task"), Verdict::Denied);
        }
        assert_eq!(auth.checks().counts.runs(), MAX_PENDING_CHECKS as u64);
        assert_eq!(auth.checks().pending(), 0);
        assert_eq!(auth.allows(&basic("bob", "pw")).await, Verdict::Allowed);
    }

    #[tokio::test]
    async fn a_remembered_success_lasts_from_its_last_use() {
        let auth = auth_for("pw");
        let start = Instant::now();
        let at = |seconds| start + Duration::from_secs(seconds);
        let headers = basic("alice", "pw");
        assert_eq!(auth.allows_at(&headers, at(0)).await, Verdict::Allowed);
        // Every 200 s (within the 300 s a success is remembered), never bcrypt again.
        for seconds in [200, 400, 600, 800] {
            assert_eq!(
                auth.allows_at(&headers, at(seconds)).await,
                Verdict::Allowed
            );
        }
        assert_eq!(auth.checks().counts.runs(), 1);
        // Unused for longer than that, it is checked again.
        assert_eq!(auth.allows_at(&headers, at(1101)).await, Verdict::Allowed);
        assert_eq!(auth.checks().counts.runs(), 2);
    }

    #[test]
    fn credentials_parse_scheme_case_insensitively_and_reject_garbage() {
        let mut headers = HeaderMap::new();
        // "alice:pw" in base64.
        headers.insert(
            AUTHORIZATION,
            HeaderValue::from_static("bAsIc YWxpY2U6cHc="),
        );
        assert_eq!(
            credentials(&headers),
            Some(("alice".to_owned(), b"pw".to_vec()))
        );
        for bad in [
            "Bearer YWxpY2U6cHc=",
            "Basic",
            "Basic !!!",
            "Basic YWxpY2U=", // "alice", no colon
        ] {
            headers.insert(AUTHORIZATION, HeaderValue::from_static(bad));
            assert_eq!(credentials(&headers), None, "{bad}");
        }
    }
}
