-- rulekit store schema 1 (PostgreSQL).

CREATE TABLE rk_policies (
    hash          text PRIMARY KEY,
    name          text NOT NULL,
    version       text,
    artifact      text NOT NULL,
    registered_at timestamptz NOT NULL
);

CREATE TABLE rk_cases (
    id          text PRIMARY KEY,
    policy_hash text NOT NULL REFERENCES rk_policies (hash),
    workflow    text NOT NULL,
    state       text NOT NULL,
    final       boolean NOT NULL,
    outcome     text,
    facts       text NOT NULL,
    deadlines   text NOT NULL,
    case_time   timestamptz NOT NULL,
    records     integer NOT NULL,
    version     integer NOT NULL,
    parties     text NOT NULL,
    opened_at   timestamptz NOT NULL,
    updated_at  timestamptz NOT NULL,
    next_due    timestamptz
);
CREATE INDEX rk_cases_by_state ON rk_cases (workflow, state, id);
CREATE INDEX rk_cases_by_policy ON rk_cases (policy_hash) WHERE NOT final;

CREATE TABLE rk_parties (
    case_id   text NOT NULL REFERENCES rk_cases (id),
    actor     text NOT NULL,
    principal text NOT NULL,
    PRIMARY KEY (actor, principal, case_id)
);

CREATE TABLE rk_history (
    case_id text NOT NULL REFERENCES rk_cases (id),
    seq     integer NOT NULL,
    at      timestamptz NOT NULL,
    kind    text NOT NULL,
    record  text NOT NULL,
    PRIMARY KEY (case_id, seq)
);

CREATE TABLE rk_keys (
    case_id   text NOT NULL REFERENCES rk_cases (id),
    key       text NOT NULL,
    first_seq integer NOT NULL,
    last_seq  integer NOT NULL,
    state     text NOT NULL,
    final     boolean NOT NULL,
    PRIMARY KEY (case_id, key)
);

CREATE TABLE rk_deadlines (
    id      bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    case_id text NOT NULL REFERENCES rk_cases (id),
    due     timestamptz NOT NULL,
    done_at timestamptz,
    -- why firing it failed (the case was left as it was)
    error   text
);
-- Only pending deadlines are indexed: fired ones pile up without slowing the claim.
CREATE INDEX rk_deadlines_pending ON rk_deadlines (due) WHERE done_at IS NULL;
CREATE INDEX rk_deadlines_pending_case ON rk_deadlines (case_id) WHERE done_at IS NULL;

CREATE TABLE rk_effects (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    key          text NOT NULL UNIQUE,
    case_id      text NOT NULL REFERENCES rk_cases (id),
    seq          integer NOT NULL,
    name         text NOT NULL,
    args         text NOT NULL,
    at           timestamptz NOT NULL,
    -- pending (claimable once available_at has passed: a claim moves it on by the lease),
    -- done (acknowledged), dead (not acknowledged after the allowed deliveries)
    status       text NOT NULL CHECK (status IN ('pending', 'done', 'dead')),
    attempts     integer NOT NULL,
    available_at timestamptz NOT NULL,
    done_at      timestamptz,
    last_error   text
);
CREATE INDEX rk_effects_pending ON rk_effects (available_at, id) WHERE status = 'pending';
CREATE INDEX rk_effects_by_case ON rk_effects (case_id);
