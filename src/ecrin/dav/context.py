"""What every DAV handler receives, and the request-header helpers they share."""

from __future__ import annotations

from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from urllib.parse import quote, urlsplit

from lxml import etree
from starlette.requests import Request

from ecrin.core.errors import BadRequest, Forbidden, PayloadTooLarge, PreconditionFailed
from ecrin.core.model import Lock, Node, User
from ecrin.core.paths import DavPath, decode_url_path
from ecrin.dav.if_header import (
    ConditionList,
    ResourceState,
    evaluate,
    parse_if_header,
    submitted_tokens,
)
from ecrin.dav.property_values import ValueCaches
from ecrin.dav.xml import parse_xml
from ecrin.services.container import Services
from ecrin.services.locks import LockCheck, PathLockCheck
from ecrin.settings import Settings

# 9999-12-31T23:59:59Z: the last moment an HTTP date (getlastmodified) can name.
LAST_HTTP_DATE = 253_402_300_799


@dataclass
class DavContext:
    request: Request
    services: Services
    settings: Settings
    principal: User  # who is calling
    home: User  # whose files the URL addresses
    base: str  # URL prefix of the home, without trailing slash, e.g. /remote.php/dav/files/a
    path: DavPath
    # Memos of dates and content types; the app's own, shared by its requests, when given.
    values: ValueCaches = field(default_factory=ValueCaches, repr=False)
    _if_lists: list[ConditionList] | None = field(default=None, repr=False)
    _if_parsed: bool = field(default=False, repr=False)
    _headers: dict[str, str] | None = field(default=None, repr=False)

    def header(self, name: str) -> str | None:
        """A request header (the first of its name), `name` in lower case. Read from a dict
        made once: Starlette's `headers.get` scans them all and raises for a missing one,
        and a GET asks for six that are mostly missing."""
        headers = self._headers
        if headers is None:
            headers = self._headers = {}
            for key, value in self.request.scope["headers"]:
                headers.setdefault(key.decode("latin-1").lower(), value.decode("latin-1"))
        return headers.get(name)

    def href(self, path: DavPath, is_folder: bool) -> str:
        suffix = "/" if is_folder and not path.is_root else ""
        if path.is_root:
            return quote(self.base + "/")
        return quote(self.base + str(path) + suffix)

    async def read_xml_body(self) -> bytes:
        limit = self.settings.max_xml_bytes
        declared = self.request.headers.get("content-length")
        if declared and declared.isdigit() and int(declared) > limit:
            raise PayloadTooLarge(f"XML bodies are limited to {limit} bytes")
        body = bytearray()
        async for chunk in self.request.stream():
            body += chunk
            if len(body) > limit:
                raise PayloadTooLarge(f"XML bodies are limited to {limit} bytes")
        return bytes(body)

    def parse(self, body: bytes) -> etree._Element:
        return parse_xml(
            body, max_bytes=self.settings.max_xml_bytes, max_depth=self.settings.max_xml_depth
        )

    # --- headers -------------------------------------------------------------------------

    def depth(self, default: str, allowed: tuple[str, ...]) -> str:
        value = (self.header("depth") or default).strip().lower()
        if value not in allowed:
            raise BadRequest(f"Depth must be one of {', '.join(allowed)}")
        return value

    def overwrite(self) -> bool:
        value = (self.header("overwrite") or "T").strip().upper()
        if value not in ("T", "F"):
            raise BadRequest("Overwrite must be T or F")
        return value == "T"

    def destination(self) -> DavPath:
        """The Destination header as a path in the same home (absolute URL or path)."""
        raw = self.header("destination")
        if not raw:
            raise BadRequest("a Destination header is required")
        return self.path_from_url(raw, what="Destination")

    def path_from_url(self, raw: str, *, what: str) -> DavPath:
        parts = urlsplit(raw.strip())
        if parts.scheme or parts.netloc:
            if parts.scheme not in ("http", "https"):
                raise BadRequest(f"{what} must be an http(s) URL or a path")
            host = self.request.headers.get("host", "")
            if parts.netloc and host and parts.netloc.lower() != host.lower():
                raise Forbidden(f"{what} is on another server")
        decoded = decode_url_path(parts.path)
        base = self.base
        if decoded.rstrip("/") != base and not decoded.startswith(base + "/"):
            raise Forbidden(f"{what} is outside this user's files")
        return DavPath.parse(decoded[len(base) :])

    def mtime(self) -> float | None:
        raw = self.header("x-oc-mtime")
        if raw is None:
            return None
        try:
            value = float(raw)
        except ValueError as exc:
            raise BadRequest("X-OC-Mtime must be a number of seconds") from exc
        if not 0 <= value <= LAST_HTTP_DATE:
            raise BadRequest("X-OC-Mtime out of range (0 to 9999-12-31)")
        return value

    # --- If header and locks -------------------------------------------------------------

    def if_lists(self) -> list[ConditionList] | None:
        if not self._if_parsed:
            raw = self.header("if")
            self._if_lists = parse_if_header(raw) if raw else None
            self._if_parsed = True
        return self._if_lists

    def submitted_tokens(self) -> set[str]:
        lists = self.if_lists()
        tokens = submitted_tokens(lists) if lists else set()
        raw = self.header("lock-token")
        if raw:
            tokens.add(raw.strip().strip("<>"))
        return tokens

    async def check_if_header(self, locks: list[Lock]) -> None:
        """412 unless the If header (if any) holds for the resources it names."""
        lists = self.if_lists()
        if not lists:
            return

        async def state_of(resource: str | None) -> ResourceState:
            try:
                path = self.path if resource is None else self.path_from_url(resource, what="If")
            except (BadRequest, Forbidden):
                return ResourceState(None, frozenset())
            node = await self.services.files.lookup(self.home, path)
            seen = locks if path == self.path else await self.services.locks.active(self.home, path)
            tokens = frozenset(lock.token for lock in seen if lock.covers(path.segments))
            return ResourceState(quoted_etag(node) if node else None, tokens)

        if not await evaluate(lists, state_of):
            raise PreconditionFailed("the If header's conditions do not hold")

    async def guard_write(
        self,
        path: DavPath | None = None,
        *,
        subtree: bool = False,
        membership: bool = False,
        check_if: bool = True,
        locks: list[Lock] | None = None,
    ) -> None:
        """Before a write: the If header (412), then locks (423).

        The If header is evaluated first (RFC 4918 section 10.4.1): a request whose
        conditions do not hold fails with 412 even when the resource is also locked; a
        request whose conditions hold but that does not submit the lock gets 423.
        `subtree`: the write affects everything below the path (DELETE, MOVE source).
        `membership`: the write adds or removes the path in its parent, so a lock on the
        parent collection must be submitted too.
        `locks`: the path's active locks (`LockService.active`) when the caller has read
        them already.
        """
        target = path or self.path
        if locks is None:
            locks = await self.services.locks.active(self.home, target, subtree=subtree)
        if check_if:
            await self.check_if_header(locks)
        check = PathLockCheck(self.principal, target, frozenset(self.submitted_tokens()), subtree)
        check(locks, membership)

    def lock_check(self) -> LockCheck:
        """guard_write's lock test, for a write that runs it inside its own transaction
        (a small PUT); without an If header, the If test has nothing to check."""
        return PathLockCheck(self.principal, self.path, frozenset(self.submitted_tokens()))


def quoted_etag(node: Node) -> str:
    return f'"{node.etag}"'


def http_date_to_timestamp(value: str) -> float | None:
    try:
        return parsedate_to_datetime(value).timestamp()
    except (TypeError, ValueError, IndexError):
        return None
