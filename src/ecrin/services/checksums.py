"""Checksums computed while a body streams: SHA-256 always, others when the client sent one."""

from __future__ import annotations

import base64
import hashlib
import zlib
from dataclasses import dataclass

from ecrin.core.errors import BadRequest, ChecksumMismatch

SUPPORTED = ("SHA256", "SHA1", "MD5", "ADLER32")


@dataclass(frozen=True, slots=True)
class ExpectedChecksum:
    algorithm: str  # one of SUPPORTED
    hex_value: str


def parse_oc_checksum(header: str) -> ExpectedChecksum | None:
    """`OC-Checksum: SHA1:abcd…` (Nextcloud/ownCloud clients). Unknown types are ignored."""
    algorithm, sep, value = header.strip().partition(":")
    algorithm = algorithm.upper().replace("-", "")
    if not sep or not value:
        raise BadRequest("malformed OC-Checksum header")
    if algorithm not in SUPPORTED:
        return None
    return ExpectedChecksum(algorithm, value.strip().lower())


def parse_content_md5(header: str) -> ExpectedChecksum:
    try:
        raw = base64.b64decode(header.strip(), validate=True)
    except ValueError as exc:
        raise BadRequest("malformed Content-MD5 header") from exc
    if len(raw) != 16:
        raise BadRequest("malformed Content-MD5 header")
    return ExpectedChecksum("MD5", raw.hex())


class StreamingDigests:
    def __init__(self, expected: list[ExpectedChecksum]) -> None:
        self.expected = expected
        self._sha256 = hashlib.sha256()
        wanted = {e.algorithm for e in expected}
        self._sha1 = hashlib.sha1(usedforsecurity=False) if "SHA1" in wanted else None
        self._md5 = hashlib.md5(usedforsecurity=False) if "MD5" in wanted else None
        self._adler: int | None = 1 if "ADLER32" in wanted else None

    def update(self, data: bytes) -> None:
        self._sha256.update(data)
        if self._sha1 is not None:
            self._sha1.update(data)
        if self._md5 is not None:
            self._md5.update(data)
        if self._adler is not None:
            self._adler = zlib.adler32(data, self._adler)

    @property
    def sha256(self) -> str:
        return self._sha256.hexdigest()

    def _value(self, algorithm: str) -> str:
        if algorithm == "SHA256":
            return self.sha256
        if algorithm == "SHA1" and self._sha1 is not None:
            return self._sha1.hexdigest()
        if algorithm == "MD5" and self._md5 is not None:
            return self._md5.hexdigest()
        if algorithm == "ADLER32" and self._adler is not None:
            return f"{self._adler:08x}"
        raise AssertionError(algorithm)

    def client_checksums(self) -> str | None:
        """The verified checksums the client sent, in `oc:checksums` form ('SHA1:… MD5:…')."""
        names = dict.fromkeys(e.algorithm for e in self.expected if e.algorithm != "SHA256")
        return " ".join(f"{a}:{self._value(a)}" for a in names) or None

    def verify(self) -> None:
        for expected in self.expected:
            if self._value(expected.algorithm) != expected.hex_value:
                raise ChecksumMismatch(
                    f"{expected.algorithm} checksum mismatch: the upload was corrupted in "
                    "transit; nothing was stored"
                )
