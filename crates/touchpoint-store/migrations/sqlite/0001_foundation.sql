-- Foundation: channels, members, identifiers, identity log, products, orders.
-- Times are UTC milliseconds since the Unix epoch; money is integer minor units.
CREATE TABLE channels (
    name        TEXT PRIMARY KEY,
    created_at  BIGINT NOT NULL
);

CREATE TABLE members (
    id          BIGINT PRIMARY KEY,
    created_at  BIGINT NOT NULL,
    merged_into BIGINT,
    name        TEXT,
    gender      TEXT,
    birthday    TEXT,
    region      TEXT
);
CREATE INDEX members_merged_into ON members (merged_into);

CREATE TABLE identifiers (
    id               BIGINT PRIMARY KEY,
    kind             TEXT NOT NULL,
    value            TEXT NOT NULL,
    member_id        BIGINT NOT NULL,
    origin_member_id BIGINT NOT NULL,
    shared           BIGINT NOT NULL DEFAULT 0,
    first_channel    TEXT NOT NULL,
    first_record_id  TEXT NOT NULL,
    created_at       BIGINT NOT NULL,
    UNIQUE (kind, value)
);
CREATE INDEX identifiers_member ON identifiers (member_id);

CREATE TABLE identifier_links (
    a_id       BIGINT NOT NULL,
    b_id       BIGINT NOT NULL,
    channel    TEXT NOT NULL,
    record_id  TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (a_id, b_id)
);

CREATE TABLE accounts (
    channel       TEXT NOT NULL,
    identifier_id BIGINT NOT NULL,
    member_id     BIGINT NOT NULL,
    PRIMARY KEY (channel, identifier_id)
);
CREATE INDEX accounts_member ON accounts (member_id);

CREATE TABLE identity_events (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    at               BIGINT NOT NULL,
    kind             TEXT NOT NULL,
    member_id        BIGINT NOT NULL,
    other_member_id  BIGINT,
    identifier_kind  TEXT NOT NULL,
    identifier_value TEXT NOT NULL,
    channel          TEXT NOT NULL,
    record_id        TEXT NOT NULL,
    prior_channel    TEXT,
    prior_record_id  TEXT,
    detail           TEXT NOT NULL
);
CREATE INDEX identity_events_member ON identity_events (member_id);
CREATE INDEX identity_events_other ON identity_events (other_member_id);

-- One row; its version changes with every identity write so that a writer
-- holding the identity index in memory knows when to reload it.
CREATE TABLE identity_state (
    id      BIGINT PRIMARY KEY,
    version BIGINT NOT NULL
);
INSERT INTO identity_state (id, version) VALUES (1, 0);

CREATE TABLE products (
    sku        TEXT PRIMARY KEY,
    name       TEXT,
    brand      TEXT,
    category   TEXT,
    unit_cost  BIGINT,
    updated_at BIGINT NOT NULL
);

CREATE TABLE orders (
    channel         TEXT NOT NULL,
    order_id        TEXT NOT NULL,
    member_id       BIGINT NOT NULL,
    status          TEXT NOT NULL,
    ordered_at      BIGINT NOT NULL,
    paid_at         BIGINT,
    currency        TEXT NOT NULL,
    gross_amount    BIGINT NOT NULL,
    order_discount  BIGINT NOT NULL,
    refunded_amount BIGINT NOT NULL,
    line_count      BIGINT NOT NULL,
    identifier_ids  TEXT NOT NULL,
    content_hash    BIGINT NOT NULL,
    created_at      BIGINT NOT NULL,
    updated_at      BIGINT NOT NULL,
    PRIMARY KEY (channel, order_id)
);
CREATE INDEX orders_member ON orders (member_id);
CREATE INDEX orders_ordered_at ON orders (ordered_at);

CREATE TABLE order_lines (
    channel    TEXT NOT NULL,
    order_id   TEXT NOT NULL,
    line_no    BIGINT NOT NULL,
    sku        TEXT NOT NULL,
    quantity   BIGINT NOT NULL,
    unit_price BIGINT NOT NULL,
    unit_cost  BIGINT,
    discount   BIGINT NOT NULL,
    PRIMARY KEY (channel, order_id, line_no)
);
CREATE INDEX order_lines_sku ON order_lines (sku);
