-- A manual run may carry its own payload (a trigger "with this payload instead"): NULL means
-- the job's payload, as for every scheduled fire. JSON text, like jobs.payload.
ALTER TABLE runs ADD COLUMN payload TEXT;
