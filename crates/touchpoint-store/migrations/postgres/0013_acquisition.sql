-- Acquisition cost (docs/acquisition.md): marketing spend per day, channel and
-- campaign, and the campaign of first touches (tracking events, orders).

-- One row per day, channel and campaign (campaign '' = the channel as a
-- whole), written by `touchpoint import spend` and `POST /api/spend`; a
-- later import of the same key replaces the row.
CREATE TABLE ad_spend (
    spend_date    TEXT NOT NULL,     -- YYYY-MM-DD, business time zone
    channel       TEXT NOT NULL,
    campaign      TEXT NOT NULL,
    pricing_model TEXT NOT NULL,     -- CPM, CPC, CPA or CPS
    spend         BIGINT NOT NULL,   -- minor units
    impressions   BIGINT NOT NULL,
    clicks        BIGINT NOT NULL,
    conversions   BIGINT NOT NULL,
    created_at    BIGINT NOT NULL,   -- UTC milliseconds
    updated_at    BIGINT NOT NULL,
    PRIMARY KEY (spend_date, channel, campaign)
);

-- The campaign of a tracking event (Segment `context.campaign.name`, and its
-- `source`, the utm_source), kept by the tracking pipeline; filled here for
-- the events stored before.
ALTER TABLE events ADD COLUMN campaign TEXT;
ALTER TABLE events ADD COLUMN campaign_source TEXT;
UPDATE events
   SET campaign = NULLIF(TRIM(payload::jsonb #>> '{context,campaign,name}'), ''),
       campaign_source = NULLIF(LOWER(TRIM(payload::jsonb #>> '{context,campaign,source}')), '')
 WHERE jsonb_typeof(payload::jsonb -> 'context' -> 'campaign') = 'object';
CREATE INDEX events_campaign ON events (campaign) WHERE campaign IS NOT NULL;

-- The campaign of an order, from a `campaign` column of a canonical import.
ALTER TABLE orders ADD COLUMN campaign TEXT;
