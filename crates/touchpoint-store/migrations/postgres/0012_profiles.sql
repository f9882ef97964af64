-- Profiles, tags, consent and segments (docs/campaigns.md).
-- Times are UTC milliseconds since the Unix epoch.

-- Profile attributes beyond those of 0001 (name, gender, birthday, region).
ALTER TABLE members ADD COLUMN city TEXT;
ALTER TABLE members ADD COLUMN language TEXT;

-- Tags. `source` is `manual` (CLI, API, CSV) or `rule` (a saved segment
-- marked as a rule tag, recomputed by `touchpoint segments refresh`); a
-- member may hold a tag from both. Tags are stored in lower case.
CREATE TABLE member_tags (
    member_id  BIGINT NOT NULL,
    tag        TEXT NOT NULL,
    source     TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (member_id, tag, source)
);
CREATE INDEX member_tags_tag ON member_tags (tag);

-- Every consent change, append-only. `at` is when the person made the
-- choice (the event's time for identify traits), `recorded_at` when it was
-- stored; `source` is identify, api, cli or unsubscribe; `detail` names the
-- message, key or token use; a key makes a retried write happen once.
CREATE TABLE consent_events (
    id              BIGSERIAL PRIMARY KEY,
    member_id       BIGINT NOT NULL,
    channel         TEXT NOT NULL,
    topic           TEXT NOT NULL,
    granted         BIGINT NOT NULL,
    at              BIGINT NOT NULL,
    recorded_at     BIGINT NOT NULL,
    source          TEXT NOT NULL,
    detail          TEXT,
    idempotency_key TEXT UNIQUE
);
CREATE INDEX consent_events_member ON consent_events (member_id, id);

-- The current consent per member, channel and topic: the latest change by `at`.
CREATE TABLE consent (
    member_id BIGINT NOT NULL,
    channel   TEXT NOT NULL,
    topic     TEXT NOT NULL,
    granted   BIGINT NOT NULL,
    at        BIGINT NOT NULL,
    source    TEXT NOT NULL,
    PRIMARY KEY (member_id, channel, topic)
);

-- Saved segments. `is_tag` = 1: a rule tag named like the segment.
CREATE TABLE segments (
    name       TEXT PRIMARY KEY,
    expression TEXT NOT NULL,
    is_tag     BIGINT NOT NULL DEFAULT 0,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);

-- One size per saved segment and local day (business time zone), written by
-- `touchpoint segments refresh`; a second refresh the same day replaces it.
CREATE TABLE segment_sizes (
    name        TEXT NOT NULL,
    day         TEXT NOT NULL,
    members     BIGINT NOT NULL,
    computed_at BIGINT NOT NULL,
    PRIMARY KEY (name, day)
);

-- Server secrets (the unsubscribe link's HMAC key), created on first use.
CREATE TABLE store_secrets (
    name       TEXT PRIMARY KEY,
    value      BYTEA NOT NULL,
    created_at BIGINT NOT NULL
);
