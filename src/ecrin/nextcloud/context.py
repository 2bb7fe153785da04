"""What every Nextcloud endpoint receives: the services, the settings, and shared helpers."""

from __future__ import annotations

from dataclasses import dataclass

from starlette.requests import Request

from ecrin.core.errors import BadRequest, PayloadTooLarge
from ecrin.core.model import User
from ecrin.http.authentication import authenticate, basic_credentials
from ecrin.services.container import Services
from ecrin.settings import Settings

MAX_FORM_BYTES = 16 * 1024


@dataclass(frozen=True)
class NextcloudContext:
    services: Services
    settings: Settings

    def server_url(self, request: Request) -> str:
        """The URL clients reach this server at (the configured public URL, else the request's)."""
        if self.settings.public_url:
            return self.settings.public_url.rstrip("/")
        root = request.scope.get("root_path", "").rstrip("/")
        return f"{request.url.scheme}://{request.url.netloc}{root}"

    async def user(self, request: Request) -> User:
        """The caller, from Basic credentials (401 without them or if they are wrong)."""
        return await authenticate(request, self.services.accounts)

    async def user_if_any(self, request: Request) -> User | None:
        """The caller if credentials were sent (401 if they are wrong), else None."""
        if basic_credentials(request) is None:
            return None
        return await self.user(request)


async def read_small_body(request: Request, limit: int = MAX_FORM_BYTES) -> bytes:
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise PayloadTooLarge(f"this endpoint accepts at most {limit} bytes")
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise PayloadTooLarge(f"this endpoint accepts at most {limit} bytes")
    return bytes(body)


def header_int(request: Request, name: str) -> int | None:
    """A non-negative integer header (OC-Total-Length, OC-Chunk-Offset…), or None if absent."""
    raw = request.headers.get(name)
    if raw is None:
        return None
    raw = raw.strip()
    if not raw.isdigit() or len(raw) > 18:
        raise BadRequest(f"{name} must be a non-negative integer")
    return int(raw)
