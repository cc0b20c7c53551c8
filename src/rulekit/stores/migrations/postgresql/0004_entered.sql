-- rulekit store schema 4 (PostgreSQL): when a case entered its state (docs/runtime.md).
--
-- A `stay ... reschedule` counts the state's deadlines again from the entry; a case
-- whose deadlines could not be counted at entry (their facts unset) has no pending
-- deadline that remembers it. The open cases stored before this migration get it from
-- their history: the time of the last record that went to a state (the opening
-- included), as the record keeps it: ISO 8601 text with the offset it was given, as
-- the case's pending deadlines keep theirs. Final cases are left NULL: they take no
-- more steps.
ALTER TABLE rk_cases ADD COLUMN entered_at text;
UPDATE rk_cases SET entered_at = (
    SELECT (h.record::jsonb -> 'at' ->> 'v') FROM rk_history h
    WHERE h.case_id = rk_cases.id AND (h.record::jsonb ->> 'target') IS NOT NULL
    ORDER BY h.seq DESC LIMIT 1
) WHERE NOT final;
