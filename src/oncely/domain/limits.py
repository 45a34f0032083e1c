"""Size limits that protect the store. One place, so docs and validation agree."""

from __future__ import annotations

MAX_PAYLOAD_BYTES = 256 * 1024
"""A job's payload, serialized as JSON."""

MAX_OUTPUT_BYTES = 64 * 1024
"""Output kept per attempt (stdout/stderr tail, response body head, return value)."""

MAX_ERROR_CHARS = 8 * 1024
"""An attempt's error message."""

MAX_NAME_CHARS = 200
MAX_ARGV_ITEMS = 1024
MAX_HEADERS = 64
MAX_STATEMENT_CHARS = 64 * 1024
MAX_STDIN_BYTES = 64 * 1024
"""Standard input a shell action hands its program (a crontab line's text after ``%``)."""


def cap_text(text: str | None, limit: int, *, keep: str = "head") -> str | None:
    """Cut ``text`` to at most ``limit`` UTF-8 bytes, keeping its head or its tail.

    A marker says how much was dropped, so a reader never mistakes a cut output for a whole one.
    """
    if text is None:
        return None
    data = text.encode("utf-8", errors="replace")
    if len(data) <= limit:
        return text
    dropped = len(data) - limit
    marker = f"[… {dropped} bytes cut …]"
    room = max(limit - len(marker.encode()), 0)
    if keep == "tail":
        return marker + data[len(data) - room :].decode("utf-8", errors="ignore")
    return data[:room].decode("utf-8", errors="ignore") + marker
