"""Users, passwords and app passwords; turning credentials into a user."""

from __future__ import annotations

import asyncio
import hashlib
import os

from ecrin.auth.credential_cache import CredentialCache
from ecrin.auth.passwords import PasswordHashing, generate_app_password, hash_app_password
from ecrin.coordination.local import InProcessCoordination
from ecrin.coordination.protocol import Coordination
from ecrin.core.clock import Clock
from ecrin.core.errors import BadRequest, NotFound, TooManyRequests
from ecrin.core.model import AppPassword, User
from ecrin.core.paths import validate_name
from ecrin.db.protocol import MetadataStore
from ecrin.storage.protocol import BlobStore

MIN_PASSWORD_LENGTH = 8
FAILURE_WINDOW = 600.0  # seconds over which failed logins are counted
MAX_LOGIN_FAILURES = 10  # per login and client network
MAX_NETWORK_FAILURES = 50  # per client network, whatever the logins


def _failure_keys(login: str, client_network: str) -> tuple[str, str]:
    return f"login-failures:{client_network}", f"login-failures:{client_network}:{login}"


def credentials_generation(login: str) -> str:
    """The coordination counter that moves whenever a login's credentials stop being valid."""
    return "credentials:" + login


def _check_user_name(name: str) -> str:
    name = validate_name(name)
    if not all(c.isalnum() or c in "._-@" for c in name) or len(name) > 64:
        raise BadRequest("user names use letters, digits and . _ - @ (at most 64)")
    return name


class AccountService:
    def __init__(
        self,
        metadata: MetadataStore,
        blobs: BlobStore,
        clock: Clock,
        cache: CredentialCache,
        default_quota_bytes: int | None = None,
        hashing: PasswordHashing | None = None,
        coordination: Coordination | None = None,
    ) -> None:
        self.hashing = hashing or PasswordHashing()
        self.metadata = metadata
        self.blobs = blobs
        self.clock = clock
        self.cache = cache
        self.coordination: Coordination = coordination or InProcessCoordination()
        self.default_quota_bytes = default_quota_bytes
        self._verifications: dict[bytes, asyncio.Future[bool]] = {}
        self._argon2_slots = asyncio.Semaphore(os.cpu_count() or 2)

    async def create_user(
        self,
        name: str,
        password: str,
        *,
        display_name: str | None = None,
        quota_bytes: int | None = None,
        is_admin: bool = False,
    ) -> User:
        name = _check_user_name(name)
        if len(password) < MIN_PASSWORD_LENGTH:
            raise BadRequest(f"passwords have at least {MIN_PASSWORD_LENGTH} characters")
        password_hash = await asyncio.to_thread(self.hashing.hash, password)
        async with self.metadata.write() as tx:
            return await tx.insert_user(
                name,
                display_name or name,
                password_hash,
                quota_bytes if quota_bytes is not None else self.default_quota_bytes,
                is_admin,
                self.clock.now(),
            )

    async def get_user(self, name: str) -> User:
        async with self.metadata.read() as tx:
            user = await tx.user_by_name(name)
        if user is None:
            raise NotFound(f"no user {name!r}")
        return user

    async def refresh(self, user: User) -> User:
        async with self.metadata.read() as tx:
            fresh = await tx.user_by_id(user.id)
        if fresh is None:
            raise NotFound(f"no user {user.name!r}")
        return fresh

    async def list_users(self) -> list[User]:
        async with self.metadata.read() as tx:
            return await tx.list_users()

    async def has_users(self) -> bool:
        async with self.metadata.read() as tx:
            return await tx.user_count() > 0

    async def set_password(self, name: str, password: str) -> None:
        if len(password) < MIN_PASSWORD_LENGTH:
            raise BadRequest(f"passwords have at least {MIN_PASSWORD_LENGTH} characters")
        user = await self.get_user(name)
        password_hash = await asyncio.to_thread(self.hashing.hash, password)
        async with self.metadata.write() as tx:
            await tx.set_password_hash(user.id, password_hash)
        await self._invalidate(user)

    async def set_quota(self, name: str, quota_bytes: int | None) -> None:
        user = await self.get_user(name)
        async with self.metadata.write() as tx:
            await tx.set_quota(user.id, quota_bytes)

    async def delete_user(self, name: str) -> None:
        user = await self.get_user(name)
        async with self.metadata.write() as tx:
            released = await tx.delete_user(user.id)
        await self._invalidate(user)
        for blob_id in released:
            await self.blobs.delete(blob_id)

    # --- app passwords -------------------------------------------------------------------

    async def create_app_password(self, name: str, label: str) -> tuple[AppPassword, str]:
        """Returns the record and the token, which is shown once and never stored."""
        user = await self.get_user(name)
        token = generate_app_password()
        async with self.metadata.write() as tx:
            record = await tx.insert_app_password(
                user.id, label, hash_app_password(token), self.clock.now()
            )
        return record, token

    async def list_app_passwords(self, name: str) -> list[AppPassword]:
        user = await self.get_user(name)
        async with self.metadata.read() as tx:
            return await tx.list_app_passwords(user.id)

    async def revoke_app_password(self, name: str, password_id: int) -> None:
        user = await self.get_user(name)
        async with self.metadata.write() as tx:
            if not await tx.delete_app_password(user.id, password_id):
                raise NotFound(f"no app password {password_id} for {name!r}")
        await self._invalidate(user)

    async def _invalidate(self, user: User) -> None:
        """After a commit that made credentials invalid: no process trusts its cache for them
        any more (the generation every cache entry is checked against moves)."""
        self.cache.forget_user(user.id)
        await self.coordination.advance(credentials_generation(user.name))

    async def app_password_in_use(self, user: User, password: str) -> AppPassword | None:
        """The app password these credentials are, or None (they are the real password)."""
        async with self.metadata.read() as tx:
            return await tx.app_password_user(user.id, hash_app_password(password))

    # --- authentication ------------------------------------------------------------------

    async def authenticate(
        self, login: str, password: str, client_network: str = ""
    ) -> User | None:
        """The user for a login and a password or app password; None if they do not match.

        Wrong guesses are counted per client network (an IPv4 address, an IPv6 /64) and per
        (network, login): past the limits that network gets TooManyRequests for a while.
        """
        generation = await self._check_throttle(login, client_network)
        user = await self._verify(login, password, generation)
        if user is None:
            now = self.clock.now()
            for key in _failure_keys(login, client_network):
                await self.coordination.record_event(key, now, FAILURE_WINDOW)
        return user

    async def _check_throttle(self, login: str, client_network: str) -> int:
        """Refuse a network past the limits; else the login's credentials generation, read
        in the same call (see `_verify`). Unreachable coordination refuses too (Unavailable):
        without the counts, guessing could not be slowed."""
        since = self.clock.now() - FAILURE_WINDOW
        reading = await self.coordination.read(
            [credentials_generation(login)], _failure_keys(login, client_network), since
        )
        network_failures, login_failures = reading.event_counts
        if network_failures >= MAX_NETWORK_FAILURES or login_failures >= MAX_LOGIN_FAILURES:
            raise TooManyRequests("too many failed logins from your network; try again later")
        return reading.generations[0]

    async def _argon2(self, password_hash: str | None, password: str) -> bool:
        """One argon2 check, shared by concurrent requests with the same credentials (a sync
        client opens many connections at once), at most one per core at a time: each check
        holds `argon2_memory_kib` of memory, so unbounded checks would inflate the process."""
        key = hashlib.sha256(f"{password_hash}\x00{password}".encode()).digest()
        pending = self._verifications.get(key)
        if pending is None:
            pending = asyncio.ensure_future(self._argon2_bounded(password_hash, password))
            self._verifications[key] = pending
            pending.add_done_callback(lambda _: self._verifications.pop(key, None))
        return await asyncio.shield(pending)

    async def _argon2_bounded(self, password_hash: str | None, password: str) -> bool:
        async with self._argon2_slots:
            return await asyncio.to_thread(self.hashing.verify, password_hash, password)

    async def _verify(self, login: str, password: str, generation: int) -> User | None:
        # `generation` was read before the credentials: a revocation committed after that
        # read moves it, so what is cached below can never outlive the revocation.
        cached = self.cache.get(login, password, generation)
        if cached is not None:
            return cached
        async with self.metadata.read() as tx:
            user = await tx.user_by_name(login)
            if user is None:
                await self._argon2(None, password)  # as long as a wrong password
                return None
            app_password = await tx.app_password_user(user.id, hash_app_password(password))
            password_hash = None if app_password else await tx.password_hash(user.id)
        if app_password is not None:
            async with self.metadata.write() as tx:
                await tx.touch_app_password(app_password.id, self.clock.now())
        elif not await self._argon2(password_hash, password):
            return None
        self.cache.put(login, password, user, generation)
        return user
