"""Small response builders shared by the verb modules."""

from __future__ import annotations

from starlette.responses import Response

from ecrin.dav.xml import XML_CONTENT_TYPE


def empty(status: int, headers: dict[str, str] | None = None) -> Response:
    return Response(status_code=status, headers=headers)


def xml_response(
    body: str | bytes, status: int = 207, headers: dict[str, str] | None = None
) -> Response:
    data = body.encode() if isinstance(body, str) else body
    return Response(
        data,
        status_code=status,
        media_type=None,
        headers={"content-type": XML_CONTENT_TYPE, **(headers or {})},
    )
