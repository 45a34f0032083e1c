"""The embedded store: one SQLite file, for ``oncely up`` on one machine."""

from oncely.adapters.sqlite.store import SqliteStore

__all__ = ["SqliteStore"]
