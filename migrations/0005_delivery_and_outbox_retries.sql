-- Failures retried with backoff, each on its own schedule, and failures for good kept.
--
-- A delivery whose processing failed for a passing reason keeps its place no longer: it waits
-- until its own next attempt, so the deliveries behind it go on. An outbox item that failed for
-- good stays, with its error, instead of being deleted. Times are milliseconds since the Unix
-- epoch.

-- Failed attempts so far, when the first failed (the 24 hours of retries count from it), the
-- next attempt (NULL: now) and the last error, with its whole chain of causes.
ALTER TABLE deliveries ADD COLUMN attempts INTEGER NOT NULL DEFAULT 0 CHECK (attempts >= 0);
ALTER TABLE deliveries ADD COLUMN first_failure_at_ms INTEGER;
ALTER TABLE deliveries ADD COLUMN next_attempt_at_ms INTEGER;
ALTER TABLE deliveries ADD COLUMN last_error TEXT;

-- The unfinished deliveries by their next attempt.
CREATE INDEX deliveries_due ON deliveries (next_attempt_at_ms) WHERE outcome IS NULL;

-- When the item's first attempt failed, and when it was given up (NULL while it is pending).
ALTER TABLE outbox ADD COLUMN first_failure_at_ms INTEGER;
ALTER TABLE outbox ADD COLUMN failed_at_ms INTEGER;
