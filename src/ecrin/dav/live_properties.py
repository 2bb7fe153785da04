"""Live properties: computed from the node, never stored (RFC 4918 section 15, RFC 4331,
and the ownCloud/Nextcloud `oc:`/`nc:` properties the sync clients read).

A PROPFIND of a big folder renders these for every entry, so each renderer takes a `Batch`
of entries and returns one value per entry (a comprehension: no call per entry), with a
`PropertyScope` built once per response, whose `ValueCaches` (property_values.py) leave a
few string operations per entry.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from xml.sax.saxutils import escape

from ecrin.core.model import ETAG_FORMAT, Lock, Node, NodeKind, User
from ecrin.dav.property_values import ValueCaches
from ecrin.dav.property_values import content_type_of as content_type_of
from ecrin.dav.property_values import dav_file_id as dav_file_id
from ecrin.dav.property_values import http_date as http_date
from ecrin.dav.xml import DAV, NC, OC, PropName, xml_text
from ecrin.services.files import Entry


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


ETAG_ELEMENT = f'<d:getetag>"{ETAG_FORMAT}"</d:getetag>'  # `Node.etag`, quoted, in one format


def _etag(batch: Batch, _scope: PropertyScope) -> list[str | None]:
    return [ETAG_ELEMENT % (e.node.id, e.node.revision) for e in batch.entries]


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

# The live properties that read more of a node than `MetadataTransaction.children` gives
# without details (its blob, hashes, content type, creation time).
DETAILED: frozenset[PropName] = frozenset(
    {(DAV, "creationdate"), (DAV, "getcontenttype"), (OC, "checksums")}
)

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
