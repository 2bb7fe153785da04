"""Shared pieces of the virtual DAV collections (versions, trash): multistatus entries."""

from __future__ import annotations

from urllib.parse import quote
from xml.sax.saxutils import escape

from ecrin.dav.xml import NAMESPACE_DECLARATIONS

OK = "<d:status>HTTP/1.1 200 OK</d:status>"


def multistatus(responses: list[str]) -> str:
    return (
        f'<?xml version="1.0" encoding="utf-8"?>\n<d:multistatus {NAMESPACE_DECLARATIONS}>'
        + "".join(responses)
        + "</d:multistatus>"
    )


def response(href: str, props: list[str]) -> str:
    return (
        f"<d:response><d:href>{escape(quote(href))}</d:href>"
        f"<d:propstat><d:prop>{''.join(props)}</d:prop>{OK}</d:propstat></d:response>"
    )


def collection_props() -> list[str]:
    return ["<d:resourcetype><d:collection/></d:resourcetype>"]
