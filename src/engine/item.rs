//! `OutboxItem`: every GitHub write the engine makes, as one serde type that both writes an
//! outbox row and reads it back.
//!
//! The row's `kind` column holds the enum's tag and `payload` the item as JSON. Items are read
//! with the column's kind put back into the JSON, so rows written before the tag was in the
//! payload read the same.

use std::time::SystemTime;

use serde::{Deserialize, Serialize};

use crate::core::run::Conclusion;
use crate::github::{DeploymentState, Reaction};
use crate::store::OutboxEntry;

/// One GitHub write. A run's items go out in order; the others as soon as they are due.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum OutboxItem {
    /// Create the run's check run (`queued`, with how to connect a runner).
    CreateCheckRun,
    /// Update the run's check run.
    UpdateCheckRun(CheckRunUpdate),
    /// Report an unusable `tether.toml` as a failed check run named after it.
    ConfigError { installation: i64, repo: String, sha: String, message: String },
    /// React to a comment.
    Reaction { installation: i64, repo: String, comment_id: i64, content: Reaction },
    /// Reply on an issue or pull request.
    Comment { installation: i64, repo: String, issue: u64, body: String },
    /// Create the run's deployment and mark it in progress.
    DeploymentStart,
    /// Set the run's deployment's final state.
    DeploymentStatus { state: DeploymentState },
}

/// A check run's new state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum CheckRunUpdate {
    InProgress {
        #[serde(with = "unix_ms")]
        started_at: SystemTime,
    },
    Completed {
        conclusion: Conclusion,
        #[serde(with = "unix_ms")]
        completed_at: SystemTime,
        title: String,
        summary: String,
        text: Option<String>,
    },
}

impl OutboxItem {
    /// The row that stores this item.
    pub fn entry(&self) -> OutboxEntry {
        let value = serde_json::to_value(self).expect("an outbox item is always JSON");
        let kind = value["kind"].as_str().expect("an outbox item has a kind tag").to_string();
        OutboxEntry { kind, payload: value.to_string() }
    }

    /// The item a row stores.
    pub fn from_row(kind: &str, payload: &str) -> serde_json::Result<OutboxItem> {
        let mut fields: serde_json::Map<String, serde_json::Value> = serde_json::from_str(payload)?;
        fields.insert("kind".into(), kind.into());
        serde_json::from_value(fields.into())
    }
}

/// A time as whole milliseconds since the Unix epoch, as the outbox always stored them.
mod unix_ms {
    use std::time::{Duration, SystemTime, UNIX_EPOCH};

    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(time: &SystemTime, serializer: S) -> Result<S::Ok, S::Error> {
        let ms = time.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64);
        serializer.serialize_i64(ms)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<SystemTime, D::Error> {
        let ms = i64::deserialize(deserializer)?;
        Ok(UNIX_EPOCH + Duration::from_millis(ms.max(0) as u64))
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, UNIX_EPOCH};

    use super::*;

    fn at(ms: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_millis(ms)
    }

    #[test]
    fn every_item_reads_back_as_written_with_its_tag_as_kind() {
        let completed = CheckRunUpdate::Completed {
            conclusion: Conclusion::TimedOut,
            completed_at: at(1_700_000_000_123),
            title: "Timed out".into(),
            summary: "s".into(),
            text: None,
        };
        let items = [
            (OutboxItem::CreateCheckRun, "create_check_run"),
            (OutboxItem::UpdateCheckRun(completed), "update_check_run"),
            (
                OutboxItem::UpdateCheckRun(CheckRunUpdate::InProgress { started_at: at(5) }),
                "update_check_run",
            ),
            (
                OutboxItem::ConfigError {
                    installation: 1,
                    repo: "o/r".into(),
                    sha: "abc".into(),
                    message: "m".into(),
                },
                "config_error",
            ),
            (
                OutboxItem::Reaction {
                    installation: 1,
                    repo: "o/r".into(),
                    comment_id: 9,
                    content: Reaction::Rocket,
                },
                "reaction",
            ),
            (
                OutboxItem::Comment {
                    installation: 1,
                    repo: "o/r".into(),
                    issue: 3,
                    body: "b".into(),
                },
                "comment",
            ),
            (OutboxItem::DeploymentStart, "deployment_start"),
            (OutboxItem::DeploymentStatus { state: DeploymentState::Failure }, "deployment_status"),
        ];
        for (item, kind) in items {
            let entry = item.entry();
            assert_eq!(entry.kind, kind);
            assert_eq!(OutboxItem::from_row(&entry.kind, &entry.payload).unwrap(), item);
        }
    }

    /// Rows written before the outbox had a type: the kind only in its column, and `{}`.
    #[test]
    fn rows_written_before_the_type_read_the_same() {
        let read = |kind: &str, payload: &str| OutboxItem::from_row(kind, payload).unwrap();
        assert_eq!(read("create_check_run", "{}"), OutboxItem::CreateCheckRun);
        assert_eq!(read("deployment_start", "{}"), OutboxItem::DeploymentStart);
        let completed = r#"{"status":"completed","conclusion":"timed_out","completed_at":1000,
                            "title":"t","summary":"s","text":null}"#;
        let expected = CheckRunUpdate::Completed {
            conclusion: Conclusion::TimedOut,
            completed_at: at(1000),
            title: "t".into(),
            summary: "s".into(),
            text: None,
        };
        assert_eq!(read("update_check_run", completed), OutboxItem::UpdateCheckRun(expected));
        let started = r#"{"status":"in_progress","started_at":7}"#;
        let expected = CheckRunUpdate::InProgress { started_at: at(7) };
        assert_eq!(read("update_check_run", started), OutboxItem::UpdateCheckRun(expected));
        let rocket = r#"{"installation":1,"repo":"o/r","comment_id":2,"content":"rocket"}"#;
        let expected = OutboxItem::Reaction {
            installation: 1,
            repo: "o/r".into(),
            comment_id: 2,
            content: Reaction::Rocket,
        };
        assert_eq!(read("reaction", rocket), expected);
        let state = OutboxItem::DeploymentStatus { state: DeploymentState::Error };
        assert_eq!(read("deployment_status", r#"{"state":"error"}"#), state);
    }

    #[test]
    fn an_unknown_kind_or_a_bad_payload_is_an_error() {
        assert!(OutboxItem::from_row("delete_repository", "{}").is_err());
        assert!(OutboxItem::from_row("comment", "{}").is_err());
        assert!(OutboxItem::from_row("create_check_run", "[]").is_err());
    }
}
