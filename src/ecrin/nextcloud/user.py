"""OCS `cloud/user`: who the credentials belong to. Its `id` is the user segment of every
DAV URL the clients build (`/remote.php/dav/files/<id>/`)."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request

from ecrin.core.model import User
from ecrin.nextcloud.context import NextcloudContext

UNLIMITED = -3  # how Nextcloud says "no quota"


def quota(user: User) -> dict[str, Any]:
    if user.quota_bytes is None:
        return {
            "free": UNLIMITED,
            "used": user.used_bytes,
            "total": UNLIMITED,
            "relative": 0,
            "quota": UNLIMITED,
        }
    free = max(0, user.quota_bytes - user.used_bytes)
    relative = round(100 * user.used_bytes / user.quota_bytes, 2) if user.quota_bytes else 100
    return {
        "free": free,
        "used": user.used_bytes,
        "total": user.quota_bytes,
        "relative": relative,
        "quota": user.quota_bytes,
    }


async def handle(request: Request, nc: NextcloudContext) -> dict[str, Any]:
    user = await nc.services.accounts.refresh(await nc.user(request))
    return {
        "id": user.name,
        "enabled": True,
        "display-name": user.display_name,
        "displayname": user.display_name,
        "email": None,
        "quota": quota(user),
    }
