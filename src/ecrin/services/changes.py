"""Recording a change: new etags up the tree (and into every share's mount points), sizes."""

from __future__ import annotations

from ecrin.db.protocol import MetadataTransaction


async def propagate_change(tx: MetadataTransaction, folder_id: int, size_delta: int = 0) -> None:
    """Bump the revision of `folder_id` and every ancestor, adding `size_delta` to their size.

    Folders that are shared appear in other users' trees too: the folders holding their mount
    points get new etags as well, so every sync client sees the change.
    """
    seen: set[int] = set()
    pending: list[tuple[int, int]] = [(folder_id, size_delta)]
    while pending:
        start, delta = pending.pop()
        chain = [i for i in await tx.ancestor_ids(start) if i not in seen]
        if not chain:
            continue
        seen.update(chain)
        await tx.bump_revisions(chain, delta)
        shares = await tx.shares_on(chain)
        if shares:
            for mount in await tx.mounts_of_shares([s.id for s in shares]):
                pending.append((mount.parent_id, 0))
