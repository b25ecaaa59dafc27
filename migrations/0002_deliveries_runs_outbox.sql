-- Webhook deliveries, GitHub App installations, runs, and the outbox of GitHub writes.
--
-- Times are milliseconds since the Unix epoch. Repositories and logins compare with NOCASE, as
-- on GitHub; check names, shas and delivery ids compare exactly.

-- Every webhook, stored before it is acted on, so a crash between the two loses nothing.
CREATE TABLE deliveries (
    -- GitHub's X-GitHub-Delivery: a redelivery has the same id.
    id TEXT NOT NULL PRIMARY KEY,
    event TEXT NOT NULL,
    action TEXT,
    -- The request body as received, byte for byte.
    payload BLOB NOT NULL,
    received_at_ms INTEGER NOT NULL,
    -- "processed", "ignored" or "failed: …"; NULL until finished.
    outcome TEXT,
    processed_at_ms INTEGER,
    CHECK ((outcome IS NULL) = (processed_at_ms IS NULL))
) STRICT;

-- For the unfinished deliveries, oldest first; finished ones leave the index.
CREATE INDEX deliveries_unprocessed ON deliveries (received_at_ms) WHERE outcome IS NULL;

-- The GitHub App's installations, by GitHub's id; one row each, the latest event's action.
CREATE TABLE installations (
    id INTEGER PRIMARY KEY,
    account TEXT NOT NULL COLLATE NOCASE,
    action TEXT NOT NULL,
    updated_at_ms INTEGER NOT NULL
) STRICT;

-- One execution of one check for one commit. `check` is an SQL keyword, hence `check_name`.
CREATE TABLE runs (
    id INTEGER PRIMARY KEY,
    -- "owner/name".
    repo TEXT NOT NULL COLLATE NOCASE,
    installation_id INTEGER,
    sha TEXT NOT NULL,
    check_name TEXT NOT NULL,
    event TEXT NOT NULL,
    -- The login whose runner runs it. Not a foreign key to users: a sender need not have
    -- logged in.
    sender TEXT NOT NULL COLLATE NOCASE,
    pr_number INTEGER CHECK (pr_number >= 0),
    -- JSON, opaque to the store.
    thunk TEXT NOT NULL,
    thunk_id TEXT NOT NULL,
    -- Not a foreign key, so that old deliveries can be pruned without their runs.
    delivery_id TEXT,
    rerun_of INTEGER REFERENCES runs (id),
    deployment_environment TEXT,
    -- When a run still queued then ends timed_out.
    queue_deadline_ms INTEGER NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('queued', 'in_progress', 'completed')),
    conclusion TEXT CHECK (conclusion IN ('success', 'failure', 'cancelled', 'timed_out')),
    -- "login/name".
    runner TEXT,
    exit TEXT,
    check_run_id INTEGER,
    deployment_id INTEGER,
    created_at_ms INTEGER NOT NULL,
    started_at_ms INTEGER,
    finished_at_ms INTEGER,
    CHECK ((status = 'completed') = (conclusion IS NOT NULL AND finished_at_ms IS NOT NULL)),
    CHECK (status <> 'in_progress' OR runner IS NOT NULL)
) STRICT;

-- A delivery reprocessed after a crash must not double its runs: one run per delivery, check
-- and rerun. COALESCE makes the NULL rerun_of of first runs compare equal (ids start at 1).
CREATE UNIQUE INDEX runs_once_per_delivery ON runs (delivery_id, check_name, COALESCE(rerun_of, 0))
    WHERE delivery_id IS NOT NULL;
-- Queued and in-progress runs, oldest first, and the counts by status.
CREATE INDEX runs_by_status ON runs (status);
-- A commit's runs (its checks page); the rowid that ends every index gives newest first.
CREATE INDEX runs_by_commit ON runs (repo, sha);
-- One repository's recent runs, newest first.
CREATE INDEX runs_by_repo ON runs (repo);
-- The open runs of a pull request's check, to cancel when a newer push supersedes them.
CREATE INDEX runs_by_pull_request ON runs (repo, pr_number, check_name)
    WHERE pr_number IS NOT NULL;
-- The foreign key's lookups (deleting a run checks for its reruns).
CREATE INDEX runs_by_rerun_of ON runs (rerun_of);

-- GitHub writes still to make, stored in the same transaction as the state change that causes
-- them and retried until GitHub accepts them. An item is deleted once done.
CREATE TABLE outbox (
    id INTEGER PRIMARY KEY,
    -- NULL for a write that belongs to no run; a run's items go to GitHub in id order.
    run_id INTEGER REFERENCES runs (id),
    kind TEXT NOT NULL,
    payload TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    next_attempt_at_ms INTEGER NOT NULL,
    last_error TEXT,
    created_at_ms INTEGER NOT NULL
) STRICT;

CREATE INDEX outbox_by_due ON outbox (next_attempt_at_ms);
-- The oldest pending item of a run, and the foreign key's lookups.
CREATE INDEX outbox_by_run ON outbox (run_id);
