-- rulekit store schema 3 (SQLite): the clocks of a case (docs/runtime.md, "Clocks").
--
-- A case's clocks, by name: [status, due, remaining, since], in the codec's JSON.
-- NULL for a case without clocks: every case written before this migration, and every
-- case of a policy that declares none, reads as it did. A clock's next expiry is a
-- deadline like any other: rk_cases.next_due and rk_deadlines hold the earlier of the
-- state's deadlines and the running clocks, so the deadline worker fires both.
ALTER TABLE rk_cases ADD COLUMN clocks TEXT;
