"""Small response builders shared by the verb modules."""

from __future__ import annotations

from starlette.responses import Response

from ecrin.dav.xml import XML_CONTENT_TYPE


class WholeBody(Response):
    """A body at hand, whose headers (names in lower case) already give its length and type:
    Starlette's Response without looking for them again (a GET whose body came in one piece)."""

    def __init__(self, body: bytes | memoryview, status: int, headers: dict[str, str]) -> None:
        self.status_code = status
        self.background = None
        self.body = body
        self.raw_headers = [(k.encode("latin-1"), v.encode("latin-1")) for k, v in headers.items()]


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
