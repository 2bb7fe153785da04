"""`PATCH` with `X-Recalculate-Hash: SHA1` on a file: recompute its stored checksum.

The desktop client sends it after a download did not match the advertised `OC-Checksum`;
the answer carries the new checksum in `OC-Checksum` (204), as Nextcloud does.
"""

from __future__ import annotations

from starlette.responses import Response

from ecrin.core.errors import BadRequest
from ecrin.dav.context import DavContext
from ecrin.dav.responses import empty


async def handle(ctx: DavContext) -> Response:
    algorithm = ctx.header("x-recalculate-hash")
    if not algorithm:
        raise BadRequest("PATCH is only supported with X-Recalculate-Hash")
    checksum = await ctx.services.checksum_recalculator.recalculate(ctx.home, ctx.path, algorithm)
    return empty(204, {"oc-checksum": checksum})
