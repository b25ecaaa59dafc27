//! Check runs: what tether writes to a commit, as exactly the fields GitHub documents.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use super::{GitHub, GitHubError, route};
pub use crate::core::report::CheckAction;

/// The latest instant RFC 3339 can write with a four-digit year: 9999-12-31T23:59:59Z.
const LATEST_TIMESTAMP_SECS: u64 = 253_402_300_799;

/// A check run as tether creates or updates it. `update_check_run` sends neither `name` nor
/// `head_sha`: a run keeps both.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckRunWrite {
    pub name: String,
    pub head_sha: String,
    pub external_id: String,
    pub details_url: String,
    pub status: CheckStatus,
    pub started_at: Option<SystemTime>,
    /// Required by GitHub when `status` is `Completed`.
    pub conclusion: Option<CheckConclusion>,
    pub completed_at: Option<SystemTime>,
    pub output: Option<CheckOutputWrite>,
    /// Its buttons: `None` leaves them as they are, an empty list removes them.
    pub actions: Option<Vec<CheckAction>>,
}

/// What a check run shows. GitHub refuses a summary or text over 65,535 characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckOutputWrite {
    pub title: String,
    pub summary: String,
    pub text: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CheckStatus {
    Queued,
    InProgress,
    Completed,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CheckConclusion {
    Success,
    Failure,
    Cancelled,
    TimedOut,
    ActionRequired,
    Neutral,
    Skipped,
}

/// The request body: `None`s are left out rather than sent as `null`.
#[derive(Serialize)]
struct CheckRunBody<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    name: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    head_sha: Option<&'a str>,
    external_id: &'a str,
    details_url: &'a str,
    status: CheckStatus,
    #[serde(skip_serializing_if = "Option::is_none")]
    started_at: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    conclusion: Option<CheckConclusion>,
    #[serde(skip_serializing_if = "Option::is_none")]
    completed_at: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    output: Option<OutputBody<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    actions: Option<Vec<ActionBody>>,
}

#[derive(Serialize)]
struct ActionBody {
    label: &'static str,
    description: &'static str,
    identifier: &'static str,
}

#[derive(Serialize)]
struct OutputBody<'a> {
    title: &'a str,
    summary: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    text: Option<&'a str>,
}

#[derive(Deserialize)]
struct Created {
    id: i64,
}

/// Check runs GitHub may list per page (its maximum).
const CHECK_RUNS_PER_PAGE: u32 = 100;

#[derive(Serialize)]
struct CheckRunQuery<'a> {
    check_name: &'a str,
    filter: &'static str,
    per_page: u32,
}

#[derive(Deserialize)]
struct CheckRunList {
    check_runs: Vec<Listed>,
}

#[derive(Deserialize)]
struct Listed {
    id: i64,
    external_id: Option<String>,
}

impl CheckRunWrite {
    /// The body of a create (`identify`) or an update (not).
    fn body(&self, identify: bool) -> CheckRunBody<'_> {
        let output = self.output.as_ref().map(|output| OutputBody {
            title: &output.title,
            summary: &output.summary,
            text: output.text.as_deref(),
        });
        CheckRunBody {
            name: identify.then_some(self.name.as_str()),
            head_sha: identify.then_some(self.head_sha.as_str()),
            external_id: &self.external_id,
            details_url: &self.details_url,
            status: self.status,
            started_at: self.started_at.map(timestamp),
            conclusion: self.conclusion,
            completed_at: self.completed_at.map(timestamp),
            output,
            actions: self.actions.as_ref().map(|actions| {
                actions
                    .iter()
                    .map(|a| ActionBody {
                        label: a.label,
                        description: a.description,
                        identifier: a.identifier,
                    })
                    .collect()
            }),
        }
    }
}

/// GitHub's `YYYY-MM-DDTHH:MM:SSZ`, clamped to what that can write (humantime panics outside).
fn timestamp(time: SystemTime) -> String {
    let latest = UNIX_EPOCH + Duration::from_secs(LATEST_TIMESTAMP_SECS);
    humantime::format_rfc3339_seconds(time.clamp(UNIX_EPOCH, latest)).to_string()
}

impl GitHub {
    /// `POST /repos/{owner}/{repo}/check-runs`; the new run's id.
    pub async fn create_check_run(
        &self,
        installation_id: i64,
        repo: &str,
        check_run: &CheckRunWrite,
    ) -> Result<i64, GitHubError> {
        let (owner, name) = route::repo(repo).ok_or(GitHubError::NotFound)?;
        let client = self.installation(installation_id).await?;
        let route = format!("/repos/{owner}/{name}/check-runs");
        let created: Created =
            self.bounded(client.post(route, Some(&check_run.body(true)))).await?;
        Ok(created.id)
    }

    /// The check run named `name` on commit `sha` with our `external_id`, if GitHub has one:
    /// `GET /repos/{owner}/{repo}/commits/{sha}/check-runs`. For a create that may have reached
    /// GitHub before its answer was lost.
    pub async fn find_check_run(
        &self,
        installation_id: i64,
        repo: &str,
        sha: &str,
        name: &str,
        external_id: &str,
    ) -> Result<Option<i64>, GitHubError> {
        let (owner, repo_name) = route::repo(repo).ok_or(GitHubError::NotFound)?;
        if sha.is_empty() || !sha.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(GitHubError::NotFound);
        }
        let client = self.installation(installation_id).await?;
        let route = format!("/repos/{owner}/{repo_name}/commits/{sha}/check-runs");
        let query =
            CheckRunQuery { check_name: name, filter: "all", per_page: CHECK_RUNS_PER_PAGE };
        let list: CheckRunList = self.bounded(client.get(route, Some(&query))).await?;
        let ours =
            list.check_runs.into_iter().find(|r| r.external_id.as_deref() == Some(external_id));
        Ok(ours.map(|r| r.id))
    }

    /// `PATCH /repos/{owner}/{repo}/check-runs/{id}`.
    pub async fn update_check_run(
        &self,
        installation_id: i64,
        repo: &str,
        check_run_id: i64,
        check_run: &CheckRunWrite,
    ) -> Result<(), GitHubError> {
        let (owner, name) = route::repo(repo).ok_or(GitHubError::NotFound)?;
        let client = self.installation(installation_id).await?;
        let route = format!("/repos/{owner}/{name}/check-runs/{check_run_id}");
        let body = check_run.body(false);
        let _: serde::de::IgnoredAny = self.bounded(client.patch(route, Some(&body))).await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn queued() -> CheckRunWrite {
        CheckRunWrite {
            name: "test".into(),
            head_sha: "a".repeat(40),
            external_id: "run-1".into(),
            details_url: "https://ci.example/runs/1".into(),
            status: CheckStatus::Queued,
            started_at: None,
            conclusion: None,
            completed_at: None,
            output: None,
            actions: None,
        }
    }

    #[test]
    fn actions_are_sent_as_githubs_fields_and_an_empty_list_removes_them() {
        let cancel = crate::core::report::CANCEL_ACTION;
        let with = CheckRunWrite { actions: Some(vec![cancel]), ..queued() };
        let body = serde_json::to_value(with.body(true)).unwrap();
        let expected =
            json!([{"label": "Cancel", "description": cancel.description, "identifier": "cancel"}]);
        assert_eq!(body["actions"], expected);
        let without = CheckRunWrite { actions: Some(vec![]), ..queued() };
        assert_eq!(serde_json::to_value(without.body(false)).unwrap()["actions"], json!([]));
    }

    #[test]
    fn a_create_sends_identity_and_leaves_out_nones() {
        let body = serde_json::to_value(queued().body(true)).unwrap();
        let expected = json!({
            "name": "test",
            "head_sha": "a".repeat(40),
            "external_id": "run-1",
            "details_url": "https://ci.example/runs/1",
            "status": "queued",
        });
        assert_eq!(body, expected);
    }

    #[test]
    fn an_update_sends_times_conclusion_and_output_but_no_identity() {
        let started = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let run = CheckRunWrite {
            status: CheckStatus::Completed,
            started_at: Some(started),
            conclusion: Some(CheckConclusion::TimedOut),
            completed_at: Some(started + Duration::from_millis(61_500)),
            output: Some(CheckOutputWrite {
                title: "timed out".into(),
                summary: "after 1m".into(),
                text: None,
            }),
            ..queued()
        };
        let body = serde_json::to_value(run.body(false)).unwrap();
        let expected = json!({
            "external_id": "run-1",
            "details_url": "https://ci.example/runs/1",
            "status": "completed",
            "started_at": "2023-11-14T22:13:20Z",
            "conclusion": "timed_out",
            "completed_at": "2023-11-14T22:14:21Z",
            "output": {"title": "timed out", "summary": "after 1m"},
        });
        assert_eq!(body, expected);
    }

    #[test]
    fn enums_are_githubs_words() {
        let words = |v: &[CheckConclusion]| serde_json::to_value(v).unwrap();
        use CheckConclusion::*;
        let all = [Success, Failure, Cancelled, TimedOut, ActionRequired, Neutral, Skipped];
        let expected = json!([
            "success",
            "failure",
            "cancelled",
            "timed_out",
            "action_required",
            "neutral",
            "skipped"
        ]);
        assert_eq!(words(&all), expected);
        assert_eq!(serde_json::to_value(CheckStatus::InProgress).unwrap(), "in_progress");
    }

    #[test]
    fn timestamps_outside_rfc3339_are_clamped_not_panics() {
        assert_eq!(timestamp(UNIX_EPOCH - Duration::from_secs(1)), "1970-01-01T00:00:00Z");
        let far = UNIX_EPOCH + Duration::from_secs(LATEST_TIMESTAMP_SECS * 2);
        assert_eq!(timestamp(far), "9999-12-31T23:59:59Z");
    }
}
