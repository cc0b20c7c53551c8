-- rulekit store schema 2 (PostgreSQL): idempotency keys belong to a caller.
--
-- rk_keys is keyed by (case, caller, key) and keeps a fingerprint of the request
-- (SHA-256 over its method, path and canonical JSON body): the same caller's key with
-- another request is refused (idempotency_key_reused). Keys written before this
-- migration belong to the caller '' (the store's Python API without a caller) and
-- have no fingerprint (''), which matches any request of that caller: they answer
-- library calls as before and no caller of the HTTP service (each has a name).
ALTER TABLE rk_keys
    ADD COLUMN caller text NOT NULL DEFAULT '',
    ADD COLUMN fingerprint text NOT NULL DEFAULT '';
ALTER TABLE rk_keys ALTER COLUMN caller DROP DEFAULT, ALTER COLUMN fingerprint DROP DEFAULT;
ALTER TABLE rk_keys DROP CONSTRAINT rk_keys_pkey, ADD PRIMARY KEY (case_id, caller, key);

-- A keyed open without an id: the case it opened, per caller and key (written in the
-- open's transaction). The id itself is random: nothing about it can be derived.
CREATE TABLE rk_open_keys (
    caller      text NOT NULL,
    key         text NOT NULL,
    case_id     text NOT NULL REFERENCES rk_cases (id) DEFERRABLE INITIALLY DEFERRED,
    fingerprint text NOT NULL,
    PRIMARY KEY (caller, key)
);
