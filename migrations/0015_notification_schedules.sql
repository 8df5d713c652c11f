-- Notifications for people: reminder policies, subjects (occasions) with their scheduled
-- sends, recipients' preferences, versioned templates and a log of what happened to each send.

-- Offsets before the occasion (minutes) and the channels each offset goes out on; the id is
-- the caller's ('default', 'user:42:birthdays'). A subject copies its policy when upserted.
CREATE TABLE reminder_policies (
    id              text PRIMARY KEY,
    owner           text,
    name            text NOT NULL,
    offsets_minutes integer[] NOT NULL CHECK (cardinality(offsets_minutes) BETWEEN 1 AND 16),
    channels        text[] NOT NULL CHECK (cardinality(channels) BETWEEN 1 AND 3),
    send_at         time NOT NULL DEFAULT '09:00',
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX reminder_policies_owner_idx ON reminder_policies (owner);
CREATE TRIGGER reminder_policies_set_updated_at BEFORE UPDATE ON reminder_policies
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();

-- A subject that reminders hang off: an occasion or any caller-defined id ('occasion:42').
-- `addresses` maps a channel to where it goes for this recipient.
CREATE TABLE reminder_subjects (
    subject         text PRIMARY KEY,
    recipient       text NOT NULL,
    addresses       jsonb NOT NULL,
    occurs_on       date NOT NULL,
    at              time,            -- NULL: all day
    time_zone       text NOT NULL,
    recurrence      text NOT NULL DEFAULT 'none' CHECK (recurrence IN ('none', 'yearly')),
    offsets_minutes integer[] NOT NULL,
    channels        text[] NOT NULL,
    send_at         time NOT NULL DEFAULT '09:00',
    template        text NOT NULL,
    data            jsonb NOT NULL DEFAULT '{}',
    -- when the caller asked (µs): an upsert or delete older than the stored one is ignored, so two
    -- quick moves applied out of order still end at the newer one; a delete leaves a tombstone
    revision        bigint NOT NULL DEFAULT 0,
    deleted         boolean NOT NULL DEFAULT false,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now()
);
CREATE TRIGGER reminder_subjects_set_updated_at BEFORE UPDATE ON reminder_subjects
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();

-- One scheduled send per (subject, channel, offset): its next occurrence and due time.
-- `version` goes up whenever the send is moved (subject moved, deferred, rolled forward),
-- so a delayed message for an older version does nothing.
CREATE TABLE reminders (
    id             bigserial PRIMARY KEY,
    subject        text NOT NULL,
    recipient      text NOT NULL,
    channel        text NOT NULL CHECK (channel IN ('email', 'push', 'chat')),
    offset_minutes integer NOT NULL,
    occurrence     date NOT NULL,
    due_at         timestamptz NOT NULL,
    version        integer NOT NULL DEFAULT 1,
    status         text NOT NULL DEFAULT 'pending'
                   CHECK (status IN ('pending', 'done', 'cancelled')),
    sent_count     integer NOT NULL DEFAULT 0,
    created_at     timestamptz NOT NULL DEFAULT now(),
    updated_at     timestamptz NOT NULL DEFAULT now(),
    UNIQUE (subject, channel, offset_minutes)
);
CREATE INDEX reminders_due_idx ON reminders (due_at) WHERE status = 'pending';
CREATE INDEX reminders_recipient_idx ON reminders (recipient);
CREATE TRIGGER reminders_set_updated_at BEFORE UPDATE ON reminders
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();

-- Per recipient: zone, channels off, quiet hours (local), a daily cap, a global opt-out.
CREATE TABLE notification_preferences (
    recipient    text PRIMARY KEY,
    time_zone    text NOT NULL DEFAULT 'UTC',
    channels_off text[] NOT NULL DEFAULT '{}',
    quiet_start  time,
    quiet_end    time,
    daily_cap    integer CHECK (daily_cap BETWEEN 1 AND 1000),
    opted_out    boolean NOT NULL DEFAULT false,
    locale       text NOT NULL DEFAULT 'en',
    -- the policy of a subject that names none (a deleted policy simply stops applying)
    default_policy_id text,
    updated_at   timestamptz NOT NULL DEFAULT now()
);
CREATE TRIGGER notification_preferences_set_updated_at BEFORE UPDATE ON notification_preferences
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();

-- What happened to each send: queued, deferred, sent, failed, skipped, cancelled (and why).
CREATE TABLE reminder_log (
    id               bigserial PRIMARY KEY,
    reminder_id      bigint NOT NULL,
    subject          text NOT NULL,
    recipient        text NOT NULL,
    channel          text NOT NULL,
    occurrence       date NOT NULL,
    event            text NOT NULL
                     CHECK (event IN ('queued', 'deferred', 'sending', 'sent', 'failed', 'skipped', 'cancelled')),
    reason           text,
    template         text,
    template_version integer,
    idempotency_key  text,
    at               timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX reminder_log_recipient_idx ON reminder_log (recipient, at DESC);
CREATE INDEX reminder_log_reminder_idx ON reminder_log (reminder_id, at DESC);
-- the daily cap counts a recipient's sends handed to a provider per local day
CREATE INDEX reminder_log_sent_idx ON reminder_log (recipient, at) WHERE event = 'sending';

-- Templates edited by admins, one row per version; the newest version of (name, channel,
-- locale) is the one sent, and a code-defined template (domain/notifications.py) is the default.
CREATE TABLE notification_templates (
    name       text NOT NULL,
    channel    text NOT NULL CHECK (channel IN ('*', 'email', 'push', 'chat')),
    locale     text NOT NULL DEFAULT 'en',
    version    integer NOT NULL CHECK (version >= 1),
    subject    text NOT NULL,
    body       text NOT NULL,
    created_by text,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (name, channel, locale, version)
);

-- Which template version went out (NULL: the code default), pinned by the first attempt so a
-- retry after an edit sends the same text under the same idempotency key.
ALTER TABLE notifications
    ADD COLUMN locale           text,
    ADD COLUMN template_version integer;
