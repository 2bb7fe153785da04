"""The WebDAV endpoint: URL mapping, authentication, dispatch to one module per verb.

Served at /remote.php/dav/files/<user>/ (Nextcloud clients), /dav/files/<user>/ (native)
and /remote.php/webdav/ (legacy: the caller's own files).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from ecrin.core.errors import EcrinError, MethodNotAllowed, NotFound
from ecrin.core.paths import DavPath, decode_url_path
from ecrin.dav import copymove, delete, get, lock, mkcol, options, propfind, proppatch, put
from ecrin.dav.context import DavContext
from ecrin.dav.errors import dav_error_response, internal_error_response
from ecrin.http.authentication import authenticate
from ecrin.services.container import Services
from ecrin.settings import Settings

log = logging.getLogger(__name__)

Handler = Callable[[DavContext], Awaitable[Response]]

HANDLERS: dict[str, Handler] = {
    "OPTIONS": options.handle,
    "PROPFIND": propfind.handle,
    "PROPPATCH": proppatch.handle,
    "MKCOL": mkcol.handle,
    "GET": get.handle,
    "HEAD": get.handle,
    "PUT": put.handle,
    "DELETE": delete.handle,
    "COPY": copymove.handle_copy,
    "MOVE": copymove.handle_move,
    "LOCK": lock.handle_lock,
    "UNLOCK": lock.handle_unlock,
}

USER_PREFIXES = ("/remote.php/dav/files/", "/dav/files/")
LEGACY_PREFIX = "/remote.php/webdav"
PREFIXES = (*USER_PREFIXES, LEGACY_PREFIX)


def split_url(raw_path: str) -> tuple[str, str | None, str]:
    """-> (base, user name or None for the legacy root, the rest of the raw path)."""
    for prefix in USER_PREFIXES:
        if raw_path.startswith(prefix):
            user_raw, _, rest = raw_path[len(prefix) :].partition("/")
            user = decode_url_path(user_raw)
            if not user:
                raise NotFound("no user in the URL")
            return prefix + user_raw, user, rest
    if raw_path == LEGACY_PREFIX or raw_path.startswith(LEGACY_PREFIX + "/"):
        return LEGACY_PREFIX, None, raw_path[len(LEGACY_PREFIX) :]
    raise NotFound("not a WebDAV URL")


class DavApp:
    def __init__(self, services: Services, settings: Settings) -> None:
        self.services = services
        self.settings = settings

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        request = Request(scope, receive)
        response = await self.respond(request)
        await response(scope, receive, send)

    async def respond(self, request: Request) -> Response:
        try:
            return await self._dispatch(request)
        except EcrinError as error:
            return dav_error_response(error, head=request.method == "HEAD")
        except Exception:
            log.exception("unexpected error on %s %s", request.method, request.url.path)
            return internal_error_response()

    async def _dispatch(self, request: Request) -> Response:
        raw_path = request.scope.get("raw_path", b"").decode("latin-1").partition("?")[0]
        base, user_name, rest = split_url(raw_path)
        principal = await authenticate(request, self.services.accounts)
        if user_name is not None and user_name != principal.name:
            # Another user's files: say nothing about whether they exist.
            raise NotFound("no such file or folder")
        handler = HANDLERS.get(request.method)
        if handler is None:
            raise MethodNotAllowed(f"{request.method} is not supported here")
        ctx = DavContext(
            request=request,
            services=self.services,
            settings=self.settings,
            principal=principal,
            home=principal,
            base=decode_url_path(base),
            path=DavPath.from_url_path(rest),
        )
        return await handler(ctx)
