"""The composition root: build concrete backends and services from settings, and the ASGI app."""

from __future__ import annotations

import hashlib
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from ecrin import __version__
from ecrin.auth.credential_cache import CredentialCache
from ecrin.core.clock import Clock, SystemClock
from ecrin.dav.app import PREFIXES, DavApp
from ecrin.db.sql import SqlMetadataStore
from ecrin.services.accounts import AccountService
from ecrin.services.consistency import ConsistencyService
from ecrin.services.container import Services
from ecrin.services.files import FileService
from ecrin.services.locks import LockService
from ecrin.services.properties import PropertyService
from ecrin.settings import Settings
from ecrin.storage.encryption.factory import encrypt_blob_store
from ecrin.storage.factory import blob_store_from_url
from ecrin.storage.protocol import BlobStore

log = logging.getLogger(__name__)


@dataclass
class Runtime:
    """Everything an app instance owns; opened and closed together."""

    settings: Settings
    metadata: SqlMetadataStore
    blobs: BlobStore
    services: Services

    async def open(self) -> None:
        self.settings.data_dir.mkdir(parents=True, exist_ok=True)
        await self.metadata.open()
        await self.blobs.open()

    async def close(self) -> None:
        await self.blobs.close()
        await self.metadata.close()


def build_runtime(settings: Settings, clock: Clock | None = None) -> Runtime:
    clock = clock or SystemClock()
    metadata = SqlMetadataStore(settings.effective_database_url, durable=settings.fsync)
    blobs = blob_store_from_url(settings.effective_storage_url, fsync=settings.fsync)
    if settings.encryption:
        blobs = encrypt_blob_store(blobs, settings)
    cache = CredentialCache(clock, settings.credential_cache_seconds)
    services = Services(
        clock=clock,
        accounts=AccountService(
            metadata, blobs, clock, cache, default_quota_bytes=settings.default_quota_bytes or None
        ),
        files=FileService(metadata, blobs, clock),
        locks=LockService(
            metadata,
            clock,
            default_timeout=settings.lock_default_timeout,
            max_timeout=settings.lock_max_timeout,
        ),
        properties=PropertyService(metadata, clock),
        consistency=ConsistencyService(metadata, blobs, clock),
        instance_id=_instance_id(settings),
    )
    return Runtime(settings, metadata, blobs, services)


def _instance_id(settings: Settings) -> str:
    """A stable short id for `oc:id` (Nextcloud's 'instanceid'), derived from the database."""
    digest = hashlib.sha256(settings.effective_database_url.encode()).hexdigest()
    return "oc" + digest[:10]


class EcrinApp:
    """Routes DAV URLs to the DAV adapter and everything else to the Starlette router."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self.dav = DavApp(runtime.services, runtime.settings)
        self.router = Starlette(
            routes=[Route("/", _home)],
            lifespan=self._lifespan,
        )

    @asynccontextmanager
    async def _lifespan(self, _app: Starlette) -> AsyncIterator[None]:
        await self.runtime.open()
        removed = await self.runtime.services.consistency.recover()
        if removed:
            log.info("recovery: removed %d unfinished uploads", len(removed))
        try:
            yield
        finally:
            await self.runtime.close()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"].startswith(PREFIXES):
            await self.dav(scope, receive, send)
        else:
            await self.router(scope, receive, send)


async def _home(_request: Request) -> Response:
    return PlainTextResponse(f"Ecrin {__version__}\nWebDAV: /remote.php/dav/files/<user>/\n")


def create_app(settings: Settings, clock: Clock | None = None) -> EcrinApp:
    return EcrinApp(build_runtime(settings, clock))
