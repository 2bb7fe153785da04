"""Live properties: computed from the node, never stored (RFC 4918 section 15, RFC 4331,
and the ownCloud/Nextcloud `oc:`/`nc:` properties the sync clients read)."""

from __future__ import annotations

import mimetypes
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import formatdate
from xml.sax.saxutils import escape

from ecrin.core.model import Lock, Node, User
from ecrin.core.permissions import Permission, dav_permissions
from ecrin.dav.xml import DAV, NC, OC, PropName


@dataclass(frozen=True, slots=True)
class PropertyView:
    """What live properties may need beyond the node itself."""

    home: User
    instance_id: str
    locks: list[Lock]
    path_segments: tuple[str, ...]
    is_root: bool
    permissions: Permission = Permission.ALL
    shared_with_me: bool = False
    is_mount_point: bool = False
    share_types: tuple[int, ...] = ()


Renderer = Callable[[Node, PropertyView], str | None]


def http_date(timestamp: float) -> str:
    return formatdate(timestamp, usegmt=True)


def content_type_of(node: Node) -> str:
    if node.content_type:
        return node.content_type
    guessed, _ = mimetypes.guess_type(node.name, strict=False)
    return guessed or "application/octet-stream"


def dav_file_id(node: Node, instance_id: str) -> str:
    """Nextcloud's `oc:id`: the file id zero-padded to 8 digits, then the instance id."""
    return f"{node.id:08d}{instance_id}"


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


def _file_only(render: Callable[[Node], str]) -> Renderer:
    return lambda node, _view: None if node.is_folder else render(node)


def _folder_only(render: Callable[[Node, PropertyView], str]) -> Renderer:
    return lambda node, view: render(node, view) if node.is_folder else None


def _quota_available(node: Node, view: PropertyView) -> str:
    quota = view.home.quota_bytes
    # -3 is how Nextcloud says "unlimited"; RFC 4331 clients read a large number fine too.
    value = -3 if quota is None else max(0, quota - view.home.used_bytes)
    return f"<d:quota-available-bytes>{value}</d:quota-available-bytes>"


def _checksums(node: Node) -> str:
    values = " ".join(
        v for v in (node.checksums, f"SHA256:{node.sha256}" if node.sha256 else "") if v
    )
    return f"<oc:checksums><oc:checksum>{escape(values)}</oc:checksum></oc:checksums>"


LIVE: dict[PropName, Renderer] = {
    (DAV, "resourcetype"): lambda n, _: (
        "<d:resourcetype><d:collection/></d:resourcetype>" if n.is_folder else "<d:resourcetype/>"
    ),
    (DAV, "getetag"): lambda n, _: f'<d:getetag>"{n.etag}"</d:getetag>',
    (DAV, "getlastmodified"): lambda n, _: (
        f"<d:getlastmodified>{http_date(n.mtime)}</d:getlastmodified>"
    ),
    (DAV, "creationdate"): lambda n, _: (
        "<d:creationdate>"
        f"{datetime.fromtimestamp(n.created_at, UTC).strftime('%Y-%m-%dT%H:%M:%SZ')}"
        "</d:creationdate>"
    ),
    (DAV, "displayname"): lambda n, v: (
        f"<d:displayname>{escape(n.name or v.home.name)}</d:displayname>"
    ),
    (DAV, "getcontentlength"): _file_only(
        lambda n: f"<d:getcontentlength>{n.size}</d:getcontentlength>"
    ),
    (DAV, "getcontenttype"): _file_only(
        lambda n: f"<d:getcontenttype>{escape(content_type_of(n))}</d:getcontenttype>"
    ),
    (DAV, "supportedlock"): lambda _n, _v: SUPPORTED_LOCK,
    (DAV, "lockdiscovery"): lambda _n, v: lock_discovery_xml(v.locks, v.path_segments),
    (DAV, "quota-used-bytes"): _folder_only(
        lambda n, _v: f"<d:quota-used-bytes>{n.size}</d:quota-used-bytes>"
    ),
    (DAV, "quota-available-bytes"): _folder_only(_quota_available),
    (OC, "id"): lambda n, v: f"<oc:id>{dav_file_id(n, v.instance_id)}</oc:id>",
    (OC, "fileid"): lambda n, _: f"<oc:fileid>{n.id}</oc:fileid>",
    (OC, "permissions"): lambda n, v: (
        "<oc:permissions>"
        + dav_permissions(
            v.permissions,
            is_folder=n.is_folder,
            shared_with_me=v.shared_with_me,
            is_mount_point=v.is_mount_point,
        )
        + "</oc:permissions>"
    ),
    (OC, "share-permissions"): lambda _n, v: (
        f"<oc:share-permissions>{int(v.permissions)}</oc:share-permissions>"
    ),
    (OC, "size"): lambda n, _: f"<oc:size>{n.size}</oc:size>",
    (OC, "checksums"): _file_only(_checksums),
    (OC, "data-fingerprint"): lambda _n, v: "<oc:data-fingerprint/>" if v.is_root else None,
    (OC, "share-types"): lambda _n, v: (
        "<oc:share-types>"
        + "".join(f"<oc:share-type>{t}</oc:share-type>" for t in v.share_types)
        + "</oc:share-types>"
    ),
    (OC, "owner-id"): lambda _n, v: f"<oc:owner-id>{escape(v.home.name)}</oc:owner-id>",
    (OC, "owner-display-name"): lambda _n, v: (
        f"<oc:owner-display-name>{escape(v.home.display_name)}</oc:owner-display-name>"
    ),
    (NC, "has-preview"): lambda _n, _v: "<nc:has-preview>false</nc:has-preview>",
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
