"""Which old versions to keep: Nextcloud-like thinning, plus count and age limits.

Thinning keeps at most one version per slot, the slot width growing with age:
2 s during the first 10 s, 1 min during the first hour, 1 h during the first day,
1 day during the first 30 days, then 1 week.
"""

from __future__ import annotations

from collections.abc import Sequence

_SLOTS: tuple[tuple[float, float], ...] = (
    (10, 2),
    (3600, 60),
    (86400, 3600),
    (30 * 86400, 86400),
    (float("inf"), 7 * 86400),
)


def _slot(age: float) -> tuple[int, int]:
    for index, (limit, width) in enumerate(_SLOTS):
        if age < limit:
            return index, int(age // width)
    raise AssertionError(age)


def versions_to_drop(
    versions: Sequence[tuple[int, float]], now: float, *, max_count: int, max_age: float
) -> list[int]:
    """Ids to delete among (id, created_at) pairs, newest first is not required.

    `max_count` 0 and `max_age` 0 mean no limit.
    """
    drop: list[int] = []
    seen_slots: set[tuple[int, int]] = set()
    kept = 0
    for version_id, created in sorted(versions, key=lambda v: -v[1]):
        age = max(0.0, now - created)
        slot = _slot(age)
        if (max_age and age > max_age) or (max_count and kept >= max_count) or slot in seen_slots:
            drop.append(version_id)
            continue
        seen_slots.add(slot)
        kept += 1
    return drop
