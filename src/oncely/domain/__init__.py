"""The pure core of oncely: schedules, jobs, the run state machine, policies and backoff.

Nothing in this package performs I/O, reads the wall clock, or imports from outside it
(besides the standard library and the cron expression library). Every decision the runtime
makes is a function here that returns a value; the loops in ``oncely.runtime`` only execute them.
"""
