"""COPY and MOVE (RFC 4918 sections 9.8 and 9.9)."""

from __future__ import annotations

from starlette.responses import Response

from ecrin.core.paths import DavPath
from ecrin.dav.context import DavContext, quoted_etag
from ecrin.dav.live_properties import dav_file_id
from ecrin.dav.responses import empty


async def handle_copy(ctx: DavContext) -> Response:
    node = await ctx.services.files.stat(ctx.home, ctx.path)
    depth = ctx.depth("infinity", ("0", "infinity")) if node.is_folder else "infinity"
    destination = ctx.destination()
    overwrite = ctx.overwrite()
    await ctx.guard_write(destination, subtree=True, membership=True)
    created = await ctx.services.files.copy(
        ctx.home, ctx.path, destination, overwrite=overwrite, recursive=depth == "infinity"
    )
    return await _done(ctx, destination, created)


async def handle_move(ctx: DavContext) -> Response:
    node = await ctx.services.files.stat(ctx.home, ctx.path)
    if node.is_folder:
        ctx.depth("infinity", ("infinity",))
    destination = ctx.destination()
    overwrite = ctx.overwrite()
    await ctx.guard_write(subtree=True, membership=True)
    await ctx.guard_write(destination, subtree=True, membership=True, check_if=False)
    created = await ctx.services.files.move(ctx.home, ctx.path, destination, overwrite=overwrite)
    await ctx.services.locks.remove_below(ctx.home, ctx.path)
    mtime = ctx.mtime()
    if mtime is not None:
        await ctx.services.files.set_mtime(ctx.home, destination, mtime)
    return await _done(ctx, destination, created)


async def _done(ctx: DavContext, destination: DavPath, created: bool) -> Response:
    node = await ctx.services.files.stat(ctx.home, destination)
    headers = {
        "etag": quoted_etag(node),
        "oc-etag": quoted_etag(node),
        "oc-fileid": dav_file_id(node, ctx.services.instance_id),
    }
    if ctx.mtime() is not None:
        headers["x-oc-mtime"] = "accepted"
    return empty(201 if created else 204, headers)
