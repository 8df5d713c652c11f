-- Storefront events (Standard Webhooks): an outbox written by triggers in the same transaction
-- as the change it describes, relayed after commit into one delivery per (endpoint, event).
-- Triggers rather than calls in each db function: no write path (an actor, a replayed
-- migration, an admin's SQL) can change what storefronts render without its event.

CREATE TABLE storefront_endpoints (
    id               bigserial PRIMARY KEY,
    name             text NOT NULL UNIQUE CHECK (length(name) BETWEEN 1 AND 100),
    url              text NOT NULL CHECK (url ~ '^https?://' AND length(url) <= 2000),
    secret           text NOT NULL CHECK (secret ~ '^whsec_[A-Za-z0-9+/=]{24,}$'),
    event_types      text[] NOT NULL,  -- '{}' = every type
    enabled          boolean NOT NULL DEFAULT true,
    disabled_reason  text,
    -- the first failure of the current run of failures; cleared by any success
    failing_since    timestamptz,
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now()
);
CREATE TRIGGER storefront_endpoints_set_updated_at BEFORE UPDATE ON storefront_endpoints
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();

-- The outbox. `seq` counts the events of one resource (1, 2, 3...) so a storefront can drop stale ones.
CREATE TABLE storefront_events (
    id          bigserial PRIMARY KEY,
    event_type  text NOT NULL,
    resource    text NOT NULL,
    resource_id text NOT NULL,
    seq         bigint NOT NULL,
    data        jsonb NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT clock_timestamp(),
    relayed_at  timestamptz,
    UNIQUE (resource, resource_id, seq)
);
CREATE INDEX storefront_events_unrelayed_idx ON storefront_events (id) WHERE relayed_at IS NULL;
CREATE INDEX storefront_events_created_idx ON storefront_events (created_at);

CREATE TABLE storefront_sequences (
    resource    text NOT NULL,
    resource_id text NOT NULL,
    seq         bigint NOT NULL,
    PRIMARY KEY (resource, resource_id)
);

CREATE TABLE event_deliveries (
    id           bigserial PRIMARY KEY,
    endpoint_id  bigint NOT NULL REFERENCES storefront_endpoints (id) ON DELETE CASCADE,
    event_id     bigint NOT NULL REFERENCES storefront_events (id) ON DELETE CASCADE,
    -- ordering per resource: a delivery waits while an older one of its resource is pending
    resource     text NOT NULL,
    resource_id  text NOT NULL,
    status       text NOT NULL DEFAULT 'pending'
                 CHECK (status IN ('pending', 'delivered', 'dead', 'cancelled')),
    attempts     integer NOT NULL DEFAULT 0,
    lease_until  timestamptz,
    enqueued_at  timestamptz,
    delivered_at timestamptz,
    created_at   timestamptz NOT NULL DEFAULT clock_timestamp(),
    updated_at   timestamptz NOT NULL DEFAULT now(),
    UNIQUE (endpoint_id, event_id)
);
CREATE INDEX event_deliveries_pending_idx ON event_deliveries (endpoint_id, resource, resource_id, event_id)
    WHERE status = 'pending';
CREATE INDEX event_deliveries_unsent_idx ON event_deliveries (created_at)
    WHERE status = 'pending' AND enqueued_at IS NULL;
CREATE TRIGGER event_deliveries_set_updated_at BEFORE UPDATE ON event_deliveries
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();

CREATE TABLE delivery_attempts (
    id          bigserial PRIMARY KEY,
    delivery_id bigint NOT NULL REFERENCES event_deliveries (id) ON DELETE CASCADE,
    endpoint_id bigint NOT NULL,
    at          timestamptz NOT NULL DEFAULT now(),
    status_code integer,
    latency_ms  integer NOT NULL,
    error       text,
    excerpt     text
);
CREATE INDEX delivery_attempts_endpoint_idx ON delivery_attempts (endpoint_id, id DESC);
CREATE INDEX delivery_attempts_delivery_idx ON delivery_attempts (delivery_id);

-- Append one event for a resource with the next sequence number; NOTIFY wakes the relay at commit.
CREATE FUNCTION emit_storefront_event(p_type text, p_resource text, p_id text, p_data jsonb)
RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    next_seq bigint;
BEGIN
    INSERT INTO storefront_sequences (resource, resource_id, seq) VALUES (p_resource, p_id, 1)
    ON CONFLICT (resource, resource_id) DO UPDATE SET seq = storefront_sequences.seq + 1
    RETURNING seq INTO next_seq;
    INSERT INTO storefront_events (event_type, resource, resource_id, seq, data)
    VALUES (p_type, p_resource, p_id, next_seq, p_data || jsonb_build_object('seq', next_seq));
    PERFORM pg_notify('storefront_events', '');
END;
$$;

-- Items: what a storefront renders. Public columns only: never source, source_url or image_urls.
CREATE FUNCTION items_storefront_event() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    changed jsonb := '{}';
    col text;
    old_j jsonb;
    new_j jsonb := to_jsonb(NEW);
    event text;
BEGIN
    IF TG_OP = 'INSERT' THEN
        IF NEW.status = 'available' THEN
            PERFORM emit_storefront_event('item.available', 'item', NEW.id::text,
                jsonb_build_object('id', NEW.id, 'kind', NEW.kind, 'changed', jsonb_build_object('status', 'available')));
        END IF;
        RETURN NULL;
    END IF;
    old_j := to_jsonb(OLD);
    FOREACH col IN ARRAY ARRAY['title', 'brand', 'category', 'slot', 'size', 'condition', 'price_cents',
                               'currency', 'media_keys', 'status', 'stock'] LOOP
        IF old_j -> col IS DISTINCT FROM new_j -> col THEN
            changed := changed || jsonb_build_object(col, new_j -> col);
        END IF;
    END LOOP;
    IF changed = '{}' THEN
        RETURN NULL;
    END IF;
    IF changed ? 'status' THEN
        event := CASE NEW.status
            WHEN 'available' THEN CASE WHEN OLD.status IN ('pending', 'rejected') THEN 'item.approved'
                                       ELSE 'item.available' END
            WHEN 'sold' THEN 'item.sold'
            WHEN 'archived' THEN 'item.archived'
            WHEN 'rejected' THEN 'item.archived'
            ELSE 'item.updated' END;
    ELSIF changed ? 'stock' AND changed - 'stock' = '{}' THEN
        event := 'item.stock_changed';
    ELSE
        event := 'item.updated';
    END IF;
    -- an item nobody ever saw on a storefront (pending, rejected) changes nothing there
    IF OLD.status IN ('pending', 'rejected') AND NEW.status IN ('pending', 'rejected') THEN
        RETURN NULL;
    END IF;
    PERFORM emit_storefront_event(event, 'item', NEW.id::text,
        jsonb_build_object('id', NEW.id, 'kind', NEW.kind, 'changed', changed));
    RETURN NULL;
END;
$$;
CREATE TRIGGER items_storefront_event AFTER INSERT OR UPDATE ON items
    FOR EACH ROW EXECUTE FUNCTION items_storefront_event();

CREATE FUNCTION orders_storefront_event() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM emit_storefront_event('order.status_changed', 'order', NEW.id::text,
        jsonb_build_object('id', NEW.id, 'changed', jsonb_build_object('status', NEW.status),
                           'previous', jsonb_build_object('status', OLD.status)));
    RETURN NULL;
END;
$$;
CREATE TRIGGER orders_storefront_event AFTER UPDATE OF status ON orders
    FOR EACH ROW WHEN (OLD.status IS DISTINCT FROM NEW.status) EXECUTE FUNCTION orders_storefront_event();

-- A surface's pointer moved to a new generation: its collections are what the storefront shows now.
CREATE FUNCTION collections_storefront_event() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM emit_storefront_event('collection.published', 'surface', NEW.surface,
        jsonb_build_object('surface', NEW.surface, 'generation', NEW.generation,
                           'collection_ids', (SELECT coalesce(jsonb_agg(id ORDER BY position), '[]')
                                              FROM collections WHERE generation = NEW.generation)));
    RETURN NULL;
END;
$$;
CREATE TRIGGER collections_storefront_event AFTER INSERT OR UPDATE OF generation ON collection_surfaces
    FOR EACH ROW EXECUTE FUNCTION collections_storefront_event();

-- Catalog mirrored from a CMS (Payload): brands and products as of their last applied update.
-- Products become items (source 'payload', one per variant); `ts` makes an older update a no-op,
-- the hashes say whether text or images changed (and enrichment or embedding must run again).
CREATE TABLE catalog_brands (
    payload_brand_id text PRIMARY KEY,
    name             text NOT NULL,
    data             jsonb NOT NULL,
    ts               timestamptz NOT NULL,
    updated_at       timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE catalog_products (
    payload_product_id text PRIMARY KEY,
    payload_brand_id   text,
    ts                 timestamptz,  -- NULL: no update applied yet
    text_hash          text,
    image_hash         text,
    updated_at         timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX items_payload_product_idx ON items ((attributes ->> 'payload_product_id')) WHERE source = 'payload';

-- Orders the CMS owns (Gifter's Payload orders): their last status, as of `ts`; a change is a storefront event.
CREATE TABLE catalog_orders (
    payload_order_id text PRIMARY KEY,
    status           text NOT NULL,
    data             jsonb NOT NULL,
    ts               timestamptz NOT NULL,
    updated_at       timestamptz NOT NULL DEFAULT now()
);

CREATE FUNCTION catalog_orders_storefront_event() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'UPDATE' AND OLD.status = NEW.status THEN
        RETURN NULL;
    END IF;
    PERFORM emit_storefront_event('order.status_changed', 'payload_order', NEW.payload_order_id,
        jsonb_build_object('id', NEW.payload_order_id, 'changed', jsonb_build_object('status', NEW.status)));
    RETURN NULL;
END;
$$;
CREATE TRIGGER catalog_orders_storefront_event AFTER INSERT OR UPDATE OF status ON catalog_orders
    FOR EACH ROW EXECUTE FUNCTION catalog_orders_storefront_event();

-- The next steps of actors, written in the transaction of the step before: relayed after commit
-- like storefront events (the same NOTIFY wakes the relay), so a crash between a commit and its
-- enqueue loses no step (a redelivered message would find its work done and enqueue nothing).
CREATE TABLE job_outbox (
    id         bigserial PRIMARY KEY,
    actor      text NOT NULL,
    args       jsonb NOT NULL,
    unique_key text,
    created_at timestamptz NOT NULL DEFAULT clock_timestamp(),
    sent_at    timestamptz
);
CREATE INDEX job_outbox_unsent_idx ON job_outbox (id) WHERE sent_at IS NULL;
