//! `/run` comments on pull requests (the Pangeo Forge admin flow): typing the command is the
//! consent to run the pull request's code on one's own runner, so only users who can write to the
//! repository may, and the runs go to the commenter's runner.

use super::{Intake, Outcome};
use crate::core::command::{RunCommand, parse_run_command};
use crate::core::event::IssueComment;
use crate::core::{Check, EventKind};
use crate::engine::item::OutboxItem;
use crate::engine::plan::{Loaded, Planned, Retry, Trigger};
use crate::github::Reaction;

impl Intake {
    pub(super) async fn on_comment(
        &self,
        comment: &IssueComment,
        delivery: &str,
    ) -> Result<Outcome, Retry> {
        let Some(command) = parse_run_command(&comment.body) else {
            return Ok(Outcome::ignored("not a /run comment"));
        };
        let Some(installation) = comment.installation else {
            return Ok(Outcome::no_installation());
        };
        let refuse = |why: String| async move {
            self.answer(comment, installation, Reaction::Confused, Some(&why)).await?;
            Ok(Outcome::processed(format!("/run refused: {why}")))
        };
        if !comment.on_pull_request {
            return refuse("`/run` works on pull requests only.".into()).await;
        }
        let (github, repo) = (&self.github, &comment.repo.full_name);
        if !github.permission(installation, repo, &comment.sender.login).await?.can_write() {
            let why = format!(
                "@{} needs write access to this repository to use `/run`.",
                comment.sender.login
            );
            return refuse(why).await;
        }
        let head = github.pull_request_head(installation, repo, comment.issue_number).await?;
        let config = match self.planner.load_config(installation, repo, &head.sha).await? {
            Loaded::Valid(config) => config,
            Loaded::Missing => {
                return refuse("this pull request has no `tether.toml`.".into()).await;
            }
            Loaded::Invalid(message) => {
                return refuse(format!("`tether.toml` cannot be used:\n```\n{message}\n```")).await;
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
        self.answer(comment, installation, Reaction::Eyes, None).await?;
        let plan = Planned::new(Trigger::RunComment(comment, &head), installation, delivery);
        // The consent the held runs at this head waited for: their places go to these runs.
        self.planner.supersede(&plan, comment.issue_number, &checks).await?;
        let ids = self.planner.queue_runs(&plan, &checks).await?;
        Ok(Outcome::processed(format!("/run queued {} runs", ids.len())))
    }

    /// Reacts to the comment and, with a reason, replies to the pull request.
    async fn answer(
        &self,
        comment: &IssueComment,
        installation: i64,
        reaction: Reaction,
        why: Option<&str>,
    ) -> Result<(), Retry> {
        let repo = comment.repo.full_name.clone();
        let mut items = vec![OutboxItem::Reaction {
            installation,
            repo: repo.clone(),
            comment_id: comment.comment_id,
            content: reaction,
        }];
        if let Some(why) = why {
            let body = format!("@{} {why}", comment.sender.login);
            items.push(OutboxItem::Comment {
                installation,
                repo,
                issue: comment.issue_number,
                body,
            });
        }
        for item in items {
            self.store.enqueue(None, item.entry()).await?;
        }
        self.outbox_wake.notify_one();
        Ok(())
    }
}
