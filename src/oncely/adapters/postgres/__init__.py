"""The PostgreSQL store: many schedulers, workers and API processes sharing one database."""

from oncely.adapters.postgres.store import PostgresStore, notify_channel

__all__ = ["PostgresStore", "notify_channel"]
