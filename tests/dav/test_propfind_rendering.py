"""PROPFIND's multistatus writer: hostile names and values, read back through an XML parser.

The writer assembles text by hand for speed, so these tests parse what it wrote and compare
it with what was stored: names with XML and URL metacharacters, dead properties in odd
namespaces, unknown properties in 404 propstats, and the same body whether sent whole or
streamed in chunks.
"""

from __future__ import annotations

import mimetypes
import re
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from urllib.parse import quote, unquote

import httpx
import pytest
from lxml import etree

from ecrin.app import EcrinApp
from ecrin.dav import multistatus
from ecrin.db.sql import SqlTransaction
from tests.support import NS, Dav

HOME = "/remote.php/dav/files/alice"
HOSTILE_FILES = [
    "a&b.txt",
    "<tag>.txt",
    "x>y",
    "quote\"s 'single'.txt",
    "&amp; already escaped.txt",
    "r\u00e9sum\u00e9 \u20ac.txt",
    "100% sure.txt",
    "%41 is not A.txt",
    "hash#and?query.txt",
    "plus+semi;colon,comma=eq@at.txt",
    "]]> cdata end.txt",
    "\U0001f600 emoji",
    "~tilde-._",
    "data:text,x",
    "archive.tar.gz",
    ".hidden",
]
HOSTILE_FOLDERS = ["dir & <sub>", "caf\u00e9", "100%"]
CUSTOM_NS = "urn:ecrin:test?a=1&b=2"  # "&" must be escaped in the xmlns attribute
SAFE_HREF = re.compile(r"[A-Za-z0-9_.~/%-]+")
HTTP_DATE = re.compile(r"[A-Z][a-z]{2}, \d{2} [A-Z][a-z]{2} \d{4} \d{2}:\d{2}:\d{2} GMT")
ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z")


@dataclass
class Listed:
    """One `d:response`, parsed: property (Clark notation) -> its element, per status."""

    found: dict[str, etree._Element] = field(default_factory=dict)
    missing: set[str] = field(default_factory=set)


def parse_multistatus(body: bytes) -> dict[str, Listed]:
    """Raw href -> its properties; fails on malformed XML or a property listed twice."""
    root = etree.fromstring(body)
    assert root.tag == "{DAV:}multistatus"
    listing: dict[str, Listed] = {}
    for response in root.iterfind("d:response", NS):
        href = response.findtext("d:href", None, NS)
        assert href is not None and href not in listing
        listed = listing[href] = Listed()
        for propstat in response.iterfind("d:propstat", NS):
            status = propstat.findtext("d:status", "", NS)
            props = propstat.find("d:prop", NS)
            assert props is not None
            for prop in props:
                assert prop.tag not in listed.found and prop.tag not in listed.missing
                if status == "HTTP/1.1 200 OK":
                    listed.found[prop.tag] = prop
                else:
                    assert status == "HTTP/1.1 404 Not Found"
                    assert len(prop) == 0 and not prop.text
                    listed.missing.add(prop.tag)
    return listing


async def propfind_raw(alice: Dav, path: str, body: str, depth: str = "1") -> httpx.Response:
    return await alice.request("PROPFIND", path, status=207, body=body, headers={"Depth": depth})


async def make_hostile_folder(alice: Dav) -> dict[str, bytes]:
    """/h with the hostile files (distinct sizes) and folders; returns file contents."""
    await alice.mkcol("/h")
    contents: dict[str, bytes] = {}
    for index, name in enumerate(HOSTILE_FILES):
        contents[name] = b"x" * index
        await alice.put(f"/h/{name}", contents[name], status=201)
    for name in HOSTILE_FOLDERS:
        await alice.mkcol(f"/h/{name}")
    await alice.request(
        "PROPPATCH",
        "/h/a&b.txt",
        status=207,
        body=(
            '<d:propertyupdate xmlns:d="DAV:"><d:set><d:prop>'
            f'<x:color xmlns:x="{CUSTOM_NS.replace("&", "&amp;").replace("<", "&lt;")}">'
            "red &amp; &lt;blue&gt; \u00e9</x:color>"
            '<bare xmlns="">no namespace</bare>'
            "</d:prop></d:set></d:propertyupdate>"
        ),
    )
    return contents


def expected_href(name: str, folder: bool) -> str:
    return quote(f"{HOME}/h/{name}" + ("/" if folder else ""))


async def test_allprop_of_hostile_names_parses_to_what_was_stored(alice: Dav) -> None:
    contents = await make_hostile_folder(alice)
    listing = parse_multistatus((await alice.propfind("/h")).content)

    assert set(listing) == {
        quote(f"{HOME}/h/"),
        *(expected_href(name, False) for name in HOSTILE_FILES),
        *(expected_href(name, True) for name in HOSTILE_FOLDERS),
    }
    for href, listed in listing.items():
        assert SAFE_HREF.fullmatch(href), href
        name = unquote(href).removeprefix(f"{HOME}/h/").rstrip("/") or "h"
        assert listed.found["{DAV:}displayname"].text == name
        assert HTTP_DATE.fullmatch(listed.found["{DAV:}getlastmodified"].text or "")
        parsedate_to_datetime(listed.found["{DAV:}getlastmodified"].text or "")
        assert ISO_DATE.fullmatch(listed.found["{DAV:}creationdate"].text or "")
        etag = listed.found["{DAV:}getetag"].text or ""
        assert etag.startswith('"') and etag.endswith('"')
        assert listed.found["{DAV:}lockdiscovery"].text is None
        assert "{DAV:}supportedlock" in listed.found
        resource_type = listed.found["{DAV:}resourcetype"]
        if href.endswith("/"):
            assert [child.tag for child in resource_type] == ["{DAV:}collection"]
            assert listed.missing == {"{DAV:}getcontentlength", "{DAV:}getcontenttype"}
        else:
            assert len(resource_type) == 0
            assert listed.found["{DAV:}getcontentlength"].text == str(len(contents[name]))
            guessed = mimetypes.guess_type(name, strict=False)[0] or "application/octet-stream"
            assert listed.found["{DAV:}getcontenttype"].text == guessed
            assert not listed.missing

    dead = listing[expected_href("a&b.txt", False)].found
    assert dead[f"{{{CUSTOM_NS}}}color"].text == "red & <blue> \u00e9"
    assert dead["bare"].text == "no namespace"
    others = [listed for href, listed in listing.items() if "a%26b" not in href]
    assert all(f"{{{CUSTOM_NS}}}color" not in listed.found for listed in others)


async def test_named_properties_with_unknown_and_dead_ones(alice: Dav) -> None:
    contents = await make_hostile_folder(alice)
    custom = CUSTOM_NS.replace("&", "&amp;").replace("<", "&lt;")
    body = (
        '<?xml version="1.0"?><d:propfind xmlns:d="DAV:" xmlns:oc="http://owncloud.org/ns" '
        f'xmlns:nc="http://nextcloud.org/ns" xmlns:x="{custom}"><d:prop>'
        "<d:resourcetype/><d:getcontentlength/><d:getlastmodified/><d:getetag/>"
        "<oc:fileid/><oc:id/><oc:permissions/><oc:size/><oc:checksums/><oc:share-types/>"
        '<oc:downloadURL/><nc:is-encrypted/><x:color/><x:missing-too/><bare xmlns=""/>'
        "</d:prop></d:propfind>"
    )
    listing = parse_multistatus((await propfind_raw(alice, "/h", body)).content)

    ids = set()
    for href, listed in listing.items():
        folder = href.endswith("/")
        name = unquote(href).removeprefix(f"{HOME}/h/").rstrip("/")
        always_missing = {
            "{http://owncloud.org/ns}downloadURL",
            "{http://nextcloud.org/ns}is-encrypted",
            f"{{{CUSTOM_NS}}}missing-too",
        }
        if name != "a&b.txt":
            always_missing |= {f"{{{CUSTOM_NS}}}color", "bare"}
        if folder:
            always_missing |= {"{DAV:}getcontentlength", "{http://owncloud.org/ns}checksums"}
        assert listed.missing == always_missing, name
        file_id = listed.found["{http://owncloud.org/ns}fileid"].text or ""
        assert (listed.found["{http://owncloud.org/ns}id"].text or "").startswith(file_id.zfill(8))
        ids.add(file_id)
        assert listed.found["{http://owncloud.org/ns}permissions"].text == (
            "RGDNVCK" if folder else "RGDNVW"
        )
        assert len(listed.found["{http://owncloud.org/ns}share-types"]) == 0
        if not folder:
            size = str(len(contents[name]))
            assert listed.found["{DAV:}getcontentlength"].text == size
            assert listed.found["{http://owncloud.org/ns}size"].text == size
            checksum = listed.found["{http://owncloud.org/ns}checksums"][0].text or ""
            assert checksum.startswith("SHA256:")
    assert len(ids) == len(listing)
    dead = listing[expected_href("a&b.txt", False)].found
    assert dead[f"{{{CUSTOM_NS}}}color"].text == "red & <blue> \u00e9"
    assert dead["bare"].text == "no namespace"


async def test_propname_lists_live_and_dead_names(alice: Dav) -> None:
    await make_hostile_folder(alice)
    body = '<?xml version="1.0"?><d:propfind xmlns:d="DAV:"><d:propname/></d:propfind>'
    listing = parse_multistatus((await propfind_raw(alice, "/h", body)).content)
    with_dead = listing[expected_href("a&b.txt", False)]
    assert {f"{{{CUSTOM_NS}}}color", "bare", "{DAV:}getetag"} <= set(with_dead.found)
    assert all(len(e) == 0 and not e.text for e in with_dead.found.values())
    folder = listing[expected_href("caf\u00e9", True)]
    assert "{DAV:}quota-used-bytes" in folder.found
    assert "{DAV:}getcontentlength" not in folder.found


async def test_streamed_body_is_the_same_document(
    alice: Dav, monkeypatch: pytest.MonkeyPatch
) -> None:
    await make_hostile_folder(alice)
    whole = await alice.propfind("/h")
    assert whole.headers["content-length"] == str(len(whole.content))

    monkeypatch.setattr(multistatus, "CHUNK_CHARS", 300)
    streamed = await alice.propfind("/h")
    assert "content-length" not in streamed.headers
    assert streamed.headers["content-type"] == "application/xml; charset=utf-8"
    assert streamed.content == whole.content
    parse_multistatus(streamed.content)


async def test_depth_zero_of_the_home_has_its_href_and_fingerprint(alice: Dav) -> None:
    body = (
        '<?xml version="1.0"?><d:propfind xmlns:d="DAV:" xmlns:oc="http://owncloud.org/ns">'
        "<d:prop><d:displayname/><oc:data-fingerprint/><d:quota-available-bytes/></d:prop>"
        "</d:propfind>"
    )
    listing = parse_multistatus((await propfind_raw(alice, "/", body, depth="0")).content)
    assert list(listing) == [f"{HOME}/"]
    (home,) = listing.values()
    assert home.found["{DAV:}displayname"].text == "alice"
    assert "{http://owncloud.org/ns}data-fingerprint" in home.found
    assert re.fullmatch(r"-?\d+", home.found["{DAV:}quota-available-bytes"].text or "")


async def test_depth_zero_does_not_list_the_folder(
    app: EcrinApp, alice: Dav, monkeypatch: pytest.MonkeyPatch
) -> None:
    await make_hostile_folder(alice)

    async def no_listing(*_args: object) -> None:
        raise AssertionError("Depth 0 listed the folder")

    for method in ("listing", "children"):  # a home's folders, other folders
        monkeypatch.setattr(SqlTransaction, method, no_listing)
    listing = parse_multistatus((await alice.propfind("/h", depth="0")).content)
    assert list(listing) == [quote(f"{HOME}/h/")]
    assert listing[quote(f"{HOME}/h/")].found["{DAV:}displayname"].text == "h"


def _live_names_body(names: list[tuple[str, str]]) -> str:
    props = "".join(f'<x:{name} xmlns:x="{namespace}"/>' for namespace, name in names)
    return f'<?xml version="1.0"?><d:propfind xmlns:d="DAV:"><d:prop>{props}</d:prop></d:propfind>'


def _values(body: bytes) -> dict[str, dict[str, bytes]]:
    return {
        href: {tag: etree.tostring(element) for tag, element in listed.found.items()}
        for href, listed in parse_multistatus(body).items()
    }


async def make_detailed_folder(dav: Dav, folder: str) -> None:
    """`folder` with a subfolder and a file whose details (content type, client checksum)
    are not what a summary node leaves."""
    await dav.mkcol(folder)
    await dav.mkcol(f"{folder}/sub")
    await dav.put(
        f"{folder}/report.txt",
        b"detailed",
        status=201,
        content_type="application/x-custom",
        oc_checksum="SHA1:9c8f9b23d367dfd2e45c08a03616964ac32c6780",
    )


async def assert_the_same_without_details(dav: Dav, folder: str) -> None:
    """A PROPFIND asking for no `DETAILED` property lists the children from the summary of
    their nodes; every other live property must come out as from whole nodes (a renderer
    that reads more of a node belongs in `DETAILED`)."""
    from ecrin.dav.live_properties import DETAILED, LIVE

    summary = sorted(name for name in LIVE if name not in DETAILED)
    full = _values((await propfind_raw(dav, folder, _live_names_body(sorted(LIVE)))).content)
    without = _values((await propfind_raw(dav, folder, _live_names_body(summary))).content)

    assert set(without) == set(full) and len(without) == 3
    for href, values in without.items():
        expected = {
            tag: value
            for tag, value in full[href].items()
            if tuple(tag[1:].split("}")) not in DETAILED
        }
        assert values == expected, href
    # The details were there to lose: the file's have values a summary node lacks.
    (file_values,) = (values for href, values in full.items() if href.endswith("report.txt"))
    assert b"application/x-custom" in file_values["{DAV:}getcontenttype"]
    assert b"SHA1:" in file_values["{http://owncloud.org/ns}checksums"]


async def test_properties_read_without_details_are_those_read_with_them(alice: Dav) -> None:
    await make_detailed_folder(alice, "/d")
    await assert_the_same_without_details(alice, "/d")
