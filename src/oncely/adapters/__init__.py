"""Adapters around the domain: the SQLite and PostgreSQL stores and the action executors."""
