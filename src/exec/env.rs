//! The environment a check runs with: a clean one. Of the runner's own variables it gets only
//! those that let programs find their way and speak the user's language, and those the runner's
//! owner passes on purpose (`--pass-env`): never an agent socket, a token or a terminal setting.

use std::ffi::{OsStr, OsString};

/// The runner's variables every check on the host gets, besides `LC_*`.
pub const PASSED_VARIABLES: &[&str] =
    &["PATH", "HOME", "USER", "LOGNAME", "SHELL", "LANG", "TZ", "TMPDIR"];

/// Whether the runner's variable `name` goes to a check on the host: the passed set, `LC_*`,
/// and `extra`.
fn passes(name: &OsStr, extra: &[String]) -> bool {
    let Some(name) = name.to_str() else { return false };
    PASSED_VARIABLES.contains(&name) || name.starts_with("LC_") || extra.iter().any(|e| e == name)
}

/// The variables of `runner` (the runner's own environment) that a check on the host gets.
pub fn for_host<I>(runner: I, extra: &[String]) -> Vec<(OsString, OsString)>
where
    I: IntoIterator<Item = (OsString, OsString)>,
{
    runner.into_iter().filter(|(name, _)| passes(name, extra)).collect()
}

/// The variables of `runner` that the owner passes on purpose (`extra`): in a container, the
/// host's `PATH`, `HOME` and the like mean nothing, but these may.
pub fn for_container<I>(runner: I, extra: &[String]) -> Vec<(String, String)>
where
    I: IntoIterator<Item = (OsString, OsString)>,
{
    runner
        .into_iter()
        .filter_map(|(name, value)| Some((name.into_string().ok()?, value.into_string().ok()?)))
        .filter(|(name, _)| extra.contains(name))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn runner() -> Vec<(OsString, OsString)> {
        [
            ("PATH", "/bin"),
            ("HOME", "/home/me"),
            ("LC_ALL", "C.UTF-8"),
            ("LANG", "C"),
            ("SSH_AUTH_SOCK", "/tmp/agent"),
            ("GITHUB_TOKEN", "ghp_x"),
            ("TERM", "xterm"),
            ("DOCKER_HOST", "unix:///mine.sock"),
            ("HTTP_PROXY", "http://proxy:3128"),
        ]
        .into_iter()
        .map(|(k, v)| (k.into(), v.into()))
        .collect()
    }

    fn names<T: AsRef<OsStr>>(vars: &[(T, T)]) -> Vec<String> {
        vars.iter().map(|(k, _)| k.as_ref().to_string_lossy().into_owned()).collect()
    }

    #[test]
    fn a_check_on_the_host_gets_only_the_passed_variables() {
        assert_eq!(names(&for_host(runner(), &[])), ["PATH", "HOME", "LC_ALL", "LANG"]);
        let extra = ["HTTP_PROXY".to_string(), "NOT_SET".to_string()];
        assert_eq!(
            names(&for_host(runner(), &extra)),
            ["PATH", "HOME", "LC_ALL", "LANG", "HTTP_PROXY"]
        );
    }

    #[test]
    fn a_container_gets_only_what_the_owner_passes() {
        assert!(for_container(runner(), &[]).is_empty());
        let extra = ["HTTP_PROXY".to_string()];
        assert_eq!(
            for_container(runner(), &extra),
            [("HTTP_PROXY".to_string(), "http://proxy:3128".to_string())]
        );
    }
}
