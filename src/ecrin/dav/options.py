"""OPTIONS: what this server supports."""

from __future__ import annotations

from starlette.responses import Response

from ecrin.dav.context import DavContext
from ecrin.dav.responses import empty

ALLOW = "OPTIONS, GET, HEAD, PUT, DELETE, MKCOL, COPY, MOVE, PROPFIND, PROPPATCH, LOCK, UNLOCK"


async def handle(ctx: DavContext) -> Response:
    return empty(
        200, {"dav": "1, 2, 3", "allow": ALLOW, "ms-author-via": "DAV", "accept-ranges": "bytes"}
    )
