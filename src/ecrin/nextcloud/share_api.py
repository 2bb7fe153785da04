"""The OCS Share API, as Nextcloud clients call it (the desktop app's share dialog):

GET    /ocs/v{1,2}.php/apps/files_sharing/api/v1/shares[?path=…&shared_with_me=true]
POST   /ocs/v{1,2}.php/apps/files_sharing/api/v1/shares   path, shareType, shareWith,
       permissions, password, expireDate (YYYY-MM-DD), publicUpload, label, note
GET|PUT|DELETE …/shares/<id>
GET    …/sharees?search=…                                 who can be shared with
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl

from starlette.requests import Request
from starlette.routing import BaseRoute, Route

from ecrin.core.errors import BadRequest, NotFound
from ecrin.core.model import ShareType, User
from ecrin.core.paths import DavPath
from ecrin.core.permissions import Permission
from ecrin.dav.live_properties import content_type_of
from ecrin.nextcloud.context import NextcloudContext, read_small_body
from ecrin.nextcloud.ocs import ocs_endpoint
from ecrin.services.sharing import ShareRequest, ShareView

BASE = "/apps/files_sharing/api/v1"
PUBLIC_UPLOAD = Permission.READ | Permission.UPDATE | Permission.CREATE | Permission.DELETE


async def _params(request: Request) -> dict[str, str]:
    """Form-encoded or JSON body, then the query string (what clients send varies)."""
    values = dict(request.query_params)
    body = await read_small_body(request)
    if body:
        if request.headers.get("content-type", "").startswith("application/json"):
            try:
                parsed = json.loads(body)
            except ValueError as exc:
                raise BadRequest("the body is not valid JSON") from exc
            if not isinstance(parsed, dict):
                raise BadRequest("the body must be a JSON object")
            values.update({k: str(v) for k, v in parsed.items() if v is not None})
        else:
            values.update(parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True))
    return values


def _int(values: dict[str, str], name: str) -> int | None:
    raw = values.get(name)
    if raw is None or raw == "":
        return None
    try:
        return int(raw)
    except ValueError as exc:
        raise BadRequest(f"{name} must be a number") from exc


def _expiry(raw: str | None) -> float | None:
    """Nextcloud sends a date (YYYY-MM-DD): the link lives until the end of that day, UTC."""
    if not raw:
        return None
    try:
        day = datetime.strptime(raw.strip()[:10], "%Y-%m-%d").replace(tzinfo=UTC)
    except ValueError as exc:
        raise BadRequest("expireDate must look like YYYY-MM-DD") from exc
    return day.timestamp() + 86400 - 1


def _describe(view: ShareView, nc: NextcloudContext, request: Request) -> dict[str, Any]:
    share, node = view.share, view.node
    expiration = None
    if share.expires_at is not None:
        expiration = datetime.fromtimestamp(share.expires_at, UTC).strftime("%Y-%m-%d 00:00:00")
    data: dict[str, Any] = {
        "id": str(share.id),
        "share_type": int(share.share_type),
        "uid_owner": view.sharer_name,
        "displayname_owner": view.sharer_name,
        "uid_file_owner": view.owner_name,
        "displayname_file_owner": view.owner_name,
        "permissions": share.permissions,
        "can_edit": True,
        "can_delete": True,
        "stime": int(share.created_at),
        "parent": share.parent_share_id,
        "expiration": expiration,
        "token": share.token,
        "note": share.note,
        "label": share.label,
        "path": view.path,
        "item_type": "folder" if node.is_folder else "file",
        "mimetype": "httpd/unix-directory" if node.is_folder else content_type_of(node),
        "has_preview": False,
        "item_source": node.id,
        "file_source": node.id,
        "file_parent": node.parent_id,
        "file_target": "/" + node.name,
        "share_with": view.recipient_name,
        "share_with_displayname": view.recipient_name,
        "mail_send": 0,
        "hide_download": 0,
        "password": None,
    }
    if share.share_type is ShareType.LINK and share.token:
        data["url"] = f"{nc.server_url(request)}/s/{share.token}"
        data["share_with"] = "***redacted***" if share.password_hash else None
    return data


async def list_shares(request: Request, nc: NextcloudContext) -> list[dict[str, Any]]:
    user = await nc.user(request)
    sharing = nc.services.sharing
    if request.query_params.get("shared_with_me", "").lower() == "true":
        shares = await sharing.received(user)
    else:
        path = request.query_params.get("path")
        shares = await sharing.created_by(user, DavPath.parse(path) if path else None)
    return [_describe(v, nc, request) for v in await sharing.describe(user, shares)]


async def create_share(request: Request, nc: NextcloudContext) -> dict[str, Any]:
    user = await nc.user(request)
    values = await _params(request)
    path = values.get("path")
    share_type = _int(values, "shareType")
    if not path or share_type is None:
        raise BadRequest("path and shareType are required")
    try:
        kind = ShareType(share_type)
    except ValueError as exc:
        raise BadRequest("shareType must be 0 (user), 1 (group) or 3 (public link)") from exc
    permissions = _int(values, "permissions")
    if kind is ShareType.LINK and values.get("publicUpload", "").lower() == "true":
        permissions = int(PUBLIC_UPLOAD)
    share = await nc.services.sharing.create(
        user,
        DavPath.parse(path),
        ShareRequest(
            kind,
            permissions=permissions,
            share_with=values.get("shareWith"),
            password=values.get("password") or None,
            expires_at=_expiry(values.get("expireDate")),
            label=values.get("label", ""),
            note=values.get("note", ""),
        ),
    )
    return await _one(nc, request, user, share.id)


async def _one(nc: NextcloudContext, request: Request, user: User, share_id: int) -> dict[str, Any]:
    share = await nc.services.sharing.visible(user, share_id)
    views = await nc.services.sharing.describe(user, [share])
    if not views:
        raise NotFound("no such share")
    return _describe(views[0], nc, request)


def _share_id(request: Request) -> int:
    raw = request.path_params["share_id"]
    if not raw.isdigit():
        raise NotFound("no such share")
    return int(raw)


async def get_share(request: Request, nc: NextcloudContext) -> list[dict[str, Any]]:
    user = await nc.user(request)
    return [await _one(nc, request, user, _share_id(request))]


async def update_share(request: Request, nc: NextcloudContext) -> dict[str, Any]:
    user = await nc.user(request)
    values = await _params(request)
    permissions = _int(values, "permissions")
    if values.get("publicUpload", "").lower() == "true":
        permissions = int(PUBLIC_UPLOAD)
    elif values.get("publicUpload", "").lower() == "false":
        permissions = int(Permission.READ)
    share = await nc.services.sharing.update(
        user,
        _share_id(request),
        permissions=permissions,
        password=values.get("password") or None,
        expires_at=_expiry(values.get("expireDate")),
        clear_expiry="expireDate" in values and not values["expireDate"],
        label=values.get("label"),
        note=values.get("note"),
    )
    return await _one(nc, request, user, share.id)


async def delete_share(request: Request, nc: NextcloudContext) -> list[Any]:
    user = await nc.user(request)
    await nc.services.sharing.delete(user, _share_id(request))
    return []


async def sharees(request: Request, nc: NextcloudContext) -> dict[str, Any]:
    user = await nc.user(request)
    search = request.query_params.get("search", "").strip().lower()[:100]
    users = [
        u
        for u in await nc.services.accounts.list_users()
        if u.id != user.id and (search in u.name.lower() or search in u.display_name.lower())
    ]
    groups = [
        g
        for g in await nc.services.groups.list_groups()
        if search in g.name.lower() or search in g.display_name.lower()
    ]
    user_entries = [_sharee(u.display_name, ShareType.USER, u.name) for u in users[:25]]
    group_entries = [_sharee(g.display_name, ShareType.GROUP, g.name) for g in groups[:25]]
    exact_users = [
        _sharee(u.display_name, ShareType.USER, u.name) for u in users if u.name.lower() == search
    ]
    exact_groups = [
        _sharee(g.display_name, ShareType.GROUP, g.name) for g in groups if g.name.lower() == search
    ]
    return {
        "exact": {"users": exact_users, "groups": exact_groups, "remotes": []},
        "users": user_entries,
        "groups": group_entries,
        "remotes": [],
    }


def _sharee(label: str, kind: ShareType, name: str) -> dict[str, Any]:
    return {"label": label, "value": {"shareType": int(kind), "shareWith": name}}


def routes(nc: NextcloudContext) -> list[BaseRoute]:
    found: list[BaseRoute] = []
    for version in ("v1", "v2"):
        base = f"/ocs/{version}.php{BASE}"
        found += [
            Route(f"{base}/shares", ocs_endpoint(list_shares, nc), methods=["GET"]),
            Route(f"{base}/shares", ocs_endpoint(create_share, nc), methods=["POST"]),
            Route(f"{base}/shares/{{share_id}}", ocs_endpoint(get_share, nc), methods=["GET"]),
            Route(f"{base}/shares/{{share_id}}", ocs_endpoint(update_share, nc), methods=["PUT"]),
            Route(
                f"{base}/shares/{{share_id}}", ocs_endpoint(delete_share, nc), methods=["DELETE"]
            ),
            Route(f"{base}/sharees", ocs_endpoint(sharees, nc), methods=["GET"]),
        ]
    return found
