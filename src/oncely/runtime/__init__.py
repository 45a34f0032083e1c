"""The loops that execute the domain's decisions: scheduler, worker, reaper, and the App."""
