//! Deployments and their statuses, with exactly the fields GitHub permits.

use axum::body::Bytes;
use axum::extract::{Path, State as Extract};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Json};
use serde_json::Value;

use super::auth::{self, Need};
use super::schema::{self, Reply};
use super::{Shared, message};

const DEPLOYMENT_FIELDS: [&str; 9] = [
    "ref",
    "task",
    "auto_merge",
    "required_contexts",
    "payload",
    "environment",
    "description",
    "transient_environment",
    "production_environment",
];
const STATUS_FIELDS: [&str; 7] = [
    "state",
    "target_url",
    "log_url",
    "description",
    "environment",
    "environment_url",
    "auto_inactive",
];
const STATES: [&str; 7] =
    ["error", "failure", "inactive", "in_progress", "queued", "pending", "success"];

/// `POST /repos/{owner}/{repo}/deployments`.
pub async fn create(
    Extract(state): Extract<Shared>,
    Path((owner, name)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Reply {
    let repo = format!("{owner}/{name}");
    let mut state = state.lock().unwrap();
    auth::authorize(&state, &headers, &repo, Need::write("deployments"))?;
    let mut deployment = schema::object(&body, false)?;
    schema::permitted(&deployment, &DEPLOYMENT_FIELDS)?;
    let sha = schema::required(&deployment, "ref")?.to_string();
    for key in ["task", "environment", "description"] {
        schema::string(&deployment, key)?;
    }
    for key in ["auto_merge", "transient_environment", "production_environment"] {
        schema::boolean(&deployment, key)?;
    }
    schema::strings(&deployment, "required_contexts")?;
    let id = state.next_id();
    let sent = Value::Object(deployment.clone());
    state.deployments.entry(repo).or_default().push((id, sent, Vec::new()));
    deployment.insert("id".into(), id.into());
    deployment.insert("sha".into(), sha.into());
    Ok((StatusCode::CREATED, Json(Value::Object(deployment))).into_response())
}

/// `POST /repos/{owner}/{repo}/deployments/{id}/statuses`.
pub async fn status(
    Extract(state): Extract<Shared>,
    Path((owner, name, id)): Path<(String, String, i64)>,
    headers: HeaderMap,
    body: Bytes,
) -> Reply {
    let repo = format!("{owner}/{name}");
    let mut state = state.lock().unwrap();
    auth::authorize(&state, &headers, &repo, Need::write("deployments"))?;
    let status = schema::object(&body, false)?;
    schema::permitted(&status, &STATUS_FIELDS)?;
    schema::required(&status, "state")?;
    schema::one_of(&status, "state", &STATES)?;
    for key in ["target_url", "log_url", "description", "environment", "environment_url"] {
        schema::string(&status, key)?;
    }
    schema::boolean(&status, "auto_inactive")?;
    let status_id = state.next_id();
    let deployments = state.deployments.entry(repo).or_default();
    let Some((_, _, statuses)) = deployments.iter_mut().find(|(d, _, _)| *d == id) else {
        return Err(message(StatusCode::NOT_FOUND, "Not Found"));
    };
    statuses.push(Value::Object(status.clone()));
    let mut answer = status.clone();
    answer.insert("id".into(), status_id.into());
    Ok((StatusCode::CREATED, Json(Value::Object(answer))).into_response())
}
