"""The per-response shortcuts of the multistatus writer give what the standard library gives."""

from __future__ import annotations

import random
from collections.abc import Callable
from datetime import UTC, datetime
from email.utils import formatdate
from urllib.parse import quote

import pytest

from ecrin.core.model import Node, NodeKind
from ecrin.core.permissions import Permission, dav_permissions
from ecrin.dav.multistatus import body_chunks, quote_name
from ecrin.dav.property_values import ValueCaches, content_type_of

EDGE_TIMESTAMPS = [
    0,
    0.5,
    0.9999994,
    0.9999995,
    0.9999996,
    59.9999999,
    86399.9999995,
    951782400,  # 29 Feb 2000
    1234567890.9999996,
    1.7e9 + 0.123,
    253402300798.9999999,
    253402300799.5,
    253402300799.9999999,  # rounds into year 10000: both raise
    -0.5,
    -86400.25,
    1e20,
    float("nan"),
    float("inf"),
]


def outcome(format_date: Callable[[float], str], timestamp: float) -> str | type[Exception]:
    try:
        return format_date(timestamp)
    except (ValueError, OverflowError, OSError) as error:
        return type(error)


def stdlib_iso(timestamp: float) -> str:
    return datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def stdlib_http(timestamp: float) -> str:
    return formatdate(timestamp, usegmt=True)


def timestamps() -> list[float]:
    rng = random.Random(4918)
    stamps = list(EDGE_TIMESTAMPS)
    for _ in range(5_000):
        whole = rng.randrange(0, 253402300800)
        stamps.append(whole + rng.choice([0.0, 0.25, 0.9999995, 0.99999949, 0.9999996]))
        stamps.append(rng.random() * 4e9)
        stamps.append(1.7e9 + rng.randrange(0, 86400 * 3))  # same days: the day memo
    return stamps


def test_dates_match_the_standard_library() -> None:
    caches = ValueCaches()
    for timestamp in timestamps():
        assert outcome(caches.http_date, timestamp) == outcome(stdlib_http, timestamp)
        assert outcome(caches.iso_date, timestamp) == outcome(stdlib_iso, timestamp)


def test_repeated_timestamps_come_from_the_memo_unchanged() -> None:
    caches = ValueCaches()
    for timestamp in (1.7e9, 1.7e9, 1.7e9 + 1, 1.7e9, 0.0, 0.0, -1.0, -1.0):
        assert caches.http_date(timestamp) == stdlib_http(timestamp)
        assert caches.iso_date(timestamp) == stdlib_iso(timestamp)


@pytest.mark.parametrize(
    "name",
    [
        "a.txt",
        "b.TXT",
        "c.tar.gz",
        "d.TGZ",
        "e.svgz",
        "f.Z",
        "g.gz",
        ".hidden",
        "..txt",
        "...",
        "x.",
        "noext",
        "data:text,x",
        "data:image/png;base64",
        "scheme:y.pdf",
        "photo.JPG",
        "r\u00e9sum\u00e9.pdf",
    ],
)
def test_content_types_match_mimetypes(name: str) -> None:
    caches = ValueCaches()
    for other in ("other.txt", "other.gz", ".txt", "a.pdf", "b.JPG", "1" + name, name):
        node = Node(1, None, 1, other, NodeKind.FILE, 0, 0.0, 0)
        assert caches.content_type(node) == content_type_of(node), other
    declared = Node(1, None, 1, name, NodeKind.FILE, 0, 0.0, 0, content_type="a/b")
    assert caches.content_type(declared) == "a/b"


def test_permission_letters_match() -> None:
    caches = ValueCaches()
    for _ in range(2):
        for value in range(32):
            for is_folder in (False, True):
                for shared in (False, True):
                    for mount in (False, True):
                        permissions = Permission(value)
                        assert caches.permission_letters(
                            permissions, is_folder, shared, mount
                        ) == dav_permissions(
                            permissions,
                            is_folder=is_folder,
                            shared_with_me=shared,
                            is_mount_point=mount,
                        )


@pytest.mark.parametrize(
    "name",
    [
        "plain-name_1.txt",
        "~x",
        "a b",
        "a&b",
        "<>",
        "100%",
        "%41",
        "#?",
        "+;,=@:",
        "\u00e9",
        "\U0001f600",
    ],
)
def test_quote_name_matches_quote(name: str) -> None:
    assert quote_name(name) == quote(name)
    assert quote("/base/" + name) == quote("/base/") + quote_name(name)


def test_body_chunks_stay_bounded() -> None:
    responses = [f"<d:response>{index:05d}</d:response>" for index in range(10_000)]
    chunks = list(body_chunks(responses, 1000))
    assert len(chunks) > 100
    assert max(len(chunk) for chunk in chunks) < 1000 + 30
    document = b"".join(chunks).decode()
    assert document.startswith('<?xml version="1.0" encoding="utf-8"?>\n<d:multistatus ')
    assert document.endswith("</d:response></d:multistatus>")
    assert document.count("<d:response>") == 10_000
