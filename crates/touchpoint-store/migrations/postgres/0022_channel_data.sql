-- The rendered fields of a channel's message beyond subject and body: for a
-- WeChat template message the template's data as JSON ({"KEY": "text"}),
-- rendered with the member's fields when the send is decided
-- (docs/campaigns.md, WeChat). NULL for the other channels.
ALTER TABLE campaign_sends ADD COLUMN data TEXT;
