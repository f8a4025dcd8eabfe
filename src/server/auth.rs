//! HTTP basic authentication against the web config's bcrypt hashes.
//!
//! bcrypt is slow on purpose (about 50-100 ms at cost 10), so a check that succeeded is
//! remembered for [`CACHE_TTL`]: per user, an HMAC of the user and password under a key drawn at
//! random when the web config was loaded, compared in constant time. Checks that need bcrypt run
//! one at a time off the async workers, and a request that waited re-reads the cache first, so 50
//! concurrent scrapes with the same credentials cost one bcrypt round, not 50. Unknown users are
//! checked against a real hash too, so the answer's timing does not tell which users exist.
//! Failures are never cached.
//!
//! It does not decide which paths are public (see [`super`]).

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use aws_lc_rs::{constant_time, hmac, rand};
use base64::Engine as _;
use hyper::HeaderMap;
use hyper::header::AUTHORIZATION;

use crate::webconfig::PasswordHash;

/// How long a successful check is remembered.
const CACHE_TTL: Duration = Duration::from_secs(300);

pub(super) struct BasicAuth {
    users: BTreeMap<String, PasswordHash>,
    key: hmac::Key,
    /// User → HMAC of the credentials that last passed, and when.
    passed: Mutex<HashMap<String, (Vec<u8>, Instant)>>,
    /// One bcrypt check at a time.
    gate: tokio::sync::Mutex<()>,
    #[cfg(test)]
    pub(super) bcrypt_runs: std::sync::atomic::AtomicU64,
}

impl BasicAuth {
    /// None when there are no users (no authentication).
    pub(super) fn new(users: &BTreeMap<String, PasswordHash>) -> Result<Option<BasicAuth>, String> {
        if users.is_empty() {
            return Ok(None);
        }
        let mut key = [0u8; 32];
        rand::fill(&mut key).map_err(|_| "cannot draw a random key".to_owned())?;
        Ok(Some(BasicAuth {
            users: users.clone(),
            key: hmac::Key::new(hmac::HMAC_SHA256, &key),
            passed: Mutex::new(HashMap::new()),
            gate: tokio::sync::Mutex::new(()),
            #[cfg(test)]
            bcrypt_runs: std::sync::atomic::AtomicU64::new(0),
        }))
    }

    /// Whether the request's `Authorization: Basic` credentials are a configured user's.
    pub(super) async fn allows(&self, headers: &HeaderMap) -> bool {
        let Some((user, password)) = credentials(headers) else {
            return false;
        };
        let tag = self.tag(&user, &password);
        if self.remembered(&user, &tag) {
            return true;
        }
        let _one_at_a_time = self.gate.lock().await;
        if self.remembered(&user, &tag) {
            return true;
        }
        let known = self.users.get(&user);
        let Some(hash) = known.or_else(|| self.users.values().next()) else {
            return false;
        };
        let hash = hash.expose().to_owned();
        #[cfg(test)]
        self.bcrypt_runs
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let verified =
            tokio::task::spawn_blocking(move || bcrypt::verify(&password, &hash).unwrap_or(false))
                .await
                .unwrap_or(false);
        let allowed = verified && known.is_some();
        if allowed {
            self.remember(user, tag);
        }
        allowed
    }

    fn tag(&self, user: &str, password: &[u8]) -> Vec<u8> {
        let mut context = hmac::Context::with_key(&self.key);
        context.update(&(user.len() as u64).to_be_bytes());
        context.update(user.as_bytes());
        context.update(password);
        context.sign().as_ref().to_vec()
    }

    fn remembered(&self, user: &str, tag: &[u8]) -> bool {
        let passed = match self.passed.lock() {
            Ok(passed) => passed,
            Err(poisoned) => poisoned.into_inner(),
        };
        passed.get(user).is_some_and(|(known, at)| {
            at.elapsed() < CACHE_TTL && constant_time::verify_slices_are_equal(known, tag).is_ok()
        })
    }

    fn remember(&self, user: String, tag: Vec<u8>) {
        let mut passed = match self.passed.lock() {
            Ok(passed) => passed,
            Err(poisoned) => poisoned.into_inner(),
        };
        passed.insert(user, (tag, Instant::now()));
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
    use std::sync::atomic::Ordering;

    use hyper::header::HeaderValue;

    use super::*;
    use crate::webconfig::WebConfig;

    fn auth_for(password: &str) -> BasicAuth {
        let hash = bcrypt::hash(password, 4).expect("hash");
        let yaml = format!("basic_auth_users:\n  alice: '{hash}'\n  bob: '{hash}'\n");
        let config = WebConfig::from_yaml(&yaml, "web.yml").expect("web config");
        BasicAuth::new(&config.basic_auth_users)
            .expect("auth")
            .expect("users")
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

    #[tokio::test]
    async fn right_password_passes_wrong_password_and_unknown_user_do_not() {
        let auth = auth_for("s3cret:with colon");
        assert!(auth.allows(&basic("alice", "s3cret:with colon")).await);
        assert!(!auth.allows(&basic("alice", "s3cret")).await);
        assert!(!auth.allows(&basic("carol", "s3cret:with colon")).await);
        assert!(!auth.allows(&HeaderMap::new()).await);
    }

    #[tokio::test]
    async fn unknown_users_cost_a_bcrypt_round_like_known_ones() {
        let auth = auth_for("pw");
        assert!(!auth.allows(&basic("mallory", "pw")).await);
        assert_eq!(auth.bcrypt_runs.load(Ordering::Relaxed), 1);
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
            assert!(check.await.expect("task"));
        }
        assert_eq!(auth.bcrypt_runs.load(Ordering::Relaxed), 1);
        // A cached user with another password is checked again, and fails.
        assert!(!auth.allows(&basic("alice", "other")).await);
        assert_eq!(auth.bcrypt_runs.load(Ordering::Relaxed), 2);
    }

    #[tokio::test]
    async fn failures_are_not_cached() {
        let auth = auth_for("pw");
        for _ in 0..3 {
            assert!(!auth.allows(&basic("alice", "nope")).await);
        }
        assert_eq!(auth.bcrypt_runs.load(Ordering::Relaxed), 3);
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
