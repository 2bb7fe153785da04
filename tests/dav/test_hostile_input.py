"""Hostile input gets a clear 4xx with an XML error body: never a traceback, never an escape.

Paths are validated after percent-decoding (exactly once) and normalisation, so no
spelling of `..` leaves the caller's home. Request paths are sent raw, straight to the ASGI
app, because HTTP clients (httpx included) remove literal dot segments before sending.
"""

from __future__ import annotations

import asyncio
import base64
import logging
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote

import pytest
from lxml import etree

from ecrin.app import EcrinApp
from tests.support import NS, PASSWORD, Dav, hrefs

HOME = b"/remote.php/dav/files/alice/"


@dataclass(frozen=True)
class RawResponse:
    status: int
    headers: dict[str, str]
    body: bytes


async def raw_request(
    app: EcrinApp,
    method: str,
    raw_path: bytes,
    *,
    headers: dict[str, str] | None = None,
    body: bytes = b"",
    user: str = "alice",
) -> RawResponse:
    """One request with the path bytes exactly as given (no client-side normalisation)."""
    credentials = base64.b64encode(f"{user}:{PASSWORD}".encode()).decode()
    all_headers = {"host": "testserver", "authorization": f"Basic {credentials}"}
    all_headers |= {k.lower(): v for k, v in (headers or {}).items()}
    if body:
        all_headers["content-length"] = str(len(body))
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": unquote(raw_path.decode("latin-1"), errors="replace"),
        "raw_path": raw_path,
        "query_string": b"",
        "root_path": "",
        "headers": [(k.encode(), v.encode()) for k, v in all_headers.items()],
        "client": ("127.0.0.1", 50000),
        "server": ("testserver", 80),
    }
    pending = [{"type": "http.request", "body": body, "more_body": False}]
    done = asyncio.Event()
    sent: list[dict[str, object]] = []

    async def receive() -> dict[str, object]:
        if pending:
            return pending.pop()
        await done.wait()
        return {"type": "http.disconnect"}

    async def send(message: dict[str, object]) -> None:
        sent.append(message)
        if message["type"] == "http.response.body" and not message.get("more_body"):
            done.set()

    await app(scope, receive, send)  # type: ignore[arg-type]
    start = next(m for m in sent if m["type"] == "http.response.start")
    raw_headers = start["headers"]
    assert isinstance(raw_headers, list)
    return RawResponse(
        status=int(str(start["status"])),
        headers={k.decode().lower(): v.decode() for k, v in raw_headers},
        body=b"".join(
            bytes(m.get("body", b""))  # type: ignore[call-overload]
            for m in sent
            if m["type"] == "http.response.body"
        ),
    )


def assert_clear_error(status: int, headers: dict[str, str], body: bytes, expected: int) -> None:
    """The expected status, an RFC 4918 XML error body with a message, no traceback."""
    assert status == expected, f"{status} != {expected}: {body[:500]!r}"
    assert headers["content-type"].startswith("application/xml")
    root = etree.fromstring(body)
    assert root.tag == "{DAV:}error"
    message = root.findtext("{http://sabredav.org/ns}message")
    assert message and "Traceback" not in message and "internal" not in message


@pytest.fixture(autouse=True)
def _no_unexpected_errors(caplog: pytest.LogCaptureFixture) -> Iterator[None]:
    """Bad input is the client's fault: the server must not log an unexpected error."""
    caplog.set_level(logging.WARNING)
    yield
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert not errors, errors


@pytest.fixture
async def two_homes(alice: Dav, bob: Dav) -> tuple[Dav, Dav]:
    await alice.mkcol("/sub")
    await alice.put("/a.txt", b"alice's a", status=201)
    await bob.put("/x", b"bob's x", status=201)
    return alice, bob


async def _state(alice: Dav, bob: Dav) -> tuple[list[str], list[str], bytes, bytes]:
    return (
        hrefs(await alice.propfind("/", depth="1")),
        hrefs(await bob.propfind("/", depth="1")),
        (await alice.get("/a.txt")).content,
        (await bob.get("/x")).content,
    )


TRAVERSALS = [
    b"../bob/x",
    b"sub/../../bob/x",
    b"./a.txt",
    b"%2e%2e/bob/x",
    b"%2E%2E/bob/x",
    b".%2e/bob/x",
    b"..%2fbob%2fx",
    b"sub/..%2f..%2fbob%2fx",
    b"sub%2f..%2f..%2fbob%2fx",
    b"..\\bob\\x",
    b"%5c..%5cbob%5cx",
    b"a%5cb",
    b"a%00b",
    b"x%00/../../bob/x",
    b"a%01b",
    b"a%0ab",
    b"a%0d%0aSet-Cookie:%20x",
    b"a%1bb",
    b"a%7fb",
    b"%c0%ae%c0%ae/bob/x",
    b"%c0%ae%c0%ae%c0%afbob",
    b"%e0%80%ae%e0%80%ae/bob/x",
    b"%ed%a0%80",
    b"%ff%fe",
    b"%c0%80",
]


@pytest.mark.parametrize("method", ["GET", "PUT", "MKCOL", "PROPFIND", "DELETE", "MOVE"])
async def test_path_traversal_and_bad_bytes_are_400(
    app: EcrinApp, two_homes: tuple[Dav, Dav], method: str
) -> None:
    alice, bob = two_homes
    before = await _state(alice, bob)
    for path in TRAVERSALS:
        response = await raw_request(
            app,
            method,
            HOME + path,
            body=b"evil" if method == "PUT" else b"",
            headers={"Destination": "/remote.php/dav/files/alice/moved", "Depth": "0"},
        )
        assert_clear_error(response.status, response.headers, response.body, 400)
    assert await _state(alice, bob) == before


async def test_a_crafted_user_segment_never_reaches_another_home(
    app: EcrinApp, two_homes: tuple[Dav, Dav]
) -> None:
    alice, bob = two_homes
    before = await _state(alice, bob)
    for raw in (
        b"/remote.php/dav/files/alice%2f..%2fbob/x",
        b"/remote.php/dav/files/..%2fbob/x",
        b"/remote.php/dav/files/%2e%2e/bob/x",
        b"/remote.php/dav/files/bob%00/x",
        b"/remote.php/dav/files/BOB/x",
        b"/remote.php/dav/files/alice/../bob/x",
        b"/remote.php/webdav/../dav/files/bob/x",
    ):
        for method in ("GET", "PUT", "DELETE"):
            response = await raw_request(app, method, raw, body=b"evil" if method == "PUT" else b"")
            assert response.status in (400, 404), (raw, method, response.status)
            assert_clear_error(response.status, response.headers, response.body, response.status)
    assert await _state(alice, bob) == before


async def test_percent_decoding_happens_exactly_once(
    app: EcrinApp, two_homes: tuple[Dav, Dav]
) -> None:
    """`%252e%252e%252f` decodes to the literal name `%2e%2e%2f…`, a file in alice's home."""
    alice, bob = two_homes
    bob_before = hrefs(await bob.propfind("/", depth="1"))
    raw = HOME + b"%252e%252e%252fbob%252fx"
    created = await raw_request(app, "PUT", raw, body=b"harmless")
    assert created.status == 201
    assert hrefs(await alice.propfind("/", depth="1")) == [
        "/remote.php/dav/files/alice/",
        "/remote.php/dav/files/alice/%252e%252e%252fbob%252fx",
        "/remote.php/dav/files/alice/a.txt",
        "/remote.php/dav/files/alice/sub/",
    ]
    assert (await alice.get("/%2e%2e%2fbob%2fx")).content == b"harmless"
    assert (await raw_request(app, "GET", raw)).body == b"harmless"
    assert hrefs(await bob.propfind("/", depth="1")) == bob_before
    assert (await bob.get("/x")).content == b"bob's x"


DESTINATIONS: list[tuple[str, int]] = [
    ("http://evil.example/remote.php/dav/files/alice/b.txt", 403),
    ("https://evil.example:8443/remote.php/dav/files/alice/b.txt", 403),
    ("ftp://testserver/remote.php/dav/files/alice/b.txt", 400),
    ("file:///remote.php/dav/files/alice/b.txt", 400),
    ("//evil.example/remote.php/dav/files/alice/b.txt", 400),
    ("/remote.php/dav/files/bob/b.txt", 403),
    ("/remote.php/dav/files/alicex/b.txt", 403),
    ("/remote.php/dav/files/", 403),
    ("/elsewhere/b.txt", 403),
    ("/remote.php/dav/files/alice/../bob/b.txt", 400),
    ("/remote.php/dav/files/alice/%2e%2e/bob/b.txt", 400),
    ("/remote.php/dav/files/alice/..%2fbob%2fb.txt", 400),
    ("/remote.php/dav/files/alice%2f..%2fbob/b.txt", 400),
    ("/remote.php/dav/files/alice/b%00.txt", 400),
    ("/remote.php/dav/files/alice/%c0%ae%c0%ae/bob/b.txt", 400),
    ("/remote.php/dav/files/alice/b%5c..%5c.txt", 400),
    ("http://testserver/remote.php/dav/files/alice/sub/../../bob/b.txt", 400),
]


@pytest.mark.parametrize("method", ["MOVE", "COPY"])
async def test_destination_outside_the_home_or_on_another_host_is_refused(
    two_homes: tuple[Dav, Dav], method: str
) -> None:
    alice, bob = two_homes
    before = await _state(alice, bob)
    for destination, expected in DESTINATIONS:
        response = await alice.request(method, "/a.txt", headers={"Destination": destination})
        assert_clear_error(response.status_code, dict(response.headers), response.content, expected)
    assert await _state(alice, bob) == before


# --- XML ---------------------------------------------------------------------------------

BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
 <!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
 <!ENTITY lol5 "&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;">
 <!ENTITY lol6 "&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;">
 <!ENTITY lol7 "&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;">
 <!ENTITY lol8 "&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;">
 <!ENTITY lol9 "&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;">
]>
<d:propertyupdate xmlns:d="DAV:" xmlns:x="urn:x"><d:set><d:prop><x:laugh>&lol9;</x:laugh>
</d:prop></d:set></d:propertyupdate>"""


def _xxe(target: str) -> bytes:
    return (
        f'<?xml version="1.0"?><!DOCTYPE d:propertyupdate [<!ENTITY xxe SYSTEM "{target}">]>'
        '<d:propertyupdate xmlns:d="DAV:" xmlns:x="urn:x"><d:set><d:prop><x:leak>&xxe;</x:leak>'
        "</d:prop></d:set></d:propertyupdate>"
    ).encode()


def _parameter_entity(target: str) -> bytes:
    return (
        f'<?xml version="1.0"?><!DOCTYPE d:propfind [<!ENTITY % remote SYSTEM "{target}">'
        '%remote;]><d:propfind xmlns:d="DAV:"><d:allprop/></d:propfind>'
    ).encode()


def _nested(depth: int) -> bytes:
    inner = "<x:n>" * depth + "</x:n>" * depth
    return (
        '<?xml version="1.0"?><d:propertyupdate xmlns:d="DAV:" xmlns:x="urn:x"><d:set>'
        f"<d:prop>{inner}</d:prop></d:set></d:propertyupdate>"
    ).encode()


@pytest.fixture
def secret_file(tmp_path: Path) -> Path:
    path = tmp_path / "server-secret.txt"
    path.write_text("TOP-SECRET-SERVER-FILE")
    return path


@pytest.mark.parametrize("method", ["PROPPATCH", "PROPFIND", "LOCK"])
async def test_dtds_and_entities_are_refused(
    two_homes: tuple[Dav, Dav], secret_file: Path, method: str
) -> None:
    alice, _ = two_homes
    bodies = [
        BILLION_LAUGHS,
        _xxe(secret_file.as_uri()),
        _xxe("http://127.0.0.1:9/leak"),
        _parameter_entity(secret_file.as_uri()),
        b'<?xml version="1.0"?><!DOCTYPE d:propfind SYSTEM "http://127.0.0.1:9/x.dtd">'
        b'<d:propfind xmlns:d="DAV:"><d:allprop/></d:propfind>',
        b'<?xml version="1.0"?><!DOCTYPE d:propfind><d:propfind xmlns:d="DAV:"><d:allprop/>'
        b"</d:propfind>",
    ]
    for body in bodies:
        response = await alice.request(method, "/a.txt", body=body, headers={"Depth": "0"})
        assert_clear_error(response.status_code, dict(response.headers), response.content, 400)
        assert b"TOP-SECRET" not in response.content
        assert b"lollol" not in response.content
    listing = await alice.propfind("/a.txt", depth="0")
    assert b"TOP-SECRET" not in listing.content and b"laugh" not in listing.content
    assert await alice.prop("/a.txt", "d:lockdiscovery") == ""


async def test_malformed_xml_is_400(two_homes: tuple[Dav, Dav]) -> None:
    alice, _ = two_homes
    for body in (b"<d:propfind xmlns:d='DAV:'>", b"not xml at all", b"<a></b>", b"\xff\xfe<"):
        for method in ("PROPFIND", "PROPPATCH", "LOCK"):
            response = await alice.request(method, "/a.txt", body=body, headers={"Depth": "0"})
            assert_clear_error(response.status_code, dict(response.headers), response.content, 400)


async def test_too_deep_xml_is_400(two_homes: tuple[Dav, Dav]) -> None:
    alice, _ = two_homes
    for depth in (70, 300, 20_000):
        response = await alice.request("PROPPATCH", "/a.txt", body=_nested(depth))
        assert_clear_error(response.status_code, dict(response.headers), response.content, 400)
    # Nesting within the limit is fine.
    await alice.request("PROPPATCH", "/a.txt", body=_nested(10), status=207)


async def test_oversized_xml_is_413_announced_or_not(
    app: EcrinApp, two_homes: tuple[Dav, Dav]
) -> None:
    alice, _ = two_homes
    limit = app.runtime.settings.max_xml_bytes
    padding = b"<!--" + b"x" * limit + b"-->"
    body = (
        b'<?xml version="1.0"?>' + padding + b'<d:propfind xmlns:d="DAV:"><d:allprop/></d:propfind>'
    )
    announced = await alice.request("PROPFIND", "/a.txt", body=body, headers={"Depth": "0"})
    assert_clear_error(announced.status_code, dict(announced.headers), announced.content, 413)

    async def chunks() -> AsyncIterator[bytes]:
        for start in range(0, len(body), 65536):
            yield body[start : start + 65536]

    streamed = await alice.client.request(
        "PROPFIND", alice.url("/a.txt"), content=chunks(), auth=alice.auth, headers={"Depth": "0"}
    )
    assert "content-length" not in streamed.request.headers
    assert_clear_error(streamed.status_code, dict(streamed.headers), streamed.content, 413)


async def test_propfind_depth_infinity_is_403_finite_depth(two_homes: tuple[Dav, Dav]) -> None:
    alice, _ = two_homes
    for depth in ("infinity", "Infinity"):
        response = await alice.propfind("/", depth=depth, status=None)
        assert_clear_error(response.status_code, dict(response.headers), response.content, 403)
        assert etree.fromstring(response.content).find("d:propfind-finite-depth", NS) is not None


async def test_bad_headers_are_400(two_homes: tuple[Dav, Dav]) -> None:
    alice, _ = two_homes
    cases: list[tuple[str, dict[str, str]]] = [
        ("PROPFIND", {"Depth": "2"}),
        ("COPY", {"Destination": "/remote.php/dav/files/alice/c.txt", "Overwrite": "maybe"}),
        ("COPY", {}),
        ("PUT", {"Content-Length": "-1"}),
        ("PUT", {"X-OC-Mtime": "yesterday"}),
        ("PUT", {"X-OC-Mtime": "1e300"}),
        ("PUT", {"X-OC-Mtime": "253402300800"}),  # after 9999: no HTTP date can say it
        ("PUT", {"OC-Checksum": "SHA1"}),
        ("PUT", {"Content-MD5": "not base64!"}),
        ("PUT", {"If": "(<unclosed"}),
        ("PUT", {"If": "garbage"}),
        ("LOCK", {"Timeout": "Second-soon"}),
    ]
    for method, headers in cases:
        body = b"x" if method in ("PUT",) and "Content-Length" not in headers else b""
        response = await alice.request(method, "/a.txt", body=body, headers=headers)
        assert_clear_error(response.status_code, dict(response.headers), response.content, 400)
    assert (await alice.get("/a.txt")).content == b"alice's a"
