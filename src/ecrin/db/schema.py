"""The metadata schema (SQLAlchemy Core), shared by SQLite and PostgreSQL.

Design notes:
- `nodes` is an adjacency tree: a node knows its parent and its name, so a MOVE of a folder
  rewrites one row whatever lies below it. `revision` bumps on the node and its ancestors
  on every change; the etag derives from (id, revision).
- `blobs.refcount` counts the file versions that use a blob, so COPY shares bytes.
- `tenant` on users leaves room for organisations on one instance.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)

# `schema_info.version`: 2 since Alembic migrations (`ecrin.db.migrations`) took over, so
# that builds from before them, which accept only 1, refuse a migrated database.
SCHEMA_VERSION = 2

metadata = MetaData()

schema_info = Table(
    "schema_info",
    metadata,
    Column("key", String(64), primary_key=True),
    Column("value", String(255), nullable=False),
)

users = Table(
    "users",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("tenant", String(64), nullable=False, default="default"),
    Column("name", String(255), nullable=False, unique=True),
    Column("display_name", String(255), nullable=False),
    Column("password_hash", String(255), nullable=False),
    Column("quota_bytes", BigInteger, nullable=True),
    Column("used_bytes", BigInteger, nullable=False, default=0),
    Column("is_admin", Boolean, nullable=False, default=False),
    Column("root_node_id", BigInteger, nullable=True),
    Column("trash_node_id", BigInteger, nullable=True),
    Column("created_at", Float, nullable=False),
)

app_passwords = Table(
    "app_passwords",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("user_id", Integer, ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    Column("name", String(255), nullable=False),
    Column("token_hash", String(128), nullable=False, unique=True),
    Column("created_at", Float, nullable=False),
    Column("last_used_at", Float, nullable=True),
)

nodes = Table(
    "nodes",
    metadata,
    Column(
        "id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    ),
    Column("parent_id", BigInteger, ForeignKey("nodes.id"), nullable=True),
    Column("owner_id", Integer, ForeignKey("users.id"), nullable=False),
    Column("name", String(255), nullable=False),
    Column("kind", String(8), nullable=False),
    Column("size", BigInteger, nullable=False, default=0),
    Column("mtime", Float, nullable=False),
    Column("revision", BigInteger, nullable=False, default=1),
    Column("blob_id", String(64), nullable=True),
    Column("sha256", String(64), nullable=True),
    Column("content_type", String(255), nullable=True),
    Column("checksums", String(512), nullable=True),
    Column("created_at", Float, nullable=False),
    UniqueConstraint("parent_id", "name", name="uq_nodes_parent_name"),
)
Index("ix_nodes_blob", nodes.c.blob_id)
Index("ix_nodes_owner", nodes.c.owner_id)

blobs = Table(
    "blobs",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("size", BigInteger, nullable=False),
    Column("sha256", String(64), nullable=False),
    Column("refcount", Integer, nullable=False),
    Column("created_at", Float, nullable=False),
    # The bytes of a small blob, committed with its metadata (`services/contents.py`); NULL
    # when they are in the blob store.
    Column("content", LargeBinary, nullable=True),
)

# The blobs whose bytes are in their row: found at once (`ecrin check`, every encrypted start).
Index(
    "ix_blobs_inline",
    blobs.c.id,
    sqlite_where=blobs.c.content.is_not(None),
    postgresql_where=blobs.c.content.is_not(None),
)

properties = Table(
    "properties",
    metadata,
    Column("node_id", BigInteger, ForeignKey("nodes.id", ondelete="CASCADE"), primary_key=True),
    Column("namespace", String(255), primary_key=True),
    Column("name", String(255), primary_key=True),
    Column("xml", Text, nullable=False),
)

locks = Table(
    "locks",
    metadata,
    Column("token", String(64), primary_key=True),
    Column("owner_id", Integer, ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    Column("path", Text, nullable=False),
    Column("scope", String(16), nullable=False),
    Column("depth_infinity", Boolean, nullable=False),
    Column("owner_xml", Text, nullable=False),
    Column("principal_id", Integer, nullable=False),
    Column("timeout_seconds", Integer, nullable=False),
    Column("expires_at", Float, nullable=False),
)
Index("ix_locks_owner", locks.c.owner_id)
Index("ix_locks_expires", locks.c.expires_at)

# Chunked uploads in progress (Nextcloud's uploads/ area). Chunk bytes are ordinary blobs in
# the blob store, referenced from here until the upload is assembled, aborted or expires.
upload_sessions = Table(
    "upload_sessions",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("user_id", Integer, ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    Column("name", String(255), nullable=False),
    Column("destination", Text, nullable=True),
    Column("total_length", BigInteger, nullable=True),
    Column("created_at", Float, nullable=False),
    Column("touched_at", Float, nullable=False),
    UniqueConstraint("user_id", "name", name="uq_upload_sessions_user_name"),
)
Index("ix_upload_sessions_touched", upload_sessions.c.touched_at)

upload_chunks = Table(
    "upload_chunks",
    metadata,
    Column(
        "session_id",
        Integer,
        ForeignKey("upload_sessions.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    Column("name", String(64), primary_key=True),
    Column("blob_id", String(64), nullable=False),
    Column("size", BigInteger, nullable=False),
    Column("byte_offset", BigInteger, nullable=True),
    Column("created_at", Float, nullable=False),
)

# Login flow v2: only hashes of the two tokens are stored; the app password is created when
# the client collects it, so no usable secret ever sits in the database.
login_flows = Table(
    "login_flows",
    metadata,
    Column("poll_token_hash", String(64), primary_key=True),
    Column("login_token_hash", String(64), nullable=False, unique=True),
    Column("client_name", String(255), nullable=False),
    Column("user_id", Integer, ForeignKey("users.id", ondelete="CASCADE"), nullable=True),
    Column("created_at", Float, nullable=False),
    Column("expires_at", Float, nullable=False),
)

groups = Table(
    "groups",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("tenant", String(64), nullable=False, default="default"),
    Column("name", String(255), nullable=False, unique=True),
    Column("display_name", String(255), nullable=False),
    Column("created_at", Float, nullable=False),
)

group_members = Table(
    "group_members",
    metadata,
    Column("group_id", Integer, ForeignKey("groups.id", ondelete="CASCADE"), primary_key=True),
    Column("user_id", Integer, ForeignKey("users.id", ondelete="CASCADE"), primary_key=True),
)
Index("ix_group_members_user", group_members.c.user_id)

# A share grants `permissions` on `node_id` (in the storage of `node_owner_id`) to a user, a
# group or anyone holding the link `token`. `parent_share_id` names the share through which a
# resharer reached the node: a reshare's rights are capped by its parent's, at every request.
shares = Table(
    "shares",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("share_type", Integer, nullable=False),  # 0 user, 1 group, 3 public link
    Column("node_id", BigInteger, ForeignKey("nodes.id", ondelete="CASCADE"), nullable=False),
    Column("node_owner_id", Integer, ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    Column("created_by", Integer, ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    Column("parent_share_id", Integer, ForeignKey("shares.id", ondelete="CASCADE"), nullable=True),
    Column("share_with_user", Integer, ForeignKey("users.id", ondelete="CASCADE"), nullable=True),
    Column("share_with_group", Integer, ForeignKey("groups.id", ondelete="CASCADE"), nullable=True),
    Column("permissions", Integer, nullable=False),
    Column("token", String(64), nullable=True, unique=True),
    Column("password_hash", String(255), nullable=True),
    Column("expires_at", Float, nullable=True),
    Column("label", String(255), nullable=False, default=""),
    Column("note", Text, nullable=False, default=""),
    Column("hide_download", Boolean, nullable=False, default=False),
    Column("created_at", Float, nullable=False),
)
Index("ix_shares_node", shares.c.node_id)
Index("ix_shares_user", shares.c.share_with_user)
Index("ix_shares_group", shares.c.share_with_group)
Index("ix_shares_parent", shares.c.parent_share_id)

# Where a user- or group-share appears in a recipient's tree (they may rename or move it).
mounts = Table(
    "mounts",
    metadata,
    Column("share_id", Integer, ForeignKey("shares.id", ondelete="CASCADE"), primary_key=True),
    Column("user_id", Integer, ForeignKey("users.id", ondelete="CASCADE"), primary_key=True),
    Column("parent_id", BigInteger, ForeignKey("nodes.id", ondelete="CASCADE"), nullable=False),
    Column("name", String(255), nullable=False),
    UniqueConstraint("parent_id", "name", name="uq_mounts_parent_name"),
)

# Earlier contents of a file: the blob reference moves here on overwrite (no bytes copied).
versions = Table(
    "versions",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("node_id", BigInteger, ForeignKey("nodes.id", ondelete="CASCADE"), nullable=False),
    Column("blob_id", String(64), nullable=False),
    Column("size", BigInteger, nullable=False),
    Column("sha256", String(64), nullable=True),
    Column("checksums", String(512), nullable=True),
    Column("mtime", Float, nullable=False),
    Column("created_at", Float, nullable=False),
    Column("author_id", Integer, nullable=True),
)
Index("ix_versions_node", versions.c.node_id)

# A deleted item: its node (and subtree) now hangs under the owner's trash folder.
trash = Table(
    "trash",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column(
        "node_id",
        BigInteger,
        ForeignKey("nodes.id", ondelete="CASCADE"),
        nullable=False,
        unique=True,
    ),
    Column("owner_id", Integer, ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    Column("original_parent_id", BigInteger, nullable=True),
    Column("original_name", String(255), nullable=False),
    Column("original_path", Text, nullable=False),
    Column("size", BigInteger, nullable=False),
    Column("deleted_at", Float, nullable=False),
    Column("deleted_by", Integer, nullable=True),
)
Index("ix_trash_owner", trash.c.owner_id)
