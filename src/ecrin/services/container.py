"""The set of services one app instance runs with (built by `ecrin.app`)."""

from __future__ import annotations

from dataclasses import dataclass

from ecrin.core.clock import Clock
from ecrin.services.accounts import AccountService
from ecrin.services.consistency import ConsistencyService
from ecrin.services.files import FileService
from ecrin.services.locks import LockService
from ecrin.services.properties import PropertyService


@dataclass(frozen=True)
class Services:
    clock: Clock
    accounts: AccountService
    files: FileService
    locks: LockService
    properties: PropertyService
    consistency: ConsistencyService
    instance_id: str
