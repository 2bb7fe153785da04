"""Shares with users and groups, and public links.

Rules kept here:
- only who holds SHARE on an item may share it, and never more than they hold (a reshare
  records the share it came through, so its rights stay capped as that one changes);
- a share appears in each recipient's home as a mount point they may rename or move;
- only the sharer or the item's owner may change or revoke a share; revoking cascades to
  reshares at once;
- link passwords are argon2id hashes; guessing is throttled per link and client.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import secrets
from collections.abc import Sequence
from dataclasses import dataclass

from ecrin.auth.passwords import PasswordHashing
from ecrin.coordination.local import InProcessCoordination
from ecrin.coordination.protocol import Coordination
from ecrin.core.clock import Clock
from ecrin.core.errors import (
    BadRequest,
    Forbidden,
    NotFound,
    TooManyRequests,
    Unauthorized,
)
from ecrin.core.model import Mount, Node, Share, ShareType, User
from ecrin.core.paths import DavPath
from ecrin.core.permissions import FILE_MASK, Permission
from ecrin.db.protocol import MetadataStore, MetadataTransaction
from ecrin.services.tree import path_in_home, resolve_existing, share_permissions

LINK_TOKEN_BYTES = 12
LINK_COOKIE = "ecrin_link"  # holds `link_proof` for the browser page and its uploads
MAX_LINK_FAILURES = 5  # wrong link passwords per client and link before throttling
FAILURE_WINDOW = 300.0


@dataclass(frozen=True, slots=True)
class LinkPolicy:
    enforce_password: bool = False
    max_expiry_days: int = 0  # 0: links may live forever
    default_expiry_days: int = 0


@dataclass(frozen=True, slots=True)
class ShareRequest:
    share_type: ShareType
    permissions: int | None = None  # None: the type's default
    share_with: str | None = None  # user or group name
    password: str | None = None
    expires_at: float | None = None
    label: str = ""
    note: str = ""


@dataclass(frozen=True, slots=True)
class ShareView:
    """A share with what an API needs to describe it."""

    share: Share
    node: Node
    path: str  # as seen by the viewer, when they can see it
    owner_name: str
    sharer_name: str
    recipient_name: str | None


class SharingService:
    def __init__(
        self,
        metadata: MetadataStore,
        clock: Clock,
        policy: LinkPolicy,
        hashing: PasswordHashing | None = None,
        coordination: Coordination | None = None,
    ) -> None:
        self.hashing = hashing or PasswordHashing()
        self.metadata = metadata
        self.clock = clock
        self.policy = policy
        # Wrong link passwords are counted there, so every process throttles the same guesses.
        self.coordination: Coordination = coordination or InProcessCoordination()

    # --- creating ------------------------------------------------------------------------

    async def create(self, user: User, path: DavPath, request: ShareRequest) -> Share:
        if user.is_link_visitor:
            raise Forbidden("link visitors cannot share")
        now = self.clock.now()
        password_hash = None
        if request.share_type is ShareType.LINK:
            password_hash = await self._link_password(request.password)
        async with self.metadata.write() as tx:
            found = await resolve_existing(tx, user, path, now)
            if found.path.is_root:
                raise Forbidden("your home folder cannot be shared")
            found.require(Permission.SHARE)
            node = found.existing()
            permissions = self._granted(request, node, found.permissions)
            recipient_user, recipient_group = await self._recipient(tx, user, node, request)
            share = await tx.insert_share(
                share_type=int(request.share_type),
                node_id=node.id,
                node_owner_id=node.owner_id,
                created_by=user.id,
                parent_share_id=found.share.id if found.share else None,
                share_with_user=recipient_user,
                share_with_group=recipient_group,
                permissions=int(permissions),
                token=secrets.token_urlsafe(LINK_TOKEN_BYTES)
                if request.share_type is ShareType.LINK
                else None,
                password_hash=password_hash,
                expires_at=self._expiry(request),
                label=request.label[:255],
                note=request.note[:4000],
                hide_download=False,
                created_at=now,
            )
            for member in await self._recipients(tx, share):
                if member != node.owner_id and member != user.id:
                    await self._mount(tx, share, member, node.name)
            await tx.propagate_change(node.id)
            return share

    def _granted(self, request: ShareRequest, node: Node, held: Permission) -> Permission:
        if request.permissions is None:
            wanted = Permission.READ if request.share_type is ShareType.LINK else held
        else:
            wanted = Permission.parse(request.permissions)
        if not node.is_folder:
            wanted &= FILE_MASK & ~Permission.DELETE
        file_drop = request.share_type is ShareType.LINK and wanted == Permission.CREATE
        if Permission.READ not in wanted and not (file_drop and node.is_folder):
            raise BadRequest("a share must at least allow reading (or be a folder's file drop)")
        if wanted & ~held:
            raise Forbidden("a share cannot grant more than you hold")
        return wanted

    async def _recipient(
        self, tx: MetadataTransaction, user: User, node: Node, request: ShareRequest
    ) -> tuple[int | None, int | None]:
        if request.share_type is ShareType.LINK:
            return None, None
        if not request.share_with:
            raise BadRequest("shareWith is required")
        if request.share_type is ShareType.USER:
            recipient = await tx.user_by_name(request.share_with)
            if recipient is None:
                raise NotFound(f"no user {request.share_with!r}")
            if recipient.id in (user.id, node.owner_id):
                raise BadRequest("you cannot share with yourself or with the owner")
            return recipient.id, None
        group = await tx.group_by_name(request.share_with)
        if group is None:
            raise NotFound(f"no group {request.share_with!r}")
        return None, group.id

    async def _recipients(self, tx: MetadataTransaction, share: Share) -> list[int]:
        if share.share_with_user is not None:
            return [share.share_with_user]
        if share.share_with_group is not None:
            return [u.id for u in await tx.group_members(share.share_with_group)]
        return []

    async def _mount(self, tx: MetadataTransaction, share: Share, user_id: int, name: str) -> None:
        """Place a share in the recipient's home, under a name free there."""
        root = await tx.root_node(user_id)
        candidate, counter = name, 1
        while (
            await tx.child(root.id, candidate) is not None
            or await tx.mount_at(user_id, root.id, candidate) is not None
        ):
            counter += 1
            stem, dot, ext = name.rpartition(".")
            candidate = f"{stem} ({counter}).{ext}" if dot and stem else f"{name} ({counter})"
        await tx.insert_mount(Mount(share.id, user_id, root.id, candidate))
        await tx.propagate_change(root.id)

    async def _link_password(self, password: str | None) -> str | None:
        if not password:
            if self.policy.enforce_password:
                raise BadRequest("public links must have a password on this server")
            return None
        if len(password) < 8:
            raise BadRequest("link passwords have at least 8 characters")
        return await asyncio.to_thread(self.hashing.hash, password)

    def _expiry(self, request: ShareRequest) -> float | None:
        if request.share_type is not ShareType.LINK:
            return request.expires_at
        now = self.clock.now()
        expires = request.expires_at
        if expires is None and self.policy.default_expiry_days:
            expires = now + self.policy.default_expiry_days * 86400
        if self.policy.max_expiry_days:
            limit = now + self.policy.max_expiry_days * 86400
            if expires is None or expires > limit:
                raise BadRequest(
                    f"links expire within {self.policy.max_expiry_days} days on this server"
                )
        if expires is not None and expires <= now:
            raise BadRequest("the expiry date is in the past")
        return expires

    # --- reading -------------------------------------------------------------------------

    async def visible(self, user: User, share_id: int) -> Share:
        """A share the user created, owns the item of, or received; else NotFound."""
        async with self.metadata.read() as tx:
            share = await tx.share(share_id)
            if share is None or not await self._may_see(tx, user, share):
                raise NotFound("no such share")
            return share

    async def _may_see(self, tx: MetadataTransaction, user: User, share: Share) -> bool:
        if user.id in (share.created_by, share.node_owner_id):
            return True
        return share.share_type is not ShareType.LINK and bool(
            await share_permissions(tx, share, user, self.clock.now())
        )

    async def created_by(self, user: User, path: DavPath | None = None) -> list[Share]:
        async with self.metadata.read() as tx:
            if path is None:
                return await tx.shares_created_by(user.id)
            node = (await resolve_existing(tx, user, path, self.clock.now())).existing()
            return [
                s
                for s in await tx.shares_on([node.id])
                if user.id in (s.created_by, s.node_owner_id)
            ]

    async def received(self, user: User) -> list[Share]:
        now = self.clock.now()
        async with self.metadata.read() as tx:
            return [
                s
                for s in await tx.shares_received(user.id)
                if s.share_type is not ShareType.LINK and await share_permissions(tx, s, user, now)
            ]

    async def describe(self, user: User, shares: Sequence[Share]) -> list[ShareView]:
        views = []
        async with self.metadata.read() as tx:
            for share in shares:
                node = await tx.node(share.node_id)
                if node is None:
                    continue
                owner = await tx.user_by_id(share.node_owner_id)
                sharer = await tx.user_by_id(share.created_by)
                recipient = None
                if share.share_with_user is not None:
                    target = await tx.user_by_id(share.share_with_user)
                    recipient = target.name if target else None
                elif share.share_with_group is not None:
                    group = await tx.group_by_id(share.share_with_group)
                    recipient = group.name if group else None
                path = await self._path_for(tx, user, share, node)
                views.append(
                    ShareView(
                        share,
                        node,
                        path,
                        owner.name if owner else "",
                        sharer.name if sharer else "",
                        recipient,
                    )
                )
        return views

    async def _path_for(self, tx: MetadataTransaction, user: User, share: Share, node: Node) -> str:
        """The item's path as `user` sees it: in their home, or where the share is mounted."""
        for mount in await tx.mounts_of_user(user.id):
            if mount.share_id == share.id:
                return str((await path_in_home(tx, mount.parent_id)).child(mount.name))
        if node.owner_id == user.id:
            return str(await path_in_home(tx, node.id))  # never the home: it is not shared
        return "/" + node.name

    # --- changing ------------------------------------------------------------------------

    async def update(
        self,
        user: User,
        share_id: int,
        *,
        permissions: int | None = None,
        password: str | None = None,
        expires_at: float | None = None,
        clear_expiry: bool = False,
        label: str | None = None,
        note: str | None = None,
    ) -> Share:
        now = self.clock.now()
        new_hash = await self._link_password(password) if password else None
        async with self.metadata.write() as tx:
            share = await self._managed(tx, user, share_id)
            values: dict[str, object] = {}
            if permissions is not None:
                node = await tx.node(share.node_id)
                assert node is not None
                held = await self._held(tx, user, share, now)
                request = ShareRequest(share.share_type, permissions)
                values["permissions"] = int(self._granted(request, node, held))
            if new_hash is not None:
                values["password_hash"] = new_hash
            if clear_expiry or expires_at is not None:
                request = ShareRequest(share.share_type, expires_at=expires_at)
                values["expires_at"] = self._expiry(request)
            if label is not None:
                values["label"] = label[:255]
            if note is not None:
                values["note"] = note[:4000]
            if values:
                await tx.update_share(share.id, **values)
            await tx.propagate_change(share.node_id)
            updated = await tx.share(share.id)
            assert updated is not None
            return updated

    async def _held(
        self, tx: MetadataTransaction, user: User, share: Share, now: float
    ) -> Permission:
        """What the sharer holds on the item right now (everything, for its owner)."""
        if share.node_owner_id == user.id or share.parent_share_id is None:
            return Permission.ALL
        parent = await tx.share(share.parent_share_id)
        return await share_permissions(tx, parent, user, now) if parent else Permission.NONE

    async def delete(self, user: User, share_id: int) -> None:
        async with self.metadata.write() as tx:
            share = await self._managed(tx, user, share_id)
            await tx.delete_share(share.id)
            await tx.propagate_change(share.node_id)

    async def _managed(self, tx: MetadataTransaction, user: User, share_id: int) -> Share:
        share = await tx.share(share_id)
        if share is None or not await self._may_see(tx, user, share):
            raise NotFound("no such share")
        if user.id not in (share.created_by, share.node_owner_id):
            raise Forbidden("only the sharer or the owner may change a share")
        return share

    # --- groups change who receives group shares ----------------------------------------

    async def member_added(self, tx: MetadataTransaction, group_id: int, user_id: int) -> None:
        for share in await self._group_shares(tx, group_id):
            node = await tx.node(share.node_id)
            if node is not None and user_id not in (node.owner_id, share.created_by):
                await self._mount(tx, share, user_id, node.name)

    async def member_removed(self, tx: MetadataTransaction, group_id: int, user_id: int) -> None:
        for share in await self._group_shares(tx, group_id):
            await tx.delete_mount(share.id, user_id)

    async def _group_shares(self, tx: MetadataTransaction, group_id: int) -> list[Share]:
        return await tx.shares_with_group(group_id)

    # --- public links --------------------------------------------------------------------

    async def open_link(
        self, token: str, password: str | None, client: str, proof: str | None = None
    ) -> User:
        """A visitor's identity for a link, after its password (or the proof a browser got
        for it, see `link_proof`); throttled on failures."""
        now = self.clock.now()
        key = _failures_key(token, client)
        if await self.coordination.count_events(key, now - FAILURE_WINDOW) >= MAX_LINK_FAILURES:
            raise TooManyRequests("too many wrong passwords for this link; try again later")
        async with self.metadata.read() as tx:
            share = await tx.share_by_token(token)
            if share is None or share.share_type is not ShareType.LINK:
                raise NotFound("this link does not exist")
            if share.expired(now):
                raise NotFound("this link has expired")
        proven = proof is not None and hmac.compare_digest(proof, link_proof(share))
        if (
            share.password_hash is not None
            and not proven
            and not await self._password_ok(share.password_hash, password)
        ):
            await self.coordination.record_event(key, now, FAILURE_WINDOW)
            raise Unauthorized("this link needs its password")
        await self.coordination.forget_events(key)
        return link_visitor(share)

    async def _password_ok(self, password_hash: str, password: str | None) -> bool:
        if not password:
            return False
        return await asyncio.to_thread(self.hashing.verify, password_hash, password)

    async def link_share(self, token: str) -> Share:
        async with self.metadata.read() as tx:
            share = await tx.share_by_token(token)
        if share is None or share.share_type is not ShareType.LINK:
            raise NotFound("this link does not exist")
        return share


def _failures_key(token: str, client: str) -> str:
    """Where a link's wrong passwords from one client are counted (no secret in the name)."""
    digest = hashlib.sha256(token.encode() + b"\x00" + client.encode()).hexdigest()
    return "link-failures:" + digest[:32]


def link_proof(share: Share) -> str:
    """What a browser keeps after giving a link's password: an HMAC of the token keyed by
    the password's hash, so changing the password invalidates it."""
    key = (share.password_hash or "").encode()
    return hmac.new(key, (share.token or "").encode(), hashlib.sha256).hexdigest()


def link_visitor(share: Share) -> User:
    """The identity of an anonymous visitor of a link: their tree is the link's item."""
    return User(
        id=0,
        name=f"link:{share.token}",
        display_name="Guest",
        quota_bytes=None,
        used_bytes=0,
        is_admin=False,
        link_share_id=share.id,
    )
