-- Member-gets-member referrals. See docs/rewards.md, "Referrals".

-- Referral settings, versioned: the newest version is in force.
CREATE TABLE referral_programs (
    version    BIGINT PRIMARY KEY,
    body       TEXT NOT NULL,
    created_at BIGINT NOT NULL
);

-- One invite code per member, created on demand and stable.
CREATE TABLE referral_codes (
    member_id  BIGINT PRIMARY KEY,
    code       TEXT NOT NULL UNIQUE,
    created_at BIGINT NOT NULL
);

-- One attribution per friend (accepted or refused), with its door.
-- state: attributed -> qualified (rewards granted); or refused (reason).
CREATE TABLE referral_attributions (
    friend_id    BIGINT PRIMARY KEY,
    advocate_id  BIGINT NOT NULL,
    code         TEXT NOT NULL,
    source       TEXT NOT NULL,
    state        TEXT NOT NULL,
    reason       TEXT,
    attributed_at BIGINT NOT NULL,
    qualified_at BIGINT,
    capped       BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX referral_attributions_advocate ON referral_attributions (advocate_id);
CREATE INDEX referral_attributions_state ON referral_attributions (state);

-- Advocate rewards per advocate per business month: only changed by a
-- conditional UPDATE (`granted < cap`), so the cap holds under concurrency.
CREATE TABLE referral_month_counts (
    advocate_id BIGINT NOT NULL,
    month       TEXT NOT NULL,
    granted     BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (advocate_id, month)
);

-- Rewards granted, once each (key `referral:{advocate|friend}:FRIEND`).
CREATE TABLE referral_rewards (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    friend_id   BIGINT NOT NULL,
    member_id   BIGINT NOT NULL,
    role        TEXT NOT NULL,
    points      BIGINT NOT NULL,
    coupon_id   BIGINT,
    granted_at  BIGINT NOT NULL,
    grant_key   TEXT NOT NULL UNIQUE
);
