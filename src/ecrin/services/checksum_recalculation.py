"""Recompute a file's checksum from its stored bytes (Nextcloud's `X-Recalculate-Hash`).

A desktop client that downloaded a file whose bytes did not match the advertised checksum
asks the server to recompute it. The stored checksum is replaced by the recomputed one;
the contents, and so the etag, do not change.
"""

from __future__ import annotations

from ecrin.core.errors import BadRequest, MethodNotAllowed
from ecrin.core.model import User
from ecrin.core.paths import DavPath
from ecrin.db.protocol import MetadataStore
from ecrin.services.checksums import SUPPORTED, ExpectedChecksum, StreamingDigests
from ecrin.services.files import FileService


class ChecksumRecalculator:
    def __init__(self, metadata: MetadataStore, files: FileService) -> None:
        self.metadata = metadata
        self.files = files

    async def recalculate(self, user: User, path: DavPath, algorithm: str) -> str:
        """Returns the new checksum, as `TYPE:hex`."""
        kind = algorithm.strip().upper().replace("-", "")
        if kind not in SUPPORTED:
            raise BadRequest(f"unknown checksum type; supported: {', '.join(SUPPORTED)}")
        node = await self.files.stat(user, path)
        if node.is_folder:
            raise MethodNotAllowed("folders have no checksum")
        # The placeholder value is never compared: only the computed digest is read.
        digests = StreamingDigests([ExpectedChecksum(kind, "")])
        async for data in self.files.read(node):
            digests.update(data)
        checksum = digests.client_checksums() or f"SHA256:{digests.sha256}"
        async with self.metadata.write() as tx:
            current = await tx.node(node.id)
            if current is not None and current.blob_id == node.blob_id:
                await tx.set_checksums(node.id, checksum)  # unless replaced meanwhile
        return checksum
