-- At the peak (10,000 fires/s) runs gains about 20,000 dead row versions a second, and every
-- claim walks the claimed runs' entries at the front of runs_claim until a vacuum removes
-- them. Throttled (the server default pauses 2 ms every 200 cost units), autovacuum did not
-- finish a pass of runs in minutes: claims slowed from milliseconds to a second and the
-- workers fell behind without bound (W6, 10 minutes). Unthrottled, a pass takes seconds.
ALTER TABLE runs SET (autovacuum_vacuum_cost_delay = 0);
