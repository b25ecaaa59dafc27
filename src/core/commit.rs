//! What a run list shows of a commit: its branch, the first line of its message and its page on
//! GitHub, taken from the webhook and bounded before they are stored with the run.

/// The most characters of a commit message's first line kept; a longer one is cut with `…`.
pub const COMMIT_MESSAGE_MAX_CHARS: usize = 200;
/// The longest branch name kept (git allows more; a page does not need it).
pub const BRANCH_MAX_BYTES: usize = 255;
/// The longest commit link kept.
pub const COMMIT_URL_MAX_BYTES: usize = 2048;

/// A commit as pages show it; each part absent when the event did not say or it was unusable.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CommitInfo {
    /// The branch pushed, or a pull request's head branch.
    pub branch: Option<String>,
    /// The first line of the commit message (a pull request's title for a pull request).
    pub message: Option<String>,
    /// The commit's page on GitHub (or GitHub Enterprise): `REPOSITORY_HTML_URL/commit/SHA`.
    pub url: Option<String>,
}

impl CommitInfo {
    /// The parts as an event gave them, each checked and bounded: `repo_html_url` is the
    /// payload's `repository.html_url`, which holds GitHub's web host.
    pub fn new(
        branch: Option<&str>,
        message: Option<&str>,
        repo_html_url: Option<&str>,
        sha: &str,
    ) -> CommitInfo {
        CommitInfo {
            branch: branch.and_then(branch_name),
            message: message.and_then(first_line),
            url: repo_html_url.and_then(|base| commit_url(base, sha)),
        }
    }
}

/// A branch name fit to show: without control characters, within `BRANCH_MAX_BYTES`.
fn branch_name(branch: &str) -> Option<String> {
    let ok = !branch.is_empty()
        && branch.len() <= BRANCH_MAX_BYTES
        && !branch.chars().any(char::is_control);
    ok.then(|| branch.to_owned())
}

/// The first non-blank line of `message`, trimmed, its control characters dropped, cut to
/// `COMMIT_MESSAGE_MAX_CHARS` with `…`.
pub fn first_line(message: &str) -> Option<String> {
    let line = message.lines().map(str::trim).find(|l| !l.is_empty())?;
    let mut out: String = line.chars().filter(|c| !c.is_control()).collect();
    if let Some((cut, _)) = out.char_indices().nth(COMMIT_MESSAGE_MAX_CHARS) {
        out.truncate(cut);
        out.push('…');
    }
    (!out.is_empty()).then_some(out)
}

/// `BASE/commit/SHA` when `base` is a plain `http(s)` URL and `sha` a hex commit id, within
/// `COMMIT_URL_MAX_BYTES`.
pub fn commit_url(base: &str, sha: &str) -> Option<String> {
    let scheme_ok = ["https://", "http://"]
        .iter()
        .any(|s| base.get(..s.len()).is_some_and(|p| p.eq_ignore_ascii_case(s)));
    let base_ok = base.bytes().all(|b| b.is_ascii_graphic() && !b"\"'<>\\`".contains(&b));
    let sha_ok = (4..=64).contains(&sha.len()) && sha.bytes().all(|b| b.is_ascii_hexdigit());
    let url = format!("{}/commit/{sha}", base.trim_end_matches('/'));
    (scheme_ok && base_ok && sha_ok && url.len() <= COMMIT_URL_MAX_BYTES).then_some(url)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SHA: &str = "6113728f27ae82c7b1a177c8d03f9e96e0adf246";

    #[test]
    fn the_commit_link_comes_from_the_repository_s_web_address() {
        assert_eq!(
            commit_url("https://ghe.example/octo/repo", SHA).unwrap(),
            format!("https://ghe.example/octo/repo/commit/{SHA}")
        );
        assert_eq!(
            commit_url("HTTP://h/octo/repo/", "abcd").unwrap(),
            "HTTP://h/octo/repo/commit/abcd"
        );
        for bad in ["javascript:alert(1)//", "ftp://h/r", "https://h/r\"><x", "https://h/ r", ""] {
            assert_eq!(commit_url(bad, SHA), None, "{bad}");
        }
        assert_eq!(commit_url("https://h/r", "not-a-sha"), None);
        let long = format!("https://h/{}", "a".repeat(COMMIT_URL_MAX_BYTES));
        assert_eq!(commit_url(&long, SHA), None);
    }

    #[test]
    fn a_message_shows_its_first_line_bounded() {
        assert_eq!(first_line("Fix it\n\nBecause.").unwrap(), "Fix it");
        assert_eq!(first_line("\n  \n  Second  \n").unwrap(), "Second");
        assert_eq!(first_line("a\u{1b}[31mb\u{7}").unwrap(), "a[31mb");
        assert_eq!(first_line(" \n\t"), None);
        let long = "é".repeat(COMMIT_MESSAGE_MAX_CHARS + 1);
        let cut = first_line(&long).unwrap();
        assert_eq!(cut.chars().count(), COMMIT_MESSAGE_MAX_CHARS + 1);
        assert!(cut.ends_with('…'));
        let exact = "x".repeat(COMMIT_MESSAGE_MAX_CHARS);
        assert_eq!(first_line(&exact).unwrap(), exact);
    }

    #[test]
    fn branches_are_kept_only_when_fit_to_show() {
        let info = CommitInfo::new(Some("main"), Some("m"), Some("https://h/r"), SHA);
        assert_eq!(info.branch.as_deref(), Some("main"));
        assert_eq!(CommitInfo::new(Some("a\u{0}b"), None, None, SHA).branch, None);
        let long = "b".repeat(BRANCH_MAX_BYTES + 1);
        assert_eq!(CommitInfo::new(Some(&long), None, None, SHA).branch, None);
        assert_eq!(CommitInfo::new(None, None, None, SHA), CommitInfo::default());
    }
}
