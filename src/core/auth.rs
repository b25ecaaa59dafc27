//! Sign-in and access as decisions, pure: how long sessions, states and answers last, the
//! hashes and tokens derived from a session's secret, what makes a request cross-site, and the
//! bounded tables of pending states and cached answers (the clock comes in as an argument).

use std::collections::HashMap;
use std::hash::Hash;
use std::time::{Duration, SystemTime};

use hmac::{Hmac, KeyInit, Mac};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// How long a web session lasts after sign-in.
pub const SESSION_TTL: Duration = Duration::from_secs(14 * 24 * 60 * 60);
/// How long a sign-in's `state` may wait for GitHub to send the person back.
pub const LOGIN_STATE_TTL: Duration = Duration::from_secs(10 * 60);
/// How long the App Manifest flow's `state` lasts (GitHub's manifest codes last an hour too).
pub const SETUP_STATE_TTL: Duration = Duration::from_secs(60 * 60);
/// How long GitHub's answers about a person (who a token is, what they may read) are kept.
pub const ACCESS_CACHE_TTL: Duration = Duration::from_secs(5 * 60);
/// The most setup states waiting at once; beyond it the oldest is forgotten.
pub const PENDING_STATES_MAX: usize = 10_000;
/// The most answers a cache keeps; beyond it the expired, then the oldest, go.
pub const ACCESS_CACHE_ENTRIES_MAX: usize = 10_000;

/// What the store keeps of a session's secret: its SHA-256, so that a copy of the database
/// signs nobody in.
pub fn secret_hash(secret: &str) -> [u8; 32] {
    Sha256::digest(secret.as_bytes()).into()
}

/// The session's CSRF token, derived from its secret (which only the browser's `HttpOnly`
/// cookie holds), so that a page of another site cannot know it.
pub fn csrf_token(session_secret: &str) -> String {
    let mut hasher = Sha256::new();
    hasher.update(b"tether csrf\0");
    hasher.update(session_secret.as_bytes());
    hex::encode(hasher.finalize())
}

/// Whether two secrets are equal, in time that does not depend on where they differ.
pub fn same_secret(a: &str, b: &str) -> bool {
    a.len() == b.len() && bool::from(a.as_bytes().ct_eq(b.as_bytes()))
}

/// Whether a state-changing request comes from another site: a `Sec-Fetch-Site` other than
/// `same-origin` (or `none`, typed by the person), or an `Origin` that is not the server's own.
/// Browsers send at least one of them on a POST; a script without either is not a browser,
/// and still needs the CSRF token.
pub fn cross_site(origin: Option<&str>, sec_fetch_site: Option<&str>, own_origin: &str) -> bool {
    if sec_fetch_site.is_some_and(|site| !matches!(site, "same-origin" | "none")) {
        return true;
    }
    origin.is_some_and(|origin| origin.trim_end_matches('/') != own_origin)
}

/// The origin (`scheme://host[:port]`) of the external URL, as a browser sends it in `Origin`.
pub fn origin_of(external_url: &str) -> String {
    match url::Url::parse(external_url) {
        Ok(url) => url.origin().ascii_serialization(),
        Err(_) => external_url.trim_end_matches('/').to_string(),
    }
}

/// Cookies carry `Secure` when the server is reached over https.
pub fn secure_cookies(external_url: &str) -> bool {
    external_url.starts_with("https://")
}

/// Sign-in's `state` values, sealed rather than remembered: `NONCE.EXPIRY.MAC`, the MAC an
/// HMAC-SHA256 under a key of this process. Strangers loading `/login` then cost no memory and
/// cannot push anyone's state out; the state's cookie binds it to the browser, and GitHub takes
/// its code once. A restart forgets the key, and so every state handed out before.
pub struct StateSeal {
    key: [u8; 32],
}

impl std::fmt::Debug for StateSeal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("StateSeal(..)")
    }
}

impl StateSeal {
    pub fn new(key: [u8; 32]) -> StateSeal {
        StateSeal { key }
    }

    fn mac(&self, nonce: &str, expires_at_secs: u64) -> Hmac<Sha256> {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.key).expect("HMAC takes any key");
        mac.update(b"tether login state\0");
        mac.update(format!("{nonce}.{expires_at_secs}").as_bytes());
        mac
    }

    /// The state for `nonce` (random, hex), good until `expires_at_secs` (Unix time).
    pub fn seal(&self, nonce: &str, expires_at_secs: u64) -> String {
        let mac = hex::encode(self.mac(nonce, expires_at_secs).finalize().into_bytes());
        format!("{nonce}.{expires_at_secs}.{mac}")
    }

    /// Whether `state` was sealed with this key and has not expired at `now_secs`.
    pub fn open(&self, state: &str, now_secs: u64) -> bool {
        let mut parts = state.split('.');
        let (Some(nonce), Some(expiry), Some(mac), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return false;
        };
        let (Ok(expiry), Ok(mac)) = (expiry.parse::<u64>(), hex::decode(mac)) else {
            return false;
        };
        // `verify_slice` compares in constant time.
        expiry > now_secs && self.mac(nonce, expiry).verify_slice(&mac).is_ok()
    }
}

/// States handed out and not yet used (setup's, which only the holder of the printed code gets), each good once until it
/// expires; at most [`PENDING_STATES_MAX`].
#[derive(Debug)]
pub struct PendingStates {
    ttl: Duration,
    expiries: HashMap<String, SystemTime>,
}

impl PendingStates {
    pub fn new(ttl: Duration) -> PendingStates {
        PendingStates { ttl, expiries: HashMap::new() }
    }

    /// Remembers `state`, handed out at `now`.
    pub fn issue(&mut self, state: String, now: SystemTime) {
        self.expiries.retain(|_, expiry| *expiry > now);
        if self.expiries.len() >= PENDING_STATES_MAX {
            let oldest = self.expiries.iter().min_by_key(|(_, e)| **e).map(|(s, _)| s.clone());
            if let Some(oldest) = oldest {
                self.expiries.remove(&oldest);
            }
        }
        self.expiries.insert(state, now + self.ttl);
    }

    /// Uses `state` up: whether it was handed out and has not expired.
    pub fn redeem(&mut self, state: &str, now: SystemTime) -> bool {
        self.expiries.remove(state).is_some_and(|expiry| expiry > now)
    }

    /// Forgets every state (once setup is done, none may be used).
    pub fn clear(&mut self) {
        self.expiries.clear();
    }
}

/// Answers kept for [`ACCESS_CACHE_TTL`], at most [`ACCESS_CACHE_ENTRIES_MAX`] of them.
#[derive(Debug)]
pub struct TtlCache<K, V> {
    ttl: Duration,
    entries: HashMap<K, (SystemTime, V)>,
}

impl<K: Eq + Hash + Clone, V: Clone> TtlCache<K, V> {
    pub fn new(ttl: Duration) -> TtlCache<K, V> {
        TtlCache { ttl, entries: HashMap::new() }
    }

    /// The answer for `key`, if it was stored less than the TTL before `now`.
    pub fn get(&self, key: &K, now: SystemTime) -> Option<V> {
        let (expiry, value) = self.entries.get(key)?;
        (*expiry > now).then(|| value.clone())
    }

    pub fn insert(&mut self, key: K, value: V, now: SystemTime) {
        if self.entries.len() >= ACCESS_CACHE_ENTRIES_MAX {
            self.entries.retain(|_, (expiry, _)| *expiry > now);
        }
        if self.entries.len() >= ACCESS_CACHE_ENTRIES_MAX {
            let oldest = self.entries.iter().min_by_key(|(_, (e, _))| *e).map(|(k, _)| k.clone());
            if let Some(oldest) = oldest {
                self.entries.remove(&oldest);
            }
        }
        self.entries.insert(key, (now + self.ttl, value));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T0: SystemTime = SystemTime::UNIX_EPOCH;

    #[test]
    fn a_state_is_good_once_and_until_it_expires() {
        let mut states = PendingStates::new(Duration::from_secs(60));
        states.issue("a".into(), T0);
        states.issue("b".into(), T0);
        assert!(states.redeem("a", T0 + Duration::from_secs(59)));
        assert!(!states.redeem("a", T0 + Duration::from_secs(1)), "used already");
        assert!(!states.redeem("b", T0 + Duration::from_secs(60)), "expired");
        assert!(!states.redeem("forged", T0));
        states.issue("c".into(), T0);
        states.clear();
        assert!(!states.redeem("c", T0));
    }

    #[test]
    fn sealed_states_open_with_their_key_until_they_expire() {
        let seal = StateSeal::new([7; 32]);
        let state = seal.seal("abcd", 1_000);
        assert!(seal.open(&state, 999));
        assert!(!seal.open(&state, 1_000), "expired");
        assert!(!StateSeal::new([8; 32]).open(&state, 0), "another key: another process");
        let later = state.replacen(".1000.", ".9999.", 1);
        assert!(!seal.open(&later, 0), "the expiry is sealed too");
        for bad in ["", "abcd", "abcd.1000", "abcd.x.00", &format!("{state}.x"), "a.1.zz"] {
            assert!(!seal.open(bad, 0), "{bad:?}");
        }
        assert!(!format!("{seal:?}").contains('7'));
    }

    #[test]
    fn pending_states_are_bounded_by_forgetting_the_oldest() {
        let mut states = PendingStates::new(Duration::from_secs(600));
        for i in 0..=PENDING_STATES_MAX {
            states.issue(i.to_string(), T0 + Duration::from_millis(i as u64));
        }
        assert_eq!(states.expiries.len(), PENDING_STATES_MAX);
        let now = T0 + Duration::from_secs(1);
        assert!(!states.redeem("0", now));
        assert!(states.redeem(&PENDING_STATES_MAX.to_string(), now));
    }

    #[test]
    fn cached_answers_expire_and_are_bounded() {
        let mut cache = TtlCache::new(ACCESS_CACHE_TTL);
        cache.insert("k", 1, T0);
        assert_eq!(cache.get(&"k", T0 + ACCESS_CACHE_TTL - Duration::from_secs(1)), Some(1));
        assert_eq!(cache.get(&"k", T0 + ACCESS_CACHE_TTL), None);
        let mut cache = TtlCache::new(ACCESS_CACHE_TTL);
        for i in 0..ACCESS_CACHE_ENTRIES_MAX + 5 {
            cache.insert(i, i, T0 + Duration::from_millis(i as u64));
        }
        assert_eq!(cache.entries.len(), ACCESS_CACHE_ENTRIES_MAX);
    }

    #[test]
    fn cross_site_requests_are_told_apart() {
        let own = origin_of("https://ci.example.com/");
        assert_eq!(own, "https://ci.example.com");
        assert!(!cross_site(Some("https://ci.example.com"), Some("same-origin"), &own));
        assert!(!cross_site(None, None, &own), "not a browser: the CSRF token decides");
        assert!(cross_site(Some("https://evil.example"), None, &own));
        assert!(cross_site(None, Some("cross-site"), &own));
        assert!(cross_site(None, Some("same-site"), &own));
        assert!(cross_site(Some("null"), None, &own));
    }

    #[test]
    fn tokens_derive_from_the_secret_and_compare_exactly() {
        let token = csrf_token("s1");
        assert_eq!(token.len(), 64);
        assert_ne!(token, csrf_token("s2"));
        assert_ne!(hex::encode(secret_hash("s1")), token, "the CSRF token is not the stored hash");
        assert!(same_secret(&token, &csrf_token("s1")));
        assert!(!same_secret(&token, &token[..63]));
        assert!(!same_secret("", "x"));
        assert!(secure_cookies("https://ci.example.com") && !secure_cookies("http://127.0.0.1:1"));
    }
}
