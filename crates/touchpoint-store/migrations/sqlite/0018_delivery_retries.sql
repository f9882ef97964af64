-- Durable retries of campaign sends (docs/campaigns.md, Retries and dead letters):
-- the first try's time, when the next try is due and the last error; a send
-- that still fails 24 h after its first try becomes a dead letter (status 'failed').
ALTER TABLE campaign_sends ADD COLUMN first_attempt_at BIGINT;
ALTER TABLE campaign_sends ADD COLUMN next_attempt_at BIGINT;
ALTER TABLE campaign_sends ADD COLUMN last_attempt_at BIGINT;
CREATE INDEX campaign_sends_due ON campaign_sends (status, next_attempt_at);
