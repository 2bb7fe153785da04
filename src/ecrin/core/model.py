"""Domain records shared by every layer."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import NamedTuple


class NodeKind(enum.StrEnum):
    FILE = "file"
    FOLDER = "folder"


@dataclass(frozen=True, slots=True)
class User:
    id: int
    name: str
    display_name: str
    quota_bytes: int | None  # None: unlimited
    used_bytes: int
    is_admin: bool
    tenant: str = "default"
    # Set for an anonymous visitor of a public link: their tree is the link's folder.
    link_share_id: int | None = None

    @property
    def is_link_visitor(self) -> bool:
        return self.link_share_id is not None


class Usage(NamedTuple):
    """A user's bytes in use and quota (None: unlimited), as a write left them."""

    used_bytes: int
    quota_bytes: int | None


# A node's etag: its id and revision in hex, written with %-formatting (a third of the time of
# f"{id:x}"; a PROPFIND writes 10,000 etags, some with this format inside a larger one).
ETAG_FORMAT = "%xr%x"


# Not frozen: a frozen dataclass's __init__ costs ~2 µs (13 object.__setattr__ calls), ten
# times this one, and a PROPFIND builds a Node per entry. Treat it as immutable all the same
# (`dataclasses.replace` makes a changed copy).
@dataclass(slots=True, unsafe_hash=True)
class Node:
    """A file or folder in the metadata tree. `id` is the stable file id (kept across moves)."""

    id: int
    parent_id: int | None
    owner_id: int
    name: str
    kind: NodeKind
    size: int
    mtime: float
    revision: int  # bumps on every change at or below this node: drives the etag
    blob_id: str | None = None
    sha256: str | None = None
    content_type: str | None = None
    created_at: float = 0.0
    checksums: str | None = None  # what the client sent, e.g. 'SHA1:ab… MD5:cd…'

    @property
    def is_folder(self) -> bool:
        return self.kind is NodeKind.FOLDER

    @property
    def etag(self) -> str:
        return ETAG_FORMAT % (self.id, self.revision)


@dataclass(frozen=True, slots=True)
class AppPassword:
    id: int
    user_id: int
    name: str
    created_at: float
    last_used_at: float | None


class LockScope(enum.StrEnum):
    EXCLUSIVE = "exclusive"
    SHARED = "shared"


@dataclass(frozen=True, slots=True)
class Lock:
    """A WebDAV write lock on a path of one user's storage (RFC 4918 section 6)."""

    token: str
    owner_id: int  # whose storage the locked path is in (`services/locks.py`)
    path: tuple[str, ...]
    scope: LockScope
    depth_infinity: bool
    owner_xml: str  # the client's DAV:owner element, kept verbatim
    principal_id: int  # who took it
    timeout_seconds: int
    expires_at: float

    def covers(self, path: tuple[str, ...]) -> bool:
        """True if this lock applies to `path` (itself, or below it for depth infinity)."""
        if path == self.path:
            return True
        n = len(self.path)
        return self.depth_infinity and len(path) > n and path[:n] == self.path


@dataclass(frozen=True, slots=True)
class DeadProperty:
    namespace: str
    name: str
    xml: str  # the whole property element, serialised, so namespaces in values survive


@dataclass(slots=True)
class CheckReport:
    """What `ecrin check` found (and, with repair, fixed)."""

    orphan_blobs: list[str] = field(default_factory=list)
    missing_blobs: list[str] = field(default_factory=list)
    checksum_mismatches: list[str] = field(default_factory=list)
    stale_temp_files: list[str] = field(default_factory=list)
    refcount_fixes: list[str] = field(default_factory=list)
    usage_fixes: list[str] = field(default_factory=list)
    expired_uploads: list[str] = field(default_factory=list)
    repaired: bool = False

    @property
    def clean(self) -> bool:
        return not (
            self.orphan_blobs
            or self.missing_blobs
            or self.checksum_mismatches
            or self.stale_temp_files
            or self.refcount_fixes
            or self.usage_fixes
            or self.expired_uploads
        )


@dataclass(frozen=True, slots=True)
class Group:
    id: int
    name: str
    display_name: str


class ShareType(enum.IntEnum):
    USER = 0
    GROUP = 1
    LINK = 3


@dataclass(frozen=True, slots=True)
class Share:
    id: int
    share_type: ShareType
    node_id: int
    node_owner_id: int  # whose storage holds the node
    created_by: int  # the sharer (the owner, or a resharer)
    parent_share_id: int | None  # the share through which a resharer reached the node
    share_with_user: int | None
    share_with_group: int | None
    permissions: int
    token: str | None
    password_hash: str | None
    expires_at: float | None
    label: str
    note: str
    hide_download: bool
    created_at: float

    def expired(self, now: float) -> bool:
        return self.expires_at is not None and self.expires_at <= now


@dataclass(frozen=True, slots=True)
class Mount:
    """Where a share appears in one recipient's tree."""

    share_id: int
    user_id: int
    parent_id: int
    name: str


@dataclass(frozen=True, slots=True)
class Version:
    id: int
    node_id: int
    blob_id: str
    size: int
    sha256: str | None
    checksums: str | None
    mtime: float
    created_at: float
    author_id: int | None


@dataclass(frozen=True, slots=True)
class TrashItem:
    id: int
    node_id: int
    owner_id: int
    original_parent_id: int | None
    original_name: str
    original_path: str
    size: int
    deleted_at: float
    deleted_by: int | None


@dataclass(frozen=True, slots=True)
class UploadSession:
    """A chunked upload in progress (Nextcloud's `uploads/<user>/<transfer id>/` folder)."""

    id: int
    user_id: int
    name: str  # the transfer id the client chose
    destination: tuple[str, ...] | None  # where it will land, if the client said (chunking v2)
    total_length: int | None  # the announced size of the whole file, if any
    created_at: float
    touched_at: float  # last activity; sessions idle too long expire


@dataclass(frozen=True, slots=True)
class UploadChunk:
    session_id: int
    name: str
    blob_id: str
    size: int
    offset: int | None  # the byte offset the client announced (OC-Chunk-Offset), if any
    created_at: float


@dataclass(frozen=True, slots=True)
class LoginFlow:
    """A login flow v2 in progress: a client polls while its user logs in in a browser."""

    poll_token_hash: str
    login_token_hash: str
    client_name: str
    user_id: int | None  # set once the user logged in and granted access
    created_at: float
    expires_at: float
