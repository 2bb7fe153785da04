"""The OCS envelope: `{"ocs": {"meta": …, "data": …}}` in JSON or XML, v1 and v2.

v1 (`/ocs/v1.php/…`) answers HTTP 200 with `statuscode` 100 on success and an OCS code on
failure (997 unauthorised, 998 not found); only an authentication failure is an HTTP 401.
v2 (`/ocs/v2.php/…`) answers with the real HTTP status, repeated in `statuscode` (200 on
success). The format is JSON with `?format=json` or an `Accept: application/json`, else XML.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Awaitable, Callable
from typing import Any

from lxml import etree
from starlette.requests import Request
from starlette.responses import Response

from ecrin.core.errors import EcrinError, NotFound, Unauthorized
from ecrin.http.authentication import CHALLENGE
from ecrin.nextcloud.context import NextcloudContext

log = logging.getLogger(__name__)

_XML_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9._-]*$")
_NOT_XML_CHARS = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")
_V1_CODES = {401: 997, 404: 998, 500: 996}

OcsHandler = Callable[[Request, NextcloudContext], Awaitable[Any]]


def ocs_endpoint(
    handler: OcsHandler, nc: NextcloudContext
) -> Callable[[Request], Awaitable[Response]]:
    """A Starlette endpoint that wraps what `handler` returns, or the error it raises."""

    async def endpoint(request: Request) -> Response:
        try:
            return ocs_response(request, await handler(request, nc))
        except EcrinError as error:
            return ocs_error(request, error)
        except Exception:
            log.exception("unexpected error on %s %s", request.method, request.url.path)
            return ocs_error(request, EcrinError("internal server error"))

    return endpoint


def version_of(request: Request) -> int:
    return 1 if request.url.path.startswith("/ocs/v1.php") else 2


def wants_json(request: Request) -> bool:
    requested = request.query_params.get("format", "").lower()
    if requested in ("json", "xml"):
        return requested == "json"
    return "application/json" in request.headers.get("accept", "").lower()


def ocs_response(request: Request, data: Any) -> Response:
    version = version_of(request)
    return _envelope(request, data, 200, 100 if version == 1 else 200, "OK", "ok")


def ocs_error(request: Request, error: EcrinError) -> Response:
    version = version_of(request)
    if version == 1:
        http_status = 401 if isinstance(error, Unauthorized) else 200
        code = _V1_CODES.get(error.status, error.status)
    else:
        http_status = code = error.status
    response = _envelope(request, [], http_status, code, error.message, "failure")
    if isinstance(error, Unauthorized):
        response.headers["www-authenticate"] = CHALLENGE
    return response


async def ocs_not_found(request: Request) -> Response:
    return ocs_error(request, NotFound("no such OCS endpoint"))


def _envelope(
    request: Request, data: Any, http_status: int, code: int, message: str, status: str
) -> Response:
    meta = {
        "status": status,
        "statuscode": code,
        "message": message,
        "totalitems": "",
        "itemsperpage": "",
    }
    if wants_json(request):
        body = json.dumps({"ocs": {"meta": meta, "data": data}}, ensure_ascii=False)
        return Response(body, http_status, media_type="application/json; charset=utf-8")
    root = etree.Element("ocs")
    _add_xml(etree.SubElement(root, "meta"), meta)
    _add_xml(etree.SubElement(root, "data"), data)
    xml = etree.tostring(root, xml_declaration=True, encoding="UTF-8")
    return Response(xml, http_status, media_type="text/xml; charset=UTF-8")


def _add_xml(parent: etree._Element, value: Any) -> None:
    """Nextcloud's XML mapping: dict keys become elements, list items `<element>`."""
    if isinstance(value, dict):
        for key, item in value.items():
            name = str(key) if _XML_NAME.match(str(key)) else "element"
            _add_xml(etree.SubElement(parent, name), item)
    elif isinstance(value, list | tuple):
        for item in value:
            _add_xml(etree.SubElement(parent, "element"), item)
    elif isinstance(value, bool):
        parent.text = "1" if value else ""
    elif value is not None:
        parent.text = _NOT_XML_CHARS.sub("", str(value))
