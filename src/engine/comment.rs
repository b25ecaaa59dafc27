//! `/run` comments on pull requests (the Pangeo Forge admin flow): typing the command is the
//! consent to run the pull request's code on one's own runner, so only users who can write to the
//! repository may, and the runs go to the commenter's runner.

use super::Engine;
use super::outbox::{COMMENT, REACTION};
use super::plan::{Loaded, Planned, Retry};
use crate::core::command::{RunCommand, parse_run_command};
use crate::core::event::IssueComment;
use crate::core::{Check, EventKind};
use crate::store::OutboxEntry;

impl Engine {
    pub(super) async fn on_comment(
        &self,
        comment: &IssueComment,
        delivery: &str,
    ) -> Result<String, Retry> {
        let Some(command) = parse_run_command(&comment.body) else {
            return Ok("ignored: not a /run comment".into());
        };
        let Some(installation) = comment.installation else {
            return Ok("failed: no installation in the payload".into());
        };
        let refuse = |why: String| async move {
            self.answer(comment, installation, "confused", Some(&why)).await?;
            Ok(format!("processed: /run refused: {why}"))
        };
        if !comment.on_pull_request {
            return refuse("`/run` works on pull requests only.".into()).await;
        }
        let github = &self.inner.github;
        let permission =
            github.permission(installation, &comment.repo.full_name, &comment.sender.login).await;
        if !permission.map_err(|e| Retry(e.to_string()))?.can_write() {
            let why = format!(
                "@{} needs write access to this repository to use `/run`.",
                comment.sender.login
            );
            return refuse(why).await;
        }
        let head = github
            .pull_request_head(installation, &comment.repo.full_name, comment.issue_number)
            .await;
        let head = head.map_err(|e| Retry(e.to_string()))?;
        let config =
            match self.load_config(installation, &comment.repo.full_name, &head.sha).await? {
                Loaded::Valid(config) => config,
                Loaded::Missing => {
                    return refuse("this pull request has no `tether.toml`.".into()).await;
                }
                Loaded::Invalid(message) => {
                    return refuse(format!("`tether.toml` cannot be used:\n```\n{message}\n```"))
                        .await;
                }
            };
        let checks: Vec<&Check> = match &command {
            RunCommand::All => {
                crate::core::filter::checks_for(&config, EventKind::PullRequest, None)
            }
            RunCommand::Checks(names) => match config.select(names) {
                Ok(checks) => checks,
                Err(e) => return refuse(format!("{e}.")).await,
            },
        };
        // Accepted only now: the checks exist and can run.
        self.answer(comment, installation, "eyes", None).await?;
        let plan = Planned {
            repo: &comment.repo.full_name,
            installation,
            sha: &head.sha,
            clone_url: &head.clone_url,
            event: "issue_comment",
            sender: &comment.sender.login,
            pr_number: Some(comment.issue_number),
            delivery_id: Some(delivery),
            deploys: false,
            comment_id: Some(comment.comment_id),
        };
        let ids = self.queue_runs(&plan, &checks).await.map_err(|e| Retry(e.to_string()))?;
        Ok(format!("processed: /run queued {} runs", ids.len()))
    }

    /// Reacts to the comment and, with a reason, replies to the pull request.
    async fn answer(
        &self,
        comment: &IssueComment,
        installation: i64,
        reaction: &str,
        why: Option<&str>,
    ) -> Result<(), Retry> {
        let repo = &comment.repo.full_name;
        let mut entries = vec![OutboxEntry {
            kind: REACTION.into(),
            payload: serde_json::json!({ "installation": installation, "repo": repo, "comment_id": comment.comment_id, "content": reaction })
                .to_string(),
        }];
        if let Some(why) = why {
            let body = format!("@{} {why}", comment.sender.login);
            entries.push(OutboxEntry {
                kind: COMMENT.into(),
                payload: serde_json::json!({ "installation": installation, "repo": repo, "issue": comment.issue_number, "body": body })
                    .to_string(),
            });
        }
        for entry in entries {
            self.inner.store.enqueue(None, entry).await.map_err(|e| Retry(e.to_string()))?;
        }
        self.inner.outbox.notify_one();
        Ok(())
    }
}
