"""DELETE (RFC 4918 section 9.6): a file, or a folder and everything below it."""

from __future__ import annotations

from starlette.responses import Response

from ecrin.core.errors import BadRequest
from ecrin.dav.context import DavContext
from ecrin.dav.responses import empty


async def handle(ctx: DavContext) -> Response:
    if "#" in ctx.request.url.path or ctx.request.url.fragment:
        raise BadRequest("URLs with fragments cannot be deleted")
    node = await ctx.services.files.stat(ctx.home, ctx.path)
    if node.is_folder and ctx.depth("infinity", ("infinity",)) != "infinity":
        raise BadRequest("DELETE of a folder needs Depth: infinity")
    await ctx.guard_write(subtree=True, membership=True)
    await ctx.services.files.delete(ctx.home, ctx.path)
    await ctx.services.locks.remove_below(ctx.home, ctx.path)
    return empty(204)
