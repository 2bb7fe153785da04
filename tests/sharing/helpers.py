"""Helpers for sharing tests: OCS calls and link access."""

from __future__ import annotations

from typing import Any

import httpx

from tests.support import Dav

OCS = "/ocs/v2.php/apps/files_sharing/api/v1"


async def share(
    dav: Dav, path: str, share_type: int, status: int = 200, **fields: Any
) -> dict[str, Any]:
    data = {"path": path, "shareType": str(share_type), **{k: str(v) for k, v in fields.items()}}
    response = await dav.client.post(
        f"{OCS}/shares?format=json",
        data=data,
        auth=dav.credentials,
        headers={"OCS-APIREQUEST": "true"},
    )
    assert response.status_code == status, response.text
    result: dict[str, Any] = response.json()["ocs"]["data"]
    return result


async def ocs(
    dav: Dav | None,
    method: str,
    url: str,
    status: int = 200,
    client: httpx.AsyncClient | None = None,
    **data: Any,
) -> Any:
    http = dav.client if dav else client
    assert http is not None
    response = await http.request(
        method,
        f"{OCS}{url}",
        params={"format": "json"},
        data={k: str(v) for k, v in data.items()} or None,
        auth=dav.auth if dav else None,
        headers={"OCS-APIREQUEST": "true"},
    )
    assert response.status_code == status, response.text
    return response.json()["ocs"]["data"]


def link_dav(client: httpx.AsyncClient, token: str, password: str = "") -> Dav:
    """A DAV helper speaking as a link visitor (Basic password = the link's password)."""
    return Dav(client, "anonymous", password, prefix=f"/public.php/dav/files/{token}")
