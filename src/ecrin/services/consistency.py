"""`ecrin check`: reconcile metadata and blobs after a crash, and verify checksums."""

from __future__ import annotations

import hashlib
import logging

from ecrin.core.clock import Clock
from ecrin.core.errors import EcrinError
from ecrin.core.model import CheckReport
from ecrin.db.protocol import MetadataStore
from ecrin.services.contents import read_blob
from ecrin.services.uploads import ChunkedUploadService
from ecrin.storage.protocol import BlobStore

log = logging.getLogger(__name__)

# Blobs younger than this may belong to an upload whose metadata commit is still running.
DEFAULT_GRACE_SECONDS = 3600.0


class ConsistencyService:
    def __init__(
        self,
        metadata: MetadataStore,
        blobs: BlobStore,
        clock: Clock,
        uploads: ChunkedUploadService | None = None,
    ) -> None:
        self.metadata = metadata
        self.blobs = blobs
        self.clock = clock
        self.uploads = uploads

    async def recover(self, grace_seconds: float = DEFAULT_GRACE_SECONDS) -> list[str]:
        """Startup recovery: remove temporary files a crash left behind."""
        return await self.blobs.clean_temporary(self.clock.now() - grace_seconds)

    async def check(
        self,
        *,
        repair: bool = False,
        verify_checksums: bool = False,
        grace_seconds: float = DEFAULT_GRACE_SECONDS,
    ) -> CheckReport:
        report = CheckReport(repaired=repair)
        cutoff = self.clock.now() - grace_seconds
        async with self.metadata.read() as tx:
            records = await tx.blob_records()
            references = await tx.blob_reference_counts()
            usage = await tx.usage_by_user()
            users = await tx.list_users()
            chunk_blobs = await tx.upload_chunk_blob_ids()
            inline = await tx.inline_blob_ids()  # their bytes are in their rows

        stored = {blob_id async for blob_id in self.blobs.list_blobs(older_than=cutoff)}
        report.orphan_blobs = sorted(stored - set(records) - set(references) - chunk_blobs)
        for blob_id in sorted(set(references)):
            if blob_id not in records or (
                blob_id not in inline and not await self.blobs.exists(blob_id)
            ):
                report.missing_blobs.append(blob_id)
        for blob_id, (_, _, refcount) in sorted(records.items()):
            if references.get(blob_id, 0) != refcount:
                report.refcount_fixes.append(
                    f"{blob_id}: {refcount} recorded, {references.get(blob_id, 0)} real"
                )
        for user in users:
            real = usage.get(user.id, 0)
            if real != user.used_bytes:
                report.usage_fixes.append(f"{user.name}: {user.used_bytes} recorded, {real} real")
        if verify_checksums:
            for blob_id, (_, sha256, _) in sorted(records.items()):
                if blob_id not in report.missing_blobs and not await self._sha256_ok(
                    blob_id, sha256
                ):
                    report.checksum_mismatches.append(blob_id)
        report.stale_temp_files = await self.blobs.clean_temporary(cutoff) if repair else []
        if self.uploads is not None:
            uploads = self.uploads
            report.expired_uploads = await (uploads.expire() if repair else uploads.expired())
        if repair:
            await self._repair(report, references, usage, {u.id for u in users})
        return report

    async def _sha256_ok(self, blob_id: str, expected: str) -> bool:
        digest = hashlib.sha256()
        try:
            async for chunk in read_blob(self.metadata, self.blobs, blob_id):
                digest.update(chunk)
        except EcrinError:
            return False
        return digest.hexdigest() == expected

    async def _repair(
        self,
        report: CheckReport,
        references: dict[str, int],
        usage: dict[int, int],
        user_ids: set[int],
    ) -> None:
        for blob_id in report.orphan_blobs:
            await self.blobs.delete(blob_id)
        async with self.metadata.write() as tx:
            for entry in report.refcount_fixes:
                blob_id = entry.split(":", 1)[0]
                await tx.set_blob_refcount(blob_id, references.get(blob_id, 0))
            for user_id in user_ids:
                await tx.set_usage(user_id, usage.get(user_id, 0))
        if report.missing_blobs or report.checksum_mismatches:
            log.error(
                "check: %d missing and %d corrupt blobs cannot be repaired from here; "
                "restore them from a backup",
                len(report.missing_blobs),
                len(report.checksum_mismatches),
            )
