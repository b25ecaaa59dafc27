//! The value types of `tether.toml`, each validated while it is deserialized so that toml attaches
//! the line and column of the bad value to the error.

use std::fmt;
use std::time::Duration;

use serde::Deserialize;
use serde::de::{self, Deserializer, SeqAccess, Visitor};

use super::config::Command;
use super::duration;

/// The longest timeout a check may ask for.
pub const MAX_CHECK_TIMEOUT: Duration = Duration::from_secs(7 * 86_400);

/// Deserializes a string and checks it with `validate`, which returns why it is bad.
fn validated<'de, D: Deserializer<'de>>(
    deserializer: D,
    validate: impl FnOnce(&str) -> Result<(), String>,
) -> Result<String, D::Error> {
    let text = String::deserialize(deserializer)?;
    validate(&text).map_err(de::Error::custom)?;
    Ok(text)
}

macro_rules! string_field {
    ($(#[$meta:meta])* $name:ident, $validate:expr) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
        pub struct $name(pub String);

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                validated(deserializer, $validate).map($name)
            }
        }
    };
}

string_field!(
    /// A check name or label: letters, digits, `-`, `_`, `.`; what `/run NAME` can type.
    Name,
    |s: &str| {
        let ok = !s.is_empty()
            && s.len() <= 100
            && s.chars().all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c));
        ok.then_some(()).ok_or_else(|| {
            format!("invalid name {s:?}: use 1 to 100 letters, digits, '-', '_' or '.'")
        })
    }
);

/// Whether `s` can name an environment variable: letters, digits and `_`, not starting with a
/// digit.
pub fn is_env_name(s: &str) -> bool {
    let mut chars = s.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

string_field!(
    /// An environment variable name.
    EnvName,
    |s: &str| {
        let ok = is_env_name(s);
        ok.then_some(()).ok_or_else(|| {
            format!("invalid variable name {s:?}: use letters, digits and '_', not starting with a digit")
        })
    }
);

string_field!(
    /// A non-empty word without whitespace: an image reference, an environment name.
    Word,
    |s: &str| {
        let ok = !s.is_empty() && s.len() <= 255 && !s.chars().any(char::is_whitespace);
        ok.then_some(()).ok_or_else(|| format!("invalid value {s:?}: must be 1 to 255 characters without spaces"))
    }
);

/// A directory inside the checkout, normalised (`./a//b/` is `a/b`, the root is `.`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RelativeDir(pub String);

impl<'de> Deserialize<'de> for RelativeDir {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        normalise_dir(&text).map(RelativeDir).map_err(de::Error::custom)
    }
}

/// Normalises a relative directory, refusing anything that could leave the checkout.
pub fn normalise_dir(text: &str) -> Result<String, String> {
    if text.starts_with('/') || text.contains('\\') || text.contains('\0') {
        return Err(format!("invalid dir {text:?}: must be a path relative to the checkout"));
    }
    let mut parts = Vec::new();
    for part in text.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                return Err(format!("invalid dir {text:?}: must stay inside the checkout"));
            }
            part => parts.push(part),
        }
    }
    Ok(if parts.is_empty() { ".".to_string() } else { parts.join("/") })
}

/// A check's time limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeout(pub Duration);

impl<'de> Deserialize<'de> for Timeout {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        let duration = duration::parse(&text).map_err(de::Error::custom)?;
        if duration.is_zero() || duration > MAX_CHECK_TIMEOUT {
            return Err(de::Error::custom(format!(
                "invalid timeout {text:?}: must be more than 0 and at most 7d"
            )));
        }
        Ok(Timeout(duration))
    }
}

/// A list that must hold at least one item.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NonEmpty<T>(pub Vec<T>);

impl<'de, T: Deserialize<'de>> Deserialize<'de> for NonEmpty<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let items = Vec::<T>::deserialize(deserializer)?;
        if items.is_empty() {
            return Err(de::Error::custom("must list at least one item"));
        }
        Ok(NonEmpty(items))
    }
}

/// A branch glob (`main`, `release/*`), compiled once.
#[derive(Debug, Clone)]
pub struct BranchPattern {
    pub source: String,
    matcher: globset::GlobMatcher,
}

impl BranchPattern {
    pub fn new(source: &str) -> Result<BranchPattern, String> {
        let glob = globset::GlobBuilder::new(source)
            .literal_separator(true)
            .build()
            .map_err(|e| format!("invalid branch pattern {source:?}: {}", e.kind()))?;
        Ok(BranchPattern { source: source.to_string(), matcher: glob.compile_matcher() })
    }

    pub fn matches(&self, branch: &str) -> bool {
        self.matcher.is_match(branch)
    }
}

impl PartialEq for BranchPattern {
    fn eq(&self, other: &Self) -> bool {
        self.source == other.source
    }
}

impl<'de> Deserialize<'de> for BranchPattern {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        BranchPattern::new(&text).map_err(de::Error::custom)
    }
}

/// An `os/arch` pair; the arch is normalised to Docker's spelling (`x86_64` is `amd64`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Platform {
    pub os: String,
    pub arch: String,
}

impl Platform {
    pub fn parse(text: &str) -> Result<Platform, String> {
        let bad =
            || format!("invalid platform {text:?}: write it as os/arch, like \"linux/amd64\"");
        let (os, arch) = text.split_once('/').ok_or_else(bad)?;
        let word =
            |s: &str| !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        if !word(os) || !word(arch) {
            return Err(bad());
        }
        Ok(Platform {
            os: os.to_ascii_lowercase(),
            arch: normalise_arch(&arch.to_ascii_lowercase()),
        })
    }

    /// Whether a runner with this os and arch fits.
    pub fn fits(&self, os: &str, arch: &str) -> bool {
        self.os == os && self.arch == normalise_arch(arch)
    }
}

impl fmt::Display for Platform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.os, self.arch)
    }
}

impl<'de> Deserialize<'de> for Platform {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        Platform::parse(&text).map_err(de::Error::custom)
    }
}

/// Docker's name for a CPU architecture, given Rust's or Docker's.
pub fn normalise_arch(arch: &str) -> String {
    match arch {
        "x86_64" => "amd64".into(),
        "aarch64" => "arm64".into(),
        "x86" | "i686" => "386".into(),
        other => other.into(),
    }
}

/// `run = "script"` or `run = ["program", "arg"]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunCommand(pub Command);

impl<'de> Deserialize<'de> for RunCommand {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(RunVisitor)
    }
}

struct RunVisitor;

impl<'de> Visitor<'de> for RunVisitor {
    type Value = RunCommand;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a script string or an array of strings")
    }

    fn visit_str<E: de::Error>(self, script: &str) -> Result<RunCommand, E> {
        if script.trim().is_empty() {
            return Err(E::custom("`run` is empty"));
        }
        Ok(RunCommand(Command::Script(script.to_string())))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<RunCommand, A::Error> {
        let mut argv = Vec::new();
        while let Some(arg) = seq.next_element::<String>()? {
            argv.push(arg);
        }
        if argv.first().is_none_or(|program| program.is_empty()) {
            return Err(de::Error::custom("`run` needs a program as its first element"));
        }
        Ok(RunCommand(Command::Argv(argv)))
    }
}
