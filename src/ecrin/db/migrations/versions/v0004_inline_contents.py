"""`blobs.content`: the bytes of small blobs, kept in their metadata row, and an index of the
blobs that have them.

Revision ID: 0004
Revises: 0003

A nullable column: every existing blob keeps its bytes in the blob store.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision: str | None = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("blobs", sa.Column("content", sa.LargeBinary(), nullable=True))
    kept = sa.text("content IS NOT NULL")
    op.create_index("ix_blobs_inline", "blobs", ["id"], sqlite_where=kept, postgresql_where=kept)


def downgrade() -> None:
    # Contents kept here would be lost with the column: refuse rather than drop them.
    if op.get_bind().execute(sa.text("SELECT 1 FROM blobs WHERE content IS NOT NULL")).first():
        raise RuntimeError("small files' contents are kept in the database; cannot downgrade")
    op.drop_index("ix_blobs_inline", table_name="blobs")
    with op.batch_alter_table("blobs") as batch:
        batch.drop_column("content")
