//! Keys from files and the agent: every algorithm, passphrases, and what is offered in which order.

use std::cell::Cell;

use russh::keys::ssh_key::LineEnding;
use russh::keys::{Algorithm, EcdsaCurve};

use super::*;

fn random_key(algorithm: Algorithm) -> PrivateKey {
    PrivateKey::random(&mut rand::rng(), algorithm).unwrap()
}

fn write_key(path: &Path, key: &PrivateKey) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, key.to_openssh(LineEnding::LF).unwrap().as_bytes()).unwrap();
}

fn no_terminal(_: &Path) -> Option<String> {
    None
}

/// A home directory with `~/.ssh/NAME` for each key given.
fn home_with(keys: &[(&str, &PrivateKey)]) -> tempfile::TempDir {
    let home = tempfile::tempdir().unwrap();
    for (name, key) in keys {
        write_key(&home.path().join(".ssh").join(name), key);
    }
    home
}

fn public_keys(keys: &Keys) -> Vec<PublicKey> {
    keys.files.iter().map(|f| f.key.public_key().clone()).collect()
}

#[test]
fn default_files_are_read_in_order_and_missing_ones_ignored() {
    let ed25519 = random_key(Algorithm::Ed25519);
    let ecdsa = random_key(Algorithm::Ecdsa { curve: EcdsaCurve::NistP256 });
    let home = home_with(&[("id_ecdsa", &ecdsa), ("id_ed25519", &ed25519)]);
    let keys = Keys::load_with(None, Some(home.path()), false, &mut no_terminal).unwrap();
    assert_eq!(public_keys(&keys), [ed25519.public_key().clone(), ecdsa.public_key().clone()]);
    assert!(!keys.use_agent);
    assert!(keys.files[0].path.ends_with(".ssh/id_ed25519"));
}

#[test]
fn a_file_that_is_not_a_key_is_skipped() {
    let ed25519 = random_key(Algorithm::Ed25519);
    let home = home_with(&[("id_ed25519", &ed25519)]);
    std::fs::write(home.path().join(".ssh/id_rsa"), "not a key\n").unwrap();
    let keys = Keys::load_with(None, Some(home.path()), true, &mut no_terminal).unwrap();
    assert_eq!(public_keys(&keys), [ed25519.public_key().clone()]);
    assert!(keys.use_agent);
}

#[test]
fn identity_is_the_only_key_and_turns_the_agent_off() {
    let ed25519 = random_key(Algorithm::Ed25519);
    let other = random_key(Algorithm::Ed25519);
    let home = home_with(&[("id_ed25519", &ed25519)]);
    let path = home.path().join("deploy_key");
    write_key(&path, &other);
    let keys = Keys::load_with(Some(&path), Some(home.path()), true, &mut no_terminal).unwrap();
    assert_eq!(public_keys(&keys), [other.public_key().clone()]);
    assert!(!keys.use_agent);
    let missing = home.path().join("missing");
    let error = Keys::load_with(Some(&missing), None, true, &mut no_terminal).err().unwrap();
    assert!(format!("{error:#}").contains("missing"), "{error:#}");
}

#[test]
fn no_key_and_no_agent_is_an_error_that_says_what_to_do() {
    let home = tempfile::tempdir().unwrap();
    let error = Keys::load_with(None, Some(home.path()), false, &mut no_terminal).err().unwrap();
    assert!(error.to_string().contains("ssh-keygen"), "{error}");
    assert!(Keys::load_with(None, Some(home.path()), true, &mut no_terminal).is_ok());
}

#[test]
fn an_encrypted_key_is_skipped_without_a_terminal_and_unlocked_with_one() {
    let plain = random_key(Algorithm::Ed25519);
    let locked = random_key(Algorithm::Ed25519).encrypt(&mut rand::rng(), "secret").unwrap();
    let home = home_with(&[("id_ed25519", &locked), ("id_ecdsa", &plain)]);
    let keys = Keys::load_with(None, Some(home.path()), false, &mut no_terminal).unwrap();
    assert_eq!(public_keys(&keys), [plain.public_key().clone()]);

    let asked = Cell::new(0);
    let mut answer = |path: &Path| {
        assert!(path.ends_with("id_ed25519"));
        asked.set(asked.get() + 1);
        Some("secret".to_string())
    };
    let keys = Keys::load_with(None, Some(home.path()), false, &mut answer).unwrap();
    assert_eq!(asked.get(), 1);
    assert_eq!(public_keys(&keys), [locked.public_key().clone(), plain.public_key().clone()]);
}

#[test]
fn a_locked_identity_with_no_passphrase_is_an_error() {
    let locked = random_key(Algorithm::Ed25519).encrypt(&mut rand::rng(), "secret").unwrap();
    let home = home_with(&[("id_ed25519", &locked)]);
    let path = home.path().join(".ssh/id_ed25519");
    let mut wrong = |_: &Path| Some("wrong".to_string());
    let error = Keys::load_with(Some(&path), None, true, &mut wrong).err().unwrap();
    assert!(error.to_string().contains("locked"), "{error}");
}
