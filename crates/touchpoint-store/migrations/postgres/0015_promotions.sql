-- Discount rules (promotions): versions of the rule file, the TOML as given;
-- the newest version is current. See docs/promotions.md.
CREATE TABLE promotion_rules (
    version    BIGINT PRIMARY KEY,
    body       TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
