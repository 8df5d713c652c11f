-- Enrichment: each item's zero-shot stylist slot and style tags (with every label's score), the
-- optional LLM description, and a record of every model call with its tokens, latency and cost.

-- One row per item. `fingerprint` = hash(image hash, CLIP model, vocabulary version): an item is
-- enriched again only when it changes. The inputs are kept too, so the sweep finds stale rows in SQL.
CREATE TABLE item_enrichments (
    item_id            bigint PRIMARY KEY REFERENCES items (id) ON DELETE CASCADE,
    slot               text NOT NULL,
    slot_score         double precision NOT NULL,
    slot_scores        jsonb NOT NULL,
    tags               text[] NOT NULL DEFAULT '{}',
    tag_scores         jsonb NOT NULL,
    model              text NOT NULL,
    vocabulary_version text NOT NULL,
    image_hash         text NOT NULL,
    fingerprint        text NOT NULL,
    enriched_at        timestamptz NOT NULL DEFAULT now(),
    -- the LLM stage (only when LLM_BASE_URL is set). llm_fingerprint = hash(fingerprint, LLM, prompt)
    -- of the last attempt, succeeded or failed: a failed attempt is not repeated for the same inputs.
    llm_model          text,
    llm_basis          text,
    llm_fingerprint    text,
    llm_status         text CHECK (llm_status IN ('succeeded', 'failed')),
    llm_error          text,
    description        text,
    llm_tags           text[],
    occasion_fit       text[],
    llm_run_id         bigint,
    llm_enriched_at    timestamptz
);
CREATE INDEX item_enrichments_slot_idx ON item_enrichments (slot);
CREATE INDEX item_enrichments_tags_idx ON item_enrichments USING gin (tags);

-- Every model call: LLM chat completions (tokens, cost) and zero-shot CLIP batches (local, free).
CREATE TABLE model_runs (
    id                bigserial PRIMARY KEY,
    kind              text NOT NULL,
    provider          text,
    model             text NOT NULL,
    item_ids          bigint[] NOT NULL DEFAULT '{}',
    prompt_tokens     integer CHECK (prompt_tokens >= 0),
    completion_tokens integer CHECK (completion_tokens >= 0),
    latency_ms        integer CHECK (latency_ms >= 0),
    cost_usd          numeric(14, 8) NOT NULL DEFAULT 0 CHECK (cost_usd >= 0),
    status            text NOT NULL CHECK (status IN ('succeeded', 'failed')),
    error             text,
    request_id        text,
    detail            jsonb NOT NULL DEFAULT '{}',
    created_at        timestamptz NOT NULL DEFAULT now()
);
-- the daily cost cap sums today's runs of a kind
CREATE INDEX model_runs_kind_created_idx ON model_runs (kind, created_at);
CREATE INDEX model_runs_created_idx ON model_runs (created_at);
