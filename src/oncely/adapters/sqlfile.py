"""Named SQL queries kept in ``.sql`` files, one file per dialect, loaded once.

A file holds blocks that start with a ``-- name: <query_name>`` line; the block runs until
the next such line. Keeping every statement in one file per dialect lets a reader find and
review all the SQL a store can run, and keeps SQL out of string building at run time.
"""

from __future__ import annotations

import re
from importlib import resources

_NAME = re.compile(r"^--\s*name:\s*([a-z_][a-z0-9_]*)\s*$", re.MULTILINE)


def parse_queries(text: str) -> dict[str, str]:
    queries: dict[str, str] = {}
    matches = list(_NAME.finditer(text))
    for i, match in enumerate(matches):
        end = matches[i + 1].start() if i + 1 < len(matches) else len(text)
        body = text[match.end() : end].strip()
        name = match.group(1)
        if name in queries:
            raise ValueError(f"query {name!r} is defined twice")
        queries[name] = body
    return queries


def load_queries(package: str, filename: str) -> dict[str, str]:
    return parse_queries(resources.files(package).joinpath(filename).read_text("utf-8"))


def load_migrations(package: str) -> list[tuple[int, str, str]]:
    """(version, name, sql) for each ``migrations/NNNN_name.sql`` in the package, in order."""
    found: list[tuple[int, str, str]] = []
    folder = resources.files(package).joinpath("migrations")
    for entry in folder.iterdir():
        match = re.match(r"^(\d{4})_([a-z0-9_]+)\.sql$", entry.name)
        if match:
            found.append((int(match.group(1)), match.group(2), entry.read_text("utf-8")))
    found.sort()
    versions = [v for v, _, _ in found]
    if versions != list(range(1, len(versions) + 1)):
        raise RuntimeError(f"migrations in {package} are not numbered 1..n: {versions}")
    return found
