"""OCS `cloud/capabilities`: what the clients may use.

`dav.chunking` "1.0" makes the desktop clients upload big files in chunks under
`remote.php/dav/uploads/` (see `nextcloud/uploads.py`). Bulk upload is not advertised, so
clients never use it. Checksums are SHA1, as the clients compute by default.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request

from ecrin.nextcloud.context import NextcloudContext
from ecrin.nextcloud.status import COMPATIBLE_VERSION, version_string


def capabilities() -> dict[str, Any]:
    major, minor, micro = COMPATIBLE_VERSION
    return {
        "version": {
            "major": major,
            "minor": minor,
            "micro": micro,
            "string": version_string(),
            "edition": "",
            "extendedSupport": False,
        },
        "capabilities": {
            "core": {"pollinterval": 60, "webdav-root": "remote.php/webdav"},
            "dav": {"chunking": "1.0"},
            "files": {
                "bigfilechunking": True,
                "blacklisted_files": [".htaccess"],
                "undelete": False,
                "versioning": False,
            },
            "checksums": {"supportedTypes": ["SHA1"], "preferredUploadType": "SHA1"},
            "files_sharing": {"api_enabled": False},
        },
    }


async def handle(request: Request, nc: NextcloudContext) -> dict[str, Any]:
    """Public, like Nextcloud's; but wrong credentials are still a 401 (clients rely on it)."""
    await nc.user_if_any(request)
    return capabilities()
