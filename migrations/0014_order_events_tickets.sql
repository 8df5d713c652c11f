-- Orders when things go wrong: asynchronous payments, failed payments, refunds made in
-- Stripe's dashboard, disputes, and Stripe events that arrive before the order they change.

-- 'awaiting_payment': a completed checkout whose (asynchronous) payment has not succeeded yet;
-- its items are claimed until the payment succeeds (-> on_hold) or fails or expires (-> cancelled).
ALTER TABLE orders DROP CONSTRAINT orders_status_check;
ALTER TABLE orders ADD CONSTRAINT orders_status_check
    CHECK (status IN ('awaiting_payment', 'on_hold', 'needs_review', 'releasing', 'cancelled', 'released',
                      'in_production', 'dispatched', 'refunded', 'failed'));
ALTER TABLE orders
    -- when the money arrived (NULL: never; a cancelled order that was never paid is not refunded)
    ADD COLUMN paid_at           timestamptz,
    -- what Stripe says was refunded of the charge (our refunds and the dashboard's alike)
    ADD COLUMN refunded_cents    integer CHECK (refunded_cents >= 0),
    ADD COLUMN dispute_id        text,
    ADD COLUMN dispute_status    text,
    ADD COLUMN dispute_reason    text,
    ADD COLUMN disputed_at       timestamptz,
    ADD COLUMN dispute_closed_at timestamptz;
UPDATE orders SET paid_at = created_at WHERE paid_at IS NULL;
CREATE INDEX orders_payment_intent_idx ON orders (stripe_payment_intent) WHERE stripe_payment_intent IS NOT NULL;

-- A Stripe event about an order Backroom does not know (yet): kept with the session or payment
-- intent it names, applied when that order is created, listed for admins until then.
ALTER TABLE webhook_events
    ADD COLUMN order_ref    text,
    ADD COLUMN unmatched_at timestamptz;
CREATE INDEX webhook_events_unmatched_ref_idx ON webhook_events (order_ref)
    WHERE unmatched_at IS NOT NULL AND processed_at IS NULL;

-- The last Printify webhook about a released order; without one for PRINTIFY_POLL_AFTER_MINUTES
-- the order is polled (a lost webhook never leaves it stuck).
ALTER TABLE orders ADD COLUMN printify_webhook_at timestamptz;
CREATE INDEX orders_printify_progress_idx ON orders (released_at)
    WHERE status IN ('released', 'in_production') AND printify_order_id IS NOT NULL;

-- Ops tickets: opened by the system (a failed payment, a dispute, a provider rejection, a
-- shipping problem, a refund request) or by reconciliation, worked by admins.
CREATE TABLE tickets (
    id         bigserial PRIMARY KEY,
    kind       text NOT NULL CHECK (kind IN ('payment_failed', 'dispute', 'provider_rejected', 'shipping_problem',
                                             'refund_request', 'mismatch')),
    -- one ticket per cause, whoever opens it how often (e.g. `dispute:dp_123`, `reconcile:...`)
    key        text NOT NULL UNIQUE CHECK (length(key) <= 300),
    subject    text NOT NULL CHECK (length(subject) <= 300),
    order_id   bigint REFERENCES orders (id) ON DELETE SET NULL,
    contact    text CHECK (length(contact) <= 320),  -- the customer's email, when known
    status     text NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'waiting', 'closed')),
    assignee   text CHECK (length(assignee) <= 100),
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    closed_at  timestamptz
);
CREATE INDEX tickets_status_idx ON tickets (status, created_at DESC);
CREATE INDEX tickets_order_idx ON tickets (order_id);
CREATE TRIGGER tickets_set_updated_at BEFORE UPDATE ON tickets
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();

-- The thread of a ticket: what the system noted and what admins wrote or did, oldest first.
CREATE TABLE ticket_interactions (
    id         bigserial PRIMARY KEY,
    ticket_id  bigint NOT NULL REFERENCES tickets (id) ON DELETE CASCADE,
    author     text NOT NULL CHECK (length(author) <= 100),  -- `system` or the admin token's name
    action     text NOT NULL CHECK (action IN ('opened', 'comment', 'assigned', 'closed', 'reopened',
                                               'approved', 'refused')),
    body       text NOT NULL DEFAULT '' CHECK (length(body) <= 5000),
    -- an action sent twice (a job retried) is written once
    key        text UNIQUE,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX ticket_interactions_ticket_idx ON ticket_interactions (ticket_id, id);

-- The print provider's catalog (products, variants, prices), synced nightly page by page.
CREATE TABLE provider_catalog (
    provider      text NOT NULL,
    product_id    text NOT NULL,
    variant_id    text NOT NULL,
    title         text,
    variant_title text,
    price_cents   integer,
    enabled       boolean NOT NULL DEFAULT true,
    synced_at     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (provider, product_id, variant_id)
);

-- One catalog sync run: the page it goes on from, so a stopped run resumes where it stopped.
CREATE TABLE catalog_syncs (
    id          bigserial PRIMARY KEY,
    provider    text NOT NULL,
    page_size   integer NOT NULL CHECK (page_size BETWEEN 1 AND 100),
    next_page   integer NOT NULL DEFAULT 1 CHECK (next_page >= 1),
    variants    integer NOT NULL DEFAULT 0,
    started_at  timestamptz NOT NULL DEFAULT now(),
    finished_at timestamptz
);
-- at most one unfinished run per provider
CREATE UNIQUE INDEX catalog_syncs_running_idx ON catalog_syncs (provider) WHERE finished_at IS NULL;
