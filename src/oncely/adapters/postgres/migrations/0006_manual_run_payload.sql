-- A manual run may carry its own payload (a trigger "with this payload instead"): NULL means
-- the job's payload, as for every scheduled fire. (A JSON null payload is the jsonb 'null'.)
ALTER TABLE runs ADD COLUMN payload jsonb;
