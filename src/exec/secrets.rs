//! The runner's secrets file, and which secrets a run may receive.
//!
//! ```toml
//! NPM_TOKEN = "value"                 # push events of any repository
//! [CRATES_TOKEN]
//! value = "value"
//! repos = ["octo/crate", "octo/*"]    # default: any repository
//! events = ["push", "pull_request"]   # default: push only
//! ```
//!
//! Runs of `tether run` (event kind `local`) get every secret they name: the code is the
//! runner owner's own working copy.

use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;

use anyhow::Context;
use serde::Deserialize;
use serde::de::{self, Deserializer, MapAccess, Visitor};

use crate::core::EventContext;
use crate::core::fields::EnvName;

/// The event kind of `tether run`, which may use every secret. Never accepted off the wire.
pub const LOCAL_EVENT: &str = "local";
/// The event kinds a server sends a runner (GitHub's names); a run of any other kind is refused
/// at the runner's border.
pub const SERVER_EVENT_KINDS: &[&str] =
    &["push", "pull_request", "issue_comment", "check_run", "check_suite"];

/// The events a secret is given to when its entry does not say.
const DEFAULT_SECRET_EVENTS: &[&str] = &["push"];
/// The shortest secret value: masking a shorter one would hide every occurrence of a common
/// string in the output rather than protect anything.
pub const SECRET_MIN_BYTES: usize = 4;

/// All secrets of a runner.
#[derive(Default, Clone)]
pub struct Secrets {
    entries: BTreeMap<String, Secret>,
}

#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct Secret {
    value: String,
    #[serde(default)]
    repos: Option<Vec<String>>,
    #[serde(default)]
    events: Option<Vec<String>>,
}

/// Never print values, not even by accident in a debug log.
impl fmt::Debug for Secrets {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set().entries(self.entries.keys()).finish()
    }
}

/// The secrets granted to one run, and the names it asked for but may not have.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Grant {
    pub env: Vec<(String, String)>,
    pub withheld: Vec<String>,
}

impl Secrets {
    /// Reads a secrets file. Errors give the line and column, never a value.
    pub fn load(path: &Path) -> anyhow::Result<Secrets> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("reading secrets file {}", path.display()))?;
        Secrets::parse(&text).with_context(|| format!("in secrets file {}", path.display()))
    }

    pub fn parse(text: &str) -> anyhow::Result<Secrets> {
        let raw: BTreeMap<EnvName, Entry> = toml::from_str(text).map_err(|e| {
            let span = e.span().map(|s| s.start).unwrap_or(0);
            let line = text[..span.min(text.len())].matches('\n').count() + 1;
            anyhow::anyhow!("line {line}: {}", e.message().trim())
        })?;
        let entries: BTreeMap<String, Secret> =
            raw.into_iter().map(|(name, entry)| (name.0, entry.0)).collect();
        let names = |bad: fn(&str) -> bool| -> Vec<&str> {
            entries.iter().filter(|(_, s)| bad(&s.value)).map(|(n, _)| n.as_str()).collect()
        };
        let short = names(|value| value.len() < SECRET_MIN_BYTES);
        if !short.is_empty() {
            anyhow::bail!(
                "{} shorter than {SECRET_MIN_BYTES} bytes: masking would hide every occurrence of \
                 such a value in the output; use longer values",
                short.join(", ")
            );
        }
        // Masking matches what a terminal shows, and it does not show these.
        let hidden = names(|value| value.chars().any(|c| c.is_control() && !"\t\n\r".contains(c)));
        if !hidden.is_empty() {
            anyhow::bail!(
                "{} holds control characters (other than tabs and newlines), which could not be \
                 masked in the output",
                hidden.join(", ")
            );
        }
        Ok(Secrets { entries })
    }

    /// Every value, for masking: a run's output hides all of them, granted or not.
    pub fn values(&self) -> impl Iterator<Item = &str> {
        self.entries.values().map(|s| s.value.as_str())
    }

    /// The secrets among `names` that a run for `event` may receive.
    pub fn grant(&self, names: &[String], event: &EventContext) -> Grant {
        let mut grant = Grant::default();
        for name in names {
            match self.entries.get(name) {
                Some(secret) if secret.allows(event) => {
                    grant.env.push((name.clone(), secret.value.clone()));
                }
                _ => grant.withheld.push(name.clone()),
            }
        }
        grant
    }
}

impl Secret {
    fn allows(&self, event: &EventContext) -> bool {
        if event.kind == LOCAL_EVENT {
            return true;
        }
        let event_ok = match &self.events {
            Some(events) => events.iter().any(|e| e == &event.kind),
            None => DEFAULT_SECRET_EVENTS.contains(&event.kind.as_str()),
        };
        let repo_ok = self
            .repos
            .as_ref()
            .is_none_or(|repos| repos.iter().any(|pattern| repo_matches(pattern, &event.repo)));
        event_ok && repo_ok
    }
}

/// `owner/name` exactly (ignoring case, as GitHub does), or `owner/*` for all of an owner's.
fn repo_matches(pattern: &str, repo: &str) -> bool {
    match pattern.strip_suffix("/*") {
        Some(owner) => repo
            .split_once('/')
            .is_some_and(|(repo_owner, _)| repo_owner.eq_ignore_ascii_case(owner)),
        None => pattern.eq_ignore_ascii_case(repo),
    }
}

/// A secrets file entry: a bare string or a table.
struct Entry(Secret);

impl<'de> Deserialize<'de> for Entry {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(EntryVisitor)
    }
}

struct EntryVisitor;

impl<'de> Visitor<'de> for EntryVisitor {
    type Value = Entry;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a string, or a table with `value`, `repos` and `events`")
    }

    fn visit_str<E: de::Error>(self, value: &str) -> Result<Entry, E> {
        Ok(Entry(Secret { value: value.to_string(), repos: None, events: None }))
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Entry, A::Error> {
        Secret::deserialize(de::value::MapAccessDeserializer::new(map)).map(Entry)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FILE: &str = r#"
PLAIN = "p-value"
[WIDE]
value = "w-value"
repos = ["octo/app", "team/*"]
events = ["push", "pull_request"]
"#;

    fn event(kind: &str, repo: &str) -> EventContext {
        EventContext { kind: kind.into(), repo: repo.into() }
    }

    fn granted(secrets: &Secrets, kind: &str, repo: &str) -> Vec<String> {
        let names = ["PLAIN".to_string(), "WIDE".to_string(), "MISSING".to_string()];
        secrets.grant(&names, &event(kind, repo)).env.into_iter().map(|(k, _)| k).collect()
    }

    #[test]
    fn plain_secrets_go_to_push_events_of_any_repository() {
        let secrets = Secrets::parse(FILE).unwrap();
        assert_eq!(granted(&secrets, "push", "any/repo"), ["PLAIN"]);
        assert_eq!(granted(&secrets, "push", "octo/app"), ["PLAIN", "WIDE"]);
        assert!(granted(&secrets, "pull_request", "any/repo").is_empty());
    }

    #[test]
    fn tables_widen_events_for_their_repositories() {
        let secrets = Secrets::parse(FILE).unwrap();
        assert_eq!(granted(&secrets, "pull_request", "octo/app"), ["WIDE"]);
        assert_eq!(granted(&secrets, "pull_request", "Team/x"), ["WIDE"]);
        assert!(granted(&secrets, "issue_comment", "octo/app").is_empty());
    }

    #[test]
    fn only_named_secrets_are_granted_and_the_rest_reported() {
        let secrets = Secrets::parse(FILE).unwrap();
        let grant = secrets.grant(&["MISSING".into(), "PLAIN".into()], &event("push", "a/b"));
        assert_eq!(grant.env, [("PLAIN".to_string(), "p-value".to_string())]);
        assert_eq!(grant.withheld, ["MISSING"]);
    }

    #[test]
    fn local_runs_get_every_secret_they_name() {
        let secrets = Secrets::parse(FILE).unwrap();
        assert_eq!(granted(&secrets, LOCAL_EVENT, "x/y"), ["PLAIN", "WIDE"]);
    }

    #[test]
    fn short_secrets_are_refused_by_name() {
        let error = Secrets::parse("LONG = \"long enough\"\nA = \"abc\"\n[B]\nvalue = \"\"\n")
            .unwrap_err()
            .to_string();
        assert!(error.starts_with("A, B shorter than 4 bytes"), "{error}");
        assert!(!error.contains("abc") && !error.contains("LONG"), "{error}");
        assert!(Secrets::parse("FOUR = \"abcd\"\nUTF8 = \"\u{e9}\u{e9}\"\n").is_ok());
        let error = Secrets::parse("ESC = \"ab\\u001bcd\"\n").unwrap_err().to_string();
        assert!(error.starts_with("ESC holds control characters"), "{error}");
        assert!(Secrets::parse("PEM = \"\"\"\nline one\r\n\tline two\n\"\"\"\n").is_ok());
    }

    #[test]
    fn errors_give_the_line_and_never_a_value() {
        let error = Secrets::parse("[A]\nvalue = \"sekrit\"\nrepo = [\"x\"]\n").unwrap_err();
        let text = format!("{error:#}");
        assert!(text.contains("line 3") && text.contains("unknown field `repo`"), "{text}");
        assert!(!text.contains("sekrit"));
        assert!(Secrets::parse("1BAD = \"x\"").is_err());
        assert!(!format!("{:?}", Secrets::parse(FILE).unwrap()).contains("value"));
    }
}
