"""Password guessing over Basic auth is throttled per client network."""

from __future__ import annotations

from ecrin.core.clock import ManualClock
from tests.support import PASSWORD, Dav


async def test_guessing_a_password_is_throttled_then_forgiven(
    alice: Dav, clock: ManualClock
) -> None:
    guesser = Dav(alice.client, "alice", "wrong guess")
    for _ in range(10):
        await guesser.propfind("/", depth="0", status=401)
    await guesser.propfind("/", depth="0", status=429)
    # the right password from that network waits too: the window has to pass
    await Dav(alice.client, "alice", PASSWORD).propfind("/", depth="0", status=429)
    clock.advance(601)
    await Dav(alice.client, "alice", PASSWORD).propfind("/", depth="0", status=207)


async def test_unknown_user_names_count_as_failures(alice: Dav) -> None:
    for index in range(50):
        await Dav(alice.client, f"nobody{index}", "x").propfind("/", depth="0", status=401)
    await Dav(alice.client, "alice", PASSWORD).propfind("/", depth="0", status=429)
