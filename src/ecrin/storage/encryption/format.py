"""The byte layouts of encrypted blobs: pure functions, no I/O.

An encrypted blob is two objects with the same id:

* the **body** (in the wrapped blob store, immutable): an 8-byte prologue, then the
  plaintext cut into segments of `segment_size` bytes, each sealed with AES-256-GCM
  (ciphertext followed by its 16-byte tag). The last segment may be shorter, even empty:
  there is always at least one segment, and exactly one carries the final flag.

      prologue   b"ECRB" | version u8 | 3 zero bytes
      segment i  AES-GCM(data key, nonce_i, plaintext_i, aad_i)   (len(plaintext_i) + 16)

* the **key record** (small, replaceable: rotation rewrites only it):

      b"ECRK" | version u8 | segment_size u32 | plaintext_size u64 | nonce_prefix 8 bytes
      | header_tag 16 bytes | kek_id_length u8 | kek_id (ASCII) | wrapped_length u16
      | wrapped data key (RFC 5649 AES key wrap with padding under the KEK)

Every integer is big-endian. The nonce of segment i is nonce_prefix || i (u32). Segment
AAD binds the format version, the segment index, the final-segment flag and, on the final
segment, the total plaintext size. The header tag is a GCM tag under the data key with the
reserved nonce nonce_prefix || 0xFFFFFFFF over the record's fixed fields (its first 25
bytes: magic, version, segment size, plaintext size, nonce prefix) followed by the blob id
(ASCII). So a record whose size was altered, a record put next to another blob's body, or
a body and record moved together under another blob id, are refused before any byte is
returned. The KEK id and the wrapped key are outside the tag on purpose: rotation changes
them, and the key wrap has its own integrity check.
"""

from __future__ import annotations

import re
import struct
from dataclasses import dataclass

from ecrin.core.errors import StorageError

VERSION = 1
BODY_MAGIC = b"ECRB"
RECORD_MAGIC = b"ECRK"
PROLOGUE = BODY_MAGIC + bytes([VERSION, 0, 0, 0])
PROLOGUE_SIZE = len(PROLOGUE)
TAG_SIZE = 16
NONCE_PREFIX_SIZE = 8
DATA_KEY_SIZE = 32
DEFAULT_SEGMENT_SIZE = 64 * 1024
HEADER_TAG_INDEX = 0xFFFFFFFF
MAX_SEGMENTS = HEADER_TAG_INDEX  # segment indexes stay below the header tag's nonce

_FIXED = struct.Struct(">4sBIQ8s")  # magic, version, segment size, plaintext size, prefix
_SEGMENT_AAD = struct.Struct(">4sBIBQ")  # magic, version, index, final flag, size or 0
_KEK_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,127}")


def check_kek_id(kek_id: str) -> str:
    if not _KEK_ID.fullmatch(kek_id):
        raise StorageError(
            f"invalid key-encryption key id {kek_id!r}: use letters, digits and . _ : - "
            "(at most 128 characters)"
        )
    return kek_id


@dataclass(frozen=True, slots=True)
class KeyRecord:
    """What a reader needs besides the body: parameters, the header tag, the wrapped key."""

    segment_size: int
    plaintext_size: int
    nonce_prefix: bytes
    header_tag: bytes
    kek_id: str
    wrapped_key: bytes
    version: int = VERSION

    def fixed_fields(self) -> bytes:
        """The bytes the header tag authenticates (they never change after the commit)."""
        return _FIXED.pack(
            RECORD_MAGIC, self.version, self.segment_size, self.plaintext_size, self.nonce_prefix
        )

    def encode(self) -> bytes:
        kek = self.kek_id.encode("ascii")
        return b"".join(
            (
                self.fixed_fields(),
                self.header_tag,
                struct.pack(">B", len(kek)),
                kek,
                struct.pack(">H", len(self.wrapped_key)),
                self.wrapped_key,
            )
        )

    @property
    def segment_count(self) -> int:
        return segment_count(self.plaintext_size, self.segment_size)

    @property
    def body_size(self) -> int:
        return PROLOGUE_SIZE + self.plaintext_size + self.segment_count * TAG_SIZE


def decode_record(data: bytes, blob_id: str) -> KeyRecord:
    """Parse a key record; anything malformed is a StorageError naming the blob."""
    try:
        magic, version, segment_size, size, prefix = _FIXED.unpack_from(data, 0)
        offset = _FIXED.size
        tag = data[offset : offset + TAG_SIZE]
        offset += TAG_SIZE
        (kek_length,) = struct.unpack_from(">B", data, offset)
        offset += 1
        kek_id = data[offset : offset + kek_length].decode("ascii")
        offset += kek_length
        (wrapped_length,) = struct.unpack_from(">H", data, offset)
        offset += 2
        wrapped = data[offset : offset + wrapped_length]
        offset += wrapped_length
    except (struct.error, UnicodeDecodeError) as exc:
        raise StorageError(f"blob {blob_id}: malformed encryption key record") from exc
    if magic != RECORD_MAGIC or len(tag) != TAG_SIZE or len(wrapped) != wrapped_length:
        raise StorageError(f"blob {blob_id}: malformed encryption key record")
    if offset != len(data):
        raise StorageError(f"blob {blob_id}: trailing bytes in its encryption key record")
    if version != VERSION:
        raise StorageError(f"blob {blob_id}: unsupported encryption format version {version}")
    if segment_size <= 0 or segment_count(size, segment_size) >= MAX_SEGMENTS:
        raise StorageError(f"blob {blob_id}: impossible sizes in its encryption key record")
    return KeyRecord(segment_size, size, prefix, tag, kek_id, wrapped, version)


def segment_count(plaintext_size: int, segment_size: int) -> int:
    """Always at least one segment (an empty blob has one empty final segment)."""
    return max(1, -(-plaintext_size // segment_size))


def nonce(prefix: bytes, index: int) -> bytes:
    return prefix + struct.pack(">I", index)


def segment_aad(index: int, final: bool, plaintext_size: int) -> bytes:
    """Binds version, index, final flag and (on the final segment) the total size."""
    return _SEGMENT_AAD.pack(BODY_MAGIC, VERSION, index, int(final), plaintext_size if final else 0)


def segment_span(index: int, segment_size: int) -> tuple[int, int]:
    """Ciphertext offsets [start, end) of a full segment in the body (end may pass the end)."""
    start = PROLOGUE_SIZE + index * (segment_size + TAG_SIZE)
    return start, start + segment_size + TAG_SIZE
