-- The version of a send a message was last sent for (the sweep's or an arm_soon's), so the
-- minute sweep does not arm a send twice; NULL: none yet.
ALTER TABLE reminders ADD COLUMN armed_version integer;
