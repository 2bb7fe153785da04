"""The permission model: one bitmask, the same numbers Nextcloud's share API uses.

Owners hold every permission on their files. A share grants a subset; a reshare can never
grant more than the resharer holds, and the holder's rights are recomputed on every request
from the chain of shares, so reducing or revoking a share takes effect at once, reshares
included.
"""

from __future__ import annotations

import enum


class Permission(enum.IntFlag):
    NONE = 0
    READ = 1
    UPDATE = 2
    CREATE = 4
    DELETE = 8
    SHARE = 16
    ALL = 31

    @classmethod
    def parse(cls, value: int) -> Permission:
        return cls(value & cls.ALL)


FILE_MASK = Permission.ALL & ~Permission.CREATE  # files cannot hold children


def dav_permissions(
    permissions: Permission, *, is_folder: bool, shared_with_me: bool, is_mount_point: bool
) -> str:
    """The `oc:permissions` letters: S R M G D NV W (files) or CK (folders)."""
    letters = ""
    if shared_with_me:
        letters += "S"
    if Permission.SHARE in permissions:
        letters += "R"
    if is_mount_point:
        letters += "M"
    if Permission.READ in permissions:
        letters += "G"
    if Permission.DELETE in permissions or is_mount_point:
        letters += "D"
    if Permission.UPDATE in permissions or is_mount_point:
        letters += "NV"
    if is_folder:
        if Permission.CREATE in permissions:
            letters += "CK"
    elif Permission.UPDATE in permissions:
        letters += "W"
    return letters
