//! Check runs, created and updated with GitHub's validation.

use axum::body::Bytes;
use std::collections::HashMap;

use axum::extract::{Path, Query, State as Extract};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Json, Response};
use serde_json::Value;

use super::auth::{self, Need};
use super::schema::{self, Object, Reply};
use super::{Shared, message};

const CREATE_FIELDS: [&str; 10] = [
    "name",
    "head_sha",
    "details_url",
    "external_id",
    "status",
    "started_at",
    "conclusion",
    "completed_at",
    "output",
    "actions",
];
/// An update may rename a run but not move it to another commit.
const UPDATE_FIELDS: [&str; 9] = [
    "name",
    "details_url",
    "external_id",
    "status",
    "started_at",
    "conclusion",
    "completed_at",
    "output",
    "actions",
];
const OUTPUT_FIELDS: [&str; 5] = ["title", "summary", "text", "annotations", "images"];
/// What an app may set; GitHub Actions alone sets `waiting`, `requested`, `pending` and `stale`.
const STATUSES: [&str; 3] = ["queued", "in_progress", "completed"];
const CONCLUSIONS: [&str; 7] =
    ["action_required", "cancelled", "failure", "neutral", "success", "skipped", "timed_out"];
/// GitHub's limit on `output.summary` and `output.text`.
const OUTPUT_TEXT_MAX_CHARS: usize = 65_535;
/// GitHub's limits on a check run's action buttons.
const ACTIONS_MAX: usize = 3;
const ACTION_FIELDS: [(&str, usize); 3] = [("label", 20), ("description", 40), ("identifier", 20)];

/// `POST /repos/{owner}/{repo}/check-runs`.
pub async fn create(
    Extract(state): Extract<Shared>,
    Path((owner, name)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Reply {
    let repo = format!("{owner}/{name}");
    let mut state = state.lock().unwrap();
    auth::authorize(&state, &headers, &repo, Need::write("checks"))?;
    let mut run = schema::object(&body, false)?;
    schema::permitted(&run, &CREATE_FIELDS)?;
    schema::required(&run, "name")?;
    let sha = schema::required(&run, "head_sha")?;
    if sha.len() != 40 || !sha.bytes().all(|b| b.is_ascii_hexdigit()) {
        let detail = format!("No commit found for SHA: {sha}");
        return Err(message(StatusCode::UNPROCESSABLE_ENTITY, &detail));
    }
    validate(&run)?;
    run.entry("status").or_insert_with(|| "queued".into());
    complete(&mut run)?;
    run.insert("id".into(), state.next_id().into());
    let run = Value::Object(run);
    state.check_runs.entry(repo).or_default().push(run.clone());
    Ok((StatusCode::CREATED, Json(run)).into_response())
}

/// What the list of a commit's check runs takes in its query.
const LIST_PARAMS: [&str; 6] = ["check_name", "status", "filter", "per_page", "page", "app_id"];

/// `GET /repos/{owner}/{repo}/commits/{ref}/check-runs`: the commit's runs, filtered by name;
/// `filter=latest` (the default) keeps the newest of each name.
pub async fn list(
    Extract(state): Extract<Shared>,
    Path((owner, name, sha)): Path<(String, String, String)>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Reply {
    let repo = format!("{owner}/{name}");
    let state = state.lock().unwrap();
    auth::authorize(&state, &headers, &repo, Need::read("checks"))?;
    if let Some(unknown) = query.keys().find(|k| !LIST_PARAMS.contains(&k.as_str())) {
        return Err(schema::invalid(&format!("{unknown} is not a parameter of this endpoint")));
    }
    let filter = query.get("filter").map_or("latest", String::as_str);
    if !["latest", "all"].contains(&filter) {
        return Err(schema::invalid(&format!("filter {filter:?} is not one of latest, all")));
    }
    let per_page: usize = query.get("per_page").map_or(Ok(30), |n| n.parse()).unwrap_or(0);
    if !(1..=100).contains(&per_page) {
        return Err(schema::invalid("per_page must be between 1 and 100"));
    }
    let all = state.check_runs.get(&repo).cloned().unwrap_or_default();
    let mut runs: Vec<Value> = all
        .into_iter()
        .rev()
        .filter(|r| r["head_sha"] == sha.as_str())
        .filter(|r| query.get("check_name").is_none_or(|n| r["name"] == n.as_str()))
        .collect();
    if filter == "latest" {
        let mut seen = std::collections::HashSet::new();
        runs.retain(|r| seen.insert(r["name"].to_string()));
    }
    let total = runs.len();
    runs.truncate(per_page);
    Ok(Json(serde_json::json!({ "total_count": total, "check_runs": runs })).into_response())
}

/// `PATCH /repos/{owner}/{repo}/check-runs/{id}`: the fields sent replace those stored.
pub async fn update(
    Extract(state): Extract<Shared>,
    Path((owner, name, id)): Path<(String, String, i64)>,
    headers: HeaderMap,
    body: Bytes,
) -> Reply {
    let repo = format!("{owner}/{name}");
    let mut state = state.lock().unwrap();
    auth::authorize(&state, &headers, &repo, Need::write("checks"))?;
    let changes = schema::object(&body, false)?;
    schema::permitted(&changes, &UPDATE_FIELDS)?;
    validate(&changes)?;
    let runs = state.check_runs.entry(repo).or_default();
    let Some(Value::Object(stored)) = runs.iter_mut().find(|run| run["id"] == id) else {
        return Err(message(StatusCode::NOT_FOUND, "Not Found"));
    };
    let mut run = stored.clone();
    run.extend(changes);
    complete(&mut run)?;
    *stored = run.clone();
    Ok(Json(Value::Object(run)).into_response())
}

/// The checks common to a create and an update.
fn validate(run: &Object) -> Result<(), Response> {
    for key in ["name", "details_url", "external_id"] {
        schema::string(run, key)?;
    }
    schema::one_of(run, "status", &STATUSES)?;
    schema::one_of(run, "conclusion", &CONCLUSIONS)?;
    schema::timestamp(run, "started_at")?;
    schema::timestamp(run, "completed_at")?;
    validate_actions(run)?;
    match run.get("output") {
        None => Ok(()),
        Some(Value::Object(output)) => validate_output(output),
        Some(other) => {
            Err(schema::invalid(&format!("For 'properties/output', {other} is not an object.")))
        }
    }
}

/// `actions`: at most 3, each exactly a label, a description and an identifier within their
/// lengths.
fn validate_actions(run: &Object) -> Result<(), Response> {
    let Some(actions) = run.get("actions") else { return Ok(()) };
    let Value::Array(actions) = actions else {
        return Err(schema::invalid(&format!(
            "For 'properties/actions', {actions} is not an array."
        )));
    };
    if actions.len() > ACTIONS_MAX {
        return Err(schema::invalid("Only 3 actions can be provided."));
    }
    for action in actions {
        let Value::Object(action) = action else {
            return Err(schema::invalid(&format!("For 'items', {action} is not an object.")));
        };
        let keys: Vec<&str> = ACTION_FIELDS.iter().map(|(k, _)| *k).collect();
        schema::permitted(action, &keys)?;
        for (key, max) in ACTION_FIELDS {
            schema::required(action, key)?;
            schema::bounded(action, key, max)?;
        }
    }
    Ok(())
}

fn validate_output(output: &Object) -> Result<(), Response> {
    schema::permitted(output, &OUTPUT_FIELDS)?;
    schema::required(output, "title")?;
    schema::required(output, "summary")?;
    schema::bounded(output, "summary", OUTPUT_TEXT_MAX_CHARS)?;
    schema::bounded(output, "text", OUTPUT_TEXT_MAX_CHARS)
}

/// A conclusion completes a run; a completed run needs one.
fn complete(run: &mut Object) -> Result<(), Response> {
    if run.contains_key("conclusion") {
        run.insert("status".into(), "completed".into());
    }
    let completed = run.get("status").is_some_and(|status| status == "completed")
        || run.contains_key("completed_at");
    if completed && !run.contains_key("conclusion") {
        return Err(schema::invalid("\"conclusion\" wasn't supplied."));
    }
    Ok(())
}
