"""Recording a change: new etags up the tree (and into every share's mount points), sizes."""

from __future__ import annotations

from ecrin.db.protocol import MetadataTransaction


async def propagate_change(tx: MetadataTransaction, folder_id: int, size_delta: int = 0) -> None:
    """Bump the revision of `folder_id` and every ancestor, adding `size_delta` to their size.

    Folders that are shared appear in other users' trees too: the folders holding their mount
    points get new etags as well, so every sync client sees the change. Where nothing on the
    way up is shared, that is one statement.
    """
    seen: set[int] = set()
    pending: list[tuple[int, int]] = [(folder_id, size_delta)]
    while pending:
        start, delta = pending.pop()
        changed = await tx.bump_ancestors(start, delta, skip=seen)
        seen.update(changed.ids)
        if changed.shared_ids:
            shares = await tx.shares_on(changed.shared_ids)
            for mount in await tx.mounts_of_shares([s.id for s in shares]):
                pending.append((mount.parent_id, 0))
