//! The keys a runner logs in with: ssh-agent's, then `~/.ssh/id_ed25519`, `id_ecdsa` and
//! `id_rsa`, or only the `--identity` file; passphrase-protected files are unlocked at start.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, bail};
use russh::client::{Handle, Handler};
use russh::keys::agent::AgentIdentity;
use russh::keys::agent::client::AgentClient;
use russh::keys::{HashAlg, PrivateKey, PrivateKeyWithHashAlg, PublicKey};

/// The key files tried when no `--identity` is given, in this order, under `~/.ssh`.
const DEFAULT_KEY_FILES: [&str; 3] = ["id_ed25519", "id_ecdsa", "id_rsa"];
/// Wrong passphrases allowed for one key before it is skipped.
const PASSPHRASE_ATTEMPTS: u32 = 3;

/// What to do when there is no key at all.
pub const NO_KEY_HINT: &str = "no SSH key to log in with: ssh-agent holds none and there is no \
    usable ~/.ssh/id_ed25519, id_ecdsa or id_rsa; create one with `ssh-keygen -t ed25519`, add \
    it to GitHub (https://github.com/settings/keys), or pass --identity FILE";

/// Asks for the passphrase of a key file; `None` when nobody can answer.
pub type AskPassphrase<'a> = &'a mut dyn FnMut(&Path) -> Option<String>;

/// A private key read from a file.
pub struct FileKey {
    pub path: PathBuf,
    pub key: Arc<PrivateKey>,
}

/// Every key to offer, in order.
pub struct Keys {
    files: Vec<FileKey>,
    /// Whether to ask ssh-agent too (not when `--identity` names the one key to use).
    use_agent: bool,
}

/// Why logging in failed.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// Every key was offered and none was accepted: the user can fix this on GitHub.
    #[error(
        "the server accepted none of the keys offered for {login} ({tried}); add one of them to \
         the GitHub account {login} (https://github.com/settings/keys)"
    )]
    Refused { login: String, tried: String },
    /// There was no key to offer at all: nothing changes until the user adds one.
    #[error("{NO_KEY_HINT}")]
    NoKeys,
    #[error("the connection failed while logging in: {0}")]
    Ssh(#[from] russh::Error),
}

impl Keys {
    /// Reads the key files, asking on the terminal for the passphrase of a protected one.
    pub fn load(identity: Option<&Path>) -> anyhow::Result<Keys> {
        let home = dirs::home_dir();
        let agent = std::env::var_os("SSH_AUTH_SOCK").is_some();
        Keys::load_with(identity, home.as_deref(), agent, &mut ask_on_terminal)
    }

    /// [`Keys::load`] with the home directory, the agent and the terminal given.
    pub fn load_with(
        identity: Option<&Path>,
        home: Option<&Path>,
        agent: bool,
        ask: AskPassphrase,
    ) -> anyhow::Result<Keys> {
        if let Some(path) = identity {
            let key = read_key_file(path, ask)?.with_context(|| {
                format!(
                    "{} is the only key to use (--identity), and it stays locked",
                    path.display()
                )
            })?;
            let files = vec![FileKey { path: path.to_path_buf(), key: Arc::new(key) }];
            return Ok(Keys { files, use_agent: false });
        }
        let files = home.map_or_else(Vec::new, |home| default_files(home, ask));
        if files.is_empty() && !agent {
            bail!("{NO_KEY_HINT}");
        }
        Ok(Keys { files, use_agent: agent })
    }

    /// Fails with [`NO_KEY_HINT`] when there is no key file and ssh-agent holds no key (or
    /// cannot be reached): retrying could not help until the user adds one.
    pub async fn ensure_some(&self) -> anyhow::Result<()> {
        if !self.files.is_empty() {
            return Ok(());
        }
        let listed = match AgentClient::connect_env().await {
            Ok(mut agent) => agent.request_identities().await.map(|ids| ids.len()).unwrap_or(0),
            Err(_) => 0,
        };
        if listed == 0 {
            bail!("{NO_KEY_HINT}");
        }
        Ok(())
    }
}

/// The default key files that exist and could be read, in order; the others are logged.
fn default_files(home: &Path, ask: AskPassphrase) -> Vec<FileKey> {
    let mut files = Vec::new();
    for name in DEFAULT_KEY_FILES {
        let path = home.join(".ssh").join(name);
        if !path.exists() {
            continue;
        }
        match read_key_file(&path, ask) {
            Ok(Some(key)) => files.push(FileKey { path, key: Arc::new(key) }),
            Ok(None) => {}
            Err(e) => tracing::warn!("skipping {}: {e:#}", path.display()),
        }
    }
    files
}

/// Reads one key file: `Ok(None)` when it is locked and no passphrase came (said in the log).
fn read_key_file(path: &Path, ask: AskPassphrase) -> anyhow::Result<Option<PrivateKey>> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    match russh::keys::decode_secret_key(&text, None) {
        Ok(key) => return Ok(Some(key)),
        Err(russh::keys::Error::KeyIsEncrypted) => {}
        Err(e) => bail!("{} is not a private key tether can use: {e}", path.display()),
    }
    for _ in 0..PASSPHRASE_ATTEMPTS {
        let Some(passphrase) = ask(path).filter(|p| !p.is_empty()) else {
            tracing::warn!(
                "skipping {}: it is protected by a passphrase and none was given (there may be \
                 no terminal to ask on); add it to ssh-agent instead",
                path.display()
            );
            return Ok(None);
        };
        match russh::keys::decode_secret_key(&text, Some(&passphrase)) {
            Ok(key) => return Ok(Some(key)),
            Err(e) => tracing::warn!("{}: wrong passphrase? {e}", path.display()),
        }
    }
    tracing::warn!("skipping {}: no right passphrase", path.display());
    Ok(None)
}

/// Asks on `/dev/tty` with echo off; `None` when there is no terminal.
fn ask_on_terminal(path: &Path) -> Option<String> {
    use nix::sys::termios::{LocalFlags, SetArg, tcgetattr, tcsetattr};
    let tty = std::fs::OpenOptions::new().read(true).write(true).open("/dev/tty").ok()?;
    let original = tcgetattr(&tty).ok()?;
    let mut silent = original.clone();
    silent.local_flags.remove(LocalFlags::ECHO);
    silent.local_flags.insert(LocalFlags::ECHONL);
    write!(&tty, "Enter passphrase for {}: ", path.display()).ok()?;
    tcsetattr(&tty, SetArg::TCSAFLUSH, &silent).ok()?;
    let mut line = String::new();
    let read = BufReader::new(&tty).read_line(&mut line);
    let _ = tcsetattr(&tty, SetArg::TCSANOW, &original);
    read.ok()?;
    Some(line.trim_end_matches(['\r', '\n']).to_string())
}

/// Offers every key until the server accepts one: the agent's first, then the files.
pub async fn authenticate<H: Handler>(
    handle: &mut Handle<H>,
    login: &str,
    keys: &Keys,
) -> Result<(), AuthError> {
    let mut tried: Vec<String> = Vec::new();
    let rsa_hash = rsa_hash(handle, keys).await;
    if keys.use_agent && try_agent(handle, login, rsa_hash, &mut tried).await? {
        return Ok(());
    }
    for file in &keys.files {
        let public = file.key.public_key();
        // A file the agent also holds was offered already.
        if tried.iter().any(|t| t.ends_with(&fingerprint(public))) {
            continue;
        }
        let label = describe(&file.path.display().to_string(), public);
        tracing::debug!("offering {label}");
        let key = PrivateKeyWithHashAlg::new(file.key.clone(), rsa_hash);
        tried.push(label);
        if handle.authenticate_publickey(login, key).await?.success() {
            return Ok(());
        }
    }
    if tried.is_empty() {
        return Err(AuthError::NoKeys);
    }
    Err(AuthError::Refused {
        login: login.to_string(),
        tried: format!("tried {}", tried.join(", ")),
    })
}

/// Offers the agent's keys; true when one was accepted. An agent that cannot be reached is
/// only logged: the files may still do.
async fn try_agent<H: Handler>(
    handle: &mut Handle<H>,
    login: &str,
    rsa_hash: Option<HashAlg>,
    tried: &mut Vec<String>,
) -> Result<bool, AuthError> {
    let mut agent = match AgentClient::connect_env().await {
        Ok(agent) => agent,
        Err(e) => {
            tracing::debug!("no ssh-agent: {e}");
            return Ok(false);
        }
    };
    let identities = agent.request_identities().await.unwrap_or_else(|e| {
        tracing::warn!("ssh-agent did not list its keys: {e}");
        Vec::new()
    });
    for identity in identities {
        let AgentIdentity::PublicKey { key, comment } = identity else {
            continue;
        };
        tried.push(describe(&format!("ssh-agent key {comment:?}"), &key));
        let hash = rsa_hash.filter(|_| key.algorithm().is_rsa());
        match handle.authenticate_publickey_with(login, key, hash, &mut agent).await {
            Ok(result) if result.success() => return Ok(true),
            Ok(_) => {}
            Err(e) => tracing::warn!("ssh-agent could not sign: {e}"),
        }
    }
    Ok(false)
}

/// The best RSA signature hash the server takes, asked only when an RSA key may be offered.
async fn rsa_hash<H: Handler>(handle: &Handle<H>, keys: &Keys) -> Option<HashAlg> {
    let any_rsa = keys.use_agent || keys.files.iter().any(|f| f.key.algorithm().is_rsa());
    if !any_rsa {
        return None;
    }
    match handle.best_supported_rsa_hash().await {
        Ok(Some(best)) => best,
        // A server that does not say is still most likely to take SHA-256.
        Ok(None) | Err(_) => Some(HashAlg::Sha256),
    }
}

fn fingerprint(key: &PublicKey) -> String {
    key.fingerprint(HashAlg::Sha256).to_string()
}

fn describe(source: &str, key: &PublicKey) -> String {
    format!("{source} {} {}", key.algorithm().as_str(), fingerprint(key))
}

#[cfg(test)]
mod tests;
