"""`status.php`, the first thing a Nextcloud client asks, and `index.php/204`.

The version is the Nextcloud release whose client protocol Ecrin speaks: clients switch
features on by version (e.g. share types from 10 on), so it must look like a Nextcloud one.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

COMPATIBLE_VERSION = (28, 0, 0)
PRODUCT_NAME = "Ecrin"


def version_string() -> str:
    return ".".join(str(part) for part in COMPATIBLE_VERSION)


def status_document() -> dict[str, object]:
    return {
        "installed": True,
        "maintenance": False,
        "needsDbUpgrade": False,
        "version": version_string() + ".0",
        "versionstring": version_string(),
        "edition": "",
        "productname": PRODUCT_NAME,
        "extendedSupport": False,
    }


async def status_php(_request: Request) -> Response:
    """No authentication needed (clients send theirs anyway, and it is ignored here)."""
    return JSONResponse(status_document(), headers={"access-control-allow-origin": "*"})


async def no_content(_request: Request) -> Response:
    """`GET /index.php/204`: the desktop client's captive-portal check."""
    return Response(status_code=204)
