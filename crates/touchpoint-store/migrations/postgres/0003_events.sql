-- Tracking events (Segment-compatible ingest), API keys, idempotent API requests.
-- Times are UTC milliseconds since the Unix epoch.

-- API keys: only a SHA-256 hash of each key is kept (keys are 32 random bytes,
-- so a plain hash cannot be brute-forced; see docs/API.md).
CREATE TABLE api_keys (
    key_id     TEXT PRIMARY KEY,
    key_hash   TEXT NOT NULL UNIQUE,
    role       TEXT NOT NULL,
    name       TEXT,
    source     TEXT,
    created_at BIGINT NOT NULL,
    revoked_at BIGINT
);

-- Deduplication of (source, messageId), kept at least 7 days.
CREATE TABLE event_ids (
    source      TEXT NOT NULL,
    message_id  TEXT NOT NULL,
    received_at BIGINT NOT NULL,
    PRIMARY KEY (source, message_id)
);
CREATE INDEX event_ids_received_at ON event_ids (received_at);

-- Accepted events. The member is found at read time through the identifiers
-- (anon_key is the anonymous_id identifier value `source:anonymousId`, user_id
-- the member number), so events sent before a person was identified are
-- attributed once they are.
CREATE TABLE events (
    id           BIGSERIAL PRIMARY KEY,
    source       TEXT NOT NULL,
    message_id   TEXT NOT NULL,
    type         TEXT NOT NULL,
    name         TEXT,
    user_id      TEXT,
    anon_key     TEXT,
    occurred_at  BIGINT NOT NULL,
    received_at  BIGINT NOT NULL,
    ip           TEXT,
    payload      TEXT NOT NULL
);
CREATE INDEX events_user_id ON events (user_id);
CREATE INDEX events_anon_key ON events (anon_key);

-- Events refused because they cannot be attributed (no userId/anonymousId).
CREATE TABLE rejected_events (
    id          BIGSERIAL PRIMARY KEY,
    source      TEXT NOT NULL,
    message_id  TEXT,
    reason      TEXT NOT NULL,
    received_at BIGINT NOT NULL,
    payload     TEXT NOT NULL
);

-- Responses of requests sent with an Idempotency-Key header.
CREATE TABLE idempotency_keys (
    scope        TEXT NOT NULL,
    key          TEXT NOT NULL,
    request_hash TEXT NOT NULL,
    status       BIGINT NOT NULL,
    response     TEXT NOT NULL,
    created_at   BIGINT NOT NULL,
    PRIMARY KEY (scope, key)
);
