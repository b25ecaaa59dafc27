-- A delivery's outcome becomes one of a few words, so that it can be counted (a metric label
-- per outcome), and what else was said about it moves to `outcome_detail`.
--
-- `outcome` is now 'processed', 'ignored' or 'failed' (NULL until finished, as before);
-- `outcome_detail` holds the rest, such as '3 runs' or the reason of a failure. Outcomes were
-- written as 'WORD: DETAIL' or a bare 'WORD' before.

ALTER TABLE deliveries ADD COLUMN outcome_detail TEXT;

UPDATE deliveries
SET outcome_detail = substr(outcome, instr(outcome, ': ') + 2),
    outcome = substr(outcome, 1, instr(outcome, ': ') - 1)
WHERE instr(outcome, ': ') > 0;

-- Anything else (never written by an earlier tether) is kept whole as the detail of a failure,
-- so that every stored outcome is one of the three.
UPDATE deliveries
SET outcome_detail = CASE WHEN outcome_detail IS NULL THEN outcome
                          ELSE outcome || ': ' || outcome_detail END,
    outcome = 'failed'
WHERE outcome IS NOT NULL AND outcome NOT IN ('processed', 'ignored', 'failed');
