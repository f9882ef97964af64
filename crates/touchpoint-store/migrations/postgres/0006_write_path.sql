-- The write path: the outbox of domain events and the consumers' cursors, and
-- the analytics model (one fact row per order, kept current by every write,
-- plus a compact binary copy of it that reports load).

-- Domain events, written in the same transaction as the change that caused
-- them. `tx` orders events by the transaction that wrote them on PostgreSQL
-- (its transaction id; see outbox.rs); SQLite has one writer at a time, so
-- there it is 0 and `id` alone gives commit order.
CREATE TABLE outbox (
    id         BIGSERIAL PRIMARY KEY,
    tx         BIGINT NOT NULL DEFAULT (pg_current_xact_id()::text::bigint),
    at         BIGINT NOT NULL,
    kind       TEXT NOT NULL,
    member_id  BIGINT,
    payload    TEXT NOT NULL
);
CREATE INDEX outbox_tx_id ON outbox (tx, id);

-- Where each consumer has read the outbox to (durable, advanced after the
-- consumer has handled the events).
CREATE TABLE outbox_cursors (
    consumer   TEXT PRIMARY KEY,
    tx         BIGINT NOT NULL,
    position   BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);

-- The analytics model: one row per order, with what the reports need, kept
-- by the write path in the same transaction as the order. `purchase` is 1 for
-- a purchase (status paid or partially_refunded), else 0 (the row stays, so
-- that a reader of changes sees the order leave). `brands` holds the order's
-- value per brand, for brand filters: `net,disc,cogs,brand` entries separated
-- by a 0x1e byte (brand last, so it may hold commas). `seq` is the
-- analytics_state.fact_seq of the transaction that last wrote the row.
CREATE TABLE order_facts (
    fact_id    BIGSERIAL PRIMARY KEY,
    channel    TEXT NOT NULL,
    order_id   TEXT NOT NULL,
    member_id  BIGINT NOT NULL,
    ordered_at BIGINT NOT NULL,
    purchase   BIGINT NOT NULL,
    net        BIGINT NOT NULL,
    disc       BIGINT NOT NULL,
    cogs       BIGINT NOT NULL,
    brands     TEXT NOT NULL,
    seq        BIGINT NOT NULL,
    UNIQUE (channel, order_id)
);
CREATE INDEX order_facts_seq ON order_facts (seq);
CREATE INDEX order_facts_member ON order_facts (member_id);

-- A compact columnar copy of order_facts as of analytics_state.snapshot_seq,
-- split into parts in `part` order. Readers load it and apply the rows with a
-- later seq.
CREATE TABLE fact_snapshot (
    part BIGINT PRIMARY KEY,
    data BYTEA NOT NULL
);

-- fact_seq: bumped by every transaction that writes order_facts (its row lock
-- orders those transactions). snapshot_seq: what fact_snapshot covers (-1: none).
-- facts_built: 1 once order_facts has been built from the orders.
ALTER TABLE analytics_state ADD COLUMN fact_seq BIGINT NOT NULL DEFAULT 0;
ALTER TABLE analytics_state ADD COLUMN snapshot_seq BIGINT NOT NULL DEFAULT -1;
ALTER TABLE analytics_state ADD COLUMN facts_built BIGINT NOT NULL DEFAULT 0;
-- A store without orders has all its facts already.
UPDATE analytics_state SET facts_built = 1 WHERE NOT EXISTS (SELECT 1 FROM orders);

-- The summaries the reports read before the analytics model.
DROP TABLE member_snapshot;
DROP TABLE member_summary;
DROP TABLE product_summary;

-- The product report's inputs per scope, as of a fact sequence number: the
-- product aggregation runs in the database once per scope after a change.
CREATE TABLE product_cache (
    scope    TEXT PRIMARY KEY,
    fact_seq BIGINT NOT NULL,
    data     TEXT NOT NULL
);
