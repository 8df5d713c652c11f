-- Prune: each check of a sourced listing is stored with its evidence; items remember when
-- they were last checked and how many unknowns in a row they had (blocked, timed out).
-- Retention: indexes that let purge_expired find what is past due without a full scan.

CREATE TABLE listing_checks (
    id           bigserial PRIMARY KEY,
    -- made by the checker (server or edge): a redelivered result is stored once
    check_id     text NOT NULL UNIQUE CHECK (length(check_id) BETWEEN 1 AND 200),
    item_id      bigint NOT NULL REFERENCES items (id),
    checked_at   timestamptz NOT NULL DEFAULT now(),
    outcome      text NOT NULL CHECK (outcome IN ('available', 'sold', 'archived', 'unknown')),
    via          text NOT NULL CHECK (via IN ('server', 'edge')),
    http_status  integer,
    final_url    text,
    markers      text[] NOT NULL DEFAULT '{}',
    error        text,
    reason       text,
    -- the item's status before, and whether this check changed it (such a check is kept for good)
    status_before text,
    applied      boolean NOT NULL DEFAULT false,
    elapsed_ms   integer
);
CREATE INDEX listing_checks_item_idx ON listing_checks (item_id, checked_at DESC);
CREATE INDEX listing_checks_expiry_idx ON listing_checks (checked_at) WHERE NOT applied;

ALTER TABLE items
    ADD COLUMN last_checked_at      timestamptz,
    ADD COLUMN last_check_outcome   text,
    ADD COLUMN check_unknown_streak integer NOT NULL DEFAULT 0 CHECK (check_unknown_streak >= 0),
    -- a recheck after an unknown is already scheduled until then: the fan-out skips the item
    ADD COLUMN next_check_at        timestamptz;

-- the prune fan-out walks available sourced items by id
CREATE INDEX items_prunable_idx ON items (id) WHERE status = 'available' AND source_url IS NOT NULL;
-- the media purge asks whether any item still references a file
CREATE INDEX items_media_keys_idx ON items USING gin (media_keys);
CREATE INDEX style_seeds_media_key_idx ON style_seeds (media_key) WHERE media_key IS NOT NULL;

CREATE INDEX notifications_created_idx ON notifications (created_at);
CREATE INDEX webhook_events_received_idx ON webhook_events (received_at);
