//! Repository reads and writes as the installation: contents, reactions, comments, roles, pulls.

use base64::Engine as _;
use serde::de::IgnoredAny;
use serde::{Deserialize, Serialize};

use super::{GitHub, GitHubError, login, route};

/// The largest file tether reads: the contents API returns bytes only up to 1 MiB.
pub const FILE_BYTES_MAX: u64 = 1024 * 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Reaction {
    #[serde(rename = "eyes")]
    Eyes,
    #[serde(rename = "rocket")]
    Rocket,
    #[serde(rename = "confused")]
    Confused,
    #[serde(rename = "+1")]
    PlusOne,
}

/// A user's role on a repository, strongest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Permission {
    Admin,
    Maintain,
    Write,
    Triage,
    Read,
    None,
}

impl Permission {
    /// Whether the role may push: admin, maintain and write.
    pub fn can_write(&self) -> bool {
        matches!(self, Permission::Admin | Permission::Maintain | Permission::Write)
    }
}

/// The head of a pull request: what to check out, and from where (a fork's URL for a fork).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PullHead {
    pub sha: String,
    pub clone_url: String,
    pub head_ref: String,
}

/// A contents answer: a file, or anything else (a directory's listing is an array).
#[derive(Deserialize)]
#[serde(untagged)]
enum Contents {
    Entry(Entry),
    Listing(IgnoredAny),
}

#[derive(Deserialize)]
struct Entry {
    #[serde(rename = "type")]
    kind: String,
    size: u64,
    #[serde(default)]
    encoding: Option<String>,
    #[serde(default)]
    content: Option<String>,
}

#[derive(Deserialize)]
struct PermissionBody {
    permission: String,
    #[serde(default)]
    role_name: Option<String>,
}

#[derive(Deserialize)]
struct PullBody {
    head: PullHeadBody,
}

#[derive(Deserialize)]
struct PullHeadBody {
    sha: String,
    #[serde(rename = "ref")]
    head_ref: String,
    /// `null` once a fork is deleted.
    repo: Option<CloneUrl>,
}

#[derive(Deserialize)]
struct CloneUrl {
    clone_url: String,
}

#[derive(Serialize)]
struct ReactionBody {
    content: Reaction,
}

#[derive(Serialize)]
struct CommentBody<'a> {
    body: &'a str,
}

#[derive(Serialize)]
struct RefQuery<'a> {
    #[serde(rename = "ref")]
    sha: &'a str,
}

/// The role in an answer: `role_name` is exact (maintain, triage) where the legacy
/// `permission` folds maintain into write and triage into read; a custom role's name is not
/// one of ours, so its base permission counts.
fn parse_permission(body: &PermissionBody) -> Permission {
    let word = |word: &str| match word {
        "admin" => Some(Permission::Admin),
        "maintain" => Some(Permission::Maintain),
        "write" => Some(Permission::Write),
        "triage" => Some(Permission::Triage),
        "read" => Some(Permission::Read),
        _ => None,
    };
    body.role_name
        .as_deref()
        .and_then(word)
        .or_else(|| word(&body.permission))
        .unwrap_or(Permission::None)
}

/// A file's bytes, `None` for what is not a file, `TooLarge` beyond [`FILE_BYTES_MAX`].
fn file_bytes(contents: Contents) -> Result<Option<Vec<u8>>, GitHubError> {
    let Contents::Entry(entry) = contents else { return Ok(None) };
    if entry.kind != "file" {
        return Ok(None);
    }
    if entry.size > FILE_BYTES_MAX {
        return Err(GitHubError::TooLarge);
    }
    let unexpected = |why: String| GitHubError::Other(format!("unexpected file contents: {why}"));
    if entry.encoding.as_deref() != Some("base64") {
        return Err(unexpected(format!("encoding {:?}", entry.encoding)));
    }
    // GitHub wraps the base64 at 60 characters.
    let text: String = entry.content.unwrap_or_default().split_whitespace().collect();
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(text)
        .map_err(|e| unexpected(e.to_string()))?;
    if bytes.len() as u64 != entry.size {
        return Err(unexpected(format!("{} bytes, {} announced", bytes.len(), entry.size)));
    }
    Ok(Some(bytes))
}

impl GitHub {
    /// A file's bytes at a commit (`GET /repos/{o}/{r}/contents/{path}?ref=SHA`); `None` when
    /// there is no such file (a directory is none), or a path or SHA that could not name one.
    pub async fn file_at(
        &self,
        installation_id: i64,
        repo: &str,
        path: &str,
        sha: &str,
    ) -> Result<Option<Vec<u8>>, GitHubError> {
        let checked = route::repo(repo).zip(route::file_path(path)).zip(route::sha(sha));
        let Some((((owner, name), path), sha)) = checked else { return Ok(None) };
        let client = self.installation(installation_id).await?;
        let route = format!("/repos/{owner}/{name}/contents/{path}");
        match self.bounded(client.get(route, Some(&RefQuery { sha }))).await {
            Ok(contents) => file_bytes(contents),
            Err(GitHubError::NotFound) => Ok(None),
            Err(other) => Err(other),
        }
    }

    /// `POST /repos/{o}/{r}/issues/comments/{id}/reactions`; a reaction already there is kept.
    pub async fn add_reaction(
        &self,
        installation_id: i64,
        repo: &str,
        comment_id: i64,
        reaction: Reaction,
    ) -> Result<(), GitHubError> {
        let (owner, name) = route::repo(repo).ok_or(GitHubError::NotFound)?;
        let client = self.installation(installation_id).await?;
        let route = format!("/repos/{owner}/{name}/issues/comments/{comment_id}/reactions");
        let body = ReactionBody { content: reaction };
        let _: IgnoredAny = self.bounded(client.post(route, Some(&body))).await?;
        Ok(())
    }

    /// `POST /repos/{o}/{r}/issues/{number}/comments` (pull requests are issues here).
    pub async fn create_comment(
        &self,
        installation_id: i64,
        repo: &str,
        issue_number: u64,
        body: &str,
    ) -> Result<(), GitHubError> {
        let (owner, name) = route::repo(repo).ok_or(GitHubError::NotFound)?;
        let client = self.installation(installation_id).await?;
        let route = format!("/repos/{owner}/{name}/issues/{issue_number}/comments");
        let _: IgnoredAny = self.bounded(client.post(route, Some(&CommentBody { body }))).await?;
        Ok(())
    }

    /// `GET /repos/{o}/{r}/collaborators/{login}/permission`; no such user (404, or a login
    /// GitHub could not have given out) has no permission.
    pub async fn permission(
        &self,
        installation_id: i64,
        repo: &str,
        login: &str,
    ) -> Result<Permission, GitHubError> {
        let (owner, name) = route::repo(repo).ok_or(GitHubError::NotFound)?;
        let Some(login) = login::valid(login) else { return Ok(Permission::None) };
        let client = self.installation(installation_id).await?;
        let route = format!("/repos/{owner}/{name}/collaborators/{login}/permission");
        match self.bounded(client.get(route, None::<&()>)).await {
            Ok(body) => Ok(parse_permission(&body)),
            Err(GitHubError::NotFound) => Ok(Permission::None),
            Err(other) => Err(other),
        }
    }

    /// `GET /repos/{o}/{r}/pulls/{number}`: the head commit, its branch and where to clone it.
    pub async fn pull_request_head(
        &self,
        installation_id: i64,
        repo: &str,
        number: u64,
    ) -> Result<PullHead, GitHubError> {
        let (owner, name) = route::repo(repo).ok_or(GitHubError::NotFound)?;
        let client = self.installation(installation_id).await?;
        let route = format!("/repos/{owner}/{name}/pulls/{number}");
        let pull: PullBody = self.bounded(client.get(route, None::<&()>)).await?;
        let Some(head_repo) = pull.head.repo else {
            return Err(GitHubError::Other(format!("the head repository of #{number} is gone")));
        };
        Ok(PullHead {
            sha: pull.head.sha,
            clone_url: head_repo.clone_url,
            head_ref: pull.head.head_ref,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn role(permission: &str, role_name: Option<&str>) -> Permission {
        let body =
            PermissionBody { permission: permission.into(), role_name: role_name.map(Into::into) };
        parse_permission(&body)
    }

    #[test]
    fn role_names_are_exact_and_custom_roles_fall_back() {
        assert_eq!(role("write", Some("maintain")), Permission::Maintain);
        assert_eq!(role("read", Some("triage")), Permission::Triage);
        assert_eq!(role("admin", Some("admin")), Permission::Admin);
        assert_eq!(role("write", Some("release-manager")), Permission::Write);
        assert_eq!(role("read", None), Permission::Read);
        assert_eq!(role("none", None), Permission::None);
        assert_eq!(role("something-new", None), Permission::None);
    }

    #[test]
    fn only_admin_maintain_and_write_can_write() {
        use Permission::*;
        let writers: Vec<_> = [Admin, Maintain, Write, Triage, Read, None]
            .into_iter()
            .filter(Permission::can_write)
            .collect();
        assert_eq!(writers, [Admin, Maintain, Write]);
    }

    fn entry(kind: &str, size: u64, content: &str) -> Contents {
        Contents::Entry(Entry {
            kind: kind.into(),
            size,
            encoding: Some("base64".into()),
            content: Some(content.into()),
        })
    }

    #[test]
    fn files_are_decoded_across_line_breaks() {
        let bytes = file_bytes(entry("file", 11, "aGVsbG8g\nd29ybGQ=\n")).unwrap();
        assert_eq!(bytes.as_deref(), Some(&b"hello world"[..]));
    }

    #[test]
    fn what_is_not_a_small_file_is_none_or_too_large() {
        assert_eq!(file_bytes(entry("dir", 0, "")), Ok(None));
        assert_eq!(file_bytes(Contents::Listing(IgnoredAny)), Ok(None));
        assert_eq!(file_bytes(entry("file", FILE_BYTES_MAX + 1, "")), Err(GitHubError::TooLarge));
        let short = file_bytes(entry("file", 12, "aGVsbG8gd29ybGQ="));
        assert!(matches!(short, Err(GitHubError::Other(_))), "{short:?}");
    }

    #[test]
    fn reactions_are_githubs_words() {
        let words = serde_json::to_value([
            Reaction::Eyes,
            Reaction::Rocket,
            Reaction::Confused,
            Reaction::PlusOne,
        ])
        .unwrap();
        assert_eq!(words, serde_json::json!(["eyes", "rocket", "confused", "+1"]));
    }
}
