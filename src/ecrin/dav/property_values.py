"""How property values are written: HTTP and ISO dates, content types, `oc:permissions`,
and `ValueCaches`, a per-response memo that makes them cheap for 10,000 entries."""

from __future__ import annotations

import mimetypes
from collections.abc import Callable
from datetime import UTC, datetime
from email.utils import formatdate
from typing import TypeVar

from ecrin.core.model import Node
from ecrin.core.permissions import Permission, dav_permissions

TWO_DIGITS = tuple(f"{n:02d}" for n in range(60))
CLOCK_MINUTES = tuple(f"{h:02d}:{m:02d}:" for h in range(24) for m in range(60))  # by minute of day
# Timestamps from 1970 to the last second of 9999 take the fast path; the standard library
# formats the others (and raises for years past 9999, as it always did).
FAST_DATES_END = 253402300799.0


def http_date(timestamp: float) -> str:
    """The IMF-fixdate of RFC 9110 (`Sun, 06 Nov 1994 08:49:37 GMT`)."""
    return formatdate(timestamp, usegmt=True)


def iso_date(timestamp: float) -> str:
    """`DAV:creationdate` (RFC 3339, UTC, whole seconds)."""
    return datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def content_type_of(node: Node) -> str:
    if node.content_type:
        return node.content_type
    guessed, _ = mimetypes.guess_type(node.name, strict=False)
    return guessed or "application/octet-stream"


def dav_file_id(node: Node, instance_id: str) -> str:
    """Nextcloud's `oc:id`: the file id zero-padded to 8 digits, then the instance id."""
    return f"{node.id:08d}{instance_id}"


class _DateWriter:
    """One date format, fast: the text of the last whole second (files written together
    share it), and the part naming the day once per day (`cut` characters off the standard
    library's text for midnight, `suffix` after the time)."""

    __slots__ = ("_cut", "_days", "_second", "_slow", "_suffix", "_text")

    def __init__(self, slow: Callable[[float], str], cut: int, suffix: str) -> None:
        self._slow, self._cut, self._suffix = slow, cut, suffix
        self._days: dict[int, str] = {}
        self._second = -1  # no timestamp on the fast path
        self._text = ""

    def __call__(self, timestamp: float) -> str:
        if not 0 <= timestamp < FAST_DATES_END:
            return self._slow(timestamp)
        seconds = int(timestamp)
        if timestamp - seconds > 0.999999:
            seconds = _whole_seconds(timestamp)
        if seconds == self._second:
            return self._text
        day, second = divmod(seconds, 86400)
        minute, second = divmod(second, 60)
        prefix = self._days.get(day)
        if prefix is None:
            prefix = _remember(self._days, day, self._slow(day * 86400)[: -self._cut])
        text = f"{prefix}{CLOCK_MINUTES[minute]}{TWO_DIGITS[second]}{self._suffix}"
        self._second, self._text = seconds, text
        return text


class ValueCaches:
    """Memo of values that many entries or requests share, bounded: one per PROPFIND
    response, and one per DavApp for GET's headers. Dates: the last whole second, and the day
    part once per day; content types: one guess per extension; `oc:permissions`: one per
    combination of rights."""

    __slots__ = ("_content_types", "_permissions", "http_date", "iso_date")

    def __init__(self) -> None:
        self.http_date = _DateWriter(http_date, len("00:00:00 GMT"), " GMT")
        self.iso_date = _DateWriter(iso_date, len("00:00:00Z"), "Z")
        self._content_types: dict[str, str] = {}
        self._permissions: dict[tuple[int, bool, bool, bool], str] = {}

    def content_type(self, node: Node) -> str:
        """`content_type_of(node)`."""
        if node.content_type:
            return node.content_type
        name = node.name
        if ":" in name or "/" in name:  # mimetypes would read a URL scheme or a folder
            return content_type_of(node)
        dot = name.rfind(".")
        # What posixpath.splitext calls the extension: leading dots do not start one.
        extension = name[dot:] if dot > 0 and name[:dot].lstrip(".") else ""
        found = self._content_types.get(extension)
        if found is None:
            found = content_type_of(node)
            if _guess_depends_only_on(extension):
                _remember(self._content_types, extension, found)
        return found

    def permission_letters(
        self, permissions: Permission, is_folder: bool, shared_with_me: bool, mount: bool
    ) -> str:
        """`dav_permissions(…)`."""
        key = (int(permissions), is_folder, shared_with_me, mount)
        found = self._permissions.get(key)
        if found is None:
            found = self._permissions[key] = dav_permissions(
                permissions,
                is_folder=is_folder,
                shared_with_me=shared_with_me,
                is_mount_point=mount,
            )
        return found


Key = TypeVar("Key")
MEMO_LIMIT = 4096  # values per memo: a folder with more distinct days or extensions restarts


def _remember(memo: dict[Key, str], key: Key, value: str) -> str:
    if len(memo) >= MEMO_LIMIT:
        memo.clear()
    memo[key] = value
    return value


def _whole_seconds(timestamp: float) -> int:
    """The seconds `datetime.fromtimestamp` shows for a timestamp >= 0: it rounds to the
    microsecond (half to even) before the fraction is dropped, so x.9999996 shows x + 1."""
    seconds = int(timestamp)
    fraction = timestamp - seconds  # exact
    if fraction > 0.999999 and round(fraction * 1e6) >= 1_000_000:
        seconds += 1
    return seconds


def _guess_depends_only_on(extension: str) -> bool:
    """True unless `mimetypes` rewrites this extension (.tgz, .gz…) and looks further left.

    Only called after a `guess_type`, so the module's tables are loaded.
    """
    return extension.lower() not in mimetypes.suffix_map and extension not in (
        mimetypes.encodings_map
    )
