//! Deployments of a commit to an environment, and their statuses.

use serde::de::IgnoredAny;
use serde::{Deserialize, Serialize};

use super::{GitHub, GitHubError, route};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeploymentState {
    InProgress,
    Success,
    Failure,
    Error,
}

/// `ref` is the commit itself: a branch could move before the deployment is made.
/// `auto_merge: false` and no required contexts: tether deploys exactly what it checked, and
/// decides itself which checks must pass first.
#[derive(Serialize)]
struct DeploymentBody<'a> {
    #[serde(rename = "ref")]
    sha: &'a str,
    environment: &'a str,
    auto_merge: bool,
    required_contexts: [&'a str; 0],
}

#[derive(Serialize)]
struct StatusBody<'a> {
    state: DeploymentState,
    log_url: &'a str,
}

#[derive(Deserialize)]
struct Created {
    id: i64,
}

impl GitHub {
    /// `POST /repos/{o}/{r}/deployments` of `sha` to `environment`; the deployment's id.
    pub async fn create_deployment(
        &self,
        installation_id: i64,
        repo: &str,
        sha: &str,
        environment: &str,
    ) -> Result<i64, GitHubError> {
        let (owner, name) = route::repo(repo).ok_or(GitHubError::NotFound)?;
        let sha = route::sha(sha).ok_or(GitHubError::NotFound)?;
        let client = self.installation(installation_id).await?;
        let route = format!("/repos/{owner}/{name}/deployments");
        let body = DeploymentBody { sha, environment, auto_merge: false, required_contexts: [] };
        let created: Created = self.bounded(client.post(route, Some(&body))).await?;
        Ok(created.id)
    }

    /// `POST /repos/{o}/{r}/deployments/{id}/statuses`, linking to the run's log.
    pub async fn create_deployment_status(
        &self,
        installation_id: i64,
        repo: &str,
        deployment_id: i64,
        state: DeploymentState,
        log_url: &str,
    ) -> Result<(), GitHubError> {
        let (owner, name) = route::repo(repo).ok_or(GitHubError::NotFound)?;
        let client = self.installation(installation_id).await?;
        let route = format!("/repos/{owner}/{name}/deployments/{deployment_id}/statuses");
        let body = StatusBody { state, log_url };
        let _: IgnoredAny = self.bounded(client.post(route, Some(&body))).await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_deployment_sends_exactly_four_fields() {
        let body = DeploymentBody {
            sha: "abc",
            environment: "production",
            auto_merge: false,
            required_contexts: [],
        };
        let expected = json!({
            "ref": "abc",
            "environment": "production",
            "auto_merge": false,
            "required_contexts": [],
        });
        assert_eq!(serde_json::to_value(body).unwrap(), expected);
    }

    #[test]
    fn a_status_is_githubs_state_and_the_log() {
        let body = StatusBody { state: DeploymentState::InProgress, log_url: "https://ci/x" };
        let expected = json!({"state": "in_progress", "log_url": "https://ci/x"});
        assert_eq!(serde_json::to_value(body).unwrap(), expected);
        let states = [DeploymentState::Success, DeploymentState::Failure, DeploymentState::Error];
        assert_eq!(serde_json::to_value(states).unwrap(), json!(["success", "failure", "error"]));
    }
}
