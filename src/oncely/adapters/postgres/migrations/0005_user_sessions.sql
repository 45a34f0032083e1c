-- A user's sessions: access tokens carry the epoch they were issued in, and a password change
-- or a disable moves the epoch on, so tokens issued before stop working at once.
ALTER TABLE users ADD COLUMN session_epoch integer NOT NULL DEFAULT 0;
