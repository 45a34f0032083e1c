"""Ids: version-7 UUIDs that sort by their instant, one at a time or in a batch."""

from __future__ import annotations

import uuid

from oncely.domain.ids import looks_like_id, new_id, new_uuids

MS = 1_780_000_000_123


def _check(value: uuid.UUID, ms: int) -> None:
    assert value.version == 7
    assert value.variant == uuid.RFC_4122
    assert value.int >> 80 == ms


def test_new_id_is_a_version_7_uuid_of_its_instant() -> None:
    text = new_id(MS)
    assert looks_like_id(text)
    _check(uuid.UUID(text), MS)


def test_a_batch_of_uuids_is_distinct_and_of_its_instant() -> None:
    batch = new_uuids(MS, 5000)
    assert len(batch) == 5000 and len(set(batch)) == 5000
    for value in batch:
        _check(value, MS)
    # Later instants sort after: index inserts stay at the right edge.
    assert max(batch) < min(new_uuids(MS + 1, 100))
    assert new_uuids(MS, 0) == []
