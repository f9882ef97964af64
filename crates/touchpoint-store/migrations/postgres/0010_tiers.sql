-- Tier reviews and the sliding claim-failure limit. See docs/loyalty.md.

-- When each member's tier is next reviewed (UTC ms; NULL: no tier, or
-- reviews are off). Set when a member reaches a tier and after each review.
ALTER TABLE points_accounts ADD COLUMN tier_review_at BIGINT;
CREATE INDEX points_accounts_review ON points_accounts (tier_review_at);

-- Wrong-code attempts per subject (member:ID, person:KIND:VALUE, ip:ADDR)
-- and minute (minute_start = start of the minute, UTC ms); the limit sums
-- the last 60 minutes, so it is a sliding hour. Replaces the fixed hourly
-- buckets of loyalty_claim_failures.
CREATE TABLE loyalty_claim_failure_minutes (
    subject      TEXT NOT NULL,
    minute_start BIGINT NOT NULL,
    failures     BIGINT NOT NULL,
    PRIMARY KEY (subject, minute_start)
);
DROP TABLE loyalty_claim_failures;
