"""Rows into model records: the converters every part of `SqlTransaction` shares."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any, TypeVar

from sqlalchemy.engine import Row

from ecrin.core.model import (
    AppPassword,
    Lock,
    LockScope,
    LoginFlow,
    Node,
    NodeKind,
    Share,
    ShareType,
    TrashItem,
    UploadChunk,
    UploadSession,
    User,
    Version,
)
from ecrin.db.schema import mounts, nodes

_T = TypeVar("_T")


def _record(cls: type[_T], row: Row[Any], **converted: Any) -> _T:
    """A model record from a row whose columns carry the record's field names."""
    columns = row._mapping
    values = {
        f.name: columns[f.name]
        for f in dataclasses.fields(cls)  # type: ignore[arg-type]  # records are dataclasses
        if f.name in columns and f.name not in converted
    }
    return cls(**values, **converted)


def _user(row: Row[Any]) -> User:
    return _record(User, row)


_KINDS = {kind.value: kind for kind in NodeKind}


def _node(columns: Sequence[Any]) -> Node:
    """A node from the columns of `nodes` in table order: a `select(nodes)` row, or a slice of
    a wider row. Positional, with no per-field lookup: a PROPFIND converts thousands."""
    (
        node_id,
        parent_id,
        owner_id,
        name,
        kind,
        size,
        mtime,
        revision,
        blob_id,
        sha256,
        content_type,
        checksums,
        created_at,
    ) = columns
    return Node(
        node_id,
        parent_id,
        owner_id,
        name,
        _KINDS[kind],
        size,
        mtime,
        revision,
        blob_id,
        sha256,
        content_type,
        created_at,
        checksums,
    )


def _summary_node(columns: Sequence[Any]) -> Node:
    """A node from the `statements.SUMMARY` columns: its blob, hashes, content type and
    creation time were not read, and are left at `Node`'s defaults."""
    node_id, parent_id, owner_id, name, kind, size, mtime, revision = columns
    return Node(node_id, parent_id, owner_id, name, _KINDS[kind], size, mtime, revision)


_NODE_WIDTH = len(nodes.columns)
_MOUNT_WIDTH = len(mounts.columns)


def _lock(row: Row[Any]) -> Lock:
    return Lock(
        token=row.token,
        owner_id=row.owner_id,
        path=tuple(row.path.split("/")) if row.path else (),
        scope=LockScope(row.scope),
        depth_infinity=row.depth_infinity,
        owner_xml=row.owner_xml,
        principal_id=row.principal_id,
        timeout_seconds=row.timeout_seconds,
        expires_at=row.expires_at,
    )


def _share(row: Row[Any]) -> Share:
    return _record(Share, row, share_type=ShareType(row.share_type))


def _version(row: Row[Any]) -> Version:
    return _record(Version, row)


def _trash_item(row: Row[Any]) -> TrashItem:
    return _record(TrashItem, row)


def _app_password(row: Row[Any]) -> AppPassword:
    return _record(AppPassword, row)


def _upload_session(row: Row[Any]) -> UploadSession:
    return UploadSession(
        id=row.id,
        user_id=row.user_id,
        name=row.name,
        destination=(
            None if row.destination is None else tuple(filter(None, row.destination.split("/")))
        ),
        total_length=row.total_length,
        created_at=row.created_at,
        touched_at=row.touched_at,
    )


def _upload_chunk(row: Row[Any]) -> UploadChunk:
    return _record(UploadChunk, row, offset=row.byte_offset)


def _login_flow(row: Row[Any]) -> LoginFlow:
    return _record(LoginFlow, row)
