"""Identifiers: UUIDv7 strings, so that ids sort by creation time and index inserts stay local."""

from __future__ import annotations

import os
import uuid


def new_id(unix_ms: int) -> str:
    """Return a version-7 UUID for the given Unix time in milliseconds.

    The caller passes the time so that this stays pure and testable; the random part comes
    from ``os.urandom`` (randomness is not I/O in any sense that matters to a test).
    """
    return str(new_uuids(unix_ms, 1)[0])


def new_uuids(unix_ms: int, count: int) -> list[uuid.UUID]:
    """``count`` version-7 UUIDs for one instant, as UUID objects (what a database driver
    binds): one call to ``os.urandom`` and one object per id, for the scheduler's batches."""
    rand = os.urandom(10 * count)
    base = ((unix_ms & 0xFFFF_FFFF_FFFF) << 80) | (0x7 << 76) | (0b10 << 62)
    out = []
    for i in range(0, 10 * count, 10):
        r = int.from_bytes(rand[i : i + 10], "big")
        out.append(uuid.UUID(int=base | (((r >> 62) & 0xFFF) << 64) | (r & 0x3FFF_FFFF_FFFF_FFFF)))
    return out


def looks_like_id(text: str) -> bool:
    """True for text shaped like an id (any UUID spelling). Job names may not look like this,
    so a reference that does is an id and never a name."""
    try:
        uuid.UUID(text)
    except (ValueError, TypeError, AttributeError):
        return False
    return True
