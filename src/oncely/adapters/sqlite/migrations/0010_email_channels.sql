-- Notification channels of kind 'email' (PostgreSQL widens its CHECK on notify_channels.kind;
-- SQLite's column has no CHECK, so nothing changes here: the migration keeps both dialects'
-- numbering in step).
SELECT 1;
