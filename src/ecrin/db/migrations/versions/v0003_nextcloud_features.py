"""Tables of the Nextcloud-compatible features: groups, shares and their mounts, file
versions, the trash, chunked uploads and login flows; `users.trash_node_id`.

Revision ID: 0003
Revises: 0002

Development builds created these tables before migrations existed, from the schema alone;
such a database already has some of them, so each is created only where it is missing.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision: str | None = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    inspector = sa.inspect(op.get_bind())
    existing = set(inspector.get_table_names())
    user_columns = {column["name"] for column in inspector.get_columns("users")}
    if "groups" not in existing:
        op.create_table(
            "groups",
            sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
            sa.Column("tenant", sa.String(length=64), nullable=False),
            sa.Column("name", sa.String(length=255), nullable=False),
            sa.Column("display_name", sa.String(length=255), nullable=False),
            sa.Column("created_at", sa.Float(), nullable=False),
            sa.PrimaryKeyConstraint("id"),
            sa.UniqueConstraint("name"),
        )
    if "group_members" not in existing:
        op.create_table(
            "group_members",
            sa.Column("group_id", sa.Integer(), nullable=False),
            sa.Column("user_id", sa.Integer(), nullable=False),
            sa.ForeignKeyConstraint(["group_id"], ["groups.id"], ondelete="CASCADE"),
            sa.ForeignKeyConstraint(["user_id"], ["users.id"], ondelete="CASCADE"),
            sa.PrimaryKeyConstraint("group_id", "user_id"),
        )
    if "group_members" not in existing:
        op.create_index("ix_group_members_user", "group_members", ["user_id"], unique=False)
    if "login_flows" not in existing:
        op.create_table(
            "login_flows",
            sa.Column("poll_token_hash", sa.String(length=64), nullable=False),
            sa.Column("login_token_hash", sa.String(length=64), nullable=False),
            sa.Column("client_name", sa.String(length=255), nullable=False),
            sa.Column("user_id", sa.Integer(), nullable=True),
            sa.Column("created_at", sa.Float(), nullable=False),
            sa.Column("expires_at", sa.Float(), nullable=False),
            sa.ForeignKeyConstraint(["user_id"], ["users.id"], ondelete="CASCADE"),
            sa.PrimaryKeyConstraint("poll_token_hash"),
            sa.UniqueConstraint("login_token_hash"),
        )
    if "upload_sessions" not in existing:
        op.create_table(
            "upload_sessions",
            sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
            sa.Column("user_id", sa.Integer(), nullable=False),
            sa.Column("name", sa.String(length=255), nullable=False),
            sa.Column("destination", sa.Text(), nullable=True),
            sa.Column("total_length", sa.BigInteger(), nullable=True),
            sa.Column("created_at", sa.Float(), nullable=False),
            sa.Column("touched_at", sa.Float(), nullable=False),
            sa.ForeignKeyConstraint(["user_id"], ["users.id"], ondelete="CASCADE"),
            sa.PrimaryKeyConstraint("id"),
            sa.UniqueConstraint("user_id", "name", name="uq_upload_sessions_user_name"),
        )
    if "upload_sessions" not in existing:
        op.create_index(
            "ix_upload_sessions_touched", "upload_sessions", ["touched_at"], unique=False
        )
    if "shares" not in existing:
        op.create_table(
            "shares",
            sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
            sa.Column("share_type", sa.Integer(), nullable=False),
            sa.Column("node_id", sa.BigInteger(), nullable=False),
            sa.Column("node_owner_id", sa.Integer(), nullable=False),
            sa.Column("created_by", sa.Integer(), nullable=False),
            sa.Column("parent_share_id", sa.Integer(), nullable=True),
            sa.Column("share_with_user", sa.Integer(), nullable=True),
            sa.Column("share_with_group", sa.Integer(), nullable=True),
            sa.Column("permissions", sa.Integer(), nullable=False),
            sa.Column("token", sa.String(length=64), nullable=True),
            sa.Column("password_hash", sa.String(length=255), nullable=True),
            sa.Column("expires_at", sa.Float(), nullable=True),
            sa.Column("label", sa.String(length=255), nullable=False),
            sa.Column("note", sa.Text(), nullable=False),
            sa.Column("hide_download", sa.Boolean(), nullable=False),
            sa.Column("created_at", sa.Float(), nullable=False),
            sa.ForeignKeyConstraint(["created_by"], ["users.id"], ondelete="CASCADE"),
            sa.ForeignKeyConstraint(["node_id"], ["nodes.id"], ondelete="CASCADE"),
            sa.ForeignKeyConstraint(["node_owner_id"], ["users.id"], ondelete="CASCADE"),
            sa.ForeignKeyConstraint(["parent_share_id"], ["shares.id"], ondelete="CASCADE"),
            sa.ForeignKeyConstraint(["share_with_group"], ["groups.id"], ondelete="CASCADE"),
            sa.ForeignKeyConstraint(["share_with_user"], ["users.id"], ondelete="CASCADE"),
            sa.PrimaryKeyConstraint("id"),
            sa.UniqueConstraint("token"),
        )
    if "shares" not in existing:
        op.create_index("ix_shares_group", "shares", ["share_with_group"], unique=False)
    if "shares" not in existing:
        op.create_index("ix_shares_node", "shares", ["node_id"], unique=False)
    if "shares" not in existing:
        op.create_index("ix_shares_parent", "shares", ["parent_share_id"], unique=False)
    if "shares" not in existing:
        op.create_index("ix_shares_user", "shares", ["share_with_user"], unique=False)
    if "trash" not in existing:
        op.create_table(
            "trash",
            sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
            sa.Column("node_id", sa.BigInteger(), nullable=False),
            sa.Column("owner_id", sa.Integer(), nullable=False),
            sa.Column("original_parent_id", sa.BigInteger(), nullable=True),
            sa.Column("original_name", sa.String(length=255), nullable=False),
            sa.Column("original_path", sa.Text(), nullable=False),
            sa.Column("size", sa.BigInteger(), nullable=False),
            sa.Column("deleted_at", sa.Float(), nullable=False),
            sa.Column("deleted_by", sa.Integer(), nullable=True),
            sa.ForeignKeyConstraint(["node_id"], ["nodes.id"], ondelete="CASCADE"),
            sa.ForeignKeyConstraint(["owner_id"], ["users.id"], ondelete="CASCADE"),
            sa.PrimaryKeyConstraint("id"),
            sa.UniqueConstraint("node_id"),
        )
    if "trash" not in existing:
        op.create_index("ix_trash_owner", "trash", ["owner_id"], unique=False)
    if "upload_chunks" not in existing:
        op.create_table(
            "upload_chunks",
            sa.Column("session_id", sa.Integer(), nullable=False),
            sa.Column("name", sa.String(length=64), nullable=False),
            sa.Column("blob_id", sa.String(length=64), nullable=False),
            sa.Column("size", sa.BigInteger(), nullable=False),
            sa.Column("byte_offset", sa.BigInteger(), nullable=True),
            sa.Column("created_at", sa.Float(), nullable=False),
            sa.ForeignKeyConstraint(["session_id"], ["upload_sessions.id"], ondelete="CASCADE"),
            sa.PrimaryKeyConstraint("session_id", "name"),
        )
    if "versions" not in existing:
        op.create_table(
            "versions",
            sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
            sa.Column("node_id", sa.BigInteger(), nullable=False),
            sa.Column("blob_id", sa.String(length=64), nullable=False),
            sa.Column("size", sa.BigInteger(), nullable=False),
            sa.Column("sha256", sa.String(length=64), nullable=True),
            sa.Column("checksums", sa.String(length=512), nullable=True),
            sa.Column("mtime", sa.Float(), nullable=False),
            sa.Column("created_at", sa.Float(), nullable=False),
            sa.Column("author_id", sa.Integer(), nullable=True),
            sa.ForeignKeyConstraint(["node_id"], ["nodes.id"], ondelete="CASCADE"),
            sa.PrimaryKeyConstraint("id"),
        )
    if "versions" not in existing:
        op.create_index("ix_versions_node", "versions", ["node_id"], unique=False)
    if "mounts" not in existing:
        op.create_table(
            "mounts",
            sa.Column("share_id", sa.Integer(), nullable=False),
            sa.Column("user_id", sa.Integer(), nullable=False),
            sa.Column("parent_id", sa.BigInteger(), nullable=False),
            sa.Column("name", sa.String(length=255), nullable=False),
            sa.ForeignKeyConstraint(["parent_id"], ["nodes.id"], ondelete="CASCADE"),
            sa.ForeignKeyConstraint(["share_id"], ["shares.id"], ondelete="CASCADE"),
            sa.ForeignKeyConstraint(["user_id"], ["users.id"], ondelete="CASCADE"),
            sa.PrimaryKeyConstraint("share_id", "user_id"),
            sa.UniqueConstraint("parent_id", "name", name="uq_mounts_parent_name"),
        )
    if "trash_node_id" not in user_columns:
        op.add_column("users", sa.Column("trash_node_id", sa.BigInteger(), nullable=True))


def downgrade() -> None:
    op.drop_column("users", "trash_node_id")
    for table in (
        "mounts",
        "versions",
        "upload_chunks",
        "trash",
        "shares",
        "upload_sessions",
        "login_flows",
        "group_members",
        "groups",
    ):
        op.drop_table(table)
