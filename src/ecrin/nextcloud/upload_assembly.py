"""`MOVE <upload>/.file`: assemble a chunked upload into its destination.

Honours everything a PUT would: locks and the If header on the destination, If-Match
(412), `Overwrite: F`, OC-Total-Length / OC-Total-File-Length (400 if the chunks do not sum
up to it), OC-Checksum (400 if the assembled file does not match), X-OC-Mtime, quota (507).
Answers 201 (created) or 204 (replaced) with `OC-FileId` and `ETag`/`OC-ETag`, which the
desktop clients require.
"""

from __future__ import annotations

from starlette.responses import Response

from ecrin.core.errors import MethodNotAllowed, PreconditionFailed
from ecrin.dav.context import quoted_etag
from ecrin.dav.live_properties import dav_file_id
from ecrin.dav.put import expected_checksums
from ecrin.dav.responses import empty
from ecrin.nextcloud.context import header_int
from ecrin.nextcloud.upload_request import UploadRequest
from ecrin.services.file_writes import WriteConditions
from ecrin.services.uploads import ASSEMBLE_NAME, Assembly


def _etags(header: str | None) -> tuple[str, ...] | None:
    if header is None:
        return None
    return tuple(e.strip().removeprefix("W/").strip('"') for e in header.split(",") if e.strip())


def _content_type(up: UploadRequest) -> str | None:
    value = up.header("content-type")
    if not value or value.startswith(("application/octet-stream", "application/x-www-form")):
        return None
    return value[:255]


async def handle(up: UploadRequest) -> Response:
    if up.transfer_id is None or up.chunk != ASSEMBLE_NAME:
        raise MethodNotAllowed(
            f"only <upload>/{ASSEMBLE_NAME} can be moved: it assembles the upload"
        )
    destination = up.destination(required=True)
    assert destination is not None
    ctx = up.files_context(destination)
    existing = await up.services.files.lookup(up.user, destination)
    await ctx.guard_write(membership=existing is None)
    conditions = WriteConditions(
        if_match=_etags(up.header("if-match")),
        if_none_match=("*",) if not ctx.overwrite() else _etags(up.header("if-none-match")),
    )
    if existing is not None and not existing.is_folder:
        conditions.check(existing)  # fail early; checked again atomically at the commit
    elif existing is None and conditions.if_match is not None:
        raise PreconditionFailed("If-Match: the destination does not exist")
    total = header_int(up.request, "oc-total-length")
    if total is None:
        total = header_int(up.request, "oc-total-file-length")
    mtime = ctx.mtime()
    result = await up.services.uploads.assemble(
        up.user,
        up.transfer_id,
        Assembly(
            destination=destination,
            total_length=total,
            mtime=mtime,
            content_type=_content_type(up),
            checksums=tuple(expected_checksums(ctx)),
            conditions=conditions,
        ),
    )
    headers = {
        "etag": quoted_etag(result.node),
        "oc-etag": quoted_etag(result.node),
        "oc-fileid": dav_file_id(result.node, up.services.instance_id),
    }
    if mtime is not None:
        headers["x-oc-mtime"] = "accepted"
    return empty(201 if result.created else 204, headers)
