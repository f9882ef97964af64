-- The analytics model keeps each order's value per product (SKU) and its
-- campaign, so the product and acquisition reports read the facts in memory
-- instead of aggregating orders and their lines in SQL: `lines` holds "units,net,cogs,sku" entries separated by
-- U+001E, sorted by SKU (the format of `brands`).
ALTER TABLE order_facts ADD COLUMN lines TEXT NOT NULL DEFAULT '';
-- The order's campaign (orders.campaign), for first touches.
ALTER TABLE order_facts ADD COLUMN campaign TEXT;

-- Facts written before this migration have no lines: the next read rebuilds
-- them once from the orders (what `touchpoint analytics rebuild` does).
UPDATE analytics_state SET facts_built = 0;

-- The product aggregation's cache is replaced by the facts.
DROP TABLE product_cache;
