"""`ecrin check`: what a crash or a bug can leave behind is found, and repaired when it can be.

The check ignores blobs and temporary files younger than its grace period (uploads in
flight). It compares file times with the app's clock, so these tests bring the manual
clock up to the wall clock before each check.
"""

from __future__ import annotations

import logging
import os
import secrets
import time
from pathlib import Path
from typing import Any

import pytest

from ecrin.app import EcrinApp
from ecrin.core.clock import ManualClock
from ecrin.core.model import CheckReport
from ecrin.core.paths import DavPath
from ecrin.db.schema import blobs
from ecrin.services.consistency import ConsistencyService
from ecrin.settings import INLINE_MAX_LIMIT
from tests.profile import scaleout_profile
from tests.support import Dav

HOUR = 3600.0
STORED = INLINE_MAX_LIMIT + 1  # large enough to be in the blob store, never in the database


@pytest.fixture
def blob_root(app: EcrinApp) -> Path:
    if scaleout_profile():
        pytest.skip("damages blob files on the local disk; the scale-out profile keeps them in S3")
    return app.runtime.settings.data_dir / "blobs"


class Checker:
    """The consistency service, run with the manual clock caught up to the wall clock."""

    def __init__(self, service: ConsistencyService, clock: ManualClock) -> None:
        self.service = service
        self.clock = clock

    def _catch_up(self) -> None:
        self.clock.advance(max(0.0, time.time() + 1 - self.clock.now()))

    async def check(self, **options: Any) -> CheckReport:
        self._catch_up()
        return await self.service.check(**options)

    async def recover(self) -> list[str]:
        self._catch_up()
        return await self.service.recover()


@pytest.fixture
def consistency(app: EcrinApp, clock: ManualClock) -> Checker:
    return Checker(app.runtime.services.consistency, clock)


def age(path: Path, seconds: float) -> None:
    then = time.time() - seconds
    os.utime(path, (then, then))


async def blob_of(app: EcrinApp, path: str) -> str:
    user = await app.runtime.services.accounts.get_user("alice")
    node = await app.runtime.services.files.lookup(user, DavPath.parse(path))
    assert node is not None and node.blob_id is not None
    return node.blob_id


def blob_file(root: Path, blob_id: str) -> Path:
    # the contents, not an encryption key record of the same id (encryption profile)
    found = [p for p in root.rglob(blob_id) if p.is_file() and "key-records" not in p.parts]
    assert len(found) == 1, found
    return found[0]


async def plant_orphan(app: EcrinApp, data: bytes = b"nobody refers to me") -> str:
    """A committed blob no metadata references: a crash between the blob and the commit."""
    writer = await app.runtime.blobs.create()
    await writer.write(data)
    return await writer.commit()


@pytest.fixture
async def files(alice: Dav) -> Dav:
    """A history of everyday operations: the result must check clean."""
    await alice.mkcol("/docs")
    await alice.put("/docs/a.txt", b"first", status=201)
    await alice.put("/docs/a.txt", b"second, longer", status=204)
    await alice.copy("/docs/a.txt", "/docs/b.txt", status=201)
    await alice.move("/docs/b.txt", "/c.txt", status=201)
    await alice.put("/gone.txt", b"to be deleted", status=201)
    await alice.delete("/gone.txt")
    return alice


async def test_everyday_operations_leave_a_clean_store(files: Dav, consistency: Checker) -> None:
    report = await consistency.check(grace_seconds=0, verify_checksums=True)
    assert report.clean, report


async def test_an_orphan_blob_is_found_and_removed(
    app: EcrinApp, files: Dav, consistency: Checker, blob_root: Path
) -> None:
    orphan = await plant_orphan(app)
    age(blob_file(blob_root, orphan), 2 * HOUR)

    found = await consistency.check()
    assert found.orphan_blobs == [orphan]
    assert not found.clean
    assert await app.runtime.blobs.exists(orphan), "a check without --repair changes nothing"

    repaired = await consistency.check(repair=True)
    assert repaired.orphan_blobs == [orphan]
    assert not await app.runtime.blobs.exists(orphan)
    assert (await consistency.check(grace_seconds=0, verify_checksums=True)).clean
    # What is referenced is untouched.
    assert (await files.get("/docs/a.txt")).content == b"second, longer"
    assert (await files.get("/c.txt")).content == b"second, longer"


async def test_young_blobs_are_left_to_uploads_in_flight(
    app: EcrinApp, files: Dav, consistency: Checker
) -> None:
    orphan = await plant_orphan(app)  # written just now: maybe an upload about to commit
    report = await consistency.check(repair=True, grace_seconds=HOUR)
    assert report.orphan_blobs == []
    assert await app.runtime.blobs.exists(orphan)
    assert (await consistency.check(grace_seconds=0)).orphan_blobs == [orphan]


async def test_a_stale_temporary_file_is_removed(
    files: Dav, consistency: Checker, blob_root: Path
) -> None:
    stale = blob_root / "tmp" / secrets.token_hex(16)
    stale.write_bytes(b"half an upload")
    age(stale, 2 * HOUR)
    fresh = blob_root / "tmp" / secrets.token_hex(16)
    fresh.write_bytes(b"an upload in progress")

    assert (await consistency.check()).stale_temp_files == []  # reported when repairing
    assert stale.exists()
    report = await consistency.check(repair=True)
    assert report.stale_temp_files == [stale.name]
    assert not stale.exists()
    assert fresh.exists()


async def test_startup_recovery_removes_old_temporary_files(
    consistency: Checker, blob_root: Path
) -> None:
    stale = blob_root / "tmp" / secrets.token_hex(16)
    stale.write_bytes(b"left by a crash")
    age(stale, 2 * HOUR)
    assert await consistency.recover() == [stale.name]
    assert not stale.exists()


async def test_reference_count_drift_is_fixed(
    app: EcrinApp, files: Dav, consistency: Checker
) -> None:
    shared = await blob_of(app, "/docs/a.txt")
    assert await blob_of(app, "/c.txt") == shared  # COPY shares the bytes
    records = await _blob_records(app)
    real = records[shared][2]
    async with app.runtime.metadata.write() as tx:
        await tx.set_blob_refcount(shared, real + 3)

    report = await consistency.check(grace_seconds=0)
    assert report.refcount_fixes == [f"{shared}: {real + 3} recorded, {real} real"]
    await consistency.check(repair=True, grace_seconds=0)
    assert (await _blob_records(app))[shared][2] == real
    assert (await consistency.check(grace_seconds=0)).clean


async def test_usage_drift_is_fixed(app: EcrinApp, files: Dav, consistency: Checker) -> None:
    alice = await app.runtime.services.accounts.get_user("alice")
    real = alice.used_bytes
    assert real == 2 * len(b"second, longer")
    async with app.runtime.metadata.write() as tx:
        await tx.set_usage(alice.id, 12345)

    report = await consistency.check(grace_seconds=0)
    assert report.usage_fixes == [f"alice: 12345 recorded, {real} real"]
    await consistency.check(repair=True, grace_seconds=0)
    assert (await app.runtime.services.accounts.get_user("alice")).used_bytes == real
    assert await files.prop("/", "d:quota-used-bytes") == str(real)
    assert (await consistency.check(grace_seconds=0)).clean


async def test_missing_and_corrupt_blobs_are_reported_not_hidden(
    app: EcrinApp,
    files: Dav,
    consistency: Checker,
    blob_root: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    await files.put("/lost.txt", STORED * b"v", status=201)
    await files.put("/rotten.txt", STORED * b"r", status=201)
    lost = await blob_of(app, "/lost.txt")
    rotten = await blob_of(app, "/rotten.txt")
    blob_file(blob_root, lost).unlink()
    blob_file(blob_root, rotten).write_bytes(b"bit rot!")

    assert (await consistency.check(grace_seconds=0)).missing_blobs == [lost]
    report = await consistency.check(grace_seconds=0, verify_checksums=True)
    assert report.checksum_mismatches == [rotten]
    with caplog.at_level(logging.ERROR):
        repaired = await consistency.check(repair=True, grace_seconds=0, verify_checksums=True)
    assert repaired.missing_blobs == [lost] and repaired.checksum_mismatches == [rotten]
    assert "restore them from a backup" in caplog.text
    assert not (await consistency.check(grace_seconds=0)).clean


async def _blob_records(app: EcrinApp) -> dict[str, tuple[int, str, int]]:
    async with app.runtime.metadata.read() as tx:
        return await tx.blob_records()


async def test_small_files_kept_in_the_database_are_checked_there(
    app: EcrinApp, files: Dav, consistency: Checker
) -> None:
    if not app.runtime.settings.effective_inline_max_bytes:
        pytest.skip("this profile keeps no contents in the database")
    await files.put("/small.txt", b"kept in its row", status=201)
    small = await blob_of(app, "/small.txt")
    async with app.runtime.metadata.read() as tx:
        assert small in await tx.inline_blob_ids()
    report = await consistency.check(grace_seconds=0, verify_checksums=True)
    assert report.clean, report
    async with app.runtime.metadata.write() as tx:  # the bytes rot in the row itself
        rot = blobs.update().where(blobs.c.id == small).values(content=b"kept in its rot")
        await tx._conn.execute(rot)
    report = await consistency.check(grace_seconds=0, verify_checksums=True)
    assert report.checksum_mismatches == [small] and report.missing_blobs == []
