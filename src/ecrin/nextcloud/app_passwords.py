"""OCS `core/getapppassword` and `core/apppassword`: trade a password for an app password,
and revoke the app password in use (what clients do when an account is removed)."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request

from ecrin.core.errors import Forbidden
from ecrin.http.authentication import basic_credentials
from ecrin.nextcloud.context import NextcloudContext

MAX_LABEL = 255


async def get_app_password(request: Request, nc: NextcloudContext) -> dict[str, Any]:
    """Only with the real password: an app password cannot mint another one (403)."""
    user = await nc.user(request)
    credentials = basic_credentials(request)
    assert credentials is not None  # nc.user succeeded
    if await nc.services.accounts.app_password_in_use(user, credentials[1]) is not None:
        raise Forbidden("you are already using an app password")
    label = (request.headers.get("user-agent") or "app password")[:MAX_LABEL]
    _, token = await nc.services.accounts.create_app_password(user.name, label)
    return {"apppassword": token}


async def delete_app_password(request: Request, nc: NextcloudContext) -> list[Any]:
    user = await nc.user(request)
    credentials = basic_credentials(request)
    assert credentials is not None
    record = await nc.services.accounts.app_password_in_use(user, credentials[1])
    if record is None:
        raise Forbidden("these credentials are not an app password")
    await nc.services.accounts.revoke_app_password(user.name, record.id)
    return []
