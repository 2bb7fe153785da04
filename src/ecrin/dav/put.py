"""PUT: streamed upload, checksums verified and preconditions checked inside the commit."""

from __future__ import annotations

from collections.abc import AsyncIterator

from starlette.responses import Response

from ecrin.core.errors import BadRequest, PayloadTooLarge
from ecrin.dav.context import DavContext, quoted_etag
from ecrin.dav.live_properties import dav_file_id
from ecrin.dav.responses import empty
from ecrin.http.body import body_pieces
from ecrin.services.checksums import ExpectedChecksum, parse_content_md5, parse_oc_checksum
from ecrin.services.file_writes import SMALL_BODY, WriteConditions


def _etags(header: str | None, *, weak: bool) -> tuple[str, ...] | None:
    """The entity tags of If-Match (strong comparison: weak tags never match, RFC 9110
    13.1.1) or If-None-Match (weak comparison)."""
    if header is None:
        return None
    tags = [e.strip() for e in header.split(",") if e.strip()]
    if not weak:
        tags = [t for t in tags if not t.startswith("W/")] or ["\x00no match"]
    return tuple(t.removeprefix("W/").strip('"') for t in tags)


def declared_length(ctx: DavContext) -> int | None:
    for name in ("content-length", "oc-total-length"):
        raw = ctx.header(name)
        if raw is not None:
            if not raw.strip().isdigit():
                raise BadRequest(f"{name} must be a number")
            return int(raw)
    return None


def expected_checksums(ctx: DavContext) -> list[ExpectedChecksum]:
    expected = []
    if (oc := ctx.header("oc-checksum")) is not None:
        parsed = parse_oc_checksum(oc)
        if parsed is not None:
            expected.append(parsed)
    if (md5 := ctx.header("content-md5")) is not None:
        expected.append(parse_content_md5(md5))
    return expected


async def handle(ctx: DavContext) -> Response:
    if ctx.header("content-range"):
        raise BadRequest("partial PUT with Content-Range is not supported")
    length = declared_length(ctx)
    limit = ctx.settings.max_upload_bytes
    if limit and length is not None and length > limit:
        raise PayloadTooLarge(f"uploads are limited to {limit} bytes")
    content_length = length if ctx.header("content-length") else None
    lock_check = None
    home = ctx.home
    small = content_length is not None and content_length <= SMALL_BODY
    if small and home.quota_bytes is None and not home.is_link_visitor and not ctx.if_lists():
        # A small body is read before any check, and the commit checks everything, locks
        # included: one transaction instead of two. Not over a quota (507 comes before the
        # body), nor for a public link's visitor (no home whose locks the commit could lock).
        lock_check = ctx.lock_check()
    else:
        target = await ctx.services.files.upload_target(ctx.home, ctx.path, content_length)
        # The locks were read with the target, in its transaction.
        await ctx.guard_write(membership=target.existing is None, locks=target.locks)
        if target.refusal is not None:
            raise target.refusal
    conditions = WriteConditions(
        if_match=_etags(ctx.header("if-match"), weak=False),
        if_none_match=_etags(ctx.header("if-none-match"), weak=True),
    )
    mtime = ctx.mtime()
    result = await ctx.services.files.upload(
        ctx.home,
        ctx.path,
        _limited(ctx, limit),
        length=content_length,
        mtime=mtime,
        content_type=_content_type(ctx),
        checksums=expected_checksums(ctx),
        conditions=conditions,
        checked=True,
        lock_check=lock_check,
    )
    headers = {
        "etag": quoted_etag(result.node),
        "oc-etag": quoted_etag(result.node),
        "oc-fileid": dav_file_id(result.node, ctx.services.instance_id),
    }
    if mtime is not None:
        headers["x-oc-mtime"] = "accepted"
    return empty(201 if result.created else 204, headers)


def _content_type(ctx: DavContext) -> str | None:
    value = ctx.header("content-type")
    if not value or value.startswith(("application/octet-stream", "application/x-www-form")):
        return None
    return value[:255]


async def _limited(ctx: DavContext, limit: int) -> AsyncIterator[bytes]:
    received = 0
    async for chunk in body_pieces(ctx.request):
        received += len(chunk)
        if limit and received > limit:
            raise PayloadTooLarge(f"uploads are limited to {limit} bytes")
        yield chunk
