-- rulekit store schema 2 (SQLite): idempotency keys belong to a caller.
--
-- rk_keys is keyed by (case, caller, key) and keeps a fingerprint of the request
-- (SHA-256 over its method, path and canonical JSON body): the same caller's key with
-- another request is refused (idempotency_key_reused). Keys written before this
-- migration belong to the caller '' (the store's Python API without a caller) and
-- have no fingerprint (''), which matches any request of that caller: they answer
-- library calls as before and no caller of the HTTP service (each has a name).
CREATE TABLE rk_keys_2 (
    case_id     TEXT NOT NULL REFERENCES rk_cases (id),
    caller      TEXT NOT NULL,
    key         TEXT NOT NULL,
    fingerprint TEXT NOT NULL,
    first_seq   INTEGER NOT NULL,
    last_seq    INTEGER NOT NULL,
    state       TEXT NOT NULL,
    final       INTEGER NOT NULL,
    PRIMARY KEY (case_id, caller, key)
) WITHOUT ROWID;
INSERT INTO rk_keys_2 (case_id, caller, key, fingerprint, first_seq, last_seq, state, final)
    SELECT case_id, '', key, '', first_seq, last_seq, state, final FROM rk_keys;
DROP TABLE rk_keys;
ALTER TABLE rk_keys_2 RENAME TO rk_keys;

-- A keyed open without an id: the case it opened, per caller and key (written in the
-- open's transaction). The id itself is random: nothing about it can be derived.
CREATE TABLE rk_open_keys (
    caller      TEXT NOT NULL,
    key         TEXT NOT NULL,
    case_id     TEXT NOT NULL REFERENCES rk_cases (id) DEFERRABLE INITIALLY DEFERRED,
    fingerprint TEXT NOT NULL,
    PRIMARY KEY (caller, key)
) WITHOUT ROWID;
