"""Translate the exception tree into DAV-style responses; never a traceback to a client."""

from __future__ import annotations

import logging

from starlette.responses import Response

from ecrin.core.errors import EcrinError, Unauthorized
from ecrin.dav.xml import XML_CONTENT_TYPE, error_body
from ecrin.http.authentication import CHALLENGE

log = logging.getLogger(__name__)


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
