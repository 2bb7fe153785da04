"""The Nextcloud-compatible endpoints, as routes for the app's router.

Besides these, `EcrinApp` sends `/remote.php/dav/uploads/` to `UploadsApp` and the DAV
adapter gets `PATCH` (checksum recalculation) through `DAV_HANDLERS`.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from ecrin.core.errors import EcrinError
from ecrin.dav.app import Handler
from ecrin.nextcloud import (
    app_passwords,
    capabilities,
    checksum_update,
    login_flow,
    public_page,
    share_api,
    status,
    user,
)
from ecrin.nextcloud.context import NextcloudContext
from ecrin.nextcloud.ocs import OcsHandler, ocs_endpoint, ocs_not_found
from ecrin.services.container import Services
from ecrin.settings import Settings

log = logging.getLogger(__name__)

DAV_HANDLERS: dict[str, Handler] = {"PATCH": checksum_update.handle}

OCS_ENDPOINTS: tuple[tuple[str, str, OcsHandler], ...] = (
    ("GET", "/cloud/capabilities", capabilities.handle),
    ("GET", "/cloud/user", user.handle),
    ("GET", "/core/getapppassword", app_passwords.get_app_password),
    ("DELETE", "/core/apppassword", app_passwords.delete_app_password),
)

PageHandler = Callable[[Request, NextcloudContext], Awaitable[Response]]


def routes(services: Services, settings: Settings) -> list[BaseRoute]:
    nc = NextcloudContext(services, settings)
    found: list[BaseRoute] = [
        Route("/status.php", status.status_php, methods=["GET"]),
        Route("/index.php/204", status.no_content, methods=["GET"]),
    ]
    for method, path, handler in OCS_ENDPOINTS:
        for version in ("v1", "v2"):
            found.append(
                Route(f"/ocs/{version}.php{path}", ocs_endpoint(handler, nc), methods=[method])
            )
    found += share_api.routes(nc) + public_page.routes(nc)
    for version in ("v1", "v2"):
        found.append(
            Route(
                f"/ocs/{version}.php/{{rest:path}}",
                ocs_not_found,
                methods=["GET", "POST", "PUT", "DELETE"],
            )
        )
    for prefix in ("", "/index.php"):
        found += [
            Route(f"{prefix}/login/v2", _page(login_flow.start, nc), methods=["POST"]),
            Route(f"{prefix}/login/v2/poll", _page(login_flow.poll, nc), methods=["POST"]),
            Route(
                f"{prefix}/login/v2/flow/{{token}}",
                _page(login_flow.page, nc),
                methods=["GET", "POST"],
            ),
        ]
    return found


def _page(handler: PageHandler, nc: NextcloudContext) -> Callable[[Request], Awaitable[Response]]:
    """A plain endpoint: errors become a short JSON body with their status, never a trace."""

    async def endpoint(request: Request) -> Response:
        try:
            return await handler(request, nc)
        except EcrinError as error:
            return JSONResponse({"message": error.message}, status_code=error.status)
        except Exception:
            log.exception("unexpected error on %s %s", request.method, request.url.path)
            return JSONResponse({"message": "internal server error"}, status_code=500)

    return endpoint
