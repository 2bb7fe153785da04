"""The composition root: build concrete backends and services from settings, and the ASGI app."""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from ecrin import __version__
from ecrin.auth.credential_cache import CredentialCache
from ecrin.auth.passwords import PasswordHashing
from ecrin.coordination.factory import coordination_for
from ecrin.coordination.protocol import Coordination
from ecrin.core.clock import Clock, SystemClock
from ecrin.dav.app import PREFIXES, DavApp
from ecrin.db.sql import SqlMetadataStore
from ecrin.nextcloud import uploads as nextcloud_uploads
from ecrin.nextcloud.routes import DAV_HANDLERS
from ecrin.nextcloud.routes import routes as nextcloud_routes
from ecrin.services.accounts import AccountService
from ecrin.services.checksum_recalculation import ChecksumRecalculator
from ecrin.services.consistency import ConsistencyService
from ecrin.services.container import Services
from ecrin.services.contents import refuse_kept_in_database
from ecrin.services.file_writes import RetentionPolicy
from ecrin.services.files import FileService
from ecrin.services.groups import GroupService
from ecrin.services.housekeeping import housekeep_once, interval_for, run_housekeeping
from ecrin.services.locks import LockService
from ecrin.services.login_flows import LoginFlowService
from ecrin.services.notifications import ChangeNotifier
from ecrin.services.properties import PropertyService
from ecrin.services.sharing import LinkPolicy, SharingService
from ecrin.services.trash import TrashPolicy, TrashService
from ecrin.services.uploads import ChunkedUploadService
from ecrin.services.versions import VersionService
from ecrin.settings import Settings
from ecrin.storage.encryption.factory import encrypt_blob_store
from ecrin.storage.encryption.store import EncryptedBlobStore
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
    coordination: Coordination

    async def open(self) -> None:
        self.settings.data_dir.mkdir(parents=True, exist_ok=True)
        await self.coordination.open()
        await self.metadata.open()
        await self.blobs.open()
        # Plaintext kept while encryption was off (an index makes this look-up instant).
        if isinstance(self.blobs, EncryptedBlobStore) and not self.blobs.allow_unencrypted:
            await refuse_kept_in_database(self.metadata)

    async def close(self) -> None:
        await self.services.files.notifier.flush()
        await self.blobs.close()
        await self.metadata.close()
        await self.coordination.close()


def blob_store_at(settings: Settings, url: str) -> BlobStore:
    """The blob store at `url` as such (no encryption layer), tuned by `settings`."""
    return blob_store_from_url(url, fsync=settings.fsync, settings=settings)


def build_runtime(settings: Settings, clock: Clock | None = None) -> Runtime:
    clock = clock or SystemClock()
    metadata = SqlMetadataStore(
        settings.effective_database_url,
        durable=settings.fsync,
        pool_size=settings.database_pool_size,
    )
    blobs = blob_store_at(settings, settings.effective_storage_url)
    if settings.encryption:
        blobs = encrypt_blob_store(blobs, settings)
    coordination = coordination_for(settings)
    cache = CredentialCache(clock, settings.credential_cache_seconds)
    files = FileService(
        metadata,
        blobs,
        clock,
        RetentionPolicy(settings.versions_max_count, settings.versions_max_age_days * 86400.0),
        notifier=ChangeNotifier(coordination),
        inline_max=settings.effective_inline_max_bytes,
    )
    hashing = PasswordHashing(settings.argon2_time_cost, settings.argon2_memory_kib)
    sharing = SharingService(
        metadata,
        clock,
        LinkPolicy(
            settings.link_enforce_password,
            settings.link_max_expiry_days,
            settings.link_default_expiry_days,
        ),
        hashing,
        coordination=coordination,
    )
    trash_policy = TrashPolicy(
        settings.trash_retention_days * 86400.0, settings.trash_max_quota_share
    )
    accounts = AccountService(
        metadata,
        blobs,
        clock,
        cache,
        default_quota_bytes=settings.default_quota_bytes or None,
        hashing=hashing,
        coordination=coordination,
    )
    uploads = ChunkedUploadService(
        metadata,
        blobs,
        files,
        clock,
        lifetime_seconds=settings.upload_expiry_seconds,
        coordination=coordination,
    )
    services = Services(
        clock=clock,
        sharing=sharing,
        groups=GroupService(metadata, sharing, clock),
        trash=TrashService(metadata, files, clock, trash_policy),
        versions=VersionService(metadata, files, clock),
        accounts=accounts,
        files=files,
        locks=LockService(
            metadata,
            clock,
            default_timeout=settings.lock_default_timeout,
            max_timeout=settings.lock_max_timeout,
        ),
        properties=PropertyService(metadata, clock),
        consistency=ConsistencyService(metadata, blobs, clock, uploads),
        instance_id=_instance_id(settings),
        uploads=uploads,
        login_flows=LoginFlowService(metadata, accounts, clock),
        checksum_recalculator=ChecksumRecalculator(metadata, files),
    )
    return Runtime(settings, metadata, blobs, services, coordination)


def _instance_id(settings: Settings) -> str:
    """A stable short id for `oc:id` (Nextcloud's 'instanceid'), derived from the database."""
    digest = hashlib.sha256(settings.effective_database_url.encode()).hexdigest()
    return "oc" + digest[:10]


class EcrinApp:
    """Routes DAV URLs to the DAV adapter and everything else to the Starlette router."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self.dav = DavApp(runtime.services, runtime.settings, DAV_HANDLERS)
        self.uploads = nextcloud_uploads.UploadsApp(runtime.services, runtime.settings)
        self.router = Starlette(
            routes=[Route("/", _home), *nextcloud_routes(runtime.services, runtime.settings)],
            lifespan=self._lifespan,
        )

    @asynccontextmanager
    async def _lifespan(self, _app: Starlette) -> AsyncIterator[None]:
        await self.runtime.open()
        removed = await self.runtime.services.consistency.recover()
        if removed:
            log.info("recovery: removed %d unfinished uploads", len(removed))
        services = self.runtime.services
        await housekeep_once(services, self.runtime.coordination)
        interval = interval_for(self.runtime.settings.upload_expiry_seconds)
        housekeeping = asyncio.create_task(
            run_housekeeping(services, interval, self.runtime.coordination)
        )
        try:
            yield
        finally:
            housekeeping.cancel()
            with suppress(asyncio.CancelledError):
                await housekeeping
            await self.runtime.close()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"].startswith(PREFIXES):
            await self.dav(scope, receive, send)
        elif scope["type"] == "http" and scope["path"].startswith(nextcloud_uploads.URL_PREFIXES):
            await self.uploads(scope, receive, send)
        else:
            await self.router(scope, receive, send)


async def _home(_request: Request) -> Response:
    return PlainTextResponse(f"Ecrin {__version__}\nWebDAV: /remote.php/dav/files/<user>/\n")


def create_app(settings: Settings, clock: Clock | None = None) -> EcrinApp:
    return EcrinApp(build_runtime(settings, clock))
