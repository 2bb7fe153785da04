"""The chunked-upload area, `/remote.php/dav/uploads/<user>/<upload>/<chunk>`.

    MKCOL    <upload>            open an upload (OC-Total-Length: 507 at once if too big)
    PUT      <upload>/<chunk>    store a chunk (any order; a repeated name replaces it)
    PROPFIND <upload>            list the stored chunks and their sizes (to resume)
    DELETE   <upload>[/<chunk>]  cancel the upload, or drop one chunk
    MOVE     <upload>/.file      assemble into the Destination (see `upload_assembly.py`)

Chunking v2 sends a Destination on MKCOL and PUT too; it is read leniently there (an
unreadable one is ignored) and strictly on MOVE. The work is `services/uploads.py`.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable

from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from ecrin.core.errors import (
    BadRequest,
    Forbidden,
    MethodNotAllowed,
    NotFound,
    PayloadTooLarge,
    UnsupportedMediaType,
)
from ecrin.core.paths import decode_url_path
from ecrin.dav.errors import serve_dav
from ecrin.dav.responses import empty
from ecrin.http.authentication import authenticate
from ecrin.nextcloud import upload_assembly, upload_listing
from ecrin.nextcloud.context import header_int
from ecrin.nextcloud.upload_request import UploadRequest
from ecrin.services.container import Services
from ecrin.services.uploads import ASSEMBLE_NAME, ChunkWrite
from ecrin.settings import Settings

log = logging.getLogger(__name__)

# uploads prefix -> the files prefix its Destinations point into first
UPLOAD_PREFIXES = {
    "/remote.php/dav/uploads/": "/remote.php/dav/files/",
    "/dav/uploads/": "/dav/files/",
}
URL_PREFIXES = tuple(UPLOAD_PREFIXES)
LEGACY_FILES_BASE = "/remote.php/webdav"
ALLOW = "OPTIONS, PROPFIND, MKCOL, PUT, DELETE, MOVE"


Handler = Callable[[UploadRequest], Awaitable[Response]]


class UploadsApp:
    def __init__(self, services: Services, settings: Settings) -> None:
        self.services = services
        self.settings = settings
        self.handlers: dict[str, Handler] = {
            "OPTIONS": _options,
            "PROPFIND": upload_listing.handle,
            "MKCOL": _mkcol,
            "PUT": _put,
            "DELETE": _delete,
            "MOVE": upload_assembly.handle,
        }

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await serve_dav(scope, receive, send, self._dispatch)

    async def _dispatch(self, request: Request) -> Response:
        raw_path = request.scope.get("raw_path", b"").decode("latin-1").partition("?")[0]
        prefix = next((p for p in UPLOAD_PREFIXES if raw_path.startswith(p)), None)
        if prefix is None:
            raise NotFound("not an uploads URL")
        user_raw, _, rest = raw_path[len(prefix) :].partition("/")
        user_name = decode_url_path(user_raw)
        principal = await authenticate(request, self.services.accounts)
        if user_name != principal.name:
            raise NotFound("no such upload")  # another user's uploads: say nothing
        names = [decode_url_path(part) for part in rest.split("/") if part]
        if len(names) > 2:
            raise NotFound("no such upload or chunk")
        handler = self.handlers.get(request.method)
        if handler is None:
            raise MethodNotAllowed(f"{request.method} is not supported in the uploads area")
        return await handler(
            UploadRequest(
                request=request,
                services=self.services,
                settings=self.settings,
                user=principal,
                base=decode_url_path(prefix + user_raw),
                files_bases=(
                    decode_url_path(UPLOAD_PREFIXES[prefix] + user_raw),
                    *(decode_url_path(p + user_raw) for p in UPLOAD_PREFIXES.values()),
                    LEGACY_FILES_BASE,
                ),
                transfer_id=names[0] if names else None,
                chunk=names[1] if len(names) > 1 else None,
            )
        )


async def _options(_up: UploadRequest) -> Response:
    return empty(200, {"dav": "1", "allow": ALLOW})


async def _mkcol(up: UploadRequest) -> Response:
    if up.transfer_id is None:
        raise MethodNotAllowed("the uploads folder already exists")
    if up.chunk is not None:
        raise MethodNotAllowed("an upload holds chunks, not folders")
    async for data in up.request.stream():
        if data:
            raise UnsupportedMediaType("MKCOL with a body is not supported")
    await up.services.uploads.begin(
        up.user,
        up.transfer_id,
        destination=up.destination(required=False),
        total_length=header_int(up.request, "oc-total-length"),
    )
    return empty(201)


async def _put(up: UploadRequest) -> Response:
    if up.transfer_id is None or up.chunk is None:
        raise MethodNotAllowed("chunks go into an upload: uploads/<user>/<upload>/<chunk>")
    if up.header("content-range"):
        raise BadRequest("partial PUT with Content-Range is not supported")
    length = header_int(up.request, "content-length")
    limit = up.settings.max_upload_bytes
    if limit and length is not None and length > limit:
        raise PayloadTooLarge(f"uploads are limited to {limit} bytes per request")
    write = ChunkWrite(
        length=length,
        offset=header_int(up.request, "oc-chunk-offset"),
        total_length=header_int(up.request, "oc-total-length"),
        destination=up.destination(required=False),
    )
    chunk, created = await up.services.uploads.put_chunk(
        up.user, up.transfer_id, up.chunk, _limited(up.request, limit), write
    )
    etag = f'"{chunk.blob_id[:24]}"'
    return empty(201 if created else 204, {"etag": etag, "oc-etag": etag})


async def _delete(up: UploadRequest) -> Response:
    if up.transfer_id is None:
        raise Forbidden("the uploads folder itself cannot be deleted")
    if up.chunk is None:
        await up.services.uploads.abort(up.user, up.transfer_id)
    elif up.chunk == ASSEMBLE_NAME:
        raise NotFound(f"{ASSEMBLE_NAME} is not a chunk")
    else:
        await up.services.uploads.delete_chunk(up.user, up.transfer_id, up.chunk)
    return empty(204)


async def _limited(request: Request, limit: int) -> AsyncIterator[bytes]:
    received = 0
    async for data in request.stream():
        received += len(data)
        if limit and received > limit:
            raise PayloadTooLarge(f"uploads are limited to {limit} bytes per request")
        if data:
            yield data
