"""Translate the exception tree into DAV-style responses; never a traceback to a client."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from ecrin.core.errors import EcrinError, Unauthorized
from ecrin.dav.xml import XML_CONTENT_TYPE, error_body
from ecrin.http.authentication import CHALLENGE

log = logging.getLogger(__name__)


Dispatch = Callable[[Request], Awaitable[Response]]


async def serve_dav(scope: Scope, receive: Receive, send: Send, dispatch: Dispatch) -> None:
    """Run one DAV request through `dispatch`; errors become DAV error responses."""
    request = Request(scope, receive)
    try:
        response = await dispatch(request)
    except EcrinError as error:
        response = dav_error_response(error, head=request.method == "HEAD")
    except Exception:
        log.exception("unexpected error on %s %s", request.method, request.url.path)
        response = internal_error_response()
    await response(scope, receive, send)


def dav_error_response(error: EcrinError, *, head: bool = False) -> Response:
    headers = {"content-type": XML_CONTENT_TYPE}
    if isinstance(error, Unauthorized):
        headers["www-authenticate"] = CHALLENGE
    body = b"" if head else error_body(error.condition, error.message)
    return Response(body, status_code=error.status, headers=headers)


def internal_error_response() -> Response:
    return Response(
        error_body(None, "internal server error; the server log has the details"),
        status_code=500,
        headers={"content-type": XML_CONTENT_TYPE},
    )
