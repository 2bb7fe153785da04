"""Baseline: the schema as Ecrin 0.1 created it (schema_info version 1).

Revision ID: 0001
Revises: (none)

Databases built before migrations existed are stamped with this revision when first opened.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision: str | None = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "schema_info",
        sa.Column("key", sa.String(64), primary_key=True),
        sa.Column("value", sa.String(255), nullable=False),
    )
    op.create_table(
        "users",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("tenant", sa.String(64), nullable=False),
        sa.Column("name", sa.String(255), nullable=False, unique=True),
        sa.Column("display_name", sa.String(255), nullable=False),
        sa.Column("password_hash", sa.String(255), nullable=False),
        sa.Column("quota_bytes", sa.BigInteger, nullable=True),
        sa.Column("used_bytes", sa.BigInteger, nullable=False),
        sa.Column("is_admin", sa.Boolean, nullable=False),
        sa.Column("root_node_id", sa.BigInteger, nullable=True),
        sa.Column("created_at", sa.Float, nullable=False),
    )
    op.create_table(
        "app_passwords",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column(
            "user_id", sa.Integer, sa.ForeignKey("users.id", ondelete="CASCADE"), nullable=False
        ),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("token_hash", sa.String(128), nullable=False, unique=True),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("last_used_at", sa.Float, nullable=True),
    )
    op.create_table(
        "nodes",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            primary_key=True,
            autoincrement=True,
        ),
        sa.Column("parent_id", sa.BigInteger, sa.ForeignKey("nodes.id"), nullable=True),
        sa.Column("owner_id", sa.Integer, sa.ForeignKey("users.id"), nullable=False),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("kind", sa.String(8), nullable=False),
        sa.Column("size", sa.BigInteger, nullable=False),
        sa.Column("mtime", sa.Float, nullable=False),
        sa.Column("revision", sa.BigInteger, nullable=False),
        sa.Column("blob_id", sa.String(64), nullable=True),
        sa.Column("sha256", sa.String(64), nullable=True),
        sa.Column("content_type", sa.String(255), nullable=True),
        sa.Column("checksums", sa.String(512), nullable=True),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.UniqueConstraint("parent_id", "name", name="uq_nodes_parent_name"),
    )
    op.create_index("ix_nodes_blob", "nodes", ["blob_id"])
    op.create_index("ix_nodes_owner", "nodes", ["owner_id"])
    op.create_table(
        "blobs",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("size", sa.BigInteger, nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("refcount", sa.Integer, nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
    )
    op.create_table(
        "properties",
        sa.Column(
            "node_id",
            sa.BigInteger,
            sa.ForeignKey("nodes.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("namespace", sa.String(255), primary_key=True),
        sa.Column("name", sa.String(255), primary_key=True),
        sa.Column("xml", sa.Text, nullable=False),
    )
    op.create_table(
        "locks",
        sa.Column("token", sa.String(64), primary_key=True),
        sa.Column(
            "owner_id", sa.Integer, sa.ForeignKey("users.id", ondelete="CASCADE"), nullable=False
        ),
        sa.Column("path", sa.Text, nullable=False),
        sa.Column("scope", sa.String(16), nullable=False),
        sa.Column("depth_infinity", sa.Boolean, nullable=False),
        sa.Column("owner_xml", sa.Text, nullable=False),
        sa.Column("principal_id", sa.Integer, nullable=False),
        sa.Column("timeout_seconds", sa.Integer, nullable=False),
        sa.Column("expires_at", sa.Float, nullable=False),
    )
    op.create_index("ix_locks_owner", "locks", ["owner_id"])
    op.execute("INSERT INTO schema_info (key, value) VALUES ('version', '1')")


def downgrade() -> None:
    for table in ("locks", "properties", "blobs", "nodes", "app_passwords", "users"):
        op.drop_table(table)
    op.drop_table("schema_info")
