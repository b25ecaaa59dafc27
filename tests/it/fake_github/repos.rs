//! Contents, reactions, comments, collaborator roles and pull requests of the fake's repositories.

use std::collections::{BTreeMap, HashMap};

use axum::body::Bytes;
use axum::extract::{Path, Query, State as Extract};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Json};
use base64::Engine as _;
use serde_json::{Value, json};

use super::auth::{self, Need};
use super::schema::{self, Reply};
use super::{Shared, message};

/// Beyond this the contents API sends no bytes (`"encoding": "none"`).
const CONTENTS_BYTES_MAX: usize = 1024 * 1024;
/// GitHub wraps base64 contents at this many characters.
const BASE64_LINE_CHARS: usize = 60;
const REACTIONS: [&str; 8] = ["+1", "-1", "laugh", "confused", "heart", "hooray", "rocket", "eyes"];

/// What tests put into repositories and what tether wrote to them.
#[derive(Default)]
pub struct RepoState {
    /// Bytes by (repo, commit, path).
    pub files: BTreeMap<(String, String, String), Vec<u8>>,
    /// Roles by (repo, lowercased login).
    pub roles: BTreeMap<(String, String), String>,
    /// Head commits by (repo, number).
    pub pulls: BTreeMap<(String, u64), String>,
    /// Pull requests whose head repository was deleted: GitHub's `head.repo` is then `null`.
    pub gone_heads: std::collections::BTreeSet<(String, u64)>,
    pub reactions: BTreeMap<(String, i64), Vec<String>>,
    pub comments: BTreeMap<(String, u64), Vec<String>>,
}

/// `GET /repos/{owner}/{repo}/contents/{path}?ref=SHA`: a file, or a directory's listing.
pub async fn contents(
    Extract(state): Extract<Shared>,
    Path((owner, name, path)): Path<(String, String, String)>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Reply {
    let repo = format!("{owner}/{name}");
    let state = state.lock().unwrap();
    auth::authorize(&state, &headers, &repo, Need::read("contents"))?;
    let sha = query.get("ref").cloned().unwrap_or_default();
    let key = (repo.clone(), sha.clone(), path.clone());
    if let Some(bytes) = state.repos.files.get(&key) {
        return Ok(Json(file(&path, bytes)).into_response());
    }
    let prefix = format!("{path}/");
    let listing: Vec<Value> = state
        .repos
        .files
        .keys()
        .filter(|(r, s, p)| *r == repo && *s == sha && p.starts_with(&prefix))
        .map(|(_, _, p)| json!({"type": "file", "path": p}))
        .collect();
    if listing.is_empty() {
        return Err(message(StatusCode::NOT_FOUND, "Not Found"));
    }
    Ok(Json(listing).into_response())
}

fn file(path: &str, bytes: &[u8]) -> Value {
    let (encoding, content) = if bytes.len() > CONTENTS_BYTES_MAX {
        ("none", String::new())
    } else {
        let encoded = base64::engine::general_purpose::STANDARD.encode(bytes);
        let lines: Vec<&str> = encoded
            .as_bytes()
            .chunks(BASE64_LINE_CHARS)
            .map(|line| std::str::from_utf8(line).unwrap())
            .collect();
        ("base64", format!("{}\n", lines.join("\n")))
    };
    let name = path.rsplit('/').next().unwrap_or(path);
    json!({
        "type": "file",
        "encoding": encoding,
        "size": bytes.len(),
        "name": name,
        "path": path,
        "content": content,
    })
}

/// `POST /repos/{owner}/{repo}/issues/comments/{id}/reactions`: 201 when new, 200 when the
/// app had already reacted so.
pub async fn react(
    Extract(state): Extract<Shared>,
    Path((owner, name, comment)): Path<(String, String, i64)>,
    headers: HeaderMap,
    body: Bytes,
) -> Reply {
    let repo = format!("{owner}/{name}");
    let mut state = state.lock().unwrap();
    auth::authorize(&state, &headers, &repo, Need::write("issues"))?;
    let reaction = schema::object(&body, false)?;
    schema::permitted(&reaction, &["content"])?;
    schema::required(&reaction, "content")?;
    let content = schema::one_of(&reaction, "content", &REACTIONS)?.unwrap_or_default();
    let id = state.next_id();
    let reactions = state.repos.reactions.entry((repo, comment)).or_default();
    let status = if reactions.iter().any(|r| r == content) {
        StatusCode::OK
    } else {
        reactions.push(content.to_string());
        StatusCode::CREATED
    };
    Ok((status, Json(json!({"id": id, "content": content}))).into_response())
}

/// `POST /repos/{owner}/{repo}/issues/{number}/comments`.
pub async fn comment(
    Extract(state): Extract<Shared>,
    Path((owner, name, number)): Path<(String, String, u64)>,
    headers: HeaderMap,
    body: Bytes,
) -> Reply {
    let repo = format!("{owner}/{name}");
    let mut state = state.lock().unwrap();
    auth::authorize(&state, &headers, &repo, Need::write("issues"))?;
    let comment = schema::object(&body, false)?;
    schema::permitted(&comment, &["body"])?;
    let text = schema::required(&comment, "body")?.to_string();
    let id = state.next_id();
    state.repos.comments.entry((repo, number)).or_default().push(text.clone());
    Ok((StatusCode::CREATED, Json(json!({"id": id, "body": text}))).into_response())
}

/// `GET /repos/{owner}/{repo}/collaborators/{login}/permission`; the legacy `permission`
/// folds maintain into write and triage into read, `role_name` does not.
pub async fn permission(
    Extract(state): Extract<Shared>,
    Path((owner, name, login)): Path<(String, String, String)>,
    headers: HeaderMap,
) -> Reply {
    let repo = format!("{owner}/{name}");
    let state = state.lock().unwrap();
    auth::authorize(&state, &headers, &repo, Need::read("metadata"))?;
    let Some(role) = state.repos.roles.get(&(repo, login.to_ascii_lowercase())) else {
        return Err(message(StatusCode::NOT_FOUND, "Not Found"));
    };
    let legacy = match role.as_str() {
        "maintain" => "write",
        "triage" => "read",
        other => other,
    };
    let answer = json!({"permission": legacy, "role_name": role, "user": {"login": login}});
    Ok(Json(answer).into_response())
}

/// `GET /repos/{owner}/{repo}/pulls/{number}`.
pub async fn pull(
    Extract(state): Extract<Shared>,
    Path((owner, name, number)): Path<(String, String, u64)>,
    headers: HeaderMap,
) -> Reply {
    let repo = format!("{owner}/{name}");
    let state = state.lock().unwrap();
    auth::authorize(&state, &headers, &repo, Need::read("pull_requests"))?;
    let Some(sha) = state.repos.pulls.get(&(repo.clone(), number)) else {
        return Err(message(StatusCode::NOT_FOUND, "Not Found"));
    };
    let head_repo =
        json!({"full_name": repo, "clone_url": format!("https://github.com/{repo}.git")});
    let gone = state.repos.gone_heads.contains(&(repo.clone(), number));
    let head = json!({
        "sha": sha,
        "ref": format!("pr-{number}"),
        "repo": if gone { Value::Null } else { head_repo },
    });
    Ok(Json(json!({"number": number, "state": "open", "head": head})).into_response())
}
