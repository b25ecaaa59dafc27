//! Git checkouts: a cache per repository under the work dir, and a fresh detached checkout of
//! one commit per run.
//!
//! The clone token reaches git only as an `http.extraHeader` through `GIT_CONFIG_*` environment
//! variables of the one `git fetch` that needs it: never in an argument (process lists show
//! those), a config file, the cache or a log.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};

use base64::Engine as _;
use sha2::{Digest, Sha256};

/// Environment variables that would make git print what it sends, the token among it.
const GIT_TRACE_VARIABLES: &[&str] =
    &["GIT_TRACE", "GIT_TRACE_CURL", "GIT_TRACE_PACKET", "GIT_CURL_VERBOSE", "GIT_TRACE2"];

/// Why a checkout failed, in words for the person reading the log.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct CheckoutError(pub String);

/// Per-repository git caches under one directory.
#[derive(Clone)]
pub struct GitCache {
    root: PathBuf,
    /// One lock per cache, so two runs of a repository do not fetch into it at once.
    locks: Arc<Mutex<HashMap<PathBuf, Arc<tokio::sync::Mutex<()>>>>>,
}

impl GitCache {
    pub fn new(root: PathBuf) -> GitCache {
        GitCache { root, locks: Arc::default() }
    }

    /// The cache directory of a clone URL: a bare repository named by the URL's hash.
    pub fn cache_dir(&self, clone_url: &str) -> PathBuf {
        let digest = hex::encode(Sha256::digest(clone_url.as_bytes()));
        self.root.join(format!("{}.git", &digest[..24]))
    }

    /// Makes `run_dir` a checkout of `commit` with a detached HEAD, fetching into the cache only
    /// what it lacks.
    pub async fn checkout(
        &self,
        clone_url: &str,
        commit: &str,
        token: Option<&str>,
        run_dir: &Path,
    ) -> Result<(), CheckoutError> {
        let cache = self.cache_dir(clone_url);
        {
            let lock = self.lock_for(&cache);
            let _guard = lock.lock().await;
            if !cache.join("HEAD").exists() {
                let cache_arg = cache.to_string_lossy();
                git(None, &["init", "--quiet", "--bare", &cache_arg], None).await?;
            }
            if !has_commit(&cache, commit).await {
                fetch(&cache, clone_url, commit, token).await?;
            }
        }
        let cache_arg = cache.to_string_lossy();
        let run_arg = run_dir.to_string_lossy();
        let clone = ["clone", "--quiet", "--shared", "--no-checkout", &cache_arg, &run_arg];
        git(None, &clone, None).await?;
        let detach = ["-c", "advice.detachedHead=false", "checkout", "--quiet", "--detach", commit];
        git(Some(run_dir), &detach, None).await?;
        // Point `origin` at the real repository (without credentials), as a clone would.
        git(Some(run_dir), &["remote", "set-url", "origin", clone_url], None).await?;
        Ok(())
    }

    fn lock_for(&self, cache: &Path) -> Arc<tokio::sync::Mutex<()>> {
        let mut locks = self.locks.lock().expect("cache lock table poisoned");
        locks.entry(cache.to_path_buf()).or_default().clone()
    }
}

async fn has_commit(cache: &Path, commit: &str) -> bool {
    let object = format!("{commit}^{{commit}}");
    git(Some(cache), &["cat-file", "-e", &object], None).await.is_ok()
}

/// Tags are fetched with the commit so that `git describe` works in a check.
const TAGS_REFSPEC: &str = "+refs/tags/*:refs/tags/*";

/// Fetches the one commit (and the tags); servers that refuse to serve an unadvertised commit
/// get a fetch of all branches instead.
async fn fetch(
    cache: &Path,
    url: &str,
    commit: &str,
    token: Option<&str>,
) -> Result<(), CheckoutError> {
    let refspec = format!("+{commit}:refs/tether/commits/{commit}");
    let by_commit = ["fetch", "--quiet", "--no-tags", url, &refspec, TAGS_REFSPEC];
    let first = git(Some(cache), &by_commit, token).await;
    if first.is_ok() {
        return Ok(());
    }
    let branches = "+refs/heads/*:refs/tether/heads/*";
    let heads = ["fetch", "--quiet", "--no-tags", url, branches, TAGS_REFSPEC];
    git(Some(cache), &heads, token).await?;
    if has_commit(cache, commit).await {
        return Ok(());
    }
    Err(CheckoutError(format!(
        "commit {commit} is not in {url}: {}",
        first.err().map(|e| e.0).unwrap_or_default()
    )))
}

/// Runs git quietly and returns its error output as the error when it fails.
async fn git(cwd: Option<&Path>, args: &[&str], token: Option<&str>) -> Result<(), CheckoutError> {
    let mut command = tokio::process::Command::new("git");
    if let Some(cwd) = cwd {
        command.arg("-C").arg(cwd);
    }
    command.args(args);
    command
        .env("GIT_TERMINAL_PROMPT", "0")
        .env("GIT_ASKPASS", "true")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    for variable in GIT_TRACE_VARIABLES {
        command.env_remove(variable);
    }
    if let Some(token) = token.filter(|t| !t.is_empty()) {
        command
            .env("GIT_CONFIG_COUNT", "1")
            .env("GIT_CONFIG_KEY_0", "http.extraHeader")
            .env("GIT_CONFIG_VALUE_0", auth_header(token));
    }
    let output = command
        .output()
        .await
        .map_err(|e| CheckoutError(format!("cannot run git: {e}; is git installed?")))?;
    if output.status.success() {
        return Ok(());
    }
    let mut stderr = String::from_utf8_lossy(&output.stderr).trim().to_string();
    if let Some(token) = token.filter(|t| !t.is_empty()) {
        stderr = stderr.replace(token, "***");
    }
    Err(CheckoutError(format!("git {} failed: {stderr}", args[0])))
}

/// The header GitHub expects for an installation token over HTTPS.
pub fn auth_header(token: &str) -> String {
    let basic = base64::engine::general_purpose::STANDARD.encode(format!("x-access-token:{token}"));
    format!("Authorization: Basic {basic}")
}
