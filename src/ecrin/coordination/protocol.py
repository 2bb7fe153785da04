"""The coordination protocol every implementation (in-process, SQLite, Redis) follows.

Names and keys are plain strings chosen by the services; an implementation may prefix them
(Redis does, so several instances can share one server). Times given by callers (`at`,
`since`) come from the app's clock, so throttling is testable with a manual clock; lease
lifetimes (`ttl`) are real seconds, kept by the implementation.

Errors: an implementation maps its own failures (a lost connection…) to
`ecrin.core.errors.Unavailable`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True, slots=True)
class Lease:
    """Proof of holding the lease `name`: only the holder's token renews or releases it."""

    name: str
    token: str


@dataclass(frozen=True, slots=True)
class Reading:
    """What `Coordination.read` found, in the order asked."""

    generations: tuple[int, ...]
    event_counts: tuple[int, ...]


class Coordination(Protocol):
    async def open(self) -> None: ...

    async def close(self) -> None: ...

    # --- generations: counters that only grow ----------------------------------------------

    async def generation(self, name: str) -> int:
        """The current value of a counter (0 if it never moved)."""
        ...

    async def advance(self, name: str) -> int:
        """Add one to a counter; every process sees the new value from now on."""
        ...

    # --- event windows: how often something happened lately -------------------------------

    async def count_events(self, key: str, since: float) -> int:
        """How many events recorded under `key` happened strictly after `since`."""
        ...

    async def record_event(self, key: str, at: float, keep_for: float) -> None:
        """Record an event at time `at`; events older than `at - keep_for` may be dropped."""
        ...

    async def forget_events(self, key: str) -> None: ...

    async def read(
        self, generations: Sequence[str], events: Sequence[str], since: float
    ) -> Reading:
        """`generation` of each of `generations` and `count_events(key, since)` of each of
        `events`, in one call: one round trip to a shared server instead of one each (what
        every authenticated request asks)."""
        ...

    # --- leases: mutual exclusion that ends by itself if its holder dies -------------------

    async def acquire(self, name: str, ttl: float) -> Lease | None:
        """The lease if nobody holds it, for `ttl` seconds; None if someone does."""
        ...

    async def renew(self, lease: Lease, ttl: float) -> bool:
        """Extend a lease to `ttl` seconds from now; False if it was lost (expired, taken)."""
        ...

    async def release(self, lease: Lease) -> None:
        """Give a lease back (nothing happens if it was lost meanwhile)."""
        ...

    async def is_held(self, name: str) -> bool: ...

    # --- broadcast ---------------------------------------------------------------------------

    async def publish(self, channel: str, message: str) -> None:
        """Send to every current subscriber of `channel`, in every process (at most once)."""
        ...

    def subscribe(self, channel: str) -> AbstractAsyncContextManager[AsyncIterator[str]]:
        """Messages published on `channel` once the context is entered, in order."""
        ...
