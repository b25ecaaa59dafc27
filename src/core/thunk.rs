//! The thunk: everything a runner needs to run one check once, and its content-derived id.
//!
//! # The canonical encoding (version 1)
//!
//! A thunk's id is the lowercase hex SHA-256 of this byte string: a sequence of *items*, each an
//! unsigned 64-bit big-endian byte length followed by that many bytes. The items are, in order:
//!
//! 1. the literal `tether.thunk.v1`;
//! 2. the clone URL; 3. the commit, lowercase hex;
//! 4. `script` then the script, or `argv`, the argument count in decimal, then each argument;
//! 5. the number of env entries in decimal, then each key and value, keys in byte order;
//! 6. the dir, normalised (`.` for the root); 7. the image, empty when there is none;
//! 8. the timeout in whole milliseconds, in decimal;
//! 9. the number of secret names in decimal, then the names, sorted and without duplicates;
//! 10. only for a check with `tty = true`: the literal `tty` (so a thunk without a terminal
//!     keeps the id it had before `tty` existed).
//!
//! The check's name and the clone token are not part of it: the same work under another name is
//! the same thunk, and a token changes with every run.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use sha2::{Digest, Sha256};

use super::config::{Check, Command};

/// One check, at one commit, of one repository.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Thunk {
    /// The check's name in `tether.toml`; not part of the id.
    pub check: String,
    pub clone_url: String,
    pub commit: String,
    pub command: Command,
    pub env: BTreeMap<String, String>,
    pub dir: String,
    pub image: Option<String>,
    pub timeout: Duration,
    pub secrets: Vec<String>,
    /// Run under a pseudo-terminal; absent in thunks stored before it existed.
    #[serde(default)]
    pub tty: bool,
}

/// The SHA-256 of a thunk's canonical encoding.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ThunkId(pub [u8; 32]);

impl fmt::Display for ThunkId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex::encode(self.0))
    }
}

/// The event a run belongs to, as far as the runner needs it: it decides which secrets apply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventContext {
    /// `push`, `pull_request`, `issue_comment`, … or `local` for `tether run`.
    pub kind: String,
    /// `owner/name`.
    pub repo: String,
}

impl Thunk {
    /// The thunk for `check` at `commit` of the repository at `clone_url`.
    pub fn new(check: &Check, commit: &str, clone_url: &str) -> Thunk {
        Thunk {
            check: check.name.clone(),
            clone_url: clone_url.to_string(),
            commit: commit.to_ascii_lowercase(),
            command: check.command.clone(),
            env: check.env.clone(),
            dir: check.dir.clone(),
            image: check.image.clone(),
            timeout: check.timeout,
            secrets: check.secrets.clone(),
            tty: check.tty,
        }
    }

    /// The canonical encoding described in this module's documentation.
    pub fn canonical_encoding(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(256);
        let mut item = |bytes: &[u8]| {
            out.extend_from_slice(&(bytes.len() as u64).to_be_bytes());
            out.extend_from_slice(bytes);
        };
        item(b"tether.thunk.v1");
        item(self.clone_url.as_bytes());
        item(self.commit.to_ascii_lowercase().as_bytes());
        match &self.command {
            Command::Script(script) => {
                item(b"script");
                item(script.as_bytes());
            }
            Command::Argv(argv) => {
                item(b"argv");
                item(argv.len().to_string().as_bytes());
                argv.iter().for_each(|arg| item(arg.as_bytes()));
            }
        }
        item(self.env.len().to_string().as_bytes());
        for (key, value) in &self.env {
            item(key.as_bytes());
            item(value.as_bytes());
        }
        item(self.dir.as_bytes());
        item(self.image.as_deref().unwrap_or("").as_bytes());
        item(self.timeout.as_millis().to_string().as_bytes());
        let secrets: std::collections::BTreeSet<&String> = self.secrets.iter().collect();
        item(secrets.len().to_string().as_bytes());
        secrets.iter().for_each(|name| item(name.as_bytes()));
        if self.tty {
            item(b"tty");
        }
        out
    }

    pub fn id(&self) -> ThunkId {
        ThunkId(Sha256::digest(self.canonical_encoding()).into())
    }
}

/// Whether `text` is a full 40-character hexadecimal commit id.
pub fn is_full_commit(text: &str) -> bool {
    text.len() == 40 && text.bytes().all(|b| b.is_ascii_hexdigit())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::Config;

    const COMMIT: &str = "0123456789abcdef0123456789abcdef01234567";

    fn thunk(toml: &str) -> Thunk {
        let config = Config::parse(toml).unwrap();
        Thunk::new(&config.checks["test"], COMMIT, "https://github.com/octo/repo.git")
    }

    const GOLDEN_TOML: &str = r#"
[checks.test]
run = "cargo test --locked"
env = { RUST_BACKTRACE = "1", A = "b" }
dir = "./crates//core/"
timeout = "30m"
image = "rust:1.82"
secrets = ["Z_TOKEN", "CRATES_TOKEN", "Z_TOKEN"]
"#;

    /// Pins the id (cross-checked against an independent implementation of the encoding above)
    /// so that a change to the encoding is a deliberate, visible change.
    #[test]
    fn golden_id() {
        assert_eq!(
            thunk(GOLDEN_TOML).id().to_string(),
            "d00df6ac4aeaa55a31aefa55b8458bff05ca5433b8b46dd01b140c7b0a75761d"
        );
    }

    #[test]
    fn encoding_is_length_prefixed_items() {
        let encoding = thunk("[checks.test]\nrun = [\"a\"]\n").canonical_encoding();
        assert_eq!(&encoding[..8], &15u64.to_be_bytes());
        assert_eq!(&encoding[8..23], b"tether.thunk.v1");
    }

    #[test]
    fn name_and_order_of_secrets_do_not_change_the_id() {
        let a = thunk(GOLDEN_TOML);
        let mut b = a.clone();
        b.check = "renamed".into();
        b.secrets = vec!["CRATES_TOKEN".into(), "Z_TOKEN".into()];
        assert_eq!(a.id(), b.id());
    }

    #[test]
    fn every_field_changes_the_id() {
        let base = thunk(GOLDEN_TOML);
        type Change = Box<dyn Fn(&mut Thunk)>;
        let variants: Vec<Change> = vec![
            Box::new(|t| t.clone_url.push('x')),
            Box::new(|t| t.commit = "f".repeat(40)),
            Box::new(|t| t.command = Command::Argv(vec!["cargo test --locked".into()])),
            Box::new(|t| t.env.insert("NEW".into(), String::new()).map_or((), |_| ())),
            Box::new(|t| t.dir = ".".into()),
            Box::new(|t| t.image = None),
            Box::new(|t| t.timeout += Duration::from_millis(1)),
            Box::new(|t| t.secrets.push("OTHER".into())),
            Box::new(|t| t.tty = true),
        ];
        for (i, change) in variants.iter().enumerate() {
            let mut changed = base.clone();
            change(&mut changed);
            assert_ne!(base.id(), changed.id(), "change {i} kept the id");
        }
    }

    #[test]
    fn script_and_single_arg_argv_differ_and_items_cannot_run_together() {
        let script = thunk("[checks.test]\nrun = \"ab\"\n");
        let argv = thunk("[checks.test]\nrun = [\"ab\"]\n");
        assert_ne!(script.id(), argv.id());
        let split = thunk("[checks.test]\nrun = [\"a\", \"b\"]\n");
        let joined = thunk("[checks.test]\nrun = [\"ab\", \"\"]\n");
        assert_ne!(split.id(), joined.id());
    }

    #[test]
    fn full_commit_ids() {
        assert!(is_full_commit(COMMIT));
        assert!(!is_full_commit("0123456"));
        assert!(!is_full_commit(&"g".repeat(40)));
    }
}
