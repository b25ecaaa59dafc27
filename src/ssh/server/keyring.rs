//! Which keys may log in as a GitHub user: the user's keys on GitHub, looked up at most once per
//! login every five minutes (an unknown login too), and still used while GitHub is down; the
//! logins kept are bounded, the least recently used going first.

use std::num::NonZeroUsize;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::future::BoxFuture;
use lru::LruCache;
use russh::keys::PublicKey;

/// How long a login's keys, or that GitHub has no such login, are used before GitHub is asked
/// again.
pub const KEY_CACHE_TTL: Duration = Duration::from_secs(5 * 60);
/// Logins kept at once: every user of a busy server, while a stranger trying name after name
/// only pushes out the least recently used.
pub const KEY_CACHE_LOGINS_MAX: usize = 10_000;

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

impl KeySource for crate::github::UserLookups {
    fn keys<'a>(&'a self, login: &'a str) -> BoxFuture<'a, Result<Vec<String>, KeyLookupError>> {
        Box::pin(async move {
            self.keys(login).await.map_err(|error| match error {
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
    /// The keys, or `None` for a login GitHub does not know.
    keys: Option<Arc<Vec<PublicKey>>>,
}

impl Cached {
    fn answer(&self) -> Result<Arc<Vec<PublicKey>>, Refusal> {
        self.keys.clone().ok_or(Refusal::UnknownLogin)
    }
}

/// The key cache.
#[derive(Clone)]
pub struct Keyring {
    source: Arc<dyn KeySource>,
    /// One slot per login (lowercased); its lock makes concurrent logins of one user share one
    /// look-up.
    slots: Arc<Mutex<LruCache<String, Slot>>>,
}

impl Keyring {
    pub fn new(source: Arc<dyn KeySource>) -> Keyring {
        Keyring::with_capacity(source, KEY_CACHE_LOGINS_MAX)
    }

    /// A keyring that keeps at most `logins` logins.
    pub fn with_capacity(source: Arc<dyn KeySource>, logins: usize) -> Keyring {
        let capacity = NonZeroUsize::new(logins).unwrap_or(NonZeroUsize::MIN);
        Keyring { source, slots: Arc::new(Mutex::new(LruCache::new(capacity))) }
    }

    /// Whether `key` is one of the login's keys.
    pub async fn allows(&self, login: &str, key: &PublicKey) -> Result<bool, Refusal> {
        let keys = self.keys(login).await?;
        Ok(keys.iter().any(|known| known.key_data() == key.key_data()))
    }

    /// The login's keys: cached if fresh (an unknown login is cached too), else from the
    /// source, else (GitHub down) stale.
    pub async fn keys(&self, login: &str) -> Result<Arc<Vec<PublicKey>>, Refusal> {
        let slot = self.slot(login);
        let mut cached = slot.lock().await;
        if let Some(entry) = cached.as_ref().filter(|c| c.fetched_at.elapsed() < KEY_CACHE_TTL) {
            return entry.answer();
        }
        let keys = match self.source.keys(login).await {
            Ok(lines) => Some(Arc::new(parse_keys(login, &lines))),
            Err(KeyLookupError::UnknownLogin) => None,
            Err(KeyLookupError::Unavailable(why)) => {
                return match cached.as_ref() {
                    Some(stale) => {
                        tracing::warn!(%login, %why, "GitHub unavailable; using what was cached earlier");
                        stale.answer()
                    }
                    None => Err(Refusal::Unavailable(why)),
                };
            }
        };
        let entry = cached.insert(Cached { fetched_at: Instant::now(), keys });
        entry.answer()
    }

    fn slot(&self, login: &str) -> Slot {
        let mut slots = self.slots.lock().expect("key cache lock poisoned");
        let login = login.to_ascii_lowercase();
        if let Some(slot) = slots.get(&login) {
            return slot.clone();
        }
        let slot = Slot::default();
        slots.put(login, slot.clone());
        slot
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

    #[derive(Default)]
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

    #[tokio::test]
    async fn an_unknown_login_is_asked_about_once_in_five_minutes() {
        let (keyring, source) = keyring(vec![]);
        for login in ["mallory", "Mallory", "MALLORY", "mallory"] {
            assert_eq!(keyring.allows(login, &key()).await, Err(Refusal::UnknownLogin));
        }
        assert_eq!(source.calls.load(Ordering::SeqCst), 1);
        let slot = keyring.slot("mallory");
        slot.lock().await.as_mut().unwrap().fetched_at -= KEY_CACHE_TTL;
        assert_eq!(keyring.allows("mallory", &key()).await, Err(Refusal::UnknownLogin));
        assert_eq!(source.calls.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn the_cache_keeps_at_most_its_capacity_of_logins_dropping_the_least_used() {
        let good = key();
        let source =
            Arc::new(Source { lines: vec![good.to_openssh().unwrap()], ..Source::default() });
        let keyring = Keyring::with_capacity(source.clone(), 3);
        assert_eq!(keyring.allows("alice", &good).await, Ok(true));
        for i in 0..100 {
            let _ = keyring.allows(&format!("stranger{i}"), &good).await;
            // alice keeps logging in, so she stays.
            assert_eq!(keyring.allows("alice", &good).await, Ok(true));
        }
        assert_eq!(keyring.slots.lock().unwrap().len(), 3);
        assert_eq!(source.calls.load(Ordering::SeqCst), 101, "alice was looked up again");
        // The strangers pushed out one another: the first is asked about again.
        let _ = keyring.allows("stranger0", &good).await;
        assert_eq!(source.calls.load(Ordering::SeqCst), 102);
    }
}
