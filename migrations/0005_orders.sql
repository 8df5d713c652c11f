-- Orders through their hold and release, notifications that never send twice, opt-outs,
-- and the minimal profiles a membership upgrades.

-- 'releasing': the hold is over and the release steps run (Printify, Tap-to-Secure);
-- a retry of a crashed release picks up from here.
ALTER TABLE orders DROP CONSTRAINT orders_status_check;
ALTER TABLE orders ADD CONSTRAINT orders_status_check
    CHECK (status IN ('on_hold', 'releasing', 'cancelled', 'released', 'in_production',
                      'dispatched', 'refunded', 'failed'));
ALTER TABLE orders
    ADD COLUMN stripe_event_id       text,
    ADD COLUMN amount_subtotal_cents integer CHECK (amount_subtotal_cents >= 0),
    ADD COLUMN shipping_cents        integer CHECK (shipping_cents >= 0),
    ADD COLUMN customer_name         text,
    ADD COLUMN cancel_reason         text,
    ADD COLUMN release_started_at    timestamptz,
    ADD COLUMN released_at           timestamptz,
    -- set when Printify's create was attempted: a retry then looks the order up by external_id
    ADD COLUMN printify_requested_at timestamptz,
    ADD COLUMN printify_status       text,
    ADD COLUMN sent_to_production_at timestamptz,
    -- why a release gave up (status 'failed'): Printify refused or cancelled it, or is not configured
    ADD COLUMN release_error         text,
    -- set once the claimed items/stock went back (or when nothing was ever claimed)
    ADD COLUMN restocked_at          timestamptz,
    ADD COLUMN stripe_refund_id      text,
    ADD COLUMN refunded_at           timestamptz,
    ADD COLUMN dispatched_at         timestamptz;
-- the sweep also re-kicks releases that stalled
CREATE INDEX orders_releasing_idx ON orders (updated_at) WHERE status = 'releasing';

-- What the buyer bought, as priced at checkout (titles are copied: items may change later).
ALTER TABLE order_lines
    ADD COLUMN title    text,
    ADD COLUMN position integer NOT NULL DEFAULT 0;
CREATE UNIQUE INDEX order_lines_position_idx ON order_lines (order_id, position);

-- 'sending': a provider call may be under way (until lease_until); 'unknown': a provider
-- without idempotency may have sent it and nobody knows, so it is never sent again.
ALTER TABLE notifications DROP CONSTRAINT notifications_status_check;
ALTER TABLE notifications ADD CONSTRAINT notifications_status_check
    CHECK (status IN ('pending', 'sending', 'sent', 'failed', 'skipped', 'unknown'));
ALTER TABLE notifications
    ADD COLUMN data        jsonb NOT NULL DEFAULT '{}',
    ADD COLUMN attempts    integer NOT NULL DEFAULT 0,
    ADD COLUMN lease_until timestamptz,
    ADD COLUMN updated_at  timestamptz NOT NULL DEFAULT now();
CREATE INDEX notifications_status_idx ON notifications (status, created_at DESC);
CREATE TRIGGER notifications_set_updated_at BEFORE UPDATE ON notifications
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();

-- Recipients who asked not to be contacted on a channel ('*' = every channel).
CREATE TABLE notification_opt_outs (
    channel    text NOT NULL CHECK (channel IN ('*', 'email', 'push', 'chat')),
    recipient  text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (channel, recipient)
);

-- The storefront's customers, as far as memberships need them.
CREATE TABLE profiles (
    id              bigserial PRIMARY KEY,
    email           text NOT NULL UNIQUE,
    membership_tier text NOT NULL DEFAULT 'guest' CHECK (membership_tier IN ('guest', 'society')),
    stripe_customer text,
    member_since    timestamptz,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now()
);
CREATE TRIGGER profiles_set_updated_at BEFORE UPDATE ON profiles
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();
