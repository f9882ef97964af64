-- Loyalty: the points program (versioned), the append-only points ledger
-- with its lots and draws, the per-member account kept in the same
-- transaction, tiers, packaging-code batches and codes (hashes only), and
-- claim-failure counters. See docs/loyalty.md.

-- Program versions: the TOML as given; the newest version is current.
CREATE TABLE loyalty_programs (
    version    BIGINT PRIMARY KEY,
    body       TEXT NOT NULL,
    starts_at  BIGINT NOT NULL,
    created_at BIGINT NOT NULL
);

-- One row per member with points: available (spendable; negative only under
-- the allow_negative refund policy, by `debt`), pending (purchase points in
-- their return window), the tier. Every ledger write locks this row first.
CREATE TABLE points_accounts (
    member_id     BIGINT PRIMARY KEY,
    available     BIGINT NOT NULL DEFAULT 0,
    pending       BIGINT NOT NULL DEFAULT 0,
    debt          BIGINT NOT NULL DEFAULT 0,
    earned_orders BIGINT NOT NULL DEFAULT 0,
    tier          TEXT,
    tier_since    BIGINT,
    updated_at    BIGINT NOT NULL
);

-- The ledger, append-only. `points` is signed (earn/adjust up positive;
-- spend, expire, reverse, adjust down negative). `uncovered`: what a
-- reversal could not take back. `idempotency_key` makes every write
-- happen once (earn:CHANNEL:ORDER, expire:LOT, spend:SCOPE:KEY, ...).
CREATE TABLE points_entries (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    member_id        BIGINT NOT NULL,
    at               BIGINT NOT NULL,
    kind             TEXT NOT NULL,
    points           BIGINT NOT NULL,
    reason           TEXT NOT NULL,
    source           TEXT NOT NULL,
    reference        TEXT,
    uncovered        BIGINT NOT NULL DEFAULT 0,
    program_version  BIGINT,
    idempotency_key  TEXT NOT NULL UNIQUE
);
CREATE INDEX points_entries_member ON points_entries (member_id, id);

-- Lots: what an earn (or an adjustment up, or a code) credited, and what is
-- left of it. `matured` is 1 once it counts as available (0 while pending);
-- `expired` 1 once the expiry wrote its entry. A purchase lot names its
-- order, the order's gross amount when earned and the points reversed so far.
CREATE TABLE points_lots (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    member_id      BIGINT NOT NULL,
    entry_id       BIGINT NOT NULL,
    amount         BIGINT NOT NULL,
    remaining      BIGINT NOT NULL,
    earned_at      BIGINT NOT NULL,
    available_from BIGINT NOT NULL,
    expires_at     BIGINT,
    matured        BIGINT NOT NULL DEFAULT 0,
    expired        BIGINT NOT NULL DEFAULT 0,
    reminded       BIGINT NOT NULL DEFAULT 0,
    channel        TEXT,
    order_id       TEXT,
    order_gross    BIGINT NOT NULL DEFAULT 0,
    reversed       BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX points_lots_member ON points_lots (member_id, expired);
CREATE INDEX points_lots_expiry ON points_lots (expired, expires_at);
CREATE INDEX points_lots_maturity ON points_lots (matured, available_from);
CREATE UNIQUE INDEX points_lots_order ON points_lots (channel, order_id);

-- Which lots an entry drew from, and how much. A lot's remaining is always
-- its amount less its draws. A draw by the lot's own earn entry is the
-- repayment of a negative balance (allow_negative).
CREATE TABLE points_draws (
    entry_id BIGINT NOT NULL,
    lot_id   BIGINT NOT NULL,
    points   BIGINT NOT NULL,
    PRIMARY KEY (entry_id, lot_id)
);
CREATE INDEX points_draws_lot ON points_draws (lot_id);

-- Tier changes with their reasons.
CREATE TABLE points_tier_history (
    id        INTEGER PRIMARY KEY AUTOINCREMENT,
    member_id BIGINT NOT NULL,
    at        BIGINT NOT NULL,
    from_tier TEXT,
    to_tier   TEXT,
    reason    TEXT NOT NULL
);
CREATE INDEX points_tier_history_member ON points_tier_history (member_id, id);

-- Packaging-code batches. `expires_at`: codes cannot be claimed after it.
-- `pending_days`: claimed points wait this long (0: available at once).
CREATE TABLE loyalty_code_batches (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    name          TEXT NOT NULL UNIQUE,
    points        BIGINT NOT NULL,
    sku           TEXT,
    expires_at    BIGINT,
    pending_days  BIGINT NOT NULL DEFAULT 0,
    code_count    BIGINT NOT NULL,
    voided_at     BIGINT,
    downloaded_at BIGINT,
    created_at    BIGINT NOT NULL
);

-- Codes: only the SHA-256 of each code, never the code.
CREATE TABLE loyalty_codes (
    hash       BLOB PRIMARY KEY,
    batch_id   BIGINT NOT NULL,
    claimed_by BIGINT,
    claimed_at BIGINT,
    entry_id   BIGINT
);
CREATE INDEX loyalty_codes_batch ON loyalty_codes (batch_id, claimed_by);

-- Wrong-code attempts per subject (member:ID, person:KIND:VALUE, ip:ADDR)
-- and hour (hour_start = start of the hour, UTC ms).
CREATE TABLE loyalty_claim_failures (
    subject  TEXT NOT NULL,
    hour_start BIGINT NOT NULL,
    failures BIGINT NOT NULL,
    PRIMARY KEY (subject, hour_start)
);
