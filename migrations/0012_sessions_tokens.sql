-- Server-side /admin/ sessions, per-token rate limits, and orders whose payment needs a look.

-- An /admin/ sign-in: the browser's cookie holds only a random id; this row holds what it means.
-- Rotated at sign-in (a new id), revoked at sign-out, bounded by idle and absolute timeouts
-- (settings); a revoked token ends its sessions with it (the lookup joins api_tokens).
CREATE TABLE admin_sessions (
    id_hash      text PRIMARY KEY CHECK (id_hash ~ '^[0-9a-f]{64}$'),  -- sha256 of the cookie's id
    token_id     bigint NOT NULL REFERENCES api_tokens (id) ON DELETE CASCADE,
    csrf         text NOT NULL,
    data         jsonb NOT NULL DEFAULT '{}',  -- flash messages between a redirect and its page
    created_at   timestamptz NOT NULL DEFAULT now(),
    last_seen_at timestamptz NOT NULL DEFAULT now(),
    revoked_at   timestamptz
);
CREATE INDEX admin_sessions_token_idx ON admin_sessions (token_id);
CREATE INDEX admin_sessions_created_idx ON admin_sessions (created_at);

-- Requests a minute this token may make (NULL: the TOKEN_RATE_LIMIT_PER_MIN default; 0: unlimited).
ALTER TABLE api_tokens ADD COLUMN rate_limit_per_min integer CHECK (rate_limit_per_min >= 0);

-- 'needs_review': paid, but the amount or currency does not match what the order buys; never
-- released by itself (an admin looks, then cancels/refunds it).
ALTER TABLE orders DROP CONSTRAINT orders_status_check;
ALTER TABLE orders ADD CONSTRAINT orders_status_check
    CHECK (status IN ('on_hold', 'needs_review', 'releasing', 'cancelled', 'released', 'in_production',
                      'dispatched', 'refunded', 'failed'));
ALTER TABLE orders ADD COLUMN review_reason text;
