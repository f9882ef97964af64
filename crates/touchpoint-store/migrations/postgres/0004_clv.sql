-- Per-member CLV predictions written by `touchpoint clv predict`, one row per
-- member and purchase model, so that segments can use them (e.g. P(alive) <
-- 0.3 and a high expected spend). Rewritten in full by each prediction run.
CREATE TABLE member_predictions (
    member_id          BIGINT NOT NULL,
    model              TEXT NOT NULL,     -- bgnbd, mbgnbd or paretonbd
    p_alive            DOUBLE PRECISION NOT NULL,    -- probability the member is still a customer
    expected_purchases DOUBLE PRECISION NOT NULL,    -- expected purchase days over the horizon
    expected_spend     DOUBLE PRECISION,            -- Gamma-Gamma spend per purchase, currency units; NULL without a spend model
    clv                DOUBLE PRECISION,            -- discounted value over the horizon, currency units; NULL without a spend model
    horizon            DOUBLE PRECISION NOT NULL,    -- prediction horizon in days
    computed_at        BIGINT NOT NULL,   -- UTC milliseconds of the run that last changed the row
    PRIMARY KEY (member_id, model)
);
CREATE INDEX member_predictions_model ON member_predictions (model, p_alive);
