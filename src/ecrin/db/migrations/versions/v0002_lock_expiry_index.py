"""Index locks by expiry (every LOCK first deletes the expired ones); schema_info version 2.

Revision ID: 0002
Revises: 0001

From here on `alembic_version` says where a database stands. `schema_info.version` becomes 2
so that Ecrin builds from before migrations, which accept only version 1, refuse to open it.
"""

from __future__ import annotations

from alembic import op

revision = "0002"
down_revision: str | None = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_locks_expires", "locks", ["expires_at"])
    op.execute("UPDATE schema_info SET value = '2' WHERE key = 'version'")


def downgrade() -> None:
    op.execute("UPDATE schema_info SET value = '1' WHERE key = 'version'")
    op.drop_index("ix_locks_expires", table_name="locks")
