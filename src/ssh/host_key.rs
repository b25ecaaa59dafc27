//! The server's persistent ed25519 host key, so that clients can pin it across restarts.

use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::Path;

use anyhow::{Context, bail};
use russh::keys::{Algorithm, HashAlg, PrivateKey};

/// The server's host key.
#[derive(Clone)]
pub struct HostKey {
    pub(crate) key: PrivateKey,
}

impl HostKey {
    /// Loads the key at `path`, or creates one there (mode 0600) if there is none.
    pub fn load_or_create(path: &Path) -> anyhow::Result<HostKey> {
        if path.exists() {
            let mode = path.metadata()?.permissions().mode();
            if mode & 0o077 != 0 {
                bail!(
                    "host key {} is readable by others (mode {:o}); chmod 600 it",
                    path.display(),
                    mode & 0o777
                );
            }
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("reading {}", path.display()))?;
            let key = PrivateKey::from_openssh(&text)
                .with_context(|| format!("parsing host key {}", path.display()))?;
            return Ok(HostKey { key });
        }
        let key = PrivateKey::random(&mut rand::rng(), Algorithm::Ed25519)
            .context("generating a host key")?;
        let text = key
            .to_openssh(russh::keys::ssh_key::LineEnding::LF)
            .context("encoding the host key")?;
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(path)
            .with_context(|| format!("creating {}", path.display()))?;
        file.write_all(text.as_bytes())?;
        Ok(HostKey { key })
    }

    /// `SHA256:…`, as `ssh-keygen -l` and OpenSSH's prompts show it.
    pub fn fingerprint(&self) -> String {
        self.key.public_key().fingerprint(HashAlg::Sha256).to_string()
    }

    /// The public key as an OpenSSH line, for a known_hosts file.
    pub fn public_line(&self) -> String {
        self.key.public_key().to_openssh().unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_created_key_is_private_and_loads_back_the_same() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("host_key");
        let created = HostKey::load_or_create(&path).unwrap();
        assert_eq!(path.metadata().unwrap().permissions().mode() & 0o777, 0o600);
        let loaded = HostKey::load_or_create(&path).unwrap();
        assert_eq!(created.fingerprint(), loaded.fingerprint());
        assert!(created.fingerprint().starts_with("SHA256:"));
        assert!(created.public_line().starts_with("ssh-ed25519 "));
    }

    #[test]
    fn a_key_others_can_read_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("host_key");
        HostKey::load_or_create(&path).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let error = HostKey::load_or_create(&path).err().unwrap().to_string();
        assert!(error.contains("chmod 600"), "{error}");
    }
}
