"""The trash over DAV, where Nextcloud clients look for it:

    PROPFIND /remote.php/dav/trashbin/<user>/trash              list deleted items
    GET      /remote.php/dav/trashbin/<user>/trash/<item>       read a deleted file
    MOVE     …/trash/<item>  Destination: …/trashbin/<user>/restore/<item>   restore
    DELETE   …/trash/<item>                                     purge one
    DELETE   …/trash                                            empty the trash
Items are named `<original name>.d<item id>`.
"""

from __future__ import annotations

from xml.sax.saxutils import escape

from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from ecrin.core.errors import BadRequest, MethodNotAllowed, NotFound
from ecrin.core.model import Node, TrashItem, User
from ecrin.dav.live_properties import content_type_of, dav_file_id, http_date
from ecrin.dav.responses import empty, xml_response
from ecrin.dav.special_collections import collection_props, multistatus, response
from ecrin.services.container import Services

PREFIX = "/remote.php/dav/trashbin/"


def item_name(item: TrashItem) -> str:
    return f"{item.original_name}.d{item.id}"


def item_id(name: str) -> int:
    _, sep, number = name.rpartition(".d")
    if not sep or not number.isdigit():
        raise NotFound("no such item in the trash")
    return int(number)


def _item_props(item: TrashItem, node: Node, instance_id: str) -> list[str]:
    props = [
        f"<nc:trashbin-filename>{escape(item.original_name)}</nc:trashbin-filename>",
        f"<nc:trashbin-original-location>{escape(item.original_path)}"
        "</nc:trashbin-original-location>",
        f"<nc:trashbin-deletion-time>{int(item.deleted_at)}</nc:trashbin-deletion-time>",
        f"<d:getlastmodified>{http_date(node.mtime)}</d:getlastmodified>",
        f'<d:getetag>"{node.etag}"</d:getetag>',
        f"<oc:id>{dav_file_id(node, instance_id)}</oc:id><oc:fileid>{node.id}</oc:fileid>",
        f"<oc:size>{node.size}</oc:size>",
    ]
    if node.is_folder:
        props += collection_props()
    else:
        props += [
            "<d:resourcetype/>",
            f"<d:getcontentlength>{node.size}</d:getcontentlength>",
            f"<d:getcontenttype>{escape(content_type_of(node))}</d:getcontenttype>",
        ]
    return props


async def handle(request: Request, services: Services, user: User, rest: list[str]) -> Response:
    """`rest` is what follows /remote.php/dav/trashbin/<user>/, split on '/'."""
    if not rest or rest[0] != "trash":
        if rest and rest[0] == "restore" and request.method == "PROPFIND":
            return xml_response(
                multistatus([response(f"{PREFIX}{user.name}/restore/", collection_props())])
            )
        raise NotFound("no such collection")
    base = f"{PREFIX}{user.name}/trash"
    if len(rest) == 1:
        if request.method == "PROPFIND":
            entries = [response(base + "/", collection_props())]
            if request.headers.get("depth", "1") != "0":
                for item in await services.trash.items(user):
                    _, node = await services.trash.item(user, item.id)
                    entries.append(
                        response(
                            f"{base}/{item_name(item)}",
                            _item_props(item, node, services.instance_id),
                        )
                    )
            return xml_response(multistatus(entries))
        if request.method == "DELETE":
            await services.trash.empty(user)
            return empty(204)
        raise MethodNotAllowed(f"{request.method} is not supported here")
    if len(rest) > 2:
        raise NotFound("open a deleted folder by restoring it")
    item, node = await services.trash.item(user, item_id(rest[1]))
    if request.method == "PROPFIND":
        return xml_response(
            multistatus(
                [
                    response(
                        f"{base}/{item_name(item)}", _item_props(item, node, services.instance_id)
                    )
                ]
            )
        )
    if request.method in ("GET", "HEAD"):
        if node.is_folder or node.blob_id is None:
            return Response(b"", 200, {"content-length": "0"})
        headers = {"content-length": str(node.size), "content-type": content_type_of(node)}
        if request.method == "HEAD":
            return Response(status_code=200, headers=headers)
        return StreamingResponse(services.files.send_blob(node.blob_id), headers=headers)
    if request.method == "MOVE":
        destination = request.headers.get("destination", "")
        if f"/trashbin/{user.name}/restore/" not in destination:
            raise BadRequest("restore by moving an item to …/trashbin/<user>/restore/<item>")
        await services.trash.restore(user, item.id)
        return empty(201)
    if request.method == "DELETE":
        await services.trash.purge(user, item.id)
        return empty(204)
    raise MethodNotAllowed(f"{request.method} is not supported here")
