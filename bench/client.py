"""The load client: WebDAV verbs over one aiohttp session of keep-alive connections.

aiohttp (with uvloop when installed) keeps the client's cost per request low; running the same
workloads against nginx shows how far it can go (its nginx numbers are the client's ceiling).
"""

from __future__ import annotations

import asyncio
import base64
import re
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Iterable
from dataclasses import dataclass
from types import TracebackType
from typing import Any, TypeVar
from urllib.parse import quote

import aiohttp

# The client drops a connection idle this long, before any server's own idle timeout (uvicorn's
# is 5 s), so a request never races a server closing an idle keep-alive connection.
IDLE_SECONDS = 2.0
RESPONSE_END = re.compile(rb"</(?:[A-Za-z][\w.-]*:)?response\s*>")

PROPFIND_ALLPROP = (
    b'<?xml version="1.0" encoding="utf-8"?>\n<d:propfind xmlns:d="DAV:"><d:allprop/></d:propfind>'
)
PROPFIND_NAMED = (
    b'<?xml version="1.0" encoding="utf-8"?>\n<d:propfind xmlns:d="DAV:"><d:prop>'
    b"<d:resourcetype/><d:getcontentlength/><d:getlastmodified/><d:getetag/>"
    b"</d:prop></d:propfind>"
)


T = TypeVar("T")


class BenchError(Exception):
    """A server answered a benchmark request with an unexpected status or content."""


@dataclass(frozen=True)
class Endpoint:
    """Where a server's WebDAV tree for the benchmark user lives."""

    base_url: str  # ends with "/"
    user: str
    password: str


def count_responses(multistatus: bytes) -> int:
    """How many DAV:response elements a 207 Multi-Status body holds."""
    return len(RESPONSE_END.findall(multistatus))


class DavClient:
    """One session; `connections` caps the keep-alive connections it opens."""

    def __init__(
        self,
        endpoint: Endpoint,
        connections: int = 64,
        folder: str = "",
        idle_seconds: float = IDLE_SECONDS,
    ) -> None:
        self.endpoint = endpoint
        self.folder = folder  # paths are relative to this folder of the WebDAV root
        self._connections = connections
        self._idle_seconds = idle_seconds
        token = base64.b64encode(f"{endpoint.user}:{endpoint.password}".encode()).decode()
        self._headers = {"Authorization": f"Basic {token}"}
        self._session: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> DavClient:
        connector = aiohttp.TCPConnector(
            limit=self._connections,
            limit_per_host=self._connections,
            ttl_dns_cache=None,
            keepalive_timeout=self._idle_seconds,
        )
        self._session = aiohttp.ClientSession(
            connector=connector,
            headers=self._headers,
            auto_decompress=False,
            timeout=aiohttp.ClientTimeout(total=None, sock_connect=30, sock_read=900),
            skip_auto_headers=("User-Agent", "Accept-Encoding"),
        )
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if self._session is not None:
            await self._session.close()

    def within(self, folder: str) -> DavClient:
        """A client for `folder` (ends with "/") that shares this one's connections."""
        inner = DavClient(
            self.endpoint, self._connections, self.folder + folder, self._idle_seconds
        )
        inner._session = self.session
        return inner

    @property
    def session(self) -> aiohttp.ClientSession:
        if self._session is None:
            raise RuntimeError("use DavClient in an `async with` block")
        return self._session

    def url(self, path: str) -> str:
        """The URL of `path` relative to the client's folder ("a/b.bin", "folder/")."""
        return self.endpoint.base_url + quote(self.folder + path.lstrip("/"))

    async def request(
        self,
        method: str,
        path: str,
        expect: Iterable[int],
        *,
        data: bytes | AsyncIterator[bytes] | None = None,
        headers: dict[str, str] | None = None,
    ) -> bytes:
        try:
            return await self._send(method, path, expect, data, headers)
        except aiohttp.ClientConnectionError:
            if data is not None and not isinstance(data, bytes):
                raise  # a streamed body cannot be sent again
            # The server closed a pooled connection as the request left: send it once more.
            return await self._send(method, path, expect, data, headers)

    async def _send(
        self,
        method: str,
        path: str,
        expect: Iterable[int],
        data: bytes | AsyncIterator[bytes] | None,
        headers: dict[str, str] | None,
    ) -> bytes:
        async with self.session.request(
            method, self.url(path), data=data, headers=headers
        ) as response:
            body = await response.read()
            if response.status not in tuple(expect):
                raise BenchError(f"{method} {path}: HTTP {response.status} {body[:300]!r}")
            return body

    async def put(self, path: str, body: bytes) -> None:
        await self.request("PUT", path, (200, 201, 204), data=body)

    async def put_stream(self, path: str, chunks: AsyncIterator[bytes], size: int) -> None:
        """A streamed upload with a known Content-Length, as sync clients send big files."""
        headers = {"Content-Length": str(size), "Content-Type": "application/octet-stream"}
        await self.request("PUT", path, (200, 201, 204), data=chunks, headers=headers)

    async def get(self, path: str) -> int:
        """Download `path`, discarding the bytes; returns how many arrived.

        The pieces are taken as they arrive: joining them into fixed-size chunks first
        (`iter_chunked`) copied every byte once more, and made this client the limit of a
        large download (~600 MB/s from any server here, nginx included)."""
        received = 0
        async with self.session.get(self.url(path)) as response:
            if response.status != 200:
                raise BenchError(f"GET {path}: HTTP {response.status}")
            async for chunk in response.content.iter_any():
                received += len(chunk)
        return received

    async def propfind(self, path: str, depth: str, body: bytes = PROPFIND_NAMED) -> bytes:
        headers = {"Depth": depth, "Content-Type": "application/xml; charset=utf-8"}
        return await self.request("PROPFIND", path, (207,), data=body, headers=headers)

    async def exists(self, path: str) -> bool:
        headers = {"Depth": "0", "Content-Type": "application/xml; charset=utf-8"}
        body = await self.request(
            "PROPFIND", path, (207, 404), data=PROPFIND_NAMED, headers=headers
        )
        return count_responses(body) > 0

    async def mkcol(self, path: str) -> None:
        await self.request("MKCOL", path, (201,))

    async def move(self, source: str, destination: str) -> None:
        headers = {"Destination": self.url(destination), "Overwrite": "F"}
        await self.request("MOVE", source, (201, 204), headers=headers)

    async def copy(self, source: str, destination: str) -> None:
        headers = {"Destination": self.url(destination), "Overwrite": "F", "Depth": "infinity"}
        await self.request("COPY", source, (201, 204), headers=headers)

    async def delete(self, path: str) -> None:
        await self.request("DELETE", path, (200, 204))


async def run_pool(count: int, concurrency: int, job: Callable[[int], Awaitable[None]]) -> float:
    """Run job(0) … job(count - 1) with `concurrency` in flight; returns the elapsed seconds."""
    indexes = iter(range(count))

    async def worker() -> None:
        for index in indexes:
            await job(index)

    started = time.perf_counter()
    async with asyncio.TaskGroup() as group:
        for _ in range(min(concurrency, count)):
            group.create_task(worker())
    return time.perf_counter() - started


async def repeat_bytes(block: bytes, size: int) -> AsyncIterator[bytes]:
    """`size` bytes made of `block` repeated, yielded a block at a time (never all in memory)."""
    view = memoryview(block)
    sent = 0
    while sent < size:
        piece = view[: min(len(block), size - sent)]
        sent += len(piece)
        yield bytes(piece) if len(piece) < len(block) else block


def run_async(coroutine: Coroutine[Any, Any, T]) -> T:
    """Run a client coroutine on a fresh event loop (uvloop's when installed)."""
    try:
        import uvloop
    except ImportError:
        factory = None
    else:
        factory = uvloop.new_event_loop
    with asyncio.Runner(loop_factory=factory) as runner:
        return runner.run(coroutine)
