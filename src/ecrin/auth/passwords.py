"""Password hashing with argon2id, and app-password tokens."""

from __future__ import annotations

import hashlib
import secrets

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

APP_PASSWORD_ALPHABET = "abcdefghijkmnopqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789"


class PasswordHashing:
    """argon2id with the given costs (the defaults are OWASP's recommendation)."""

    def __init__(self, time_cost: int = 2, memory_kib: int = 19456) -> None:
        self._hasher = PasswordHasher(time_cost=time_cost, memory_cost=memory_kib)
        # Verified against when a login names no user, so the answer takes as long as a
        # wrong password and does not tell which user names exist.
        self._decoy = self._hasher.hash(secrets.token_hex(16))

    def hash(self, password: str) -> str:
        return self._hasher.hash(password)

    def verify(self, password_hash: str | None, password: str) -> bool:
        try:
            return self._hasher.verify(password_hash or self._decoy, password) and bool(
                password_hash
            )
        except (VerificationError, InvalidHashError):
            return False


def generate_password(length: int = 20) -> str:
    return "".join(secrets.choice(APP_PASSWORD_ALPHABET) for _ in range(length))


def generate_app_password() -> str:
    """A 72-character random token in five dash-separated groups, easy to copy."""
    raw = "".join(secrets.choice(APP_PASSWORD_ALPHABET) for _ in range(60))
    return "-".join(raw[i : i + 12] for i in range(0, 60, 12))


def hash_app_password(token: str) -> str:
    """App passwords carry ~350 bits of entropy: a plain SHA-256 is enough to store them."""
    return hashlib.sha256(token.encode()).hexdigest()
