"""Path decoding, normalisation and confinement.

Every path that reaches the services is a `DavPath`: a tuple of NFC-normalised, validated
segments relative to a user's home. Validation happens after percent-decoding and
normalisation, never before, so `%2e%2e`, overlong forms and double encodings cannot
escape the home.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from urllib.parse import unquote_to_bytes

from ecrin.core.errors import BadRequest

MAX_SEGMENT_BYTES = 255
MAX_PATH_BYTES = 4096
MAX_DEPTH = 256
_FORBIDDEN_CHARS = frozenset(chr(c) for c in range(0x20)) | {"\x7f", "\\"}


def validate_name(name: str) -> str:
    """Normalise one path segment to NFC and refuse what may not be a file name."""
    name = unicodedata.normalize("NFC", name)
    if name in ("", ".", ".."):
        raise BadRequest(f"invalid path segment {name!r}")
    if not _FORBIDDEN_CHARS.isdisjoint(name):
        raise BadRequest("control characters and backslashes are not allowed in names")
    if "/" in name:
        raise BadRequest("a name may not contain '/'")
    if len(name.encode()) > MAX_SEGMENT_BYTES:
        raise BadRequest("name too long")
    return name


@dataclass(frozen=True, slots=True)
class DavPath:
    """A confined path inside one user's home; `()` is the home itself."""

    segments: tuple[str, ...] = ()

    @classmethod
    def parse(cls, decoded: str) -> DavPath:
        """Parse an already percent-decoded path ('/a/b/'), validating every segment."""
        if len(decoded.encode("utf-8", "surrogatepass")) > MAX_PATH_BYTES:
            raise BadRequest("path too long")
        parts = [p for p in decoded.split("/") if p != ""]
        if len(parts) > MAX_DEPTH:
            raise BadRequest("path too deep")
        return cls(tuple(validate_name(p) for p in parts))

    @classmethod
    def from_url_path(cls, raw: str) -> DavPath:
        """Decode a percent-encoded URL path (exactly once) and parse it."""
        return cls.parse(decode_url_path(raw))

    @property
    def is_root(self) -> bool:
        return not self.segments

    @property
    def name(self) -> str:
        return self.segments[-1] if self.segments else ""

    @property
    def parent(self) -> DavPath:
        return DavPath(self.segments[:-1])

    def child(self, name: str) -> DavPath:
        return DavPath((*self.segments, validate_name(name)))

    def is_ancestor_of(self, other: DavPath) -> bool:
        """True if `other` lies strictly below this path."""
        n = len(self.segments)
        return len(other.segments) > n and other.segments[:n] == self.segments

    def relative_to(self, ancestor: DavPath) -> tuple[str, ...]:
        return self.segments[len(ancestor.segments) :]

    def __str__(self) -> str:
        return "/" + "/".join(self.segments)


def decode_url_path(raw: str) -> str:
    """Percent-decode a URL path as strict UTF-8; NUL and invalid sequences are refused."""
    if "%" not in raw and raw.isascii() and "\x00" not in raw:
        return raw  # nothing to decode: most paths
    try:
        data = unquote_to_bytes(raw)
        text = data.decode("utf-8")  # strict: overlong forms and lone surrogates fail here
    except UnicodeDecodeError as exc:
        raise BadRequest("path is not valid UTF-8") from exc
    if "\x00" in text:
        raise BadRequest("NUL in path")
    return text
