"""The WebDAV endpoint: URL mapping, authentication, dispatch to one module per verb.

Served at /remote.php/dav/files/<user>/ (Nextcloud clients), /dav/files/<user>/ (native)
and /remote.php/webdav/ (legacy: the caller's own files).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping

from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from ecrin.core.errors import MethodNotAllowed, NotFound, Unauthorized
from ecrin.core.model import User
from ecrin.core.paths import DavPath, decode_url_path
from ecrin.dav import (
    copymove,
    delete,
    get,
    lock,
    mkcol,
    options,
    propfind,
    proppatch,
    put,
    trashbin,
    versions,
)
from ecrin.dav.context import DavContext
from ecrin.dav.errors import serve_dav
from ecrin.dav.property_values import ValueCaches
from ecrin.http.authentication import authenticate, basic_credentials
from ecrin.services.container import Services
from ecrin.services.sharing import LINK_COOKIE
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
PUBLIC_WEBDAV = "/public.php/webdav"  # Basic auth: the link token as user, its password
PUBLIC_FILES = "/public.php/dav/files/"  # /public.php/dav/files/<token>/…
PUBLIC_PREFIXES = (PUBLIC_WEBDAV, PUBLIC_FILES)
NO_LINK_METHODS = frozenset({"LOCK", "UNLOCK", "PROPPATCH"})

SpecialCollection = Callable[[Request, Services, User, list[str]], Awaitable[Response]]
SPECIAL_COLLECTIONS: dict[str, SpecialCollection] = {
    versions.PREFIX: versions.handle,
    trashbin.PREFIX: trashbin.handle,
}
PREFIXES = (*USER_PREFIXES, LEGACY_PREFIX, *PUBLIC_PREFIXES, *SPECIAL_COLLECTIONS)


def split_public_url(request: Request, raw_path: str) -> tuple[str, str, str | None, str]:
    """-> (base, link token, password or None, rest of the raw path)."""
    credentials = basic_credentials(request)
    if raw_path.startswith(PUBLIC_FILES):
        token_raw, _, rest = raw_path[len(PUBLIC_FILES) :].partition("/")
        password = credentials[1] if credentials else None
        return PUBLIC_FILES + token_raw, decode_url_path(token_raw), password, rest
    if raw_path != PUBLIC_WEBDAV and not raw_path.startswith(PUBLIC_WEBDAV + "/"):
        raise NotFound("not a WebDAV URL")
    if credentials is None:
        raise Unauthorized("give the link's token as user name")
    return PUBLIC_WEBDAV, credentials[0], credentials[1] or None, raw_path[len(PUBLIC_WEBDAV) :]


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
    def __init__(
        self,
        services: Services,
        settings: Settings,
        extra_handlers: Mapping[str, Handler] | None = None,
    ) -> None:
        self.services = services
        self.settings = settings
        # Methods other adapters add on the same URLs (Nextcloud's PATCH).
        self.handlers = {**HANDLERS, **(extra_handlers or {})}
        # Dates and content types written once for all of this app's requests (bounded memos,
        # used by the event loop's thread only).
        self.values = ValueCaches()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await serve_dav(scope, receive, send, self._dispatch)

    async def _dispatch(self, request: Request) -> Response:
        raw_path = request.scope.get("raw_path", b"").decode("latin-1").partition("?")[0]
        for prefix, collection in SPECIAL_COLLECTIONS.items():
            if raw_path.startswith(prefix):
                return await self._special(request, raw_path[len(prefix) :], collection)
        if raw_path.startswith(PUBLIC_PREFIXES):
            base, token, password, rest = split_public_url(request, raw_path)
            client = request.client.host if request.client else ""
            proof = request.cookies.get(LINK_COOKIE)
            principal = await self.services.sharing.open_link(token, password, client, proof)
            return await self._files(request, principal, base, rest)
        base, user_name, rest = split_url(raw_path)
        principal = await authenticate(request, self.services.accounts)
        if user_name is not None and user_name != principal.name:
            # Another user's files: say nothing about whether they exist.
            raise NotFound("no such file or folder")
        return await self._files(request, principal, base, rest)

    async def _special(
        self, request: Request, rest: str, collection: SpecialCollection
    ) -> Response:
        user_raw, _, inner = rest.partition("/")
        principal = await authenticate(request, self.services.accounts)
        if decode_url_path(user_raw) != principal.name:
            raise NotFound("no such file or folder")
        parts = [decode_url_path(p) for p in inner.split("/") if p]
        return await collection(request, self.services, principal, parts)

    async def _files(self, request: Request, principal: User, base: str, rest: str) -> Response:
        handler = self.handlers.get(request.method)
        if handler is None or (principal.is_link_visitor and request.method in NO_LINK_METHODS):
            raise MethodNotAllowed(f"{request.method} is not supported here")
        ctx = DavContext(
            request=request,
            services=self.services,
            settings=self.settings,
            principal=principal,
            home=principal,
            base=decode_url_path(base),
            path=DavPath.from_url_path(rest),
            values=self.values,
        )
        return await handler(ctx)
