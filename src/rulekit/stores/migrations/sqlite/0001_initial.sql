-- rulekit store schema 1 (SQLite). Times are UTC text of one fixed width
-- (2026-03-01T12:00:00.000000+00:00), so they compare and sort as text.

CREATE TABLE rk_policies (
    hash          TEXT PRIMARY KEY,
    name          TEXT NOT NULL,
    version       TEXT,
    artifact      TEXT NOT NULL,
    registered_at TEXT NOT NULL
);

CREATE TABLE rk_cases (
    id          TEXT PRIMARY KEY,
    policy_hash TEXT NOT NULL REFERENCES rk_policies (hash),
    workflow    TEXT NOT NULL,
    state       TEXT NOT NULL,
    final       INTEGER NOT NULL,
    outcome     TEXT,
    facts       TEXT NOT NULL,
    deadlines   TEXT NOT NULL,
    case_time   TEXT NOT NULL,
    records     INTEGER NOT NULL,
    version     INTEGER NOT NULL,
    parties     TEXT NOT NULL,
    opened_at   TEXT NOT NULL,
    updated_at  TEXT NOT NULL,
    next_due    TEXT
);
CREATE INDEX rk_cases_by_state ON rk_cases (workflow, state, id);
CREATE INDEX rk_cases_by_policy ON rk_cases (policy_hash) WHERE NOT final;

CREATE TABLE rk_parties (
    case_id   TEXT NOT NULL REFERENCES rk_cases (id),
    actor     TEXT NOT NULL,
    principal TEXT NOT NULL,
    PRIMARY KEY (actor, principal, case_id)
) WITHOUT ROWID;

CREATE TABLE rk_history (
    case_id TEXT NOT NULL REFERENCES rk_cases (id),
    seq     INTEGER NOT NULL,
    at      TEXT NOT NULL,
    kind    TEXT NOT NULL,
    record  TEXT NOT NULL,
    PRIMARY KEY (case_id, seq)
) WITHOUT ROWID;

CREATE TABLE rk_keys (
    case_id   TEXT NOT NULL REFERENCES rk_cases (id),
    key       TEXT NOT NULL,
    first_seq INTEGER NOT NULL,
    last_seq  INTEGER NOT NULL,
    state     TEXT NOT NULL,
    final     INTEGER NOT NULL,
    PRIMARY KEY (case_id, key)
) WITHOUT ROWID;

CREATE TABLE rk_deadlines (
    id      INTEGER PRIMARY KEY,
    case_id TEXT NOT NULL REFERENCES rk_cases (id),
    due     TEXT NOT NULL,
    done_at TEXT,
    -- why firing it failed (the case was left as it was)
    error   TEXT
);
-- Only pending deadlines are indexed: fired ones pile up without slowing the claim.
CREATE INDEX rk_deadlines_pending ON rk_deadlines (due) WHERE done_at IS NULL;
CREATE INDEX rk_deadlines_pending_case ON rk_deadlines (case_id) WHERE done_at IS NULL;

CREATE TABLE rk_effects (
    id           INTEGER PRIMARY KEY,
    key          TEXT NOT NULL UNIQUE,
    case_id      TEXT NOT NULL REFERENCES rk_cases (id),
    seq          INTEGER NOT NULL,
    name         TEXT NOT NULL,
    args         TEXT NOT NULL,
    at           TEXT NOT NULL,
    -- pending (claimable once available_at has passed: a claim moves it on by the lease),
    -- done (acknowledged), dead (not acknowledged after the allowed deliveries)
    status       TEXT NOT NULL CHECK (status IN ('pending', 'done', 'dead')),
    attempts     INTEGER NOT NULL,
    available_at TEXT NOT NULL,
    done_at      TEXT,
    last_error   TEXT
);
CREATE INDEX rk_effects_pending ON rk_effects (available_at, id) WHERE status = 'pending';
CREATE INDEX rk_effects_by_case ON rk_effects (case_id);
