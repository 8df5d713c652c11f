-- Ingest: scraped listings become items scored by margin; their images are rehosted.
--
-- For a scraped item, cost_cents is the marketplace's asking price (what we would pay) and
-- price_cents our selling price (the resale estimate); only the latter is public.

ALTER TABLE items
    ADD COLUMN verdict       text CHECK (verdict IN ('green', 'orange')),
    ADD COLUMN margin_cents  integer,
    -- the image_urls that the current media_keys were rehosted from: a differing image_urls needs a rehost
    ADD COLUMN rehosted_urls text[],
    ADD COLUMN rehosted_at   timestamptz,
    ADD COLUMN rehost_error  text,
    ADD COLUMN reviewed_at   timestamptz;

-- the admin review queue: pending items, best margin first
CREATE INDEX items_review_idx ON items (margin_cents DESC NULLS LAST) WHERE status = 'pending';

-- One row per edge delivery (its id travels with the message): a repeated delivery is a no-op.
CREATE TABLE ingest_deliveries (
    delivery_id  text PRIMARY KEY CHECK (length(delivery_id) BETWEEN 1 AND 200),
    source       text NOT NULL,
    listings     integer NOT NULL CHECK (listings >= 0),
    received_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX ingest_deliveries_received_idx ON ingest_deliveries (received_at);
