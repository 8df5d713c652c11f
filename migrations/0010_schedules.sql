-- What an admin changes about the schedules without a deploy. The periodic actors' own
-- `cron()` declarations stay the defaults: a schedule without a row here runs as declared.

-- One row per periodic actor the admin touched: a cadence override (NULL = the declared
-- cron) and whether it fires at all.
CREATE TABLE schedule_settings (
    actor      text PRIMARY KEY,
    cron       text,
    enabled    boolean NOT NULL DEFAULT true,
    updated_at timestamptz NOT NULL DEFAULT now(),
    updated_by text
);

-- The lists the fan-outs read: `sources` (scrape sources with their queries and limits),
-- `brands` (searched on every source that opts in) and `surfaces` (collections). A missing
-- key means the default from code; a stored empty list means "none".
CREATE TABLE schedule_config (
    key        text PRIMARY KEY CHECK (key IN ('sources', 'brands', 'surfaces')),
    value      jsonb NOT NULL CHECK (jsonb_typeof(value) = 'array'),
    updated_at timestamptz NOT NULL DEFAULT now(),
    updated_by text
);
