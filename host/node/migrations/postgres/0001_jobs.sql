-- The node's job store (PostgreSQL). Times are Unix milliseconds.
CREATE TABLE jobs (
    id TEXT PRIMARY KEY,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    state TEXT NOT NULL,
    mode TEXT NOT NULL,
    module_digest TEXT NOT NULL,
    input_digest TEXT NOT NULL,
    input_bytes BIGINT NOT NULL,
    security BIGINT NOT NULL,
    api_key_id TEXT,
    idempotency_key TEXT,
    attempts BIGINT NOT NULL DEFAULT 0,
    max_attempts BIGINT NOT NULL,
    worker_id TEXT,
    lease_until BIGINT,
    started_at BIGINT,
    finished_at BIGINT,
    error_kind TEXT,
    error TEXT,
    fuel_used BIGINT,
    vm_steps BIGINT,
    cpu_rows BIGINT,
    execute_us BIGINT,
    prove_us BIGINT,
    verify_us BIGINT,
    output TEXT,
    report TEXT,
    receipt_digest TEXT,
    receipt_bytes BIGINT,
    backend TEXT
);
CREATE UNIQUE INDEX jobs_idempotency ON jobs (api_key_id, idempotency_key);
CREATE INDEX jobs_claim ON jobs (state, created_at);

CREATE TABLE job_events (
    id BIGSERIAL PRIMARY KEY,
    job_id TEXT NOT NULL,
    at BIGINT NOT NULL,
    event TEXT NOT NULL,
    worker_id TEXT,
    detail TEXT
);
CREATE INDEX job_events_job ON job_events (job_id, id);

CREATE TABLE api_keys (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    role TEXT NOT NULL,
    key_hash TEXT NOT NULL UNIQUE,
    created_at BIGINT NOT NULL,
    revoked_at BIGINT
);

CREATE TABLE modules (
    digest TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    size BIGINT NOT NULL,
    approved_at BIGINT NOT NULL,
    publisher_key TEXT,
    signature TEXT
);

CREATE TABLE workers (
    id TEXT PRIMARY KEY,
    host TEXT NOT NULL,
    pid BIGINT NOT NULL,
    started_at BIGINT NOT NULL,
    heartbeat_at BIGINT NOT NULL,
    devices TEXT NOT NULL,
    jobs_done BIGINT NOT NULL DEFAULT 0,
    stopped_at BIGINT
);

-- Workers on other machines share only the database, so content-addressed
-- blobs (modules, inputs, receipts) live here rather than on one disk.
CREATE TABLE blobs (
    digest TEXT PRIMARY KEY,
    bytes BYTEA NOT NULL
);
