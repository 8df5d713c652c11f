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
