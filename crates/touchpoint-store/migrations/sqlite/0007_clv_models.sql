-- The model behind each model's stored predictions (member_predictions):
-- one row per purchase model, replaced in the same transaction as its
-- predictions by `touchpoint clv predict` on the store. Read by
-- Store::clv_models (GET /api/clv/models).
CREATE TABLE clv_models (
    model                TEXT PRIMARY KEY,  -- bgnbd, mbgnbd or paretonbd
    name                 TEXT NOT NULL,     -- BG/NBD, MBG/NBD, Pareto/NBD
    params               TEXT NOT NULL,     -- JSON [{"name", "value", "std_error"}], in the unit below
    log_likelihood       REAL NOT NULL,
    n_customers          BIGINT NOT NULL,
    converged            BIGINT NOT NULL,   -- 0/1
    spend                TEXT,              -- JSON Gamma-Gamma {"params", "log_likelihood", "n_customers"}; NULL without repeat buyers
    unit                 TEXT NOT NULL,     -- day, week or month
    calibration_start    TEXT NOT NULL,     -- YYYY-MM-DD, business time zone: first purchase
    calibration_end      TEXT NOT NULL,     -- YYYY-MM-DD: last day of the calibration period
    observation_end      TEXT NOT NULL,     -- YYYY-MM-DD: last day observed
    horizon_days         REAL NOT NULL,
    annual_discount_rate REAL NOT NULL,
    fitted_at            BIGINT NOT NULL    -- UTC milliseconds
);
