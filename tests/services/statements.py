"""Counting the SQL statements an operation sends to the metadata database, and the
transactions it opens.

Each statement has a cost of its own (a round trip on PostgreSQL; docs/benchmarks.md), so
the services keep their number small and independent of the number of rows; these counts
guard that. Each transaction costs more than a statement (~150 µs to read, ~400 µs to
write: connection, BEGIN, COMMIT), so a request opens as few as it can.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator
from contextlib import AbstractAsyncContextManager, contextmanager
from typing import Any, TypeVar

import pytest
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine

from ecrin.db.protocol import MetadataStore

T = TypeVar("T")

# Transaction control is the engine's business (and differs between drivers).
_CONTROL = ("BEGIN", "COMMIT", "ROLLBACK", "SAVEPOINT", "RELEASE")


class StatementCounter:
    def __init__(self) -> None:
        self.statements: list[str] = []

    def _seen(self, _conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if not statement.lstrip().upper().startswith(_CONTROL):
            self.statements.append(statement)

    async def count(self, operation: Awaitable[T]) -> tuple[T, int]:
        """Run `operation`; returns its result and the statements it sent."""
        self.statements.clear()
        result = await operation
        return result, len(self.statements)


@contextmanager
def counting(engine: AsyncEngine) -> Iterator[StatementCounter]:
    counter = StatementCounter()
    event.listen(engine.sync_engine, "before_cursor_execute", counter._seen)
    try:
        yield counter
    finally:
        event.remove(engine.sync_engine, "before_cursor_execute", counter._seen)


class TransactionCounter:
    """Counts the transactions opened through a metadata store (`read()` and `write()`)."""

    def __init__(self, store: MetadataStore, monkeypatch: pytest.MonkeyPatch) -> None:
        self.opened: list[str] = []
        for kind in ("read", "write"):
            monkeypatch.setattr(store, kind, self._counted(kind, getattr(store, kind)))

    def _counted(
        self, kind: str, open_transaction: Callable[..., AbstractAsyncContextManager[Any]]
    ) -> Callable[..., AbstractAsyncContextManager[Any]]:
        def counted(**options: Any) -> AbstractAsyncContextManager[Any]:
            self.opened.append(kind)
            return open_transaction(**options)

        return counted

    async def count(self, operation: Awaitable[T]) -> tuple[T, list[str]]:
        """Run `operation`; returns its result and the transactions it opened, in order."""
        self.opened.clear()
        result = await operation
        return result, list(self.opened)
