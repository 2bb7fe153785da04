"""PROPFIND in the uploads area: what a client reads to resume an interrupted upload.

The first response is the requested folder itself, then one per child, each with its
`getcontentlength`: the desktop client keeps the chunks that line up with its own ranges.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from xml.sax.saxutils import escape

from starlette.responses import Response

from ecrin.core.errors import BadRequest, Forbidden, NotFound
from ecrin.core.model import UploadChunk, UploadSession
from ecrin.dav.live_properties import http_date
from ecrin.dav.propfind import parse_request, propstat_response
from ecrin.dav.responses import xml_response
from ecrin.dav.xml import DAV, NAMESPACE_DECLARATIONS, OC, PropName, empty_element, parse_xml
from ecrin.nextcloud.context import read_small_body
from ecrin.nextcloud.upload_request import UploadRequest


@dataclass(frozen=True, slots=True)
class Entry:
    href: str
    name: str
    is_folder: bool
    size: int
    etag: str
    mtime: float


PROPERTIES: dict[PropName, Callable[[Entry], str | None]] = {
    (DAV, "resourcetype"): lambda e: (
        "<d:resourcetype><d:collection/></d:resourcetype>" if e.is_folder else "<d:resourcetype/>"
    ),
    (DAV, "getcontentlength"): lambda e: (
        None if e.is_folder else f"<d:getcontentlength>{e.size}</d:getcontentlength>"
    ),
    (DAV, "getetag"): lambda e: f'<d:getetag>"{escape(e.etag)}"</d:getetag>',
    (DAV, "getlastmodified"): lambda e: (
        f"<d:getlastmodified>{http_date(e.mtime)}</d:getlastmodified>"
    ),
    (DAV, "displayname"): lambda e: f"<d:displayname>{escape(e.name)}</d:displayname>",
    (OC, "size"): lambda e: f"<oc:size>{e.size}</oc:size>",
}
ALLPROP = (
    (DAV, "resourcetype"),
    (DAV, "getcontentlength"),
    (DAV, "getetag"),
    (DAV, "getlastmodified"),
)


def session_entry(up: UploadRequest, session: UploadSession, size: int) -> Entry:
    etag = f"u{session.id:x}t{int(session.touched_at * 1000):x}"
    return Entry(
        up.href(session.name, folder=True), session.name, True, size, etag, session.touched_at
    )


def chunk_entry(up: UploadRequest, session: UploadSession, chunk: UploadChunk) -> Entry:
    href = up.href(session.name, chunk.name)
    return Entry(href, chunk.name, False, chunk.size, chunk.blob_id[:24], chunk.created_at)


async def handle(up: UploadRequest) -> Response:
    depth = (up.header("depth") or "1").strip().lower()
    if depth not in ("0", "1"):
        raise Forbidden("Depth: infinity is not supported", condition="propfind-finite-depth")
    body = await read_small_body(up.request, up.settings.max_xml_bytes)
    root = None
    if body.strip():
        root = parse_xml(
            body, max_bytes=up.settings.max_xml_bytes, max_depth=up.settings.max_xml_depth
        )
    mode, names = parse_request(root)
    if mode == "propname":
        raise BadRequest("propname is not supported in the uploads area")
    wanted = list(ALLPROP) if mode == "allprop" else names
    entries = await _entries(up, children=depth == "1")
    out = [f'<?xml version="1.0" encoding="utf-8"?>\n<d:multistatus {NAMESPACE_DECLARATIONS}>']
    out += [_render(entry, wanted) for entry in entries]
    out.append("</d:multistatus>")
    return xml_response("".join(out))


async def _entries(up: UploadRequest, *, children: bool) -> list[Entry]:
    uploads = up.services.uploads
    if up.transfer_id is None:
        now = up.services.clock.now()
        entries = [Entry(up.href(folder=True), up.user.name, True, 0, f"uploads{int(now)}", now)]
        if children:
            entries += [session_entry(up, s, 0) for s in await uploads.sessions(up.user)]
        return entries
    session, chunks = await uploads.chunks(up.user, up.transfer_id)
    if up.chunk is not None:
        chunk = next((c for c in chunks if c.name == up.chunk), None)
        if chunk is None:
            raise NotFound(f"no chunk {up.chunk} in upload {session.name}")
        return [chunk_entry(up, session, chunk)]
    entries = [session_entry(up, session, sum(c.size for c in chunks))]
    if children:
        entries += [chunk_entry(up, session, chunk) for chunk in chunks]
    return entries


def _render(entry: Entry, wanted: list[PropName]) -> str:
    found: list[str] = []
    missing: list[str] = []
    for name in wanted:
        render = PROPERTIES.get(name)
        value = render(entry) if render else None
        if value is None:
            missing.append(empty_element(name))
        else:
            found.append(value)
    return propstat_response(entry.href, found, missing)
