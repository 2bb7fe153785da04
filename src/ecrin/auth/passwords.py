"""Password hashing with argon2id, and app-password tokens."""

from __future__ import annotations

import hashlib
import secrets

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

_hasher = PasswordHasher()  # argon2id with the library's recommended parameters

APP_PASSWORD_ALPHABET = "abcdefghijkmnopqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789"


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(password_hash: str, password: str) -> bool:
    try:
        return _hasher.verify(password_hash, password)
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
