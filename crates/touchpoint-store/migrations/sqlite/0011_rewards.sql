-- Points mall and coupons: the rewards catalogue, its redemptions (holds
-- and captures), coupon definitions, issued coupons (member-bound codes and
-- public codes), per-member uses of public codes, and coupon redemptions.
-- See docs/rewards.md.

-- The catalogue. `stock_left` only changes by one conditional UPDATE
-- (`stock_left = stock_left - 1 WHERE stock_left > 0`), so stock is never
-- oversold: stock - stock_left = held + captured redemptions.
CREATE TABLE rewards (
    id                   INTEGER PRIMARY KEY AUTOINCREMENT,
    name                 TEXT NOT NULL UNIQUE,
    kind                 TEXT NOT NULL,
    points_cost          BIGINT NOT NULL,
    cash_part            BIGINT NOT NULL DEFAULT 0,
    stock                BIGINT NOT NULL,
    stock_left           BIGINT NOT NULL,
    per_member_limit     BIGINT,
    valid_from           BIGINT,
    valid_until          BIGINT,
    channels             TEXT NOT NULL DEFAULT '',
    coupon_definition_id BIGINT,
    partner              TEXT,
    created_at           BIGINT NOT NULL
);

-- A redemption: `held` (points spent, one unit of stock reserved until
-- `expires_at`), then `captured`, or `released` / `lapsed` (points returned
-- to their lots, the unit back in stock). A one-step redemption is written
-- `captured`. The points move through the ledger (entry keys
-- `spend:reward:KEY` and `release:reward:KEY`).
CREATE TABLE reward_redemptions (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    reward_id       BIGINT NOT NULL,
    member_id       BIGINT NOT NULL,
    state           TEXT NOT NULL,
    points          BIGINT NOT NULL,
    cash_part       BIGINT NOT NULL,
    channel         TEXT,
    created_at      BIGINT NOT NULL,
    expires_at      BIGINT,
    settled_at      BIGINT,
    coupon_id       BIGINT,
    idempotency_key TEXT NOT NULL UNIQUE
);
CREATE INDEX reward_redemptions_holds ON reward_redemptions (state, expires_at);
CREATE INDEX reward_redemptions_member ON reward_redemptions (member_id, reward_id, state);

-- Coupon definitions: the rules as JSON (touchpoint_core::coupons::CouponRules).
CREATE TABLE coupon_definitions (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    name             TEXT NOT NULL UNIQUE,
    rules            TEXT NOT NULL,
    created_at       BIGINT NOT NULL
);

-- Issued coupons. A member coupon has `member_id` and max_uses 1; a public
-- code has no member, max_uses = its total limit, and per_member_limit.
-- `uses` only changes by conditional UPDATEs (`uses < max_uses`).
CREATE TABLE coupons (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    definition_id    BIGINT NOT NULL,
    code             TEXT NOT NULL UNIQUE,
    member_id        BIGINT,
    max_uses         BIGINT NOT NULL,
    per_member_limit BIGINT,
    uses             BIGINT NOT NULL DEFAULT 0,
    valid_from       BIGINT,
    valid_until      BIGINT,
    issued_at        BIGINT NOT NULL,
    source           TEXT NOT NULL,
    issue_key        TEXT NOT NULL UNIQUE
);
CREATE INDEX coupons_member ON coupons (member_id);
CREATE INDEX coupons_definition ON coupons (definition_id);

-- Uses of a public code per member.
CREATE TABLE coupon_member_uses (
    coupon_id BIGINT NOT NULL,
    member_id BIGINT NOT NULL,
    uses      BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (coupon_id, member_id)
);

-- One row per use: the order it went on, what it took off. A refund that
-- gives the coupon back sets `returned_at` and takes the use back.
CREATE TABLE coupon_redemptions (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    coupon_id       BIGINT NOT NULL,
    definition_id   BIGINT NOT NULL,
    member_id       BIGINT NOT NULL,
    channel         TEXT,
    order_reference TEXT NOT NULL,
    amount          BIGINT NOT NULL,
    discount        BIGINT NOT NULL,
    at              BIGINT NOT NULL,
    returned_at     BIGINT,
    UNIQUE (coupon_id, order_reference)
);
CREATE INDEX coupon_redemptions_order ON coupon_redemptions (order_reference);
CREATE INDEX coupon_redemptions_definition ON coupon_redemptions (definition_id);
