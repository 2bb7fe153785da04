"""One request to the uploads area: who, which upload and chunk, and header helpers."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import quote, unquote

from starlette.requests import Request

from ecrin.core.errors import BadRequest, EcrinError, Forbidden
from ecrin.core.model import User
from ecrin.core.paths import DavPath
from ecrin.dav.context import DavContext
from ecrin.services.container import Services
from ecrin.settings import Settings


@dataclass
class UploadRequest:
    """One request to the uploads area, authenticated and split into its parts."""

    request: Request
    services: Services
    settings: Settings
    user: User
    base: str  # the user's uploads folder, decoded, without trailing slash
    files_bases: tuple[str, ...]  # decoded URL prefixes of the user's files
    transfer_id: str | None
    chunk: str | None

    def header(self, name: str) -> str | None:
        return self.request.headers.get(name)

    def href(self, *names: str, folder: bool = False) -> str:
        path = "/".join((self.base, *names))
        return quote(path + "/" if folder else path)

    def files_context(self, path: DavPath, base: str | None = None) -> DavContext:
        """A DAV context on the user's files, for locks, If headers and X-OC-Mtime."""
        return DavContext(
            request=self.request,
            services=self.services,
            settings=self.settings,
            principal=self.user,
            home=self.user,
            base=base or self.files_bases[0],
            path=path,
        )

    def destination(self, *, required: bool) -> DavPath | None:
        """The Destination as a path in the user's files (an absolute URL or a path)."""
        raw = self.header("destination")
        if not raw:
            if required:
                raise BadRequest("a Destination header is required")
            return None
        candidates = [raw] + ([unquote(raw)] if "%" in raw else [])
        problem: EcrinError = Forbidden("Destination is outside this user's files")
        for candidate in candidates:
            for base in self.files_bases:
                try:
                    return self.files_context(DavPath(), base).path_from_url(
                        candidate, what="Destination"
                    )
                except (BadRequest, Forbidden) as error:
                    problem = error if isinstance(error, BadRequest) else problem
        if required:
            raise problem
        return None
