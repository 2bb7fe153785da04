"""Live properties: computed from the node, never stored (RFC 4918 section 15, RFC 4331,
and the ownCloud/Nextcloud `oc:`/`nc:` properties the sync clients read).

A PROPFIND of a big folder renders these for every entry, so each renderer takes a `Batch`
of entries and returns one value per entry (a comprehension: no call per entry), with a
`PropertyScope` built once per response; the scope holds the caches (dates by day, content
types by extension, permission letters) that leave a few string operations per entry.
"""

from __future__ import annotations

import math
import mimetypes
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import formatdate
from typing import TypeVar
from xml.sax.saxutils import escape

from ecrin.core.model import Lock, Node, NodeKind, User
from ecrin.core.permissions import Permission, dav_permissions
from ecrin.dav.xml import DAV, NC, OC, PropName, xml_text
from ecrin.services.files import Entry

TWO_DIGITS = tuple(f"{n:02d}" for n in range(60))
CLOCK_MINUTES = tuple(f"{h:02d}:{m:02d}:" for h in range(24) for m in range(60))  # by minute of day
# Timestamps from 1970 to the last second of 9999 take the fast path; the standard library
# formats the others (and raises for years past 9999, as it always did).
FAST_DATES_END = 253402300799.0


def http_date(timestamp: float) -> str:
    """The IMF-fixdate of RFC 9110 (`Sun, 06 Nov 1994 08:49:37 GMT`)."""
    return formatdate(timestamp, usegmt=True)


def iso_date(timestamp: float) -> str:
    """`DAV:creationdate` (RFC 3339, UTC, whole seconds)."""
    return datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def content_type_of(node: Node) -> str:
    if node.content_type:
        return node.content_type
    guessed, _ = mimetypes.guess_type(node.name, strict=False)
    return guessed or "application/octet-stream"


def dav_file_id(node: Node, instance_id: str) -> str:
    """Nextcloud's `oc:id`: the file id zero-padded to 8 digits, then the instance id."""
    return f"{node.id:08d}{instance_id}"


class ValueCaches:
    """Per-response memo of values that many entries share; bounded, and dropped with the
    response. Dates: the last timestamp, and the day part once per day; content types: one
    guess per extension; `oc:permissions`: one per combination of rights."""

    __slots__ = (
        "_content_types",
        "_http_days",
        "_http_stamp",
        "_http_text",
        "_iso_days",
        "_iso_stamp",
        "_iso_text",
        "_permissions",
    )

    def __init__(self) -> None:
        self._http_days: dict[int, str] = {}
        self._iso_days: dict[int, str] = {}
        self._http_stamp = self._iso_stamp = math.nan  # equal to no timestamp
        self._http_text = self._iso_text = ""
        self._content_types: dict[str, str] = {}
        self._permissions: dict[tuple[int, bool, bool, bool], str] = {}

    def http_date(self, timestamp: float) -> str:
        """`http_date(timestamp)`."""
        if timestamp == self._http_stamp:
            return self._http_text
        if not 0 <= timestamp < FAST_DATES_END:
            return http_date(timestamp)
        seconds = int(timestamp)
        if timestamp - seconds > 0.999999:
            seconds = _whole_seconds(timestamp)
        day, second = divmod(seconds, 86400)
        minute, second = divmod(second, 60)
        prefix = self._http_days.get(day)
        if prefix is None:
            prefix = _remember(self._http_days, day, http_date(day * 86400)[:-12])  # -00:00:00 GMT
        text = f"{prefix}{CLOCK_MINUTES[minute]}{TWO_DIGITS[second]} GMT"
        self._http_stamp, self._http_text = timestamp, text
        return text

    def iso_date(self, timestamp: float) -> str:
        """`iso_date(timestamp)`."""
        if timestamp == self._iso_stamp:
            return self._iso_text
        if not 0 <= timestamp < FAST_DATES_END:
            return iso_date(timestamp)
        seconds = int(timestamp)
        if timestamp - seconds > 0.999999:
            seconds = _whole_seconds(timestamp)
        day, second = divmod(seconds, 86400)
        minute, second = divmod(second, 60)
        prefix = self._iso_days.get(day)
        if prefix is None:
            prefix = _remember(self._iso_days, day, iso_date(day * 86400)[:-9])  # -00:00:00Z
        text = f"{prefix}{CLOCK_MINUTES[minute]}{TWO_DIGITS[second]}Z"
        self._iso_stamp, self._iso_text = timestamp, text
        return text

    def content_type(self, node: Node) -> str:
        """`content_type_of(node)`."""
        if node.content_type:
            return node.content_type
        name = node.name
        if ":" in name or "/" in name:  # mimetypes would read a URL scheme or a folder
            return content_type_of(node)
        dot = name.rfind(".")
        # What posixpath.splitext calls the extension: leading dots do not start one.
        extension = name[dot:] if dot > 0 and name[:dot].lstrip(".") else ""
        found = self._content_types.get(extension)
        if found is None:
            found = content_type_of(node)
            if _guess_depends_only_on(extension):
                _remember(self._content_types, extension, found)
        return found

    def permission_letters(
        self, permissions: Permission, is_folder: bool, shared_with_me: bool, mount: bool
    ) -> str:
        """`dav_permissions(…)`."""
        key = (int(permissions), is_folder, shared_with_me, mount)
        found = self._permissions.get(key)
        if found is None:
            found = self._permissions[key] = dav_permissions(
                permissions,
                is_folder=is_folder,
                shared_with_me=shared_with_me,
                is_mount_point=mount,
            )
        return found


Key = TypeVar("Key")
MEMO_LIMIT = 4096  # values per memo: a folder with more distinct days or extensions restarts


def _remember(memo: dict[Key, str], key: Key, value: str) -> str:
    if len(memo) >= MEMO_LIMIT:
        memo.clear()
    memo[key] = value
    return value


def _whole_seconds(timestamp: float) -> int:
    """The seconds `datetime.fromtimestamp` shows for a timestamp >= 0: it rounds to the
    microsecond (half to even) before the fraction is dropped, so x.9999996 shows x + 1."""
    seconds = int(timestamp)
    fraction = timestamp - seconds  # exact
    if fraction > 0.999999 and round(fraction * 1e6) >= 1_000_000:
        seconds += 1
    return seconds


def _guess_depends_only_on(extension: str) -> bool:
    """True unless `mimetypes` rewrites this extension (.tgz, .gz…) and looks further left.

    Only called after a `guess_type`, so the module's tables are loaded.
    """
    return extension.lower() not in mimetypes.suffix_map and extension not in (
        mimetypes.encodings_map
    )


@dataclass(frozen=True, slots=True)
class PropertyScope:
    """What live properties need beyond the entries and their paths: one per response."""

    home: User
    instance_id: str
    locks: list[Lock]
    share_types: Mapping[int, tuple[int, ...]]
    caches: ValueCaches = field(default_factory=ValueCaches)


class Batch:
    """Entries whose properties are rendered together: one renderer call per property and
    batch, each a comprehension over the entries, costs far less than a call per entry."""

    __slots__ = ("_parent", "_paths", "entries")

    def __init__(
        self,
        entries: Sequence[Entry],
        *,
        parent: tuple[str, ...] = (),
        paths: list[tuple[str, ...]] | None = None,
    ) -> None:
        self.entries = entries
        self._parent = parent
        self._paths = paths

    @classmethod
    def one(cls, entry: Entry, path: tuple[str, ...]) -> Batch:
        return cls([entry], paths=[path])

    @classmethod
    def children(cls, entries: Sequence[Entry], parent: tuple[str, ...]) -> Batch:
        """Entries of the folder at `parent`, each under its entry name."""
        return cls(entries, parent=parent)

    @property
    def paths(self) -> list[tuple[str, ...]]:
        """Each entry's segments in the home (`()` is the home); computed when first needed."""
        if self._paths is None:
            parent = self._parent
            self._paths = [(*parent, entry.name) for entry in self.entries]
        return self._paths


# One value per entry of the batch, in order; None: the entry has no such property.
Renderer = Callable[[Batch, PropertyScope], list[str | None]]
FOLDER = NodeKind.FOLDER


def lock_discovery_xml(locks: list[Lock], path: tuple[str, ...]) -> str:
    active = "".join(active_lock_xml(lock) for lock in locks if lock.covers(path))
    return f"<d:lockdiscovery>{active}</d:lockdiscovery>"


def active_lock_xml(lock: Lock, base_href: str | None = None) -> str:
    root = ""
    if base_href is not None:
        root = f"<d:lockroot><d:href>{escape(base_href)}</d:href></d:lockroot>"
    return (
        f"<d:activelock><d:locktype><d:write/></d:locktype>"
        f"<d:lockscope><d:{lock.scope.value}/></d:lockscope>"
        f"<d:depth>{'infinity' if lock.depth_infinity else '0'}</d:depth>"
        f"{lock.owner_xml}<d:timeout>Second-{lock.timeout_seconds}</d:timeout>"
        f"<d:locktoken><d:href>{escape(lock.token)}</d:href></d:locktoken>{root}"
        f"</d:activelock>"
    )


SUPPORTED_LOCK = (
    "<d:supportedlock>"
    "<d:lockentry><d:lockscope><d:exclusive/></d:lockscope><d:locktype><d:write/></d:locktype>"
    "</d:lockentry>"
    "<d:lockentry><d:lockscope><d:shared/></d:lockscope><d:locktype><d:write/></d:locktype>"
    "</d:lockentry></d:supportedlock>"
)
NO_LOCKS = "<d:lockdiscovery></d:lockdiscovery>"
NO_SHARES = "<oc:share-types></oc:share-types>"
FOLDER_TYPE = "<d:resourcetype><d:collection/></d:resourcetype>"
FILE_TYPE = "<d:resourcetype/>"


def _resource_type(batch: Batch, _scope: PropertyScope) -> list[str | None]:
    return [FOLDER_TYPE if e.node.kind is FOLDER else FILE_TYPE for e in batch.entries]


def _etag(batch: Batch, _scope: PropertyScope) -> list[str | None]:
    return [f'<d:getetag>"{e.node.etag}"</d:getetag>' for e in batch.entries]


def _last_modified(batch: Batch, scope: PropertyScope) -> list[str | None]:
    date = scope.caches.http_date
    return [f"<d:getlastmodified>{date(e.node.mtime)}</d:getlastmodified>" for e in batch.entries]


def _creation_date(batch: Batch, scope: PropertyScope) -> list[str | None]:
    date = scope.caches.iso_date
    return [f"<d:creationdate>{date(e.node.created_at)}</d:creationdate>" for e in batch.entries]


def _display_name(batch: Batch, scope: PropertyScope) -> list[str | None]:
    home = scope.home.name
    return [
        f"<d:displayname>{xml_text(e.node.name or home)}</d:displayname>" for e in batch.entries
    ]


def _content_length(batch: Batch, _scope: PropertyScope) -> list[str | None]:
    return [
        None if e.node.kind is FOLDER else f"<d:getcontentlength>{e.node.size}</d:getcontentlength>"
        for e in batch.entries
    ]


def _content_type(batch: Batch, scope: PropertyScope) -> list[str | None]:
    guess = scope.caches.content_type
    return [
        None
        if e.node.kind is FOLDER
        else f"<d:getcontenttype>{xml_text(guess(e.node))}</d:getcontenttype>"
        for e in batch.entries
    ]


def _supported_lock(batch: Batch, _scope: PropertyScope) -> list[str | None]:
    return [SUPPORTED_LOCK] * len(batch.entries)


def _lock_discovery(batch: Batch, scope: PropertyScope) -> list[str | None]:
    if not scope.locks:
        return [NO_LOCKS] * len(batch.entries)
    return [lock_discovery_xml(scope.locks, path) for path in batch.paths]


def _quota_used(batch: Batch, _scope: PropertyScope) -> list[str | None]:
    return [
        f"<d:quota-used-bytes>{e.node.size}</d:quota-used-bytes>" if e.node.kind is FOLDER else None
        for e in batch.entries
    ]


def _quota_available(batch: Batch, scope: PropertyScope) -> list[str | None]:
    quota = scope.home.quota_bytes
    # -3 is how Nextcloud says "unlimited"; RFC 4331 clients read a large number fine too.
    value = -3 if quota is None else max(0, quota - scope.home.used_bytes)
    text = f"<d:quota-available-bytes>{value}</d:quota-available-bytes>"
    return [text if e.node.kind is FOLDER else None for e in batch.entries]


def _file_id(batch: Batch, scope: PropertyScope) -> list[str | None]:
    instance = scope.instance_id
    return [f"<oc:id>{e.node.id:08d}{instance}</oc:id>" for e in batch.entries]  # dav_file_id


def _numeric_file_id(batch: Batch, _scope: PropertyScope) -> list[str | None]:
    return [f"<oc:fileid>{e.node.id}</oc:fileid>" for e in batch.entries]


def _permissions(batch: Batch, scope: PropertyScope) -> list[str | None]:
    letters = scope.caches.permission_letters
    return [
        "<oc:permissions>"
        + letters(e.permissions, e.node.kind is FOLDER, e.share is not None, e.is_mount_point)
        + "</oc:permissions>"
        for e in batch.entries
    ]


def _share_permissions(batch: Batch, _scope: PropertyScope) -> list[str | None]:
    return [
        f"<oc:share-permissions>{int(e.permissions)}</oc:share-permissions>" for e in batch.entries
    ]


def _size(batch: Batch, _scope: PropertyScope) -> list[str | None]:
    return [f"<oc:size>{e.node.size}</oc:size>" for e in batch.entries]


def _checksums(batch: Batch, _scope: PropertyScope) -> list[str | None]:
    return [None if e.node.kind is FOLDER else checksums_xml(e.node) for e in batch.entries]


def checksums_xml(node: Node) -> str:
    """`oc:checksums`: what the client sent, then the SHA-256 Ecrin computed."""
    values = node.checksums or ""
    if node.sha256:
        values = f"{values} SHA256:{node.sha256}" if values else f"SHA256:{node.sha256}"
    return f"<oc:checksums><oc:checksum>{escape(values)}</oc:checksum></oc:checksums>"


def _data_fingerprint(batch: Batch, _scope: PropertyScope) -> list[str | None]:
    return [None if path else "<oc:data-fingerprint/>" for path in batch.paths]


def _share_types(batch: Batch, scope: PropertyScope) -> list[str | None]:
    by_node = scope.share_types
    if not by_node:
        return [NO_SHARES] * len(batch.entries)
    return [share_types_xml(by_node.get(e.node.id, ())) for e in batch.entries]


def share_types_xml(types: tuple[int, ...]) -> str:
    inner = "".join(f"<oc:share-type>{t}</oc:share-type>" for t in types)
    return f"<oc:share-types>{inner}</oc:share-types>"


def _same_for_all(render: Callable[[PropertyScope], str]) -> Renderer:
    return lambda batch, scope: [render(scope)] * len(batch.entries)


LIVE: dict[PropName, Renderer] = {
    (DAV, "resourcetype"): _resource_type,
    (DAV, "getetag"): _etag,
    (DAV, "getlastmodified"): _last_modified,
    (DAV, "creationdate"): _creation_date,
    (DAV, "displayname"): _display_name,
    (DAV, "getcontentlength"): _content_length,
    (DAV, "getcontenttype"): _content_type,
    (DAV, "supportedlock"): _supported_lock,
    (DAV, "lockdiscovery"): _lock_discovery,
    (DAV, "quota-used-bytes"): _quota_used,
    (DAV, "quota-available-bytes"): _quota_available,
    (OC, "id"): _file_id,
    (OC, "fileid"): _numeric_file_id,
    (OC, "permissions"): _permissions,
    (OC, "share-permissions"): _share_permissions,
    (OC, "size"): _size,
    (OC, "checksums"): _checksums,
    (OC, "data-fingerprint"): _data_fingerprint,
    (OC, "share-types"): _share_types,
    (OC, "owner-id"): _same_for_all(
        lambda scope: f"<oc:owner-id>{escape(scope.home.name)}</oc:owner-id>"
    ),
    (OC, "owner-display-name"): _same_for_all(
        lambda scope: (
            f"<oc:owner-display-name>{escape(scope.home.display_name)}</oc:owner-display-name>"
        )
    ),
    (NC, "has-preview"): _same_for_all(lambda _scope: "<nc:has-preview>false</nc:has-preview>"),
}

# What `allprop` returns besides dead properties (RFC 4918 section 9.1).
ALLPROP: tuple[PropName, ...] = (
    (DAV, "resourcetype"),
    (DAV, "getetag"),
    (DAV, "getlastmodified"),
    (DAV, "creationdate"),
    (DAV, "displayname"),
    (DAV, "getcontentlength"),
    (DAV, "getcontenttype"),
    (DAV, "supportedlock"),
    (DAV, "lockdiscovery"),
)

# Live properties a client may not set or remove with PROPPATCH.
PROTECTED: frozenset[PropName] = frozenset(LIVE)
