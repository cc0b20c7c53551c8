-- rulekit store schema 5 (SQLite): the policy version that emitted each effect.
--
-- The relay (docs/effects.md) tells a consumer which version of the policy a refund came
-- from. A case may move to another version later (`rulekit migrate`), so the effect keeps
-- its own. Effects stored before this migration get the version their case is pinned to
-- now, which is the one that emitted them unless the case was migrated since.
ALTER TABLE rk_effects ADD COLUMN policy TEXT;
UPDATE rk_effects SET policy = (SELECT c.policy_hash FROM rk_cases c WHERE c.id = rk_effects.case_id);
-- Effects by status in id order: the oldest pending effect (the relay's lag, read every few
-- seconds) and a page of dead letters are found without scanning every effect delivered.
CREATE INDEX rk_effects_status ON rk_effects (status, id);
