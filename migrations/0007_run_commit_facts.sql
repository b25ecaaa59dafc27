-- What run lists show of a run's commit, stored when the run is planned: a delivery's payload
-- is emptied after 7 days, and the lists must not depend on it. Each is NULL when the event
-- did not say (and for every run from before this migration).

-- The branch pushed, or a pull request's head branch.
ALTER TABLE runs ADD COLUMN branch TEXT;
-- The first line of the commit message (a pull request's title), at most 200 characters.
ALTER TABLE runs ADD COLUMN commit_message TEXT;
-- The commit's page, made from the payload's `repository.html_url` (GitHub Enterprise too).
ALTER TABLE runs ADD COLUMN commit_url TEXT;
