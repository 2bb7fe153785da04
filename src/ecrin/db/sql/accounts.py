"""Accounts in SQL: users, app passwords, login flows, groups."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sqlalchemy import and_, delete, func, insert, or_, select, update
from sqlalchemy.exc import IntegrityError

from ecrin.core.errors import Conflict, StorageError
from ecrin.core.model import AppPassword, Group, LoginFlow, Node, Usage, User
from ecrin.db import statements
from ecrin.db.schema import app_passwords, group_members, groups, locks, login_flows, users
from ecrin.db.sql.base import SqlTransactionBase
from ecrin.db.sql.rows import _app_password, _login_flow, _node, _user


class SqlAccounts(SqlTransactionBase):
    """Users (with their home folder), app passwords, login flows and groups."""

    if TYPE_CHECKING:  # called here, defined in another part of `SqlTransaction`

        async def delete_subtree(self, node_id: int) -> list[str]: ...
        async def _delete_upload_sessions_of(self, user_id: int) -> list[str]: ...
        async def _new_root(self, user_id: int, column: Any, now: float) -> Node: ...

    # --- users ---------------------------------------------------------------------------

    async def insert_user(
        self,
        name: str,
        display_name: str,
        password_hash: str,
        quota_bytes: int | None,
        is_admin: bool,
        now: float,
    ) -> User:
        try:
            result = await self._conn.execute(
                insert(users).values(
                    name=name,
                    display_name=display_name,
                    password_hash=password_hash,
                    quota_bytes=quota_bytes,
                    used_bytes=0,
                    is_admin=is_admin,
                    tenant="default",
                    created_at=now,
                )
            )
        except IntegrityError as exc:
            raise Conflict(f"user {name!r} already exists") from exc
        user_id = result.inserted_primary_key[0]  # type: ignore[index]
        await self._new_root(user_id, users.c.root_node_id, now)
        user = await self.user_by_id(user_id)
        assert user is not None
        return user

    async def user_by_name(self, name: str) -> User | None:
        row = await self._one(select(users).where(users.c.name == name))
        return _user(row) if row else None

    async def user_by_id(self, user_id: int) -> User | None:
        row = await self._prepared.first(statements.USER_BY_ID, user_id=user_id)
        return _user(row) if row else None

    async def list_users(self) -> list[User]:
        query = select(users).order_by(self._by_name(users.c.name))
        return [_user(r) for r in await self._all(query)]

    async def user_count(self) -> int:
        row = await self._one(select(func.count()).select_from(users))
        return int(row[0]) if row else 0

    async def password_hash(self, user_id: int) -> str | None:
        row = await self._one(select(users.c.password_hash).where(users.c.id == user_id))
        return str(row[0]) if row else None

    async def set_password_hash(self, user_id: int, password_hash: str) -> None:
        await self._conn.execute(
            update(users).where(users.c.id == user_id).values(password_hash=password_hash)
        )

    async def set_quota(self, user_id: int, quota_bytes: int | None) -> None:
        await self._conn.execute(
            update(users).where(users.c.id == user_id).values(quota_bytes=quota_bytes)
        )

    async def add_usage(self, user_id: int, delta: int) -> Usage | None:
        if not delta:
            return None
        row = await self._prepared.first(statements.ADD_USAGE, user_id=user_id, delta=delta)
        return Usage(row.used_bytes, row.quota_bytes) if row else None

    async def set_usage(self, user_id: int, used_bytes: int) -> None:
        await self._conn.execute(
            update(users).where(users.c.id == user_id).values(used_bytes=used_bytes)
        )

    async def root_node(self, user_id: int) -> Node:
        row = await self._prepared.first(statements.root(self._lock_homes), user_id=user_id)
        if row is None:
            raise StorageError(f"user {user_id} has no home folder")
        return _node(row)

    async def delete_user(self, user_id: int) -> list[str]:
        """Delete a user and everything they own; returns blob ids no longer referenced."""
        root = await self.root_node(user_id)
        released = await self.delete_subtree(root.id)
        row = await self._one(select(users.c.trash_node_id).where(users.c.id == user_id))
        if row is not None and row[0] is not None:
            released += await self.delete_subtree(row[0])
        released += await self._delete_upload_sessions_of(user_id)
        # Their locks, and those they hold on others' shared items.
        held = or_(locks.c.owner_id == user_id, locks.c.principal_id == user_id)
        await self._conn.execute(delete(locks).where(held))
        await self._conn.execute(delete(app_passwords).where(app_passwords.c.user_id == user_id))
        await self._conn.execute(delete(users).where(users.c.id == user_id))
        return released

    # --- app passwords -------------------------------------------------------------------

    async def insert_app_password(
        self, user_id: int, name: str, token_hash: str, now: float
    ) -> AppPassword:
        result = await self._conn.execute(
            insert(app_passwords).values(
                user_id=user_id, name=name, token_hash=token_hash, created_at=now
            )
        )
        return AppPassword(
            id=result.inserted_primary_key[0],  # type: ignore[index]
            user_id=user_id,
            name=name,
            created_at=now,
            last_used_at=None,
        )

    async def list_app_passwords(self, user_id: int) -> list[AppPassword]:
        rows = await self._all(
            select(app_passwords)
            .where(app_passwords.c.user_id == user_id)
            .order_by(app_passwords.c.id)
        )
        return [_app_password(r) for r in rows]

    async def delete_app_password(self, user_id: int, password_id: int) -> bool:
        result = await self._conn.execute(
            delete(app_passwords).where(
                and_(app_passwords.c.user_id == user_id, app_passwords.c.id == password_id)
            )
        )
        return bool(result.rowcount)

    async def app_password_user(self, user_id: int, token_hash: str) -> AppPassword | None:
        row = await self._one(
            select(app_passwords).where(
                and_(app_passwords.c.user_id == user_id, app_passwords.c.token_hash == token_hash)
            )
        )
        return _app_password(row) if row else None

    async def touch_app_password(self, password_id: int, now: float) -> None:
        await self._conn.execute(
            update(app_passwords).where(app_passwords.c.id == password_id).values(last_used_at=now)
        )

    # --- login flow v2 -------------------------------------------------------------------

    async def insert_login_flow(self, flow: LoginFlow) -> None:
        await self._conn.execute(
            insert(login_flows).values(
                poll_token_hash=flow.poll_token_hash,
                login_token_hash=flow.login_token_hash,
                client_name=flow.client_name,
                user_id=flow.user_id,
                created_at=flow.created_at,
                expires_at=flow.expires_at,
            )
        )

    async def login_flow_by_login_token(self, login_token_hash: str) -> LoginFlow | None:
        row = await self._one(
            select(login_flows).where(login_flows.c.login_token_hash == login_token_hash)
        )
        return _login_flow(row) if row else None

    async def grant_login_flow(self, login_token_hash: str, user_id: int) -> None:
        await self._conn.execute(
            update(login_flows)
            .where(login_flows.c.login_token_hash == login_token_hash)
            .values(user_id=user_id)
        )

    async def take_login_flow(self, poll_token_hash: str) -> LoginFlow | None:
        where = and_(
            login_flows.c.poll_token_hash == poll_token_hash, login_flows.c.user_id.is_not(None)
        )
        row = await self._one(select(login_flows).where(where))
        if row is None:
            return None
        await self._conn.execute(delete(login_flows).where(where))
        return _login_flow(row)

    async def delete_expired_login_flows(self, now: float) -> int:
        result = await self._conn.execute(
            delete(login_flows).where(login_flows.c.expires_at <= now)
        )
        return int(result.rowcount)

    # --- groups --------------------------------------------------------------------------

    async def insert_group(self, name: str, display_name: str, now: float) -> Group:
        try:
            result = await self._conn.execute(
                insert(groups).values(
                    name=name, display_name=display_name, created_at=now, tenant="default"
                )
            )
        except IntegrityError as exc:
            raise Conflict(f"group {name!r} already exists") from exc
        return Group(result.inserted_primary_key[0], name, display_name)  # type: ignore[index]

    async def group_by_name(self, name: str) -> Group | None:
        row = await self._one(select(groups).where(groups.c.name == name))
        return Group(row.id, row.name, row.display_name) if row else None

    async def group_by_id(self, group_id: int) -> Group | None:
        row = await self._one(select(groups).where(groups.c.id == group_id))
        return Group(row.id, row.name, row.display_name) if row else None

    async def list_groups(self) -> list[Group]:
        rows = await self._all(select(groups).order_by(groups.c.name))
        return [Group(r.id, r.name, r.display_name) for r in rows]

    async def delete_group(self, group_id: int) -> None:
        await self._conn.execute(delete(groups).where(groups.c.id == group_id))

    async def add_member(self, group_id: int, user_id: int) -> bool:
        try:
            # A savepoint: on PostgreSQL a failed statement would abort the whole transaction.
            async with self._conn.begin_nested():
                await self._conn.execute(
                    insert(group_members).values(group_id=group_id, user_id=user_id)
                )
        except IntegrityError:
            return False
        return True

    async def remove_member(self, group_id: int, user_id: int) -> bool:
        result = await self._conn.execute(
            delete(group_members).where(
                and_(group_members.c.group_id == group_id, group_members.c.user_id == user_id)
            )
        )
        return bool(result.rowcount)

    async def group_members(self, group_id: int) -> list[User]:
        rows = await self._all(
            select(users)
            .join(group_members, group_members.c.user_id == users.c.id)
            .where(group_members.c.group_id == group_id)
            .order_by(users.c.name)
        )
        return [_user(r) for r in rows]

    async def user_groups(self, user_id: int) -> list[Group]:
        rows = await self._all(
            select(groups)
            .join(group_members, group_members.c.group_id == groups.c.id)
            .where(group_members.c.user_id == user_id)
            .order_by(groups.c.name)
        )
        return [Group(r.id, r.name, r.display_name) for r in rows]
