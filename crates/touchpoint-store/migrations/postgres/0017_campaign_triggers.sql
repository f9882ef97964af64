-- Campaign triggers, priorities and cap waiting (issue 12): a capped
-- marketing message waits (status `waiting`, reason `capped`) until
-- `expires_at`, then lapses (status `lapsed`, reason `cap_wait_expired`).
-- `fields`: the trigger's template fields (JSON) kept while it waits.
-- `transactional` 1: not capped and not counted in caps.
ALTER TABLE campaign_sends ADD COLUMN expires_at BIGINT;
ALTER TABLE campaign_sends ADD COLUMN fields TEXT;
ALTER TABLE campaign_sends ADD COLUMN transactional BIGINT NOT NULL DEFAULT 0;
CREATE INDEX campaign_sends_waiting ON campaign_sends (campaign, status, decided_at);
