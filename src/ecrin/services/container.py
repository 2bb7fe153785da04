"""The set of services one app instance runs with (built by `ecrin.app`)."""

from __future__ import annotations

from dataclasses import dataclass

from ecrin.core.clock import Clock
from ecrin.services.accounts import AccountService
from ecrin.services.checksum_recalculation import ChecksumRecalculator
from ecrin.services.consistency import ConsistencyService
from ecrin.services.files import FileService
from ecrin.services.groups import GroupService
from ecrin.services.locks import LockService
from ecrin.services.login_flows import LoginFlowService
from ecrin.services.properties import PropertyService
from ecrin.services.sharing import SharingService
from ecrin.services.trash import TrashService
from ecrin.services.uploads import ChunkedUploadService
from ecrin.services.versions import VersionService


@dataclass(frozen=True)
class Services:
    clock: Clock
    accounts: AccountService
    files: FileService
    locks: LockService
    properties: PropertyService
    consistency: ConsistencyService
    instance_id: str
    uploads: ChunkedUploadService
    login_flows: LoginFlowService
    checksum_recalculator: ChecksumRecalculator
    sharing: SharingService
    groups: GroupService
    trash: TrashService
    versions: VersionService
