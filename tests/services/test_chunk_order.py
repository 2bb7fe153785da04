"""The order chunks join in, and the gaps that are refused."""

from __future__ import annotations

import pytest

from ecrin.core.errors import BadRequest
from ecrin.core.model import UploadChunk
from ecrin.services.chunk_order import assembly_order, natural_key


def chunks(*specs: tuple[str, int] | tuple[str, int, int]) -> list[UploadChunk]:
    made = []
    for spec in specs:
        name, size = spec[0], spec[1]
        offset = spec[2] if len(spec) == 3 else None
        made.append(UploadChunk(1, name, "b" * 32, size, offset, 0.0))
    return made


def names(ordered: list[UploadChunk]) -> list[str]:
    return [c.name for c in ordered]


def test_natural_key_compares_digit_runs_as_numbers() -> None:
    assert sorted(["c10", "c2", "c1"], key=natural_key) == ["c1", "c2", "c10"]


def test_chunk_numbers_from_zero_and_one_whatever_the_padding() -> None:
    assert names(assembly_order(chunks(("2", 5), ("0", 5), ("00001", 5)))) == ["0", "00001", "2"]
    assert names(assembly_order(chunks(("00002", 5), ("00001", 5)))) == ["00001", "00002"]


def test_byte_offsets() -> None:
    ordered = assembly_order(chunks(("0000000010", 5), ("0000000000", 10), ("0000000015", 1)))
    assert names(ordered) == ["0000000000", "0000000010", "0000000015"]


def test_announced_offsets_win_and_reveal_gaps() -> None:
    ok = chunks(("0", 10, 0), ("1", 7, 10), ("2", 3, 17))
    assert names(assembly_order(ok)) == ["0", "1", "2"]
    with pytest.raises(BadRequest, match="byte 10"):
        assembly_order(chunks(("0", 10, 0), ("2", 3, 17)))


def test_missing_numbered_chunk() -> None:
    with pytest.raises(BadRequest, match="chunk 2 is missing"):
        assembly_order(chunks(("1", 10), ("3", 10), ("4", 10)))
    with pytest.raises(BadRequest, match="first chunk"):
        assembly_order(chunks(("5", 10), ("6", 10)))


def test_same_number_twice() -> None:
    with pytest.raises(BadRequest, match="same number"):
        assembly_order(chunks(("1", 10), ("01", 10)))


def test_byte_ranges() -> None:
    ordered = assembly_order(chunks(("10-14", 5), ("0-9", 10)))
    assert names(ordered) == ["0-9", "10-14"]
    with pytest.raises(BadRequest, match="byte 10"):
        assembly_order(chunks(("0-9", 10), ("11-14", 4)))
    with pytest.raises(BadRequest, match="holds 3 bytes"):
        assembly_order(chunks(("0-9", 3)))


def test_other_names_join_in_natural_order() -> None:
    assert names(assembly_order(chunks(("part-10", 1), ("part-9", 1)))) == ["part-9", "part-10"]


def test_no_chunks() -> None:
    assert assembly_order([]) == []
