"""The SQL metadata store (SQLAlchemy Core): SQLite and PostgreSQL (asyncpg)."""

from ecrin.db.sql.transaction import SqlMetadataStore, SqlTransaction

__all__ = ["SqlMetadataStore", "SqlTransaction"]
