"""Request bodies read straight from the ASGI server's messages.

Starlette's `Request.stream()` adds an async-generator layer per received piece; an upload of
1 GiB arrives in thousands of them. Reading `receive` directly also lets a client that went
away mid-body end as a client error rather than as an unexpected server error with a
traceback in the log.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

from starlette.requests import Request

from ecrin.core.errors import BadRequest


async def body_pieces(request: Request) -> AsyncIterator[bytes]:
    """The body's non-empty pieces as they arrive; the body must not have been read before."""
    receive = request.receive
    more = True
    while more:
        message = await receive()
        if message["type"] != "http.request":  # http.disconnect
            raise BadRequest("the client closed the connection before the end of the body")
        more = message.get("more_body", False)
        piece = message.get("body", b"")
        if piece:
            yield piece
