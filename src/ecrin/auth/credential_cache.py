"""A short-lived cache of verified credentials, so a request does not pay argon2 each time.

Entries are keyed by a keyed BLAKE2b MAC of (login, password) under a per-process random
key: the cache never holds a password or anything from which one could be tested offline
without that key, which lives only in memory. (BLAKE2b is keyed by design. Every request
pays this MAC: BLAKE2b costs a third of OpenSSL's HMAC-SHA256, which also lets go of the GIL
and must wait to take it back while other threads work.)

Each entry remembers the credential generation of its login when it was verified (see
`AccountService`): an entry whose generation is no longer current is never used, so a
revocation made by any process takes effect everywhere at once.
"""

from __future__ import annotations

import hashlib
import secrets

from ecrin.core.clock import Clock
from ecrin.core.model import User

MAX_ENTRIES = 10_000


class CredentialCache:
    def __init__(self, clock: Clock, ttl_seconds: float) -> None:
        self._clock = clock
        self._ttl = ttl_seconds
        self._key = secrets.token_bytes(32)
        self._entries: dict[bytes, tuple[User, float, int]] = {}

    def _digest(self, login: str, password: str) -> bytes:
        message = login.encode() + b"\x00" + password.encode()
        return hashlib.blake2b(message, key=self._key, digest_size=32).digest()

    def get(self, login: str, password: str, generation: int = 0) -> User | None:
        """The user these credentials were verified for, if still fresh and verified at
        `generation` (then no database round trip is needed to authenticate)."""
        if self._ttl <= 0:
            return None
        digest = self._digest(login, password)
        entry = self._entries.get(digest)
        if entry is None:
            return None
        user, expires, verified_at = entry
        if expires <= self._clock.now() or verified_at != generation:
            del self._entries[digest]
            return None
        return user

    def put(self, login: str, password: str, user: User, generation: int = 0) -> None:
        if self._ttl <= 0:
            return
        if len(self._entries) >= MAX_ENTRIES:
            self._entries.clear()
        expires = self._clock.now() + self._ttl
        self._entries[self._digest(login, password)] = (user, expires, generation)

    def forget_user(self, user_id: int) -> None:
        """Drop every entry for a user (password changed, app password revoked)."""
        self._entries = {k: v for k, v in self._entries.items() if v[0].id != user_id}
