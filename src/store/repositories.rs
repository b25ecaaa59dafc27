//! The `repositories` table: each repository's privacy as GitHub last said it, and the
//! installation it came through. A repository with no row counts as private.

use rusqlite::{Connection, OptionalExtension};

use super::{Store, StoreError, now_ms};

/// A repository's privacy as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RepositoryRecord {
    /// "owner/name", as the latest webhook spelled it.
    pub full_name: String,
    pub private: bool,
    pub installation_id: Option<i64>,
}

impl Store {
    /// Records what a webhook said of a repository: its privacy (`repository.private`) and
    /// the installation it came through (kept when `None`). Called by the intake for every
    /// delivery that names a repository, and for `repository` events.
    pub async fn record_repository(
        &self,
        full_name: &str,
        private: bool,
        installation_id: Option<i64>,
    ) -> Result<(), StoreError> {
        let (name, now) = (full_name.to_owned(), now_ms());
        let upsert = move |conn: &mut Connection| {
            conn.execute(
                "INSERT INTO repositories (full_name, private, installation_id, updated_at_ms)
                 VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (full_name) DO UPDATE SET
                    full_name = excluded.full_name,
                    private = excluded.private,
                    installation_id = COALESCE(excluded.installation_id, installation_id),
                    updated_at_ms = excluded.updated_at_ms",
                (&name, private, installation_id, now),
            )?;
            Ok(())
        };
        self.worker.call(upsert).await
    }

    /// What is known of a repository (case-insensitive), if anything.
    pub async fn repository(
        &self,
        full_name: &str,
    ) -> Result<Option<RepositoryRecord>, StoreError> {
        let name = full_name.to_owned();
        let one = move |conn: &mut Connection| {
            conn.query_row(
                "SELECT full_name, private, installation_id FROM repositories WHERE full_name = ?1",
                [&name],
                |row| {
                    Ok(RepositoryRecord {
                        full_name: row.get(0)?,
                        private: row.get(1)?,
                        installation_id: row.get(2)?,
                    })
                },
            )
            .optional()
        };
        self.worker.call(one).await
    }

    /// The installations that runs or repositories came through, ascending: where a signed-in
    /// person's readable private repositories are listed from.
    pub async fn known_installations(&self) -> Result<Vec<i64>, StoreError> {
        let list = |conn: &mut Connection| {
            let mut statement = conn.prepare(
                "SELECT installation_id FROM runs WHERE installation_id IS NOT NULL
                 UNION
                 SELECT installation_id FROM repositories WHERE installation_id IS NOT NULL
                 ORDER BY 1",
            )?;
            let ids = statement.query_map([], |row| row.get(0))?;
            ids.collect()
        };
        self.worker.call(list).await
    }
}

#[cfg(test)]
mod tests;
