-- Users (GitHub logins) and the runners connected right now.
--
-- Logins are case-insensitive, as on GitHub: `login` and `runners.owner` compare with NOCASE, so
-- `Alice` and `alice` are one user. Times are milliseconds since the Unix epoch.

CREATE TABLE users (
    login TEXT NOT NULL PRIMARY KEY COLLATE NOCASE,
    -- Follows the account across renames, unlike the login; NULL until known.
    github_id INTEGER UNIQUE,
    first_seen_ms INTEGER NOT NULL,
    -- NULL when the row was made for a runner's owner who never logged in on the web.
    last_login_ms INTEGER
) STRICT;

-- Rows live only as long as a runner's session: they are removed when it ends, and all of them
-- at start, since sessions do not survive the process.
CREATE TABLE runners (
    id INTEGER PRIMARY KEY,
    owner TEXT NOT NULL COLLATE NOCASE REFERENCES users (login),
    name TEXT NOT NULL,
    os TEXT NOT NULL,
    arch TEXT NOT NULL,
    -- A JSON array of strings.
    labels TEXT NOT NULL CHECK (json_valid(labels) AND json_type(labels) = 'array'),
    capacity INTEGER NOT NULL CHECK (capacity >= 0),
    session TEXT NOT NULL,
    connected_at_ms INTEGER NOT NULL,
    UNIQUE (owner, name)
) STRICT;

-- For removing the runners of a session when it ends. (The foreign key's lookups by owner use
-- the index of UNIQUE (owner, name).)
CREATE INDEX runners_by_session ON runners (session);
