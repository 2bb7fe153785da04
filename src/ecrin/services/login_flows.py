"""Login flow v2: a sync client gets an app password while its user logs in in a browser.

1. The client starts a flow and receives two random tokens: one to poll with, one in the
   URL of the browser page.
2. The user opens that page and logs in with their password, which grants the flow.
3. The client's next poll collects a fresh app password, exactly once.
Only SHA-256 hashes of the tokens are stored, and the app password is created when it is
collected, so the database never holds a usable secret. Flows expire after 20 minutes.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass

from ecrin.core.clock import Clock
from ecrin.core.errors import Forbidden, NotFound, Unauthorized
from ecrin.core.model import LoginFlow, User
from ecrin.db.protocol import MetadataStore
from ecrin.services.accounts import AccountService

FLOW_LIFETIME_SECONDS = 20 * 60
MAX_CLIENT_NAME = 255


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class StartedFlow:
    poll_token: str
    login_token: str


@dataclass(frozen=True, slots=True)
class CollectedLogin:
    login_name: str
    app_password: str


class LoginFlowService:
    def __init__(self, metadata: MetadataStore, accounts: AccountService, clock: Clock) -> None:
        self.metadata = metadata
        self.accounts = accounts
        self.clock = clock

    async def start(self, client_name: str) -> StartedFlow:
        now = self.clock.now()
        started = StartedFlow(secrets.token_urlsafe(48), secrets.token_urlsafe(48))
        flow = LoginFlow(
            poll_token_hash=_hash(started.poll_token),
            login_token_hash=_hash(started.login_token),
            client_name=(client_name.strip() or "sync client")[:MAX_CLIENT_NAME],
            user_id=None,
            created_at=now,
            expires_at=now + FLOW_LIFETIME_SECONDS,
        )
        async with self.metadata.write() as tx:
            await tx.insert_login_flow(flow)
        return started

    async def pending(self, login_token: str) -> LoginFlow:
        """The flow behind a browser page, if it still waits for its user."""
        async with self.metadata.read() as tx:
            flow = await tx.login_flow_by_login_token(_hash(login_token))
        if flow is None or flow.expires_at <= self.clock.now() or flow.user_id is not None:
            raise NotFound("this login link is unknown, used or expired")
        return flow

    async def grant(
        self, login_token: str, login: str, password: str, client_network: str = ""
    ) -> User:
        """The user logged in on the flow's page: let the client collect an app password."""
        flow = await self.pending(login_token)
        user = await self.accounts.authenticate(login, password, client_network)
        if user is None:
            raise Unauthorized("wrong user name or password")
        if await self.accounts.app_password_in_use(user, password) is not None:
            raise Forbidden("log in with your password, not with an app password")
        async with self.metadata.write() as tx:
            await tx.grant_login_flow(flow.login_token_hash, user.id)
        return user

    async def collect(self, poll_token: str) -> CollectedLogin:
        """404 until the user granted access; then an app password, once."""
        async with self.metadata.write() as tx:
            flow = await tx.take_login_flow(_hash(poll_token))
            user = await tx.user_by_id(flow.user_id) if flow and flow.user_id else None
        if flow is None or user is None or flow.expires_at <= self.clock.now():
            raise NotFound("no granted login for this token")
        _, token = await self.accounts.create_app_password(user.name, flow.client_name)
        return CollectedLogin(user.name, token)

    async def expire(self) -> int:
        async with self.metadata.write() as tx:
            return await tx.delete_expired_login_flows(self.clock.now())
