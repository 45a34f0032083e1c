"""Observers of the runtime: metrics and logs (subscribers of ``oncely.runtime.events``)."""
