-- A run's steps (Bass Loop's vertexes): `checkout`, `image`, `run`, and the sections a check opens
-- with `::group::`. Written as the runner reports them; at most a bounded number per run (the
-- engine refuses more), so a runner cannot grow this table without end.
--
-- Times are milliseconds since the Unix epoch, on the runner's clock. Lines are the run page's
-- (`#L{n}`): the raw log's lines, except that a line longer than the renderer's limit takes
-- several.
CREATE TABLE steps (
    run_id INTEGER NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    -- 0, 1, 2, … in the order the steps began.
    position INTEGER NOT NULL CHECK (position >= 0),
    name TEXT NOT NULL,
    kind TEXT NOT NULL CHECK (kind IN ('checkout', 'image', 'run', 'section')),
    status TEXT NOT NULL
        CHECK (status IN ('running', 'success', 'failure', 'cancelled', 'skipped')),
    started_at_ms INTEGER NOT NULL,
    finished_at_ms INTEGER,
    first_line INTEGER NOT NULL CHECK (first_line >= 1),
    last_line INTEGER NOT NULL CHECK (last_line >= first_line),
    PRIMARY KEY (run_id, position)
) STRICT, WITHOUT ROWID;
