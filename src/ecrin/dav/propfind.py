"""PROPFIND (RFC 4918 section 9.1): Depth 0 and 1; Depth infinity is refused."""

from __future__ import annotations

from xml.sax.saxutils import escape

from lxml import etree
from starlette.responses import Response

from ecrin.core.errors import BadRequest, Forbidden
from ecrin.core.model import DeadProperty, Node
from ecrin.core.paths import DavPath
from ecrin.dav.context import DavContext
from ecrin.dav.live_properties import ALLPROP, LIVE, PropertyView
from ecrin.dav.responses import xml_response
from ecrin.dav.xml import DAV, NAMESPACE_DECLARATIONS, OC, PropName, elements, empty_element, qname
from ecrin.services.files import Entry

OK = "<d:status>HTTP/1.1 200 OK</d:status>"
NOT_FOUND = "<d:status>HTTP/1.1 404 Not Found</d:status>"


def parse_request(root: etree._Element | None) -> tuple[str, list[PropName]]:
    """('allprop' | 'propname' | 'prop', names)."""
    if root is None:
        return "allprop", []
    if qname(root) != (DAV, "propfind"):
        raise BadRequest("the body must be a DAV:propfind element")
    mode, names = "", []
    for child in elements(root):
        name = qname(child)
        if name == (DAV, "allprop"):
            mode = "allprop"
        elif name == (DAV, "propname"):
            mode = "propname"
        elif name == (DAV, "prop"):
            mode = "prop"
            names = [qname(p) for p in elements(child)]
    if not mode:
        raise BadRequest("PROPFIND needs prop, allprop or propname")
    return mode, names


def render_response(
    href: str,
    node: Node,
    view: PropertyView,
    mode: str,
    names: list[PropName],
    dead: list[DeadProperty],
) -> str:
    dead_by_name = {(p.namespace, p.name): p.xml for p in dead}
    found: list[str] = []
    missing: list[str] = []
    if mode == "propname":
        present = [n for n in LIVE if LIVE[n](node, view) is not None] + list(dead_by_name)
        found = [empty_element(n) for n in present]
    else:
        wanted = list(ALLPROP) + list(dead_by_name) if mode == "allprop" else names
        for name in wanted:
            live = LIVE.get(name)
            value = live(node, view) if live else dead_by_name.get(name)
            if value is None:
                missing.append(empty_element(name))
            else:
                found.append(value)
    return propstat_response(href, found, missing)


def propstat_response(href: str, found: list[str], missing: list[str]) -> str:
    """One `d:response`: found properties in a 200 propstat, the others in a 404 one."""
    parts = [f"<d:response><d:href>{escape(href)}</d:href>"]
    if found:
        parts.append(f"<d:propstat><d:prop>{''.join(found)}</d:prop>{OK}</d:propstat>")
    if missing:
        parts.append(f"<d:propstat><d:prop>{''.join(missing)}</d:prop>{NOT_FOUND}</d:propstat>")
    parts.append("</d:response>")
    return "".join(parts)


async def handle(ctx: DavContext) -> Response:
    depth = ctx.depth("1", ("0", "1", "infinity"))
    if depth == "infinity":
        raise Forbidden("Depth: infinity is not supported", condition="propfind-finite-depth")
    body = await ctx.read_xml_body()
    mode, names = parse_request(ctx.parse(body) if body.strip() else None)

    entry, children = await ctx.services.files.list_folder(ctx.home, ctx.path)
    if depth == "0":
        children = []
    entries: list[tuple[DavPath, Entry]] = [(ctx.path, entry)]
    entries += [(DavPath((*ctx.path.segments, child.name)), child) for child in children]
    nodes = [e.node for _, e in entries]

    wants_dead = mode != "prop" or any(n not in LIVE for n in names)
    dead = await ctx.services.properties.of(nodes) if wants_dead else {}
    wants_locks = mode != "prop" or (DAV, "lockdiscovery") in names
    locks = await ctx.services.locks.active(ctx.home) if wants_locks else []
    wants_shares = mode != "prop" or (OC, "share-types") in names
    share_types = await ctx.services.files.share_types(ctx.home, nodes) if wants_shares else {}
    home = ctx.home if ctx.home.is_link_visitor else await ctx.services.accounts.refresh(ctx.home)

    out = [f'<?xml version="1.0" encoding="utf-8"?>\n<d:multistatus {NAMESPACE_DECLARATIONS}>']
    for path, item in entries:
        view = PropertyView(
            home,
            ctx.services.instance_id,
            locks,
            path.segments,
            path.is_root,
            permissions=item.permissions,
            shared_with_me=item.share is not None,
            is_mount_point=item.is_mount_point,
            share_types=share_types.get(item.node.id, ()),
        )
        out.append(
            render_response(
                ctx.href(path, item.node.is_folder),
                item.node,
                view,
                mode,
                names,
                dead.get(item.node.id, []),
            )
        )
    out.append("</d:multistatus>")
    return xml_response("".join(out))
