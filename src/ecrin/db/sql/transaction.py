"""`SqlTransaction`: one database transaction, made of its parts, one per kind of record."""

from ecrin.db.sql.accounts import SqlAccounts
from ecrin.db.sql.blobs import SqlBlobs
from ecrin.db.sql.history import SqlHistory
from ecrin.db.sql.locks import SqlLocks
from ecrin.db.sql.properties import SqlProperties
from ecrin.db.sql.sharing import SqlSharing
from ecrin.db.sql.subtrees import SqlSubtrees
from ecrin.db.sql.tree import SqlTree
from ecrin.db.sql.uploads import SqlUploads


class SqlTransaction(
    SqlAccounts,
    SqlTree,
    SqlSubtrees,
    SqlBlobs,
    SqlProperties,
    SqlLocks,
    SqlUploads,
    SqlSharing,
    SqlHistory,
):
    """One database transaction; the primitives the services compose atomically."""
