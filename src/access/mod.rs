//! Who may read what: a visitor (anonymous, or a person signed in or holding a GitHub token)
//! and the repositories whose runs they may see, asked of GitHub and cached for
//! [`ACCESS_CACHE_TTL`](crate::core::auth::ACCESS_CACHE_TTL). Public repositories' runs are everyone's; a private one's (or one whose
//! privacy is unknown) only a person GitHub lets read it.

use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, SystemTime};

use crate::core::auth::{TtlCache, secret_hash};
use crate::github::{GitHub, GitHubError, Permission};
use crate::store::{RunRecord, Store, StoreError};

/// The most installations whose repositories are listed for one person (each up to 10 calls);
/// beyond it, the others' runs show in lists only when their repository is public, and on their
/// own pages as always.
pub const LIST_INSTALLATIONS_MAX: usize = 50;

/// Who is asking.
#[derive(Clone, Debug, Default)]
pub enum Visitor {
    #[default]
    Anonymous,
    Person(Person),
}

/// A person GitHub vouched for: by a session, or by the token they sent.
#[derive(Clone)]
pub struct Person {
    pub login: String,
    /// Their GitHub user token, which lists the repositories they may read.
    token: String,
    /// The session's CSRF token; `None` for a bearer token, which no browser sends by itself.
    pub csrf: Option<String>,
}

impl std::fmt::Debug for Person {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Person").field("login", &self.login).finish_non_exhaustive()
    }
}

impl Person {
    pub fn new(login: String, token: String, csrf: Option<String>) -> Person {
        Person { login, token, csrf }
    }
}

impl Visitor {
    pub fn login(&self) -> Option<&str> {
        match self {
            Visitor::Anonymous => None,
            Visitor::Person(person) => Some(&person.login),
        }
    }
}

/// Why a bearer token was not taken.
#[derive(Debug, thiserror::Error)]
pub enum BearerError {
    /// GitHub refused the token: 401.
    #[error("GitHub refused the token")]
    Refused,
    /// GitHub could not say: 503.
    #[error("GitHub is unavailable: {0}")]
    Unavailable(String),
}

/// The access service. Cheap to clone.
#[derive(Clone)]
pub struct Access {
    inner: Arc<Inner>,
}

struct Inner {
    store: Store,
    /// Calls with people's own tokens (no credentials of ours).
    api: GitHub,
    /// The App, whose installation tokens ask for permissions; `None` until one is configured.
    app: RwLock<Option<GitHub>>,
    /// A person's (lowercased login) collaborator permission on a repository (lowercased).
    permissions: Mutex<TtlCache<(String, String), Permission>>,
    /// Whose a bearer token is, by the token's SHA-256; `None` for one GitHub refused, which
    /// never comes back to life, so that a script retrying a dead token costs one call.
    tokens: Mutex<TtlCache<[u8; 32], Option<String>>>,
    /// The private repositories a person may read (lowercased), by their token's SHA-256.
    lists: Mutex<TtlCache<[u8; 32], Vec<String>>>,
}

impl Access {
    /// `api` is a client without credentials on GitHub's API; `app` the App's, when there is
    /// one already. GitHub's answers are kept for `cache_ttl` (`core::auth::ACCESS_CACHE_TTL` but in tests).
    pub fn new(store: Store, api: GitHub, app: Option<GitHub>, cache_ttl: Duration) -> Access {
        Access {
            inner: Arc::new(Inner {
                store,
                api,
                app: RwLock::new(app),
                permissions: Mutex::new(TtlCache::new(cache_ttl)),
                tokens: Mutex::new(TtlCache::new(cache_ttl)),
                lists: Mutex::new(TtlCache::new(cache_ttl)),
            }),
        }
    }

    /// From now on, permissions are asked as `app` (after `/setup` created it).
    pub fn use_app(&self, app: GitHub) {
        *self.inner.app.write().expect("access lock poisoned") = Some(app);
    }

    /// The person a bearer token belongs to (`GET /user`, cached by the token's hash, a
    /// refusal too). Only a token GitHub could have given out (letters, digits, `_`) is sent.
    pub async fn bearer(&self, token: &str) -> Result<Person, BearerError> {
        if !token.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
            return Err(BearerError::Refused);
        }
        let key = secret_hash(token);
        let cached = self.inner.tokens.lock().expect("access lock poisoned").get(&key, now());
        let login = match cached {
            Some(Some(login)) => login,
            Some(None) => return Err(BearerError::Refused),
            None => {
                let answer = match self.inner.api.token_user(token).await {
                    Ok(user) => Some(user.login),
                    Err(GitHubError::Unauthorized(_) | GitHubError::NotFound) => None,
                    Err(other) => return Err(BearerError::Unavailable(other.to_string())),
                };
                let mut tokens = self.inner.tokens.lock().expect("access lock poisoned");
                tokens.insert(key, answer.clone(), now());
                answer.ok_or(BearerError::Refused)?
            }
        };
        Ok(Person::new(login, token.to_owned(), None))
    }

    /// Whether `visitor` may read the runs of `repo`; `installation` is the one a run came
    /// through, when the repository's own is not known. Public: everyone. Private or unknown:
    /// a person whose collaborator permission is anything but `none`. When GitHub cannot say,
    /// the answer is no (and is not cached): a 404 then, rather than a page that shows the run
    /// exists.
    pub async fn may_read(
        &self,
        visitor: &Visitor,
        repo: &str,
        installation: Option<i64>,
    ) -> Result<bool, StoreError> {
        let known = self.inner.store.repository(repo).await?;
        if known.as_ref().is_some_and(|r| !r.private) {
            return Ok(true);
        }
        let Visitor::Person(person) = visitor else { return Ok(false) };
        let installation = known.and_then(|r| r.installation_id).or(installation);
        let permission = self.permission(&person.login, repo, installation).await;
        Ok(permission.is_some_and(|p| p != Permission::None))
    }

    /// `login`'s collaborator permission on `repo`, asked with the installation token and
    /// cached; `None` when GitHub cannot say (not cached), or there is no app or installation
    /// to ask with.
    async fn permission(
        &self,
        login: &str,
        repo: &str,
        installation: Option<i64>,
    ) -> Option<Permission> {
        let installation = installation?;
        let key = (login.to_ascii_lowercase(), repo.to_ascii_lowercase());
        if let Some(permission) =
            self.inner.permissions.lock().expect("access lock poisoned").get(&key, now())
        {
            return Some(permission);
        }
        let app = self.inner.app.read().expect("access lock poisoned").clone()?;
        match app.permission(installation, repo, login).await {
            Ok(permission) => {
                let mut permissions = self.inner.permissions.lock().expect("access lock poisoned");
                permissions.insert(key, permission, now());
                Some(permission)
            }
            Err(e) => {
                tracing::warn!(repo, login, "asking GitHub for a permission: {e}");
                None
            }
        }
    }

    /// Whether the person `login` (signed in on the web, or logged in over SSH) may cancel
    /// `run`: its sender, whose runner runs it or would, or a person with write, maintain or
    /// admin permission on its repository.
    pub async fn may_cancel(&self, login: &str, run: &RunRecord) -> Result<bool, StoreError> {
        if run.sender.eq_ignore_ascii_case(login) {
            return Ok(true);
        }
        self.may_write(login, run).await
    }

    /// Whether the person `login` may re-run `run`: write, maintain or admin permission on its
    /// repository. The re-run still goes to the original sender's runner.
    pub async fn may_rerun(&self, login: &str, run: &RunRecord) -> Result<bool, StoreError> {
        self.may_write(login, run).await
    }

    /// Whether `login` may read `run` (the same rule as a visitor's, for a person known by
    /// login only, such as an SSH login).
    pub async fn may_read_run(&self, login: &str, run: &RunRecord) -> Result<bool, StoreError> {
        let person = Visitor::Person(Person::new(login.to_string(), String::new(), None));
        self.may_read(&person, &run.repo, run.installation_id).await
    }

    async fn may_write(&self, login: &str, run: &RunRecord) -> Result<bool, StoreError> {
        let known = self.inner.store.repository(&run.repo).await?;
        let installation = known.and_then(|r| r.installation_id).or(run.installation_id);
        let permission = self.permission(login, &run.repo, installation).await;
        Ok(permission.is_some_and(|p| p.can_write()))
    }

    /// The repositories (lowercased "owner/name") `visitor` may read beyond the public ones, for
    /// lists: from
    /// `GET /user/installations/{id}/repositories` with their token, for every installation
    /// runs came through. Cached per token; an installation GitHub cannot list now is left
    /// out, and the answer then not cached.
    pub async fn readable_private_repos(
        &self,
        visitor: &Visitor,
    ) -> Result<Vec<String>, crate::store::StoreError> {
        let Visitor::Person(person) = visitor else { return Ok(Vec::new()) };
        let key = secret_hash(&person.token);
        if let Some(list) = self.inner.lists.lock().expect("access lock poisoned").get(&key, now())
        {
            return Ok(list);
        }
        let mut readable = Vec::new();
        let mut complete = true;
        let installations = self.inner.store.known_installations().await?;
        if installations.len() > LIST_INSTALLATIONS_MAX {
            let count = installations.len();
            tracing::warn!(count, "listing the first {LIST_INSTALLATIONS_MAX} installations only");
        }
        for installation in installations.into_iter().take(LIST_INSTALLATIONS_MAX) {
            match self.inner.api.installation_repos_of(&person.token, installation).await {
                // Public ones too: a repository whose privacy is not recorded yet counts as
                // private, and GitHub just said this person may read it.
                Ok(repos) => {
                    readable.extend(repos.into_iter().map(|r| r.full_name.to_ascii_lowercase()))
                }
                Err(e) => {
                    complete = false;
                    tracing::warn!(
                        installation,
                        login = person.login,
                        "listing readable repositories: {e}"
                    );
                }
            }
        }
        if complete {
            let mut lists = self.inner.lists.lock().expect("access lock poisoned");
            lists.insert(key, readable.clone(), now());
        }
        Ok(readable)
    }
}

fn now() -> SystemTime {
    SystemTime::now()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::auth::ACCESS_CACHE_TTL;

    /// A GitHub nobody listens on: any call to it fails, so a test passes only without one.
    fn unreachable() -> GitHub {
        GitHub::new("http://127.0.0.1:9").unwrap()
    }

    #[tokio::test]
    async fn public_is_everyones_private_and_unknown_are_nobodys_without_github() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("t.db")).await.unwrap();
        store.record_repository("acme/open", false, Some(1)).await.unwrap();
        store.record_repository("acme/secret", true, Some(1)).await.unwrap();
        let access = Access::new(store, unreachable(), Some(unreachable()), ACCESS_CACHE_TTL);
        let anonymous = Visitor::Anonymous;
        let alice = Visitor::Person(Person::new("alice".into(), "gho_x".into(), None));
        assert!(access.may_read(&anonymous, "ACME/open", None).await.unwrap());
        assert!(!access.may_read(&anonymous, "acme/secret", Some(1)).await.unwrap());
        assert!(!access.may_read(&anonymous, "acme/unknown", Some(1)).await.unwrap());
        // GitHub cannot be asked: no.
        assert!(!access.may_read(&alice, "acme/secret", Some(1)).await.unwrap());
        assert!(!access.may_read(&alice, "acme/unknown", None).await.unwrap());
        assert!(access.readable_private_repos(&anonymous).await.unwrap().is_empty());
        assert!(!format!("{alice:?}").contains("gho_x"));
        // Not a token GitHub hands out: refused without asking (GitHub is unreachable here).
        for bad in ["a.b", "gho x", "gho-x", "ghp_\u{e9}"] {
            assert!(matches!(access.bearer(bad).await, Err(BearerError::Refused)), "{bad}");
        }
    }
}
