-- The core schema. Job records are not here: they live in Redis.

CREATE FUNCTION set_updated_at() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    NEW.updated_at := now();
    RETURN NEW;
END;
$$;

-- API tokens: only the sha256 hex of a token is stored; `prefix` is what admins see.
CREATE TABLE api_tokens (
    id           bigserial PRIMARY KEY,
    name         text NOT NULL,
    token_hash   text NOT NULL UNIQUE CHECK (token_hash ~ '^[0-9a-f]{64}$'),
    prefix       text NOT NULL,
    scopes       text[] NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    last_used_at timestamptz,
    revoked_at   timestamptz
);

-- Items. source_url and image_urls point at the marketplace: private, never public;
-- media_keys are our rehosted, content-addressed copies.
CREATE TABLE items (
    id                bigserial PRIMARY KEY,
    source            text NOT NULL,
    source_listing_id text NOT NULL,
    source_url        text,
    title             text NOT NULL,
    brand             text,
    category          text,
    slot              text,
    size              text,
    condition         text,
    price_cents       integer CHECK (price_cents >= 0),
    currency          char(3) CHECK (currency ~ '^[A-Z]{3}$'),
    cost_cents        integer CHECK (cost_cents >= 0),
    stock             integer CHECK (stock >= 0),
    kind              text NOT NULL
                      CHECK (kind IN ('one_of_one', 'stable', 'print_on_demand')),
    status            text NOT NULL DEFAULT 'pending'
                      CHECK (status IN ('pending', 'available', 'sold', 'archived', 'rejected')),
    image_urls        text[] NOT NULL DEFAULT '{}',
    media_keys        text[] NOT NULL DEFAULT '{}',
    embedding         vector(512),
    embedding_model   text,
    embedding_hash    text,
    embedded_at       timestamptz,
    embed_error       text,
    attributes        jsonb NOT NULL DEFAULT '{}',
    created_at        timestamptz NOT NULL DEFAULT now(),
    updated_at        timestamptz NOT NULL DEFAULT now(),
    UNIQUE (source, source_listing_id),
    -- a one-of-one is in stock exactly while it is available; it has no count
    CONSTRAINT items_one_of_one_no_stock CHECK (kind <> 'one_of_one' OR stock IS NULL),
    CONSTRAINT items_price_has_currency CHECK (price_cents IS NULL OR currency IS NOT NULL)
);
CREATE INDEX items_embedding_hnsw ON items USING hnsw (embedding vector_cosine_ops);
CREATE INDEX items_status_idx ON items (status);
-- the embedding fan-out scans for items still waiting for a vector
CREATE INDEX items_unembedded_idx ON items (id) WHERE embedding IS NULL;
CREATE TRIGGER items_set_updated_at BEFORE UPDATE ON items
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();

-- Style seeds: reference looks that collections are built around.
CREATE TABLE style_seeds (
    id              bigserial PRIMARY KEY,
    label           text NOT NULL UNIQUE,
    description     text,
    media_key       text,
    embedding       vector(512),
    embedding_model text,
    embedding_hash  text,
    created_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX style_seeds_embedding_hnsw ON style_seeds USING hnsw (embedding vector_cosine_ops);

-- Collections: generated per surface; a generation groups one run of the generator.
CREATE TABLE collections (
    id          bigserial PRIMARY KEY,
    surface     text NOT NULL,
    title       text,
    description text,
    generation  uuid NOT NULL,
    valid_from  timestamptz NOT NULL DEFAULT now(),
    valid_until timestamptz,
    created_at  timestamptz NOT NULL DEFAULT now(),
    CHECK (valid_until IS NULL OR valid_until > valid_from)
);
CREATE INDEX collections_surface_idx ON collections (surface, valid_from DESC);
CREATE INDEX collections_generation_idx ON collections (generation);

CREATE TABLE collection_items (
    collection_id bigint NOT NULL REFERENCES collections (id) ON DELETE CASCADE,
    item_id       bigint NOT NULL REFERENCES items (id),
    position      integer NOT NULL CHECK (position >= 0),
    score         double precision,
    PRIMARY KEY (collection_id, item_id)
);
CREATE INDEX collection_items_item_idx ON collection_items (item_id);

-- Orders: created on Stripe checkout, held, then released to production or cancelled.
CREATE TABLE orders (
    id                    bigserial PRIMARY KEY,
    stripe_session_id     text NOT NULL UNIQUE,
    stripe_payment_intent text,
    status                text NOT NULL DEFAULT 'on_hold'
                          CHECK (status IN ('on_hold', 'cancelled', 'released', 'in_production',
                                            'dispatched', 'refunded', 'failed')),
    hold_until            timestamptz,
    amount_total_cents    integer CHECK (amount_total_cents >= 0),
    currency              char(3) CHECK (currency ~ '^[A-Z]{3}$'),
    customer_email        text,
    shipping              jsonb,
    metadata              jsonb NOT NULL DEFAULT '{}',
    printify_order_id     text UNIQUE,
    tracking              jsonb,
    created_at            timestamptz NOT NULL DEFAULT now(),
    updated_at            timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX orders_status_idx ON orders (status);
-- the release schedule looks for holds that have expired
CREATE INDEX orders_hold_due_idx ON orders (hold_until) WHERE status = 'on_hold';
CREATE TRIGGER orders_set_updated_at BEFORE UPDATE ON orders
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();

CREATE TABLE order_lines (
    id               bigserial PRIMARY KEY,
    order_id         bigint NOT NULL REFERENCES orders (id) ON DELETE CASCADE,
    item_id          bigint REFERENCES items (id),
    kind             text NOT NULL,
    quantity         integer NOT NULL CHECK (quantity > 0),
    unit_price_cents integer NOT NULL CHECK (unit_price_cents >= 0)
);
CREATE INDEX order_lines_order_idx ON order_lines (order_id);
CREATE INDEX order_lines_item_idx ON order_lines (item_id);

-- Notifications: the idempotency key makes a retried send a no-op.
CREATE TABLE notifications (
    id                  bigserial PRIMARY KEY,
    idempotency_key     text NOT NULL UNIQUE,
    channel             text NOT NULL,
    recipient           text NOT NULL,
    template            text NOT NULL,
    status              text NOT NULL DEFAULT 'pending'
                        CHECK (status IN ('pending', 'sent', 'failed', 'skipped')),
    provider            text,
    provider_message_id text,
    error               text,
    created_at          timestamptz NOT NULL DEFAULT now(),
    sent_at             timestamptz
);

-- Incoming webhooks, deduplicated by the provider's own event id.
CREATE TABLE webhook_events (
    id           bigserial PRIMARY KEY,
    provider     text NOT NULL,
    event_id     text NOT NULL,
    event_type   text NOT NULL,
    payload      jsonb NOT NULL,
    received_at  timestamptz NOT NULL DEFAULT now(),
    processed_at timestamptz,
    UNIQUE (provider, event_id)
);
CREATE INDEX webhook_events_unprocessed_idx ON webhook_events (received_at)
    WHERE processed_at IS NULL;

-- Edge nodes (the Pi workers) as last reported through their heartbeats.
CREATE TABLE edge_nodes (
    node_id       text PRIMARY KEY,
    version       text,
    host          text,
    capabilities  text[] NOT NULL DEFAULT '{}',
    last_seen     timestamptz NOT NULL DEFAULT now(),
    current_job   text,
    done_count    bigint NOT NULL DEFAULT 0,
    failed_count  bigint NOT NULL DEFAULT 0,
    registered_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE audit_log (
    id     bigserial PRIMARY KEY,
    actor  text NOT NULL,
    action text NOT NULL,
    target text,
    before jsonb,
    after  jsonb,
    at     timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX audit_log_target_idx ON audit_log (target, at DESC);
CREATE INDEX audit_log_at_idx ON audit_log (at DESC);
