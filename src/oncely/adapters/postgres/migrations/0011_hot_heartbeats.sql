-- Heartbeats renew ``lease_expires_at`` of every running run every few seconds. While an
-- index was keyed on that column, each renewal was a non-HOT update: a new version of the
-- row with a new entry in every index of runs. Keyed on a column a heartbeat never writes,
-- the renewal is a HOT update (the row's new version on the same page, no index touched).
-- The reaper reads the running runs along this index and sorts the expired ones; running
-- runs are a worker's slots, never history, so that pass stays small.
DROP INDEX runs_lease;
CREATE INDEX runs_running ON runs (worker_id) WHERE state = 'running';
