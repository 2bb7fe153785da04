"""PROPPATCH (RFC 4918 section 9.2): dead properties, all-or-nothing, in document order."""

from __future__ import annotations

from xml.sax.saxutils import escape

from lxml import etree
from starlette.responses import Response

from ecrin.core.errors import BadRequest
from ecrin.dav.context import DavContext
from ecrin.dav.live_properties import PROTECTED
from ecrin.dav.responses import xml_response
from ecrin.dav.xml import DAV, NAMESPACE_DECLARATIONS, PropName, elements, empty_element, qname
from ecrin.services.properties import PropertyChange

MAX_PROPERTY_BYTES = 64 * 1024


def parse_changes(root: etree._Element) -> list[PropertyChange]:
    if qname(root) != (DAV, "propertyupdate"):
        raise BadRequest("the body must be a DAV:propertyupdate element")
    changes: list[PropertyChange] = []
    for action in elements(root):
        kind = qname(action)
        if kind not in ((DAV, "set"), (DAV, "remove")):
            raise BadRequest("propertyupdate holds only set and remove")
        for prop in elements(action):
            if qname(prop) != (DAV, "prop"):
                raise BadRequest("set and remove hold a DAV:prop element")
            for element in elements(prop):
                namespace, name = qname(element)
                xml = None
                if kind == (DAV, "set"):
                    element.tail = None
                    xml = etree.tostring(element, encoding="unicode")
                    if len(xml) > MAX_PROPERTY_BYTES:
                        raise BadRequest("property value too large")
                changes.append(PropertyChange(namespace, name, xml))
    return changes


async def handle(ctx: DavContext) -> Response:
    body = await ctx.read_xml_body()
    if not body.strip():
        raise BadRequest("PROPPATCH needs a body")
    changes = parse_changes(ctx.parse(body))
    await ctx.services.files.stat(ctx.home, ctx.path)
    await ctx.guard_write()

    names: list[PropName] = [(c.namespace, c.name) for c in changes]
    refused = [n for n in names if n in PROTECTED]
    if refused:
        statuses = {n: "403 Forbidden" if n in refused else "424 Failed Dependency" for n in names}
    else:
        await ctx.services.properties.apply(ctx.home, ctx.path, changes)
        statuses = dict.fromkeys(names, "200 OK")
    node = await ctx.services.files.stat(ctx.home, ctx.path)
    propstats = "".join(
        f"<d:propstat><d:prop>{empty_element(name)}</d:prop>"
        f"<d:status>HTTP/1.1 {status}</d:status></d:propstat>"
        for name, status in statuses.items()
    )
    return xml_response(
        f'<?xml version="1.0" encoding="utf-8"?>\n<d:multistatus {NAMESPACE_DECLARATIONS}>'
        f"<d:response><d:href>{escape(ctx.href(ctx.path, node.is_folder))}</d:href>"
        f"{propstats}</d:response></d:multistatus>"
    )
