"""WebDAV write locks (RFC 4918 sections 6-7): conflicts, refresh, timeouts, enforcement."""

from __future__ import annotations

import dataclasses
import secrets
from collections.abc import Callable, Collection
from dataclasses import dataclass

from ecrin.core.clock import Clock
from ecrin.core.errors import BadRequest, Conflict, Locked, PreconditionFailed
from ecrin.core.model import Lock, LockScope, NodeKind, User
from ecrin.core.paths import DavPath
from ecrin.core.permissions import Permission
from ecrin.db.protocol import MetadataStore
from ecrin.services.changes import propagate_change
from ecrin.services.tree import resolve

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


LockCheck = Callable[[list[Lock], bool], None]
"""A write's lock test, for a service to run inside its own transaction: given the home's
active locks and whether the write adds a name to its folder, raise Locked or return."""


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

    async def active(self, home: User) -> list[Lock]:
        async with self.metadata.read() as tx:
            return await tx.locks(home.id, self.clock.now())

    async def locks_on(self, home: User, path: DavPath) -> list[Lock]:
        """Locks that apply to `path` (on it, or inherited from a depth-infinity ancestor)."""
        return [lock for lock in await self.active(home) if lock.covers(path.segments)]

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
            for other in await tx.locks(home.id, now):
                overlaps = other.covers(path.segments) or lock.covers(other.path)
                if overlaps and LockScope.EXCLUSIVE in (other.scope, lock.scope):
                    raise Locked(f"{path} is already locked", condition="no-conflicting-lock")
            found = await resolve(tx, home, path, now)
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
                await propagate_change(tx, found.parent.id)
            else:
                found.require(Permission.UPDATE)
            await tx.insert_lock(lock)
        return lock, created

    async def refresh(
        self, home: User, path: DavPath, tokens: Collection[str], seconds: int | None
    ) -> Lock:
        now = self.clock.now()
        async with self.metadata.write() as tx:
            for lock in await tx.locks(home.id, now):
                if lock.token in tokens and lock.covers(path.segments):
                    granted = self._timeout(seconds)
                    await tx.refresh_lock(lock.token, granted, now + granted)
                    return dataclasses.replace(
                        lock, timeout_seconds=granted, expires_at=now + granted
                    )
        raise PreconditionFailed(
            "no lock matching the submitted token covers this resource",
            condition="lock-token-matches-request-uri",
        )

    async def unlock(self, home: User, path: DavPath, token: str) -> None:
        now = self.clock.now()
        async with self.metadata.write() as tx:
            for lock in await tx.locks(home.id, now):
                if lock.token == token and lock.covers(path.segments):
                    await tx.delete_lock(token)
                    return
        raise Conflict(
            "the lock token does not match a lock on this resource",
            condition="lock-token-matches-request-uri",
        )

    async def remove_below(self, home: User, path: DavPath) -> None:
        """Drop the locks rooted at or below a path (after it was deleted or moved away)."""
        async with self.metadata.write() as tx:
            for lock in await tx.locks(home.id, self.clock.now()):
                if DavPath(lock.path) == path or path.is_ancestor_of(DavPath(lock.path)):
                    await tx.delete_lock(lock.token)


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
