"""In which order the chunks of an upload join, and whether any is missing.

Clients name chunks in three ways, and one store serves them all:
- a chunk number: `0000000000000000`, `0000000000000001`… (Nextcloud desktop 3.x, chunking
  "NG") or `00001`… (chunking v2, numbered from 1);
- a byte offset: `0000000000000000`, `0000000010000000`… (ownCloud desktop);
- an inclusive byte range `start-end`: `000000000000000-000000010485759` (rclone).
Numbers sort numerically whatever their zero padding. Where the names (or the offsets the
client announced in `OC-Chunk-Offset`) say where each chunk belongs, a gap or an overlap is
refused with the position that is missing; other names join in natural order.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from ecrin.core.errors import BadRequest
from ecrin.core.model import UploadChunk

_RANGE = re.compile(r"^(\d{1,20})-(\d{1,20})$")
_NUMBER = re.compile(r"^\d{1,20}$")
_DIGIT_RUNS = re.compile(r"(\d+)")


def natural_key(name: str) -> tuple[tuple[int, int | str], ...]:
    """Sort key where digit runs compare as numbers: 'c2' < 'c10'."""
    return tuple(
        (0, int(part)) if part.isdigit() else (1, part) for part in _DIGIT_RUNS.split(name) if part
    )


def assembly_order(chunks: Sequence[UploadChunk]) -> list[UploadChunk]:
    """The chunks in file order; BadRequest if one is missing or two overlap."""
    if not chunks:
        return []
    ranges = [_RANGE.match(chunk.name) for chunk in chunks]
    if all(ranges):
        return _by_byte_range(chunks)
    if all(_NUMBER.match(chunk.name) for chunk in chunks):
        return _by_number(chunks)
    return sorted(chunks, key=lambda chunk: natural_key(chunk.name))


def _by_byte_range(chunks: Sequence[UploadChunk]) -> list[UploadChunk]:
    def bounds(chunk: UploadChunk) -> tuple[int, int]:
        start, _, end = chunk.name.partition("-")
        return int(start), int(end)

    ordered = sorted(chunks, key=bounds)
    position = 0
    for chunk in ordered:
        start, end = bounds(chunk)
        if start != position:
            raise BadRequest(_gap_message(position, chunk.name))
        if end - start + 1 != chunk.size:
            raise BadRequest(
                f"chunk {chunk.name} holds {chunk.size} bytes, not the {end - start + 1} "
                "its name announces"
            )
        position = end + 1
    return ordered


def _by_number(chunks: Sequence[UploadChunk]) -> list[UploadChunk]:
    ordered = sorted(chunks, key=lambda chunk: int(chunk.name))
    numbers = [int(chunk.name) for chunk in ordered]
    if len(set(numbers)) != len(numbers):
        raise BadRequest("two chunks have the same number written differently")
    if all(chunk.offset is not None for chunk in ordered):
        _check_offsets(ordered, [chunk.offset or 0 for chunk in ordered])
        return ordered
    first = numbers[0]
    if first in (0, 1) and numbers == list(range(first, first + len(numbers))):
        return ordered  # chunk numbers, from 0 (chunking NG) or 1 (chunking v2)
    if len(numbers) > 1 and numbers[1] - numbers[0] < ordered[0].size:
        # Too close together to be byte offsets: chunk numbers with a hole.
        if first not in (0, 1):
            raise BadRequest("the first chunk is missing")
        present = set(numbers)
        missing = next(n for n in range(first, numbers[-1]) if n not in present)
        raise BadRequest(f"chunk {missing} is missing")
    _check_offsets(ordered, numbers)  # else the names must be byte offsets
    return ordered


def _check_offsets(ordered: Sequence[UploadChunk], offsets: Sequence[int]) -> None:
    position = 0
    for chunk, offset in zip(ordered, offsets, strict=True):
        if offset != position:
            raise BadRequest(_gap_message(position, chunk.name))
        position += chunk.size


def _gap_message(position: int, found: str) -> str:
    return (
        f"a chunk is missing or overlaps: the next chunk should start at byte {position}, "
        f"but the next one stored is {found}"
    )
