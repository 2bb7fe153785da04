"""Quotas: what a write adds to an owner's usage is checked against, and charged to, their
quota inside the write's transaction."""

from __future__ import annotations

from ecrin.core.errors import QuotaExceeded
from ecrin.db.protocol import MetadataTransaction


async def check_quota(tx: MetadataTransaction, owner_id: int, extra_bytes: int) -> None:
    if extra_bytes <= 0:
        return
    owner = await tx.user_by_id(owner_id)
    if owner is None or owner.quota_bytes is None:
        return
    _refuse_over_quota(owner.used_bytes, owner.quota_bytes, extra_bytes)


async def charge_usage(
    tx: MetadataTransaction, owner_id: int, delta: int, *, deferrable: bool = False
) -> None:
    """Add `delta` bytes to the owner's usage, as `check_quota` then `add_usage` would, in one
    statement: a growth past the quota raises QuotaExceeded, which rolls the change back with
    the rest of the transaction. `deferrable`: see `add_usage`."""
    usage = await tx.add_usage(owner_id, delta, deferrable=deferrable)
    if delta > 0 and usage is not None and usage.quota_bytes is not None:
        _refuse_over_quota(usage.used_bytes - delta, usage.quota_bytes, delta)


def _refuse_over_quota(used_bytes: int, quota_bytes: int, extra_bytes: int) -> None:
    if used_bytes + extra_bytes > quota_bytes:
        raise QuotaExceeded(
            f"storing {extra_bytes} more bytes would exceed the quota of "
            f"{quota_bytes} bytes ({used_bytes} used)"
        )
