"""Change notifications: one event per committed change, for every process to hear.

Each event names who made the change, the path as they address it, and the item's etag after
the change (empty when the item is gone). It is published after the metadata commit, on the
coordination channel `changes`, so every worker (and, later, a push service feeding sync
clients) learns of it; a subscriber connected at that moment receives it, at most once. A
notification that cannot be sent is logged and dropped: the change itself is committed, and
clients still find it by polling. This is the seed of a change feed, not yet a durable log.
"""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

from ecrin.coordination.local import InProcessCoordination
from ecrin.coordination.protocol import Coordination
from ecrin.core.errors import EcrinError
from ecrin.core.model import User
from ecrin.core.paths import DavPath

log = logging.getLogger(__name__)

CHANNEL = "changes"


@dataclass(frozen=True, slots=True)
class ChangeEvent:
    user: str  # the user name, or `link-share:<id>` for a public link's visitor
    path: str  # as that user addresses it, from their home ("/" + segments)
    etag: str  # the item's etag after the change; "" when it is gone

    def encode(self) -> str:
        return json.dumps({"user": self.user, "path": self.path, "etag": self.etag})

    @classmethod
    def decode(cls, message: str) -> ChangeEvent:
        data = json.loads(message)
        return cls(str(data["user"]), str(data["path"]), str(data["etag"]))


def _actor(user: User) -> str:
    # A visitor's name carries the link's secret token; the share id names it safely.
    return f"link-share:{user.link_share_id}" if user.is_link_visitor else user.name


class ChangeNotifier:
    def __init__(self, coordination: Coordination | None = None) -> None:
        self.coordination: Coordination = coordination or InProcessCoordination()

    async def changed(self, user: User, path: DavPath, etag: str | None) -> None:
        """Announce a committed change (never raises: the change is already durable)."""
        event = ChangeEvent(_actor(user), str(path), etag or "")
        try:
            await self.coordination.publish(CHANNEL, event.encode())
        except EcrinError as error:
            log.warning("change notification dropped: %s", error.message)

    @asynccontextmanager
    async def events(self) -> AsyncIterator[AsyncIterator[ChangeEvent]]:
        """The events published from now on, by any process, in order per publisher."""
        async with self.coordination.subscribe(CHANNEL) as messages:
            yield _decoded(messages)


async def _decoded(messages: AsyncIterator[str]) -> AsyncIterator[ChangeEvent]:
    async for message in messages:
        yield ChangeEvent.decode(message)
