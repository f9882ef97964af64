-- Analytics: a per-member purchase summary and a per-product summary, both
-- rebuilt by one aggregation inside the database (Store::refresh_member_summary),
-- and a state row that tells whether they are stale.
--
-- Purchases are orders with status 'paid' or 'partially_refunded'; net revenue
-- is gross_amount - refunded_amount. Days are local days (business time zone)
-- numbered from 1970-01-01.
CREATE TABLE member_summary (
    member_id      BIGINT PRIMARY KEY,
    first_at       BIGINT NOT NULL,
    last_at        BIGINT NOT NULL,
    first_day      BIGINT NOT NULL,
    last_day       BIGINT NOT NULL,
    purchase_days  BIGINT NOT NULL,
    orders         BIGINT NOT NULL,
    net_revenue    BIGINT NOT NULL,
    cogs           BIGINT NOT NULL,
    discounts      BIGINT NOT NULL,
    first_channel  TEXT NOT NULL,
    -- One entry per (local day, channel): day:channel:orders:net_revenue, separated by ;
    activity       TEXT NOT NULL
);

-- kind is 'product' (key = sku) or 'category' (key = category, '' when unknown).
CREATE TABLE product_summary (
    kind                  TEXT NOT NULL,
    key                   TEXT NOT NULL,
    name                  TEXT NOT NULL,
    category              TEXT NOT NULL,
    net_revenue           BIGINT NOT NULL,
    units                 BIGINT NOT NULL,
    cogs                  BIGINT NOT NULL,
    orders                BIGINT NOT NULL,
    first_orders          BIGINT NOT NULL,
    first_order_members   BIGINT NOT NULL,
    first_order_repeaters BIGINT NOT NULL,
    PRIMARY KEY (kind, key)
);

-- One row. data_version is bumped by every write that changes orders or
-- which member owns them; the summaries are current when summary_version
-- equals it and they were built with the same time-zone offset.
CREATE TABLE analytics_state (
    id              BIGINT PRIMARY KEY,
    data_version    BIGINT NOT NULL,
    summary_version BIGINT NOT NULL,
    tz_offset_ms    BIGINT NOT NULL,
    refreshed_at    BIGINT NOT NULL,
    -- Members with orders but no purchase, at the last refresh.
    non_buyers      BIGINT NOT NULL
);
INSERT INTO analytics_state (id, data_version, summary_version, tz_offset_ms, refreshed_at, non_buyers) VALUES (1, 1, 0, 0, 0, 0);
