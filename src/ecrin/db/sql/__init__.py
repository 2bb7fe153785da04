"""The SQL metadata store (SQLAlchemy Core): SQLite and PostgreSQL (asyncpg).

Write transactions on SQLite begin with BEGIN IMMEDIATE, so two writers never deadlock on a
lock upgrade, and are queued in-process, sharing their COMMITs (`group_commit`). SQLite runs
in WAL mode with synchronous=FULL: a commit returns only once it is on stable storage.

The statements of the everyday requests (GET, PUT, PROPFIND, MKCOL) are built once, at import
or once per shape (`statements`, run by `prepared`): building a Core statement costs far
more than SQLite takes to run it.

On PostgreSQL, writers run concurrently at READ COMMITTED. Where a transaction reads and then
writes on what it read (resolve a path, check quota and locks, then change the tree), the
first read of a home locks that home's root folder row (`SELECT … FOR UPDATE`), so writers of
one home queue as they do on SQLite while different homes proceed in parallel; every write
bumps the root's revision anyway, so this only takes that lock earlier. Two inserts of one
name still meet the unique constraint and give Conflict. Reads see one snapshot
(REPEATABLE READ, READ ONLY). Names sort bytewise on both (COLLATE "C" on PostgreSQL).
"""

from ecrin.db.sql.store import SqlMetadataStore
from ecrin.db.sql.transaction import SqlTransaction

__all__ = ["SqlMetadataStore", "SqlTransaction"]
