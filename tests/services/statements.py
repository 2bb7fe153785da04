"""Counting the SQL statements an operation sends to the metadata database.

Each statement is several thread hand-offs (docs/benchmarks.md), so the services keep their
number small and independent of the number of rows; these counts guard that.
"""

from __future__ import annotations

from collections.abc import Awaitable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine

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
