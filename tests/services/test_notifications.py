"""Change notifications go out in batches: the changes announced together, one message."""

from __future__ import annotations

import asyncio

from ecrin.coordination.local import InProcessCoordination
from ecrin.core.errors import Unavailable
from ecrin.core.model import User
from ecrin.core.paths import DavPath
from ecrin.services.notifications import CHANNEL, ChangeNotifier, decode_events

ALICE = User(1, "alice", "Alice", None, 0, False)


async def test_changes_announced_together_are_one_message_in_order() -> None:
    coordination = InProcessCoordination()
    notifier = ChangeNotifier(coordination)
    async with coordination.subscribe(CHANNEL) as messages:
        # As a group commit wakes its writers: each announces its change in the same turn.
        await asyncio.gather(
            *(notifier.changed(ALICE, DavPath.parse(f"/f{i}"), f"e{i}") for i in range(3))
        )
        await notifier.flush()
        await notifier.changed(ALICE, DavPath.parse("/gone"), None)
        await notifier.flush()
        first, second = [await anext(messages) for _ in range(2)]
    assert [(e.path, e.etag) for e in decode_events(first)] == [
        ("/f0", "e0"),
        ("/f1", "e1"),
        ("/f2", "e2"),
    ]
    assert [(e.user, e.path, e.etag) for e in decode_events(second)] == [("alice", "/gone", "")]


async def test_a_failing_publish_drops_its_batch_and_the_next_one_goes_out() -> None:
    coordination = InProcessCoordination()
    notifier = ChangeNotifier(coordination)
    publish = coordination.publish
    calls = 0

    async def flaky(channel: str, message: str) -> None:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise Unavailable("coordination down")
        await publish(channel, message)

    coordination.publish = flaky  # type: ignore[method-assign]
    async with coordination.subscribe(CHANNEL) as messages:
        await notifier.changed(ALICE, DavPath.parse("/lost"), "a")
        await notifier.flush()
        await notifier.changed(ALICE, DavPath.parse("/kept"), "b")
        await notifier.flush()
        [event] = decode_events(await anext(messages))
    assert event.path == "/kept"
