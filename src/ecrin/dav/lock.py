"""LOCK and UNLOCK (RFC 4918 sections 9.10 and 9.11)."""

from __future__ import annotations

from lxml import etree
from starlette.responses import Response

from ecrin.core.errors import BadRequest
from ecrin.core.model import Lock, LockScope
from ecrin.dav.context import DavContext
from ecrin.dav.live_properties import active_lock_xml
from ecrin.dav.responses import empty, xml_response
from ecrin.dav.xml import DAV, NAMESPACE_DECLARATIONS, elements, qname
from ecrin.services.locks import LockRequest, parse_timeout


def parse_lockinfo(root: etree._Element, depth_infinity: bool) -> LockRequest:
    if qname(root) != (DAV, "lockinfo"):
        raise BadRequest("the body must be a DAV:lockinfo element")
    scope: LockScope | None = None
    owner_xml = ""
    has_type = False
    for child in elements(root):
        name = qname(child)
        if name == (DAV, "lockscope"):
            kinds = [qname(k) for k in elements(child)]
            if kinds == [(DAV, "exclusive")]:
                scope = LockScope.EXCLUSIVE
            elif kinds == [(DAV, "shared")]:
                scope = LockScope.SHARED
            else:
                raise BadRequest("lockscope must be exclusive or shared")
        elif name == (DAV, "locktype"):
            if [qname(k) for k in elements(child)] != [(DAV, "write")]:
                raise BadRequest("only write locks exist")
            has_type = True
        elif name == (DAV, "owner"):
            child.tail = None
            owner_xml = etree.tostring(child, encoding="unicode")
    if scope is None or not has_type:
        raise BadRequest("lockinfo needs a lockscope and a locktype")
    return LockRequest(scope, depth_infinity, owner_xml, None)


def _lock_body(ctx: DavContext, lock: Lock) -> str:
    href = ctx.href(ctx.path, False) if not ctx.path.is_root else ctx.href(ctx.path, True)
    return (
        f'<?xml version="1.0" encoding="utf-8"?>\n<d:prop {NAMESPACE_DECLARATIONS}>'
        f"<d:lockdiscovery>{active_lock_xml(lock, href)}</d:lockdiscovery></d:prop>"
    )


async def handle_lock(ctx: DavContext) -> Response:
    timeout = parse_timeout(ctx.header("timeout"))
    body = await ctx.read_xml_body()
    if not body.strip():
        # A refresh: the lock token comes in the If header.
        tokens = ctx.submitted_tokens()
        if not tokens:
            raise BadRequest("a lock refresh needs the lock token in an If header")
        lock = await ctx.services.locks.refresh(ctx.home, ctx.principal, ctx.path, tokens, timeout)
        return xml_response(_lock_body(ctx, lock), 200)
    depth = ctx.depth("infinity", ("0", "infinity"))
    request = parse_lockinfo(ctx.parse(body), depth == "infinity")
    request = LockRequest(request.scope, request.depth_infinity, request.owner_xml, timeout)
    existing = await ctx.services.files.lookup(ctx.home, ctx.path)
    if existing is None:
        await ctx.guard_write(membership=True, check_if=False)
    lock, created = await ctx.services.locks.lock(ctx.home, ctx.principal, ctx.path, request)
    return xml_response(
        _lock_body(ctx, lock), 201 if created else 200, {"lock-token": f"<{lock.token}>"}
    )


async def handle_unlock(ctx: DavContext) -> Response:
    raw = ctx.header("lock-token")
    if not raw:
        raise BadRequest("UNLOCK needs a Lock-Token header")
    await ctx.services.files.stat(ctx.home, ctx.path)
    token = raw.strip().strip("<>")
    await ctx.services.locks.unlock(ctx.home, ctx.principal, ctx.path, token)
    return empty(204)
