"""The metadata store protocol: what every metadata backend (SQLite, PostgreSQL) provides.

A store hands out transactions. Everything done through one transaction commits atomically
or not at all; the services compose these primitives into the product's operations.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from ecrin.core.model import (
    AppPassword,
    DeadProperty,
    Group,
    Lock,
    LoginFlow,
    Mount,
    Node,
    NodeKind,
    Share,
    TrashItem,
    UploadChunk,
    UploadSession,
    Usage,
    User,
    Version,
)


@dataclass(frozen=True, slots=True)
class PathWalk:
    """What lies along a list of names below a start folder (see `MetadataTransaction.walk`)."""

    start: Node | None  # None: no such start node
    nodes: tuple[Node, ...]  # one per name, up to the first name with no node
    mount: Mount | None  # the walker's mount point at that first missing name, if any
    # Asked for: the bytes the last node's blob row keeps, when every name was found and
    # they are kept there (`contents.py`); None otherwise.
    content: bytes | None = None


@dataclass(frozen=True, slots=True)
class ChangedChain:
    """The folders `bump_ancestors` changed, and which of them carry a share."""

    ids: list[int]
    shared_ids: list[int]


class MetadataTransaction(Protocol):
    async def insert_user(
        self,
        name: str,
        display_name: str,
        password_hash: str,
        quota_bytes: int | None,
        is_admin: bool,
        now: float,
    ) -> User: ...

    async def user_by_name(self, name: str) -> User | None: ...

    async def user_by_id(self, user_id: int) -> User | None: ...

    async def list_users(self) -> list[User]: ...

    async def user_count(self) -> int: ...

    async def password_hash(self, user_id: int) -> str | None: ...

    async def set_password_hash(self, user_id: int, password_hash: str) -> None: ...

    async def set_quota(self, user_id: int, quota_bytes: int | None) -> None: ...

    async def add_usage(
        self, user_id: int, delta: int, *, deferrable: bool = False
    ) -> Usage | None:
        """Add `delta` to the user's used bytes; returns their usage as changed (None: delta 0
        or no such user).

        `deferrable`, in a write opened with `deferrable_changes`: for a user this commit
        found without a quota, the bytes may instead be added once for every writer of the
        commit it shares, as `propagate_change` does; None is then returned, and there is
        nothing to check."""

    async def set_usage(self, user_id: int, used_bytes: int) -> None: ...

    async def root_node(self, user_id: int) -> Node: ...

    async def delete_user(self, user_id: int) -> list[str]:
        """Delete a user and everything they own; returns blob ids no longer referenced."""

    async def insert_app_password(
        self, user_id: int, name: str, token_hash: str, now: float
    ) -> AppPassword: ...

    async def list_app_passwords(self, user_id: int) -> list[AppPassword]: ...

    async def delete_app_password(self, user_id: int, password_id: int) -> bool: ...

    async def app_password_user(self, user_id: int, token_hash: str) -> AppPassword | None: ...

    async def touch_app_password(self, password_id: int, now: float) -> None: ...

    async def node(self, node_id: int) -> Node | None: ...

    async def child(self, parent_id: int, name: str) -> Node | None: ...

    async def walk(
        self,
        user_id: int,
        names: Sequence[str],
        *,
        start_id: int | None = None,
        content: bool = False,
    ) -> PathWalk:
        """From `start_id` (None: the user's home) down `names`, in one query per 20 names:
        the nodes found, and where a name has no node, `user_id`'s mount point of that name;
        with `content`, the last node's bytes if its blob row keeps them."""

    async def children(self, parent_id: int, *, details: bool = True) -> list[Node]:
        """A folder's children, sorted by name. Without `details`, what a listing needs of
        them and no more: their blob, hashes, content type and creation time are left at
        `Node`'s defaults (None, 0), unread."""

    async def listing(
        self, parent_id: int, user_id: int, *, details: bool = True
    ) -> tuple[list[Node], list[Mount]]:
        """`children`, and `user_id`'s mount points in the folder, unsorted, in one query."""

    async def insert_node(
        self,
        *,
        parent_id: int | None,
        owner_id: int,
        name: str,
        kind: NodeKind,
        size: int,
        mtime: float,
        now: float,
        blob_id: str | None = None,
        sha256: str | None = None,
        content_type: str | None = None,
        checksums: str | None = None,
    ) -> Node: ...

    async def update_file(
        self,
        node_id: int,
        *,
        size: int,
        mtime: float,
        blob_id: str,
        sha256: str,
        content_type: str | None,
        checksums: str | None,
    ) -> Node:
        """Replace a file's contents (its revision bumps); returns the node as changed."""

    async def set_mtime(self, node_id: int, mtime: float) -> None: ...

    async def move_node(self, node_id: int, new_parent_id: int, new_name: str) -> None: ...

    async def bump_revisions(self, node_ids: Iterable[int], size_delta: int = 0) -> None:
        """Mark folders changed (new etag) and add `size_delta` to their recursive size."""

    async def bump_ancestors(
        self, node_id: int, size_delta: int = 0, *, skip: Collection[int] = ()
    ) -> ChangedChain:
        """`bump_revisions` on the node and its ancestors up to its storage root, except
        those in `skip`, in one statement; says which of them carry a share."""

    async def propagate_change(
        self, folder_id: int, size_delta: int = 0, *, deferrable: bool = False
    ) -> None:
        """A change in `folder_id`: new etags for it, its ancestors and the folders holding
        the mount points of any share on the way up; `size_delta` added to their sizes.

        `deferrable`, in a write opened with `deferrable_changes`: the change may instead be
        propagated once for every writer of the commit it shares (SQLite's group commit),
        before that commit and before any other kind of writer runs in it. The writer must
        not read the ancestors of `folder_id` afterwards."""

    async def subtree(self, node_id: int) -> list[tuple[Node, tuple[str, ...]]]:
        """The node and all its descendants, parents before children, with relative paths."""

    async def delete_subtree(self, node_id: int) -> list[str]:
        """Delete a node and its descendants; returns blob ids whose refcount fell to 0."""

    async def file_bytes(self, node_id: int) -> int:
        """The total size of the files in the node's subtree (the node included; one query)."""

    async def copy_subtree(
        self,
        node_id: int,
        *,
        parent_id: int,
        name: str,
        owner_id: int,
        now: float,
        recursive: bool = True,
    ) -> Node:
        """Copy a node under `parent_id` as `name` (with `recursive`, its descendants too):
        new ids, revision 1, owned by `owner_id`, with their dead properties; each blob gains
        a reference per copy. A few statements per tree level. Returns the copy of the node.
        Conflict if the name is taken, or if a blob lost its last reference meanwhile."""

    async def insert_blob(
        self, blob_id: str, size: int, sha256: str, now: float, content: bytes | None = None
    ) -> None:
        """Record a blob with one reference; `content`: its bytes, kept in this row."""
        ...

    async def blob_content(self, blob_id: str) -> bytes | None:
        """The bytes kept in a blob's row (None: they are in the blob store)."""
        ...

    async def inline_blob_ids(self, limit: int | None = None) -> set[str]:
        """The blobs whose bytes are kept in their rows (all, or up to `limit`)."""
        ...

    async def clear_blob_content(self, blob_id: str) -> None:
        """Forget the bytes kept in a blob's row, once they are in the blob store."""
        ...

    async def retain_blob(self, blob_id: str) -> None: ...

    async def release_blob(self, blob_id: str) -> list[str]:
        """Drop one reference; returns [blob_id] if it was the last one (row removed)."""

    async def blob_records(self) -> dict[str, tuple[int, str, int]]:
        """Every blob row: id -> (size, sha256, refcount)."""

    async def blob_reference_counts(self) -> dict[str, int]:
        """How many file nodes actually reference each blob."""

    async def set_blob_refcount(self, blob_id: str, refcount: int) -> None: ...

    async def usage_by_user(self) -> dict[int, int]: ...

    async def properties(self, node_id: int) -> list[DeadProperty]: ...

    async def properties_of(self, node_ids: Sequence[int]) -> dict[int, list[DeadProperty]]: ...

    async def set_property(self, node_id: int, prop: DeadProperty) -> None: ...

    async def remove_property(self, node_id: int, namespace: str, name: str) -> None: ...

    async def locks(self, owner_id: int, now: float) -> list[Lock]: ...

    async def insert_lock(self, lock: Lock) -> None: ...

    async def refresh_lock(self, token: str, timeout_seconds: int, expires_at: float) -> None: ...

    async def delete_lock(self, token: str) -> bool: ...

    async def delete_expired_locks(self, now: float) -> None: ...

    # --- chunked uploads (sessions and their chunk blobs) --------------------------------

    async def insert_upload_session(
        self,
        user_id: int,
        name: str,
        destination: tuple[str, ...] | None,
        total_length: int | None,
        now: float,
    ) -> UploadSession:
        """Raises Conflict if the user already has a session of that name."""

    async def upload_session(self, user_id: int, name: str) -> UploadSession | None: ...

    async def upload_sessions(self, user_id: int) -> list[UploadSession]: ...

    async def touch_upload_session(self, session_id: int, now: float) -> None: ...

    async def upload_chunks(self, session_id: int) -> list[UploadChunk]: ...

    async def put_upload_chunk(self, chunk: UploadChunk) -> str | None:
        """Record a chunk, replacing one of the same name; returns the replaced blob id."""

    async def delete_upload_chunk(self, session_id: int, name: str) -> str | None:
        """Forget a chunk; returns its blob id (None if there was no such chunk)."""

    async def delete_upload_session(self, session_id: int) -> list[str]:
        """Forget a session and its chunks; returns the chunks' blob ids."""

    async def idle_upload_sessions(self, idle_since: float) -> list[UploadSession]:
        """Sessions with no activity since `idle_since`."""

    async def pending_upload_bytes(self, user_id: int) -> int:
        """The bytes held in all of a user's unfinished uploads."""

    async def upload_chunk_blob_ids(self) -> set[str]:
        """Every blob referenced by an unfinished upload (not orphans for `ecrin check`)."""

    # --- login flow v2 -------------------------------------------------------------------

    async def insert_login_flow(self, flow: LoginFlow) -> None: ...

    async def login_flow_by_login_token(self, login_token_hash: str) -> LoginFlow | None: ...

    async def grant_login_flow(self, login_token_hash: str, user_id: int) -> None: ...

    async def take_login_flow(self, poll_token_hash: str) -> LoginFlow | None:
        """Remove and return a flow, if its user granted access (a poll succeeds once)."""

    async def delete_expired_login_flows(self, now: float) -> int: ...

    # --- checksums a client asked to recompute (Nextcloud's X-Recalculate-Hash) ----------

    async def set_checksums(self, node_id: int, checksums: str | None) -> None: ...

    # --- sharing, versions, trash ---

    async def ancestor_ids(self, node_id: int) -> list[int]:
        """The node and its ancestors up to its storage root, nearest first (one query)."""

    async def ancestors(self, node_id: int) -> list[Node]:
        """Like `ancestor_ids`, with the whole nodes (one query)."""

    async def set_subtree_owner(self, node_ids: Sequence[int], owner_id: int) -> None: ...

    async def trash_root(self, user_id: int, now: float) -> Node:
        """The folder that holds a user's deleted items (created on first use)."""

    async def insert_group(self, name: str, display_name: str, now: float) -> Group: ...

    async def group_by_name(self, name: str) -> Group | None: ...

    async def group_by_id(self, group_id: int) -> Group | None: ...

    async def list_groups(self) -> list[Group]: ...

    async def delete_group(self, group_id: int) -> None: ...

    async def add_member(self, group_id: int, user_id: int) -> bool: ...

    async def remove_member(self, group_id: int, user_id: int) -> bool: ...

    async def group_members(self, group_id: int) -> list[User]: ...

    async def user_groups(self, user_id: int) -> list[Group]: ...

    async def insert_share(self, **values: Any) -> Share: ...

    async def share(self, share_id: int) -> Share | None: ...

    async def share_by_token(self, token: str) -> Share | None: ...

    async def shares_on(self, node_ids: Sequence[int]) -> list[Share]: ...

    async def shares_created_by(self, user_id: int) -> list[Share]: ...

    async def shares_received(self, user_id: int) -> list[Share]: ...

    async def shares_with_group(self, group_id: int) -> list[Share]: ...

    async def update_share(self, share_id: int, **values: Any) -> None: ...

    async def delete_share(self, share_id: int) -> None:
        """Delete a share, its reshares (recursively) and their mounts."""

    async def insert_mount(self, mount: Mount) -> None: ...

    async def mount_at(self, user_id: int, parent_id: int, name: str) -> Mount | None: ...

    async def mounts_of_shares(self, share_ids: Sequence[int]) -> list[Mount]: ...

    async def mounts_of_user(self, user_id: int) -> list[Mount]: ...

    async def move_mount(self, share_id: int, user_id: int, parent_id: int, name: str) -> None: ...

    async def delete_mount(self, share_id: int, user_id: int) -> None: ...

    async def insert_version(self, node: Node, now: float, author_id: int | None) -> Version:
        """Keep a file's current contents as a version (the blob reference moves over)."""

    async def versions_of(self, node_id: int) -> list[Version]: ...

    async def version(self, version_id: int) -> Version | None: ...

    async def delete_version(self, version_id: int) -> list[str]:
        """Drop a version; returns its blob id if that was the blob's last reference."""

    async def all_version_blob_counts(self) -> dict[str, int]: ...

    async def insert_trash(self, **values: Any) -> TrashItem: ...

    async def trash_item(self, item_id: int) -> TrashItem | None: ...

    async def trash_items(self, owner_id: int) -> list[TrashItem]: ...

    async def trash_owners(self) -> list[int]: ...

    async def delete_trash_record(self, item_id: int) -> None: ...


class MetadataStore(Protocol):
    async def open(self) -> None:
        """Create or upgrade the schema."""

    async def close(self) -> None: ...

    def read(self) -> AbstractAsyncContextManager[MetadataTransaction]:
        """A consistent read-only snapshot."""
        ...

    def write(
        self, *, deferrable_changes: bool = False
    ) -> AbstractAsyncContextManager[MetadataTransaction]:
        """A write transaction, committed when the block exits without error.
        `deferrable_changes`: see `MetadataTransaction.propagate_change`."""
        ...

    async def snapshot_to(self, destination: Path) -> None:
        """A copy of the whole database at one instant, in a new file (SQLite only: other
        databases have tools of their own, and BadRequest says so)."""
