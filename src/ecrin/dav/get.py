"""GET and HEAD (RFC 9110): ranges and conditional requests, streamed from the blob."""

from __future__ import annotations

from collections.abc import AsyncIterator

from starlette.responses import Response, StreamingResponse

from ecrin.core.errors import RangeNotSatisfiable
from ecrin.core.model import Node
from ecrin.dav.context import DavContext, http_date_to_timestamp, quoted_etag
from ecrin.dav.property_values import dav_file_id
from ecrin.dav.responses import WholeBody, empty
from ecrin.storage.protocol import Piece


def _etag_list(header: str) -> list[str]:
    return [e.strip().removeprefix("W/") for e in header.split(",") if e.strip()]


def parse_range(header: str | None, size: int) -> tuple[int, int] | None:
    """One byte range `bytes=a-b`, `a-` or `-n` -> (start, end exclusive); None: whole file.

    Multiple ranges are answered with the whole file, which RFC 9110 allows.
    """
    if not header or not header.strip().lower().startswith("bytes=") or "," in header:
        return None
    spec = header.strip()[6:].strip()
    first, sep, last = spec.partition("-")
    if not sep:
        return None
    try:
        if first == "":
            length = int(last)
            if length <= 0:
                raise RangeNotSatisfiable("empty suffix range")
            return max(0, size - length), size
        start = int(first)
        end = int(last) + 1 if last else size
    except ValueError:
        return None
    if start >= size or end <= start:
        raise RangeNotSatisfiable(f"range outside the file's {size} bytes")
    return start, min(end, size)


def not_modified_or_failed(ctx: DavContext, node: Node) -> Response | None:
    etag = quoted_etag(node)
    if_match = ctx.header("if-match")
    if if_match and if_match.strip() != "*" and etag not in _etag_list(if_match):
        return empty(412)
    since = ctx.header("if-unmodified-since")
    stamp = http_date_to_timestamp(since) if since else None
    if stamp is not None and int(node.mtime) > stamp:
        return empty(412)
    if_none_match = ctx.header("if-none-match")
    if if_none_match:
        if if_none_match.strip() == "*" or etag in _etag_list(if_none_match):
            return empty(304, {"etag": etag})
    else:
        modified = ctx.header("if-modified-since")
        stamp = http_date_to_timestamp(modified) if modified else None
        if stamp is not None and int(node.mtime) <= stamp:
            return empty(304, {"etag": etag})
    return None


def file_headers(ctx: DavContext, node: Node) -> dict[str, str]:
    etag = quoted_etag(node)
    headers = {
        "etag": etag,
        "oc-etag": etag,
        "oc-fileid": dav_file_id(node, ctx.services.instance_id),
        "last-modified": ctx.values.http_date(node.mtime),
        "accept-ranges": "bytes",
    }
    if node.checksums:
        headers["oc-checksum"] = node.checksums.split(" ")[0]
    return headers


async def handle(ctx: DavContext) -> Response:
    head = ctx.request.method == "HEAD"
    opened = await ctx.services.files.open(ctx.home, ctx.path, contents=not head)
    node = opened.node
    if node.is_folder:
        # Browsers and tools may GET a folder: answer with a short text, not an error.
        headers = {"etag": quoted_etag(node), "content-type": "text/plain; charset=utf-8"}
        text = b"" if head else b"This is a folder.\n"
        return Response(text, 200, headers)
    early = not_modified_or_failed(ctx, node)
    if early is not None:
        return early
    headers = file_headers(ctx, node)
    headers["content-type"] = ctx.values.content_type(node)
    if_range = ctx.header("if-range")
    wanted = ctx.header("range") if not if_range or if_range == quoted_etag(node) else None
    try:
        span = parse_range(wanted, node.size)
    except RangeNotSatisfiable:
        return empty(416, {"content-range": f"bytes */{node.size}"})
    status = 200
    start, end = 0, node.size
    if span is not None:
        start, end = span
        status = 206
        headers["content-range"] = f"bytes {start}-{end - 1}/{node.size}"
    headers["content-length"] = str(end - start)
    if head:
        return Response(status_code=status, headers=headers)
    body = ctx.services.files.read_opened(opened, start, end)
    # Pull the first piece before the status line: a missing key, a lost blob or a corrupt
    # first segment then gets an error status rather than a 200 cut short.
    pieces = [await anext(body, b"")]
    if len(pieces[0]) == end - start:
        # Everything in one piece (a small file, the common case). Ask once more so the store
        # finishes its checks (an encrypted body longer than its record fails here), then
        # answer without a stream: no task watching for a disconnect, one send for the body.
        last = await anext(body, None)
        if last is None:
            return WholeBody(pieces[0], status, headers)
        pieces.append(last)
    return StreamingResponse(_prepend(pieces, body), status_code=status, headers=headers)


async def _prepend(first: list[Piece], rest: AsyncIterator[Piece]) -> AsyncIterator[Piece]:
    while first:  # taken out of the list: a piece sent is not held to the end of the body
        if chunk := first.pop(0):
            yield chunk
    async for chunk in rest:
        yield chunk
