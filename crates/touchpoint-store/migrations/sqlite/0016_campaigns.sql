-- Campaigns (issue 12, part 2): versioned campaign files, the state of each
-- campaign's trigger, and one row per decision (campaign, member,
-- occurrence), unique, so a run twice, a retry or a crash mid-run never
-- decides or sends twice. See docs/campaigns.md.

-- Campaign versions: the TOML as given; the newest version of a name is current.
CREATE TABLE campaigns (
    name       TEXT NOT NULL,
    version    BIGINT NOT NULL,
    body       TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (name, version)
);

-- Per campaign: the last run that decided, and when a `once` campaign was done.
CREATE TABLE campaign_state (
    name        TEXT PRIMARY KEY,
    last_run_at BIGINT,
    done_at     BIGINT
);

-- segment_entry: the members in the audience at the last run.
CREATE TABLE campaign_audience (
    name      TEXT NOT NULL,
    member_id BIGINT NOT NULL,
    PRIMARY KEY (name, member_id)
);

-- order_placed: orders read from the outbox, waiting for their delay.
CREATE TABLE campaign_pending (
    name       TEXT NOT NULL,
    occurrence TEXT NOT NULL,
    member_id  BIGINT NOT NULL,
    due_at     BIGINT NOT NULL,
    PRIMARY KEY (name, occurrence)
);

-- Decisions: status queued, sent, failed (reason: the error), control,
-- skipped (reason: no_consent, capped, no_address). `claimed_at`: a sender
-- took the send (two senders never both send it).
CREATE TABLE campaign_sends (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    campaign    TEXT NOT NULL,
    version     BIGINT NOT NULL,
    member_id   BIGINT NOT NULL,
    occurrence  TEXT NOT NULL,
    channel     TEXT NOT NULL,
    status      TEXT NOT NULL,
    reason      TEXT,
    address     TEXT,
    subject     TEXT,
    body        TEXT,
    coupon_code TEXT,
    decided_at  BIGINT NOT NULL,
    claimed_at  BIGINT,
    sent_at     BIGINT,
    attempts    BIGINT NOT NULL DEFAULT 0,
    UNIQUE (campaign, member_id, occurrence)
);
CREATE INDEX campaign_sends_member ON campaign_sends (member_id, decided_at);
CREATE INDEX campaign_sends_status ON campaign_sends (status);
