//! Which keys may log in as a GitHub user: the user's keys on GitHub, looked up at most once per
//! login every five minutes, and still used while GitHub is down.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::future::BoxFuture;
use russh::keys::PublicKey;

/// How long a login's keys are used before GitHub is asked again.
pub const KEY_CACHE_TTL: Duration = Duration::from_secs(5 * 60);

/// Where keys come from: GitHub's `GET /users/{login}/keys`, or a stand-in in tests.
pub trait KeySource: Send + Sync + 'static {
    /// The login's public keys as OpenSSH lines.
    fn keys<'a>(&'a self, login: &'a str) -> BoxFuture<'a, Result<Vec<String>, KeyLookupError>>;
}

/// Why keys could not be looked up.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyLookupError {
    #[error("GitHub has no user with this login")]
    UnknownLogin,
    #[error("GitHub could not be asked: {0}")]
    Unavailable(String),
}

impl KeySource for crate::github::GitHub {
    fn keys<'a>(&'a self, login: &'a str) -> BoxFuture<'a, Result<Vec<String>, KeyLookupError>> {
        Box::pin(async move {
            self.user_keys(login).await.map_err(|error| match error {
                crate::github::GitHubError::NotFound => KeyLookupError::UnknownLogin,
                other => KeyLookupError::Unavailable(other.to_string()),
            })
        })
    }
}

/// A login that may not log in, and why (for the server's log).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("unknown GitHub login")]
    UnknownLogin,
    #[error("GitHub is unreachable and no keys are cached: {0}")]
    Unavailable(String),
}

/// One login's cache entry, behind the lock that makes its look-ups single-flight.
type Slot = Arc<tokio::sync::Mutex<Option<Cached>>>;

struct Cached {
    fetched_at: Instant,
    keys: Arc<Vec<PublicKey>>,
}

/// The key cache.
#[derive(Clone)]
pub struct Keyring {
    source: Arc<dyn KeySource>,
    /// One slot per login; its lock makes concurrent logins of one user share one look-up.
    slots: Arc<Mutex<HashMap<String, Slot>>>,
}

impl Keyring {
    pub fn new(source: Arc<dyn KeySource>) -> Keyring {
        Keyring { source, slots: Arc::default() }
    }

    /// Whether `key` is one of the login's keys.
    pub async fn allows(&self, login: &str, key: &PublicKey) -> Result<bool, Refusal> {
        let keys = self.keys(login).await?;
        Ok(keys.iter().any(|known| known.key_data() == key.key_data()))
    }

    /// The login's keys: cached if fresh, else from the source, else (GitHub down) stale.
    pub async fn keys(&self, login: &str) -> Result<Arc<Vec<PublicKey>>, Refusal> {
        let slot = self.slot(login);
        let mut cached = slot.lock().await;
        if let Some(entry) = cached.as_ref().filter(|c| c.fetched_at.elapsed() < KEY_CACHE_TTL) {
            return Ok(entry.keys.clone());
        }
        match self.source.keys(login).await {
            Ok(lines) => {
                let keys = Arc::new(parse_keys(login, &lines));
                *cached = Some(Cached { fetched_at: Instant::now(), keys: keys.clone() });
                Ok(keys)
            }
            Err(KeyLookupError::UnknownLogin) => {
                *cached = None;
                Err(Refusal::UnknownLogin)
            }
            Err(KeyLookupError::Unavailable(why)) => match cached.as_ref() {
                Some(stale) => {
                    tracing::warn!(login, %why, "GitHub unavailable; using the keys cached earlier");
                    Ok(stale.keys.clone())
                }
                None => Err(Refusal::Unavailable(why)),
            },
        }
    }

    fn slot(&self, login: &str) -> Slot {
        let mut slots = self.slots.lock().expect("key cache lock poisoned");
        slots.entry(login.to_ascii_lowercase()).or_default().clone()
    }
}

/// Parses OpenSSH key lines, skipping (with a log line) those this server cannot use.
fn parse_keys(login: &str, lines: &[String]) -> Vec<PublicKey> {
    lines
        .iter()
        .filter_map(|line| match PublicKey::from_openssh(line.trim()) {
            Ok(key) => Some(key),
            Err(e) => {
                let kind = line.split_whitespace().next().unwrap_or("");
                tracing::info!(login, kind, error = %e, "skipping a GitHub key this server cannot parse");
                None
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    struct Source {
        lines: Vec<String>,
        down: std::sync::atomic::AtomicBool,
        calls: AtomicUsize,
    }

    impl KeySource for Source {
        fn keys<'a>(
            &'a self,
            login: &'a str,
        ) -> BoxFuture<'a, Result<Vec<String>, KeyLookupError>> {
            self.calls.fetch_add(1, Ordering::SeqCst);
            Box::pin(async move {
                if self.down.load(Ordering::SeqCst) {
                    return Err(KeyLookupError::Unavailable("500".into()));
                }
                if login != "alice" {
                    return Err(KeyLookupError::UnknownLogin);
                }
                Ok(self.lines.clone())
            })
        }
    }

    fn key() -> PublicKey {
        russh::keys::PrivateKey::random(&mut rand::rng(), russh::keys::Algorithm::Ed25519)
            .unwrap()
            .public_key()
            .clone()
    }

    fn keyring(lines: Vec<String>) -> (Keyring, Arc<Source>) {
        let source = Arc::new(Source { lines, down: false.into(), calls: AtomicUsize::new(0) });
        (Keyring::new(source.clone()), source)
    }

    #[tokio::test]
    async fn accepts_listed_keys_and_skips_unparsable_ones() {
        let (good, other) = (key(), key());
        let sk =
            "sk-ssh-ed25519@openssh.com AAAAGnNrLXNzaC1lZDI1NTE5QG9wZW5zc2guY29tAAAAIB garbage"
                .to_string();
        let (keyring, _) = keyring(vec![sk, good.to_openssh().unwrap()]);
        assert_eq!(keyring.allows("alice", &good).await, Ok(true));
        assert_eq!(keyring.allows("alice", &other).await, Ok(false));
        assert_eq!(keyring.allows("mallory", &good).await, Err(Refusal::UnknownLogin));
    }

    #[tokio::test]
    async fn concurrent_logins_share_one_lookup_and_a_cached_user_survives_an_outage() {
        let good = key();
        let (keyring, source) = keyring(vec![good.to_openssh().unwrap()]);
        let logins = (0..20).map(|_| keyring.allows("alice", &good));
        let results = futures::future::join_all(logins).await;
        assert!(results.iter().all(|r| r == &Ok(true)));
        assert_eq!(source.calls.load(Ordering::SeqCst), 1);
        source.down.store(true, Ordering::SeqCst);
        // Expire the entry so that GitHub is asked, and fails.
        let slot = keyring.slot("alice");
        slot.lock().await.as_mut().unwrap().fetched_at -= KEY_CACHE_TTL;
        assert_eq!(keyring.allows("ALICE", &good).await, Ok(true));
        assert_eq!(source.calls.load(Ordering::SeqCst), 2);
        assert!(matches!(keyring.allows("bob", &good).await, Err(Refusal::Unavailable(_))));
    }
}
