//! The known_hosts file: reads the keys recorded for the server, has `core::host_key` decide
//! about the offered one, and records it when that is the decision.

use std::path::PathBuf;

use russh::keys::{Algorithm, HashAlg, PublicKey};

use super::client::ClientError;
use crate::core::host_key::{self, HostKeyCheck, HostKeyDecision, HostKeyId, RecordedKey};

/// How to check the server's host key.
#[derive(Debug, Clone)]
pub struct HostKeyVerifier {
    /// In lower case, as OpenSSH records host names.
    host: String,
    port: u16,
    /// The known_hosts file: read, and appended to when a new key is trusted.
    path: PathBuf,
    accept_new: bool,
    pinned: Option<String>,
}

impl HostKeyVerifier {
    pub fn new(
        host: &str,
        port: u16,
        path: PathBuf,
        accept_new: bool,
        pinned: Option<String>,
    ) -> HostKeyVerifier {
        HostKeyVerifier { host: host.to_ascii_lowercase(), port, path, accept_new, pinned }
    }

    /// The name known_hosts uses for the server: `host`, or `[host]:port` off port 22.
    pub fn host_entry(&self) -> String {
        if self.port == 22 { self.host.clone() } else { format!("[{}]:{}", self.host, self.port) }
    }

    /// The types of the keys recorded for the server, so that it can be asked for one of them.
    pub fn known_algorithms(&self) -> Vec<Algorithm> {
        self.recorded().unwrap_or_default().into_iter().map(|(_, key)| key.algorithm()).collect()
    }

    /// Accepts the offered key, records it first, or says why not.
    pub fn verify(&self, offered: &PublicKey) -> Result<(), ClientError> {
        let recorded: Vec<RecordedKey> = self
            .recorded()?
            .into_iter()
            .map(|(line, key)| RecordedKey { key: key_id(&key), line })
            .collect();
        let host = self.host_entry();
        let offered_id = key_id(offered);
        let decision = host_key::decide(&HostKeyCheck {
            host: &host,
            offered: &offered_id,
            recorded: &recorded,
            accept_new: self.accept_new,
            pinned: self.pinned.as_deref(),
        });
        match decision {
            HostKeyDecision::Accept => Ok(()),
            HostKeyDecision::Refuse(refusal) => Err(ClientError::HostKey(refusal)),
            HostKeyDecision::Record => {
                self.record(offered, &offered_id);
                Ok(())
            }
        }
    }

    /// Appends the key; a file that cannot be written is a warning: the key was trusted anyway.
    fn record(&self, key: &PublicKey, id: &HostKeyId) {
        // russh would create a missing `~/.ssh` as the umask says (0755, often); OpenSSH
        // keeps it 0700.
        if let Some(dir) = self.path.parent().filter(|d| !d.as_os_str().is_empty() && !d.exists()) {
            use std::os::unix::fs::DirBuilderExt;
            let created = std::fs::DirBuilder::new().recursive(true).mode(0o700).create(dir);
            if let Err(e) = created {
                tracing::warn!("cannot create {}: {e}", dir.display());
            }
        }
        match russh::keys::known_hosts::learn_known_hosts_path(
            &self.host, self.port, key, &self.path,
        ) {
            Ok(()) => tracing::info!(
                "recorded the host key of {} ({} {}) in {}",
                self.host_entry(),
                id.algorithm,
                id.fingerprint,
                self.path.display()
            ),
            Err(e) => tracing::warn!(
                "trusting the host key of {} ({}) but could not record it in {}: {e}",
                self.host_entry(),
                id.fingerprint,
                self.path.display()
            ),
        }
    }

    /// The keys known_hosts records for the server, with their line numbers.
    fn recorded(&self) -> Result<Vec<(usize, PublicKey)>, ClientError> {
        russh::keys::known_hosts::known_host_keys_path(&self.host, self.port, &self.path).map_err(
            |e| ClientError::KnownHosts { path: self.path.clone(), message: e.to_string() },
        )
    }
}

fn key_id(key: &PublicKey) -> HostKeyId {
    HostKeyId {
        algorithm: key.algorithm().as_str().to_string(),
        fingerprint: key.fingerprint(HashAlg::Sha256).to_string(),
    }
}

#[cfg(test)]
mod tests {
    use russh::keys::PrivateKey;

    use super::*;
    use crate::core::host_key::HostKeyRefusal;

    fn random_public() -> PublicKey {
        PrivateKey::random(&mut rand::rng(), Algorithm::Ed25519).unwrap().public_key().clone()
    }

    fn verifier(path: PathBuf, accept_new: bool, pinned: Option<String>) -> HostKeyVerifier {
        HostKeyVerifier::new("Tether.Example.com", 6455, path, accept_new, pinned)
    }

    #[test]
    fn a_new_key_is_recorded_then_known_and_a_changed_one_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ssh/known_hosts");
        let key = random_public();
        let refused = verifier(path.clone(), false, None).verify(&key);
        assert!(
            matches!(refused, Err(ClientError::HostKey(HostKeyRefusal::Unknown { .. }))),
            "{refused:?}"
        );
        verifier(path.clone(), true, None).verify(&key).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.trim_start().starts_with("[tether.example.com]:6455 ssh-ed25519 "), "{text}");
        verifier(path.clone(), false, None).verify(&key).unwrap();
        assert_eq!(verifier(path.clone(), false, None).known_algorithms(), [Algorithm::Ed25519]);

        let other = random_public();
        let error = verifier(path.clone(), true, None).verify(&other).unwrap_err().to_string();
        let expected = key.fingerprint(HashAlg::Sha256).to_string();
        let offered = other.fingerprint(HashAlg::Sha256).to_string();
        assert!(error.contains(&expected) && error.contains(&offered), "{error}");
    }

    #[test]
    fn a_matching_pin_records_the_key() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("known_hosts");
        let key = random_public();
        let pin = key.fingerprint(HashAlg::Sha256).to_string();
        verifier(path.clone(), false, Some(pin)).verify(&key).unwrap();
        verifier(path, false, None).verify(&key).unwrap();
    }
}
