"""MKCOL (RFC 4918 section 9.3)."""

from __future__ import annotations

from starlette.responses import Response

from ecrin.core.errors import UnsupportedMediaType
from ecrin.dav.context import DavContext, quoted_etag
from ecrin.dav.live_properties import dav_file_id
from ecrin.dav.responses import empty


async def handle(ctx: DavContext) -> Response:
    async for chunk in ctx.request.stream():
        if chunk:
            raise UnsupportedMediaType("MKCOL with a body is not supported")
    await ctx.guard_write(membership=True)
    node = await ctx.services.files.make_folder(ctx.home, ctx.path)
    return empty(
        201,
        {
            "oc-fileid": dav_file_id(node, ctx.services.instance_id),
            "oc-etag": quoted_etag(node),
        },
    )
