-- Who may see what: repositories' privacy as GitHub last said it, and web sign-in sessions.
--
-- Times are milliseconds since the Unix epoch. Repositories and logins compare with NOCASE, as
-- on GitHub.

-- A repository's privacy, from the latest webhook that named it. A repository with no row here
-- counts as private: that covers every run from before this table existed.
CREATE TABLE repositories (
    -- "owner/name".
    full_name TEXT NOT NULL PRIMARY KEY COLLATE NOCASE,
    private INTEGER NOT NULL CHECK (private IN (0, 1)),
    installation_id INTEGER,
    updated_at_ms INTEGER NOT NULL
) STRICT;

-- The public ones, which every anonymous list joins against.
CREATE INDEX repositories_public ON repositories (full_name) WHERE private = 0;

-- The installations that runs came through, for the lists of a signed-in person.
CREATE INDEX runs_by_installation ON runs (installation_id) WHERE installation_id IS NOT NULL;

-- A signed-in browser. The cookie holds a random 256-bit secret; only its SHA-256 is stored, so
-- a copy of the database signs nobody in.
CREATE TABLE sessions (
    secret_sha256 BLOB NOT NULL PRIMARY KEY CHECK (length(secret_sha256) = 32),
    login TEXT NOT NULL COLLATE NOCASE,
    -- The person's GitHub user token, which lists the private repositories they may read.
    github_token TEXT NOT NULL,
    created_at_ms INTEGER NOT NULL,
    expires_at_ms INTEGER NOT NULL
) STRICT;

-- Expired sessions, to delete.
CREATE INDEX sessions_by_expiry ON sessions (expires_at_ms);
