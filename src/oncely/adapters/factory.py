"""Open a store from a URL: ``sqlite:///path``, a plain file path, or ``postgresql://``."""

from __future__ import annotations

from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from oncely.domain.errors import InvalidInput
from oncely.ports.store import Store


def open_store(url: str) -> Store:
    """Open (but do not migrate) the store a URL names.

    PostgreSQL URLs may carry ``schema=<name>`` (default ``oncely``) as a query parameter;
    the rest of the URL goes to libpq unchanged. SQLite URLs may carry
    ``task_transaction_cap=<seconds>`` (see ``SqliteStore``).
    """
    if url.startswith(("postgresql://", "postgres://")):
        from oncely.adapters.postgres import PostgresStore

        parts = urlsplit(url)
        query = parse_qsl(parts.query, keep_blank_values=True)
        schema = next((v for k, v in query if k == "schema"), "oncely")
        rest = urlencode([(k, v) for k, v in query if k != "schema"])
        return PostgresStore(urlunsplit(parts._replace(query=rest)), schema=schema)
    cap: float | None = None
    if url.startswith("sqlite://"):
        path, _, params = url.removeprefix("sqlite://").partition("?")
        for key, value in parse_qsl(params, keep_blank_values=True):
            if key != "task_transaction_cap":
                raise InvalidInput(f"unknown sqlite URL parameter {key!r}", field="store")
            try:
                cap = float(value)
            except ValueError:
                cap = -1.0
            if not 0 < cap <= 60:
                raise InvalidInput(
                    "task_transaction_cap must be a number of seconds in (0, 60]", field="store"
                )
        # sqlite:///relative.db -> "relative.db"; sqlite:////abs/path.db -> "/abs/path.db"
        path = path.removeprefix("/")
        if not path:
            raise InvalidInput("sqlite URL has no path: use sqlite:///oncely.db")
    elif "://" in url:
        raise InvalidInput(
            f"unsupported store URL {url!r}: use sqlite:///path.db or postgresql://..."
        )
    else:
        path = url
    from oncely.adapters.sqlite import SqliteStore

    if cap is None:
        return SqliteStore(path)
    return SqliteStore(path, task_transaction_cap=cap)
