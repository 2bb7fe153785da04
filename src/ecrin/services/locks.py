"""WebDAV write locks (RFC 4918 sections 6-7): conflicts, refresh, timeouts, enforcement.

A lock lives in the namespace of the storage its resource belongs to: a lock on a shared
item is kept by the path from its owner's home, whoever took it and by whatever path, so
that the owner, every recipient and a link's visitors meet the same locks. A request reads
them translated into its own view (`LockView`), and the path-based tests below stay simple.
"""

from __future__ import annotations

import dataclasses
import secrets
from collections.abc import Callable, Collection
from dataclasses import dataclass

from ecrin.core.clock import Clock
from ecrin.core.errors import (
    BadRequest,
    Conflict,
    Forbidden,
    Locked,
    NotFound,
    PreconditionFailed,
)
from ecrin.core.model import Lock, LockScope, Node, NodeKind, User
from ecrin.core.paths import DavPath
from ecrin.core.permissions import Permission
from ecrin.db.protocol import MetadataStore, MetadataTransaction
from ecrin.services.tree import Resolved, path_in_home, resolve

TOKEN_PREFIX = "opaquelocktoken:"


@dataclass(frozen=True, slots=True)
class LockRequest:
    scope: LockScope
    depth_infinity: bool
    owner_xml: str
    timeout_seconds: int | None  # None: the server's default


def check_writable(
    locks: list[Lock],
    principal: User,
    path: DavPath,
    submitted: Collection[str],
    *,
    subtree: bool = False,
) -> None:
    """Raise Locked unless every lock of `locks` on `path` (and below it, for `subtree`) was
    submitted: its token appears in the request's If header and the request comes from the
    principal who took it."""
    for lock in locks:
        applies = lock.covers(path.segments) or (
            subtree and DavPath(lock.path) != path and path.is_ancestor_of(DavPath(lock.path))
        )
        if applies and not (lock.token in submitted and lock.principal_id == principal.id):
            raise Locked(f"{path} is locked")


@dataclass(frozen=True, slots=True)
class LockView:
    """Where the locks that bear on a user's path are kept: the user's own namespace (their
    home, by path), and past a share's mount point the storage owner's, in which the shared
    item's path is `owner_path`."""

    home_id: int | None  # None: a link's visitor, who has no namespace of their own
    mount: tuple[str, ...] | None = None  # the user's path of the shared item, if crossed
    owner_id: int = 0
    owner_path: tuple[str, ...] = ()

    def stored_at(self, path: DavPath) -> tuple[int, tuple[str, ...]]:
        """The namespace, and the path in it, of a lock on `path`."""
        segments, mount = path.segments, self.mount
        if mount is not None and segments[: len(mount)] == mount:
            return self.owner_id, self.owner_path + segments[len(mount) :]
        assert self.home_id is not None  # a link's visitor never leaves the link's item
        return self.home_id, segments

    def seen(self, owners: list[Lock]) -> list[Lock]:
        """The owner's locks that bear on something in view, as this view names them: a
        depth-infinity lock above the shared item is seen on the item."""
        assert self.mount is not None
        mount, start, seen = self.mount, len(self.owner_path), []
        for lock in owners:
            if lock.path[:start] == self.owner_path:
                seen.append(dataclasses.replace(lock, path=mount + lock.path[start:]))
            elif lock.depth_infinity and self.owner_path[: len(lock.path)] == lock.path:
                seen.append(dataclasses.replace(lock, path=mount))
        return seen


async def lock_view(tx: MetadataTransaction, user: User, found: Resolved) -> LockView:
    """`found`'s view: the first node along its path that is not the user's (a mount point,
    or a link's item) is where the owner's namespace begins."""
    along = (*found.ancestors, found.node) if found.node is not None else found.ancestors
    for depth, node in enumerate(along):
        if node.owner_id != user.id:
            return await _entered_at(tx, user, found.path.segments[:depth], node)
    return LockView(None if user.is_link_visitor else user.id)


async def _entered_at(
    tx: MetadataTransaction, user: User, mount: tuple[str, ...], node: Node
) -> LockView:
    """The view of a user who reaches someone else's `node` at the path `mount`."""
    owner_path = (await path_in_home(tx, node.id)).segments
    return LockView(None if user.is_link_visitor else user.id, mount, node.owner_id, owner_path)


async def locks_on_mount_points(
    tx: MetadataTransaction, user: User, mounts: list[tuple[DavPath, Node]], now: float
) -> list[Lock]:
    """The owners' locks bearing on mount points listed in their folder, whose own view
    (`locks_in_view`) does not cross them: those on each shared item and below it, and
    those of depth infinity above it, as the user names them."""
    seen: list[Lock] = []
    for path, node in mounts:
        view = await _entered_at(tx, user, path.segments, node)
        seen += view.seen(await tx.locks(node.owner_id, now))
    return seen


async def home_locks(tx: MetadataTransaction, user: User, now: float) -> list[Lock]:
    """The locks of the user's own namespace (none for a link's visitor)."""
    return [] if user.is_link_visitor else await tx.locks(user.id, now)


async def view_locks(tx: MetadataTransaction, view: LockView, now: float) -> list[Lock]:
    """The active locks that bear on the paths of `view`, as it names them."""
    seen = [] if view.home_id is None else await tx.locks(view.home_id, now)
    if view.mount is not None:
        seen += view.seen(await tx.locks(view.owner_id, now))
    return seen


async def locks_in_view(
    tx: MetadataTransaction, user: User, found: Resolved, now: float
) -> list[Lock]:
    """The active locks on `found`'s path, above it and below it, as the user names them."""
    if found.share is None:  # no share crossed: the user's own namespace (the common case)
        return await tx.locks(user.id, now)
    seen = await view_locks(tx, await lock_view(tx, user, found), now)
    if found.node is not None and Permission.READ not in found.permissions:
        # A file drop's visitor learns nothing of what is in it, its locks included.
        seen = [lock for lock in seen if not _at_or_below(lock.path, found.path.segments)]
    return seen


async def check_not_locked_by_others(
    tx: MetadataTransaction, principal: User, node: Node, now: float
) -> None:
    """For a write with no path to submit tokens for (restoring a version, or an item from
    the trash): Locked if anyone but `principal` holds a lock covering `node`."""
    active = await tx.locks(node.owner_id, now)
    if not active:
        return
    path = (await path_in_home(tx, node.id)).segments
    for lock in active:
        if lock.covers(path) and lock.principal_id != principal.id:
            raise Locked(f"{node.name or 'this folder'} is locked by someone else")


LockCheck = Callable[[list[Lock], bool], None]
"""A write's lock test, for a service to run inside its own transaction: given the locks
bearing on the path (`locks_in_view`) and whether the write adds a name to its folder, raise
Locked or return."""


@dataclass(frozen=True, slots=True)
class PathLockCheck:
    """The lock test of a write to one path (a `LockCheck`): the path's locks (and those below
    it, with `subtree`), and with `membership` its folder's, must all have been submitted."""

    principal: User
    path: DavPath
    submitted: frozenset[str]
    subtree: bool = False

    def __call__(self, locks: list[Lock], membership: bool) -> None:
        check_writable(locks, self.principal, self.path, self.submitted, subtree=self.subtree)
        if membership and not self.path.is_root:
            check_writable(locks, self.principal, self.path.parent, self.submitted)


class LockService:
    def __init__(
        self, metadata: MetadataStore, clock: Clock, *, default_timeout: int, max_timeout: int
    ) -> None:
        self.metadata = metadata
        self.clock = clock
        self.default_timeout = default_timeout
        self.max_timeout = max_timeout

    def _timeout(self, requested: int | None) -> int:
        if requested is None:
            return self.default_timeout
        return max(1, min(requested, self.max_timeout))

    async def active(self, home: User, path: DavPath, *, subtree: bool = False) -> list[Lock]:
        """The active locks on `path`, above it and below it, as `home` names them.

        `subtree`: for a write that removes the path with what is below it (DELETE, MOVE),
        which at a mount point removes the user's mount, not the shared item."""
        now = self.clock.now()
        async with self.metadata.read() as tx:
            try:
                found = await resolve(tx, home, path, now)
            except Conflict:  # no parent: only the user's own locks can bear on it
                return await home_locks(tx, home, now)
            if subtree and found.mount is not None:
                return await home_locks(tx, home, now)
            return await locks_in_view(tx, home, found, now)

    async def lock(
        self, home: User, principal: User, path: DavPath, request: LockRequest
    ) -> tuple[Lock, bool]:
        """Take a new lock. Locking an unmapped URL creates an empty file (RFC 4918 7.3).

        Returns the lock and whether a file was created.
        """
        now = self.clock.now()
        timeout = self._timeout(request.timeout_seconds)
        lock = Lock(
            token=TOKEN_PREFIX + secrets.token_hex(16),
            owner_id=home.id,
            path=path.segments,
            scope=request.scope,
            depth_infinity=request.depth_infinity,
            owner_xml=request.owner_xml,
            principal_id=principal.id,
            timeout_seconds=timeout,
            expires_at=now + timeout,
        )
        async with self.metadata.write() as tx:
            await tx.delete_expired_locks(now)
            found = await resolve(tx, home, path, now)
            view = await lock_view(tx, home, found)
            for other in await view_locks(tx, view, now):
                overlaps = other.covers(path.segments) or lock.covers(other.path)
                if overlaps and LockScope.EXCLUSIVE in (other.scope, lock.scope):
                    raise Locked(f"{path} is already locked", condition="no-conflicting-lock")
            created = found.node is None
            if created:
                found.require(Permission.CREATE, on_parent=True)
                await tx.insert_node(
                    parent_id=found.parent.id,
                    owner_id=found.storage_owner_id,
                    name=path.name,
                    kind=NodeKind.FILE,
                    size=0,
                    mtime=now,
                    now=now,
                )
                await tx.propagate_change(found.parent.id)
            else:
                found.require(Permission.UPDATE)
            owner_id, stored_path = view.stored_at(path)
            await tx.insert_lock(dataclasses.replace(lock, owner_id=owner_id, path=stored_path))
        return lock, created

    async def refresh(
        self,
        home: User,
        principal: User,
        path: DavPath,
        tokens: Collection[str],
        seconds: int | None,
    ) -> Lock:
        """Extend a lock of the principal's whose token was submitted."""
        now = self.clock.now()
        async with self.metadata.write() as tx:
            found = await resolve(tx, home, path, now)
            for lock in await locks_in_view(tx, home, found, now):
                held = lock.principal_id == principal.id
                if held and lock.token in tokens and lock.covers(path.segments):
                    granted = self._timeout(seconds)
                    await tx.refresh_lock(lock.token, granted, now + granted)
                    return dataclasses.replace(
                        lock, timeout_seconds=granted, expires_at=now + granted
                    )
        raise PreconditionFailed(
            "no lock of yours matching the submitted token covers this resource",
            condition="lock-token-matches-request-uri",
        )

    async def unlock(self, home: User, principal: User, path: DavPath, token: str) -> None:
        """Remove a lock: its holder may, and so may the owner of the locked item (to clear
        a lock a former recipient left behind), no one else."""
        now = self.clock.now()
        async with self.metadata.write() as tx:
            found = await resolve(tx, home, path, now)
            for lock in await locks_in_view(tx, home, found, now):
                if lock.token == token and lock.covers(path.segments):
                    if principal.id not in (lock.principal_id, found.storage_owner_id):
                        raise Forbidden("only its holder or the item's owner may remove a lock")
                    await tx.delete_lock(token)
                    return
        raise Conflict(
            "the lock token does not match a lock on this resource",
            condition="lock-token-matches-request-uri",
        )

    async def held_in(self, owner: User) -> list[Lock]:
        """The active locks on `owner`'s storage, whoever took them (paths as stored)."""
        async with self.metadata.read() as tx:
            return await tx.locks(owner.id, self.clock.now())

    async def break_lock(self, owner: User, token: str) -> Lock:
        """Remove a lock on `owner`'s storage, whoever holds it: for an administrator, when
        a client died holding a lock that would otherwise last until its timeout."""
        async with self.metadata.write() as tx:
            for lock in await tx.locks(owner.id, self.clock.now()):
                if lock.token == token:
                    await tx.delete_lock(token)
                    return lock
        raise NotFound(f"no active lock {token} on {owner.name}'s files")

    async def remove_below(self, home: User, path: DavPath) -> None:
        """Drop the locks rooted at or below a path (after it was deleted or moved away):
        seen from its parent, which is still there, and through which a mount point's own
        removal leaves the owner's locks alone."""
        if path.is_root:
            return
        now = self.clock.now()
        async with self.metadata.write() as tx:
            try:
                view = await lock_view(tx, home, await resolve(tx, home, path.parent, now))
            except (Conflict, NotFound):  # gone too: only the user's own locks remain
                if home.is_link_visitor:
                    return
                view = LockView(home.id)
            owner_id, stored_path = view.stored_at(path)
            for lock in await tx.locks(owner_id, now):
                if _at_or_below(lock.path, stored_path):
                    await tx.delete_lock(lock.token)


def _at_or_below(path: tuple[str, ...], root: tuple[str, ...]) -> bool:
    return path[: len(root)] == root


def parse_timeout(header: str | None) -> int | None:
    """`Timeout: Second-600, Infinite` -> the first finite value, or None for the default."""
    if not header:
        return None
    for item in header.split(","):
        item = item.strip()
        if item.lower().startswith("second-"):
            try:
                return int(item[7:])
            except ValueError as exc:
                raise BadRequest("malformed Timeout header") from exc
    return None
