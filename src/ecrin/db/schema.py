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
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)

SCHEMA_VERSION = 1

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
