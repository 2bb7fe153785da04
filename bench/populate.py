"""Fill an Ecrin instance's metadata with millions of files, fast, while the server is stopped.

Rows go straight into SQLite with `executemany` in large transactions (journal off during the
load, WAL restored after), every file sharing one small blob. The tree is what a big account
looks like: `bulk/dNNNNN/` folders of 1,000 files each, then `list/`, the folder the benchmark
lists. Folder sizes, the user's usage and the blob's reference count are kept consistent, so
`ecrin check` finds nothing to repair.
"""

from __future__ import annotations

import asyncio
import hashlib
import sqlite3
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from bench.client import BenchError

SEED = b"ecrin benchmark file\n"
FILES_PER_FOLDER = 1_000
BATCH_ROWS = 1_000_000
KNOWN_COLUMNS = (
    "id",
    "parent_id",
    "owner_id",
    "name",
    "kind",
    "size",
    "mtime",
    "revision",
    "blob_id",
    "sha256",
    "content_type",
    "checksums",
    "created_at",
)


@dataclass(frozen=True)
class Population:
    files: int
    seconds: float
    database_bytes: int


async def _store_seed_blob(blobs_root: Path) -> str:
    from ecrin.storage.local import LocalBlobStore

    store = LocalBlobStore(blobs_root, fsync=False)
    await store.open()
    writer = await store.create()
    await writer.write(SEED)
    return str(await writer.commit())


def _node_columns(db: sqlite3.Connection) -> list[str]:
    """The nodes columns to fill; fails loudly if the schema gained a required one."""
    columns = db.execute("PRAGMA table_info(nodes)").fetchall()
    for _cid, name, _type, not_null, default, primary_key in columns:
        if name not in KNOWN_COLUMNS and not_null and default is None and not primary_key:
            raise BenchError(f"nodes.{name} is new and required: teach bench/populate.py")
    missing = set(KNOWN_COLUMNS) - {c[1] for c in columns}
    if missing:
        raise BenchError(f"nodes lost columns {sorted(missing)}: update bench/populate.py")
    return list(KNOWN_COLUMNS)


class _Rows:
    """Node rows as tuples in KNOWN_COLUMNS order, with ids handed out in insertion order."""

    def __init__(self, next_id: int, owner_id: int, blob_id: str, now: float) -> None:
        self.next_id = next_id
        self.owner_id = owner_id
        self.blob_id = blob_id
        self.sha256 = hashlib.sha256(SEED).hexdigest()
        self.now = now

    def folder(self, parent_id: int, name: str, size: int) -> tuple[int, tuple[object, ...]]:
        """(the folder's id, its row)."""
        node_id = self.next_id
        self.next_id += 1
        row = (node_id, parent_id, self.owner_id, name, "folder", size, self.now, 1)
        return node_id, (*row, None, None, None, None, self.now)

    def files(self, parent_id: int, count: int, width: int) -> Iterator[tuple[object, ...]]:
        first = self.next_id
        self.next_id += count
        owner, blob, sha, now, size = self.owner_id, self.blob_id, self.sha256, self.now, len(SEED)
        for index in range(count):
            name = f"f{index:0{width}d}.txt"
            yield (
                first + index,
                parent_id,
                owner,
                name,
                "file",
                size,
                now,
                1,
                blob,
                sha,
                "text/plain",
                None,
                now,
            )


def populate(
    directory: Path, database: Path, user: str, bulk_files: int, listing: int
) -> Population:
    """Add `bulk_files` files under bulk/ and `listing` files under list/ to `user`'s home."""
    started = time.perf_counter()
    blob_id = asyncio.run(_store_seed_blob(directory / "data" / "blobs"))
    db = sqlite3.connect(database, isolation_level=None)
    try:
        _load(db, user, blob_id, bulk_files, listing)
    finally:
        db.close()
    return Population(bulk_files + listing, time.perf_counter() - started, database.stat().st_size)


def _load(db: sqlite3.Connection, user: str, blob_id: str, bulk_files: int, listing: int) -> None:
    for pragma in ("journal_mode=OFF", "synchronous=OFF", "cache_size=-1000000"):
        db.execute(f"PRAGMA {pragma}")
    columns = _node_columns(db)
    found = db.execute("SELECT id, root_node_id FROM users WHERE name = ?", (user,)).fetchone()
    if found is None:
        raise BenchError(f"no user {user!r} to populate")
    owner_id, root_id = found
    (max_id,) = db.execute("SELECT max(id) FROM nodes").fetchone()
    rows = _Rows(int(max_id) + 1, owner_id, blob_id, time.time())
    insert = f"INSERT INTO nodes ({', '.join(columns)}) VALUES ({', '.join('?' for _ in columns)})"
    size = len(SEED)

    db.execute("BEGIN")
    if bulk_files:
        folders = -(-bulk_files // FILES_PER_FOLDER)
        bulk_id, bulk = rows.folder(root_id, "bulk", bulk_files * size)
        db.execute(insert, bulk)
        counts = [min(FILES_PER_FOLDER, bulk_files - k * FILES_PER_FOLDER) for k in range(folders)]
        first_folder = rows.next_id
        db.executemany(
            insert,
            (rows.folder(bulk_id, f"d{k:05d}", n * size)[1] for k, n in enumerate(counts)),
        )
        done = 0
        for k, count in enumerate(counts):
            db.executemany(insert, rows.files(first_folder + k, count, 4))
            done += count
            if done % BATCH_ROWS < count:  # commit about every million rows
                db.execute("COMMIT")
                db.execute("BEGIN")
    listing_id, listing_row = rows.folder(root_id, "list", listing * size)
    db.execute(insert, listing_row)
    db.executemany(insert, rows.files(listing_id, listing, 5))

    total = (bulk_files + listing) * size
    db.execute(
        "UPDATE nodes SET size = size + ?, revision = revision + 1 WHERE id = ?", (total, root_id)
    )
    db.execute("UPDATE users SET used_bytes = used_bytes + ? WHERE id = ?", (total, owner_id))
    db.execute(
        "INSERT INTO blobs (id, size, sha256, refcount, created_at) VALUES (?, ?, ?, ?, ?)",
        (blob_id, size, rows.sha256, bulk_files + listing, rows.now),
    )
    db.execute("COMMIT")
    db.execute("PRAGMA journal_mode=WAL")
