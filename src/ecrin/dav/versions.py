"""Earlier versions over DAV, where Nextcloud clients look for them:

PROPFIND /remote.php/dav/versions/<user>/versions/<file id>          list
GET      /remote.php/dav/versions/<user>/versions/<file id>/<version>  read
MOVE     …/versions/<file id>/<version>  Destination: …/versions/<user>/restore/target
DELETE   …/versions/<file id>/<version>                                forget one
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from ecrin.core.errors import BadRequest, MethodNotAllowed, NotFound
from ecrin.core.model import User
from ecrin.dav.live_properties import content_type_of, http_date
from ecrin.dav.responses import empty, xml_response
from ecrin.dav.special_collections import collection_props, multistatus, response
from ecrin.services.container import Services

PREFIX = "/remote.php/dav/versions/"


def _ids(parts: list[str]) -> tuple[int, int | None]:
    try:
        return int(parts[0]), int(parts[1]) if len(parts) > 1 else None
    except ValueError as exc:
        raise NotFound("no such version") from exc


async def handle(request: Request, services: Services, user: User, rest: list[str]) -> Response:
    """`rest` is what follows /remote.php/dav/versions/<user>/, split on '/'."""
    if not rest or rest[0] != "versions":
        raise NotFound("no such collection")
    base = f"{PREFIX}{user.name}/versions"
    if len(rest) == 1:
        if request.method == "PROPFIND":
            return xml_response(multistatus([response(base + "/", collection_props())]))
        raise MethodNotAllowed("list the versions of one file by its id")
    file_id, version_id = _ids(rest[1:])
    if version_id is None:
        if request.method != "PROPFIND":
            raise MethodNotAllowed(f"{request.method} is not supported here")
        node, versions = await services.versions.list_versions(user, file_id)
        entries = [response(f"{base}/{file_id}/", collection_props())]
        if request.headers.get("depth", "1") != "0":
            for version in versions:
                entries.append(
                    response(
                        f"{base}/{file_id}/{version.id}",
                        [
                            "<d:resourcetype/>",
                            f"<d:getcontentlength>{version.size}</d:getcontentlength>",
                            f"<d:getlastmodified>{http_date(version.mtime)}</d:getlastmodified>",
                            f'<d:getetag>"v{version.id}"</d:getetag>',
                            f"<d:getcontenttype>{content_type_of(node)}</d:getcontenttype>",
                        ],
                    )
                )
        return xml_response(multistatus(entries))
    if request.method in ("GET", "HEAD"):
        node, _ = await services.versions.list_versions(user, file_id)
        version = await services.versions.get(user, file_id, version_id)
        headers = {
            "content-length": str(version.size),
            "etag": f'"v{version.id}"',
            "content-type": content_type_of(node),
            "last-modified": http_date(version.mtime),
        }
        if request.method == "HEAD":
            return Response(status_code=200, headers=headers)
        return StreamingResponse(services.files.send_blob(version.blob_id), headers=headers)
    if request.method == "MOVE":
        destination = request.headers.get("destination", "")
        if not destination.rstrip("/").endswith(f"/versions/{user.name}/restore/target"):
            raise BadRequest("restore by moving a version to …/restore/target")
        await services.versions.restore(user, file_id, version_id)
        return empty(204)
    if request.method == "DELETE":
        await services.versions.forget(user, file_id, version_id)
        return empty(204)
    if request.method == "PROPFIND":
        version = await services.versions.get(user, file_id, version_id)
        return xml_response(
            multistatus(
                [
                    response(
                        f"{base}/{file_id}/{version.id}",
                        [
                            "<d:resourcetype/>",
                            f"<d:getcontentlength>{version.size}</d:getcontentlength>",
                            f"<d:getlastmodified>{http_date(version.mtime)}</d:getlastmodified>",
                        ],
                    )
                ]
            )
        )
    raise MethodNotAllowed(f"{request.method} is not supported here")
