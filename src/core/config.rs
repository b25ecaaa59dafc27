//! `tether.toml`: parsed with serde and toml into tether's own types, with errors that name the
//! key and give its line and column.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use serde::Deserialize;

use super::fields::{self, BranchPattern, Platform};

/// The file tether reads at the root of a repository, and the name of the check run that
/// reports it unusable.
pub const CONFIG_FILE: &str = "tether.toml";

/// The timeout of a check that does not set one.
pub const DEFAULT_CHECK_TIMEOUT: Duration = Duration::from_secs(3600);

/// A parsed `tether.toml`.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// The checks, by name, in name order (so that every reader sees the same order).
    pub checks: BTreeMap<String, Check>,
}

/// One `[checks.NAME]` table.
#[derive(Debug, Clone, PartialEq)]
pub struct Check {
    pub name: String,
    pub command: Command,
    pub env: BTreeMap<String, String>,
    /// Relative to the checkout, normalised: no leading `./`, never `..`; `"."` for the root.
    pub dir: String,
    pub timeout: Duration,
    /// The events it runs for; never empty.
    pub on: Vec<EventKind>,
    /// Branch globs for push events; empty means every branch.
    pub branches: Vec<BranchPattern>,
    pub platform: Option<Platform>,
    pub labels: Vec<String>,
    pub image: Option<String>,
    pub secrets: Vec<String>,
    pub deployment: Option<String>,
    /// Run under a pseudo-terminal (`tty = true`), so tools colour and draw as on a terminal.
    pub tty: bool,
}

/// What a check runs.
#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum Command {
    /// A script for `sh -ec`.
    Script(String),
    /// A program and its arguments, run without a shell.
    Argv(Vec<String>),
}

/// The GitHub events a check can run for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EventKind {
    Push,
    PullRequest,
}

impl EventKind {
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::Push => "push",
            EventKind::PullRequest => "pull_request",
        }
    }
}

/// A `tether.toml` that cannot be used, with where the problem is.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ConfigError {
    /// The dotted key the problem is at (`checks.test.timeout`), when known.
    pub key: Option<String>,
    /// 1-based line and column, when known.
    pub line: Option<usize>,
    pub column: Option<usize>,
    /// What is wrong, for people.
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("tether.toml")?;
        if let (Some(line), Some(column)) = (self.line, self.column) {
            write!(f, ":{line}:{column}")?;
        }
        if let Some(key) = &self.key {
            write!(f, ": `{key}`")?;
        }
        write!(f, ": {}", self.message)
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    #[serde(default)]
    checks: BTreeMap<fields::Name, RawCheck>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCheck {
    run: fields::RunCommand,
    #[serde(default)]
    env: BTreeMap<fields::EnvName, String>,
    #[serde(default)]
    dir: Option<fields::RelativeDir>,
    #[serde(default)]
    timeout: Option<fields::Timeout>,
    #[serde(default)]
    on: Option<fields::NonEmpty<EventKind>>,
    #[serde(default)]
    branches: Vec<BranchPattern>,
    #[serde(default)]
    platform: Option<Platform>,
    #[serde(default)]
    labels: Vec<fields::Name>,
    #[serde(default)]
    image: Option<fields::Word>,
    #[serde(default)]
    secrets: Vec<fields::EnvName>,
    #[serde(default)]
    deployment: Option<fields::Word>,
    #[serde(default)]
    tty: bool,
}

impl Config {
    /// Parses the text of a `tether.toml`.
    pub fn parse(text: &str) -> Result<Config, ConfigError> {
        let deserializer = toml::Deserializer::parse(text).map_err(|e| error_at(text, None, &e))?;
        let raw: RawConfig = serde_path_to_error::deserialize(deserializer).map_err(|e| {
            let key = e.path().to_string();
            let key = (key != ".").then_some(key);
            error_at(text, key, e.inner())
        })?;
        let checks = raw
            .checks
            .into_iter()
            .map(|(name, raw)| (name.0.clone(), raw.into_check(name.0)))
            .collect();
        Ok(Config { checks })
    }

    /// The named checks, in the order given, or an error naming the first unknown one.
    pub fn select<'a>(&'a self, names: &[String]) -> Result<Vec<&'a Check>, UnknownCheck> {
        names
            .iter()
            .map(|name| self.checks.get(name).ok_or_else(|| UnknownCheck(name.clone())))
            .collect()
    }
}

/// A check name that `tether.toml` does not define.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("no check named `{0}` in tether.toml")]
pub struct UnknownCheck(pub String);

impl RawCheck {
    fn into_check(self, name: String) -> Check {
        Check {
            name,
            command: self.run.0,
            env: self.env.into_iter().map(|(k, v)| (k.0, v)).collect(),
            dir: self.dir.map_or_else(|| ".".to_string(), |d| d.0),
            timeout: self.timeout.map_or(DEFAULT_CHECK_TIMEOUT, |t| t.0),
            on: self.on.map_or_else(|| vec![EventKind::Push, EventKind::PullRequest], |on| on.0),
            branches: self.branches,
            platform: self.platform,
            labels: self.labels.into_iter().map(|l| l.0).collect(),
            image: self.image.map(|i| i.0),
            secrets: self.secrets.into_iter().map(|s| s.0).collect(),
            deployment: self.deployment.map(|d| d.0),
            tty: self.tty,
        }
    }
}

fn error_at(text: &str, key: Option<String>, error: &toml::de::Error) -> ConfigError {
    let (line, column) = match error.span() {
        Some(span) => {
            let (line, column) = line_column(text, span.start);
            (Some(line), Some(column))
        }
        None => (None, None),
    };
    ConfigError { key, line, column, message: error.message().trim().to_string() }
}

/// 1-based line and column (in characters) of a byte offset.
fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let mut offset = offset.min(text.len());
    while !text.is_char_boundary(offset) {
        offset -= 1;
    }
    let before = &text[..offset];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    (line, before[line_start..].chars().count() + 1)
}

#[cfg(test)]
mod tests;
