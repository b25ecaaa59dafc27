//! The `sessions` table: signed-in browsers, by the SHA-256 of their cookie's secret.

use std::time::{Duration, SystemTime};

use rusqlite::{Connection, OptionalExtension};

use super::{Store, StoreError, millis, now_ms, system_time};

/// A live session.
#[derive(Clone, PartialEq, Eq)]
pub struct SessionRecord {
    pub login: String,
    /// The person's GitHub user token.
    pub github_token: String,
    pub expires_at: SystemTime,
}

impl std::fmt::Debug for SessionRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionRecord")
            .field("login", &self.login)
            .field("expires_at", &self.expires_at)
            .finish_non_exhaustive()
    }
}

impl Store {
    /// Stores a session that lasts `ttl` from now; deletes expired ones on the way.
    pub async fn create_session(
        &self,
        secret_sha256: [u8; 32],
        login: &str,
        github_token: &str,
        ttl: Duration,
    ) -> Result<(), StoreError> {
        let (login, token, now) = (login.to_owned(), github_token.to_owned(), now_ms());
        let expires = millis(SystemTime::now() + ttl);
        let insert = move |conn: &mut Connection| {
            conn.execute("DELETE FROM sessions WHERE expires_at_ms <= ?1", [now])?;
            conn.execute(
                "INSERT INTO sessions (secret_sha256, login, github_token, created_at_ms,
                    expires_at_ms) VALUES (?1, ?2, ?3, ?4, ?5)",
                (&secret_sha256[..], &login, &token, now, expires),
            )?;
            Ok(())
        };
        self.worker.call(insert).await
    }

    /// The session whose secret hashes to `secret_sha256`, unless it has expired.
    pub async fn session(
        &self,
        secret_sha256: [u8; 32],
    ) -> Result<Option<SessionRecord>, StoreError> {
        let now = now_ms();
        let one = move |conn: &mut Connection| {
            conn.query_row(
                "SELECT login, github_token, expires_at_ms FROM sessions
                 WHERE secret_sha256 = ?1 AND expires_at_ms > ?2",
                (&secret_sha256[..], now),
                |row| {
                    Ok(SessionRecord {
                        login: row.get(0)?,
                        github_token: row.get(1)?,
                        expires_at: system_time(row.get(2)?),
                    })
                },
            )
            .optional()
        };
        self.worker.call(one).await
    }

    /// Ends a session; whether there was one.
    pub async fn delete_session(&self, secret_sha256: [u8; 32]) -> Result<bool, StoreError> {
        let delete = move |conn: &mut Connection| {
            let n = conn
                .execute("DELETE FROM sessions WHERE secret_sha256 = ?1", [&secret_sha256[..]])?;
            Ok(n > 0)
        };
        self.worker.call(delete).await
    }
}

#[cfg(test)]
mod tests;
