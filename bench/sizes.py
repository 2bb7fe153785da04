"""How big each workload is: the full benchmark and the quick smoke-test mode."""

from __future__ import annotations

from dataclasses import dataclass, replace

MIB = 1024 * 1024


@dataclass(frozen=True)
class Sizes:
    large_file_bytes: int  # (1) one file PUT then GET, streamed
    small_files: int  # (2) files of `small_file_bytes` PUT at concurrency 1 and 32, then GET
    small_file_bytes: int
    concurrency: int
    listing_files: int  # (3) files in the folder that PROPFIND Depth 1 lists
    tree_folders: int  # (4) the tree that MKCOL, MOVE, COPY and DELETE work on
    tree_files_per_folder: int
    repeats: int  # (1) transfers each way inside one round (their median is the round's)
    populated_files: int  # (6) Ecrin only: rows in the big instance
    scale_listing_files: int  # (6) the folder PROPFIND lists on the big and the empty instance
    pollers: int  # (6) concurrent keep-alive clients polling PROPFIND Depth 0
    poll_interval_seconds: float
    poll_seconds: float
    # (3), (6) timed PROPFINDs of a listing inside one round, their median the round's (3 in
    # runs before this field existed)
    listing_repeats: int = 3

    @property
    def tree_files(self) -> int:
        return self.tree_folders * self.tree_files_per_folder


FULL = Sizes(
    large_file_bytes=1024 * MIB,
    small_files=2_000,
    small_file_bytes=4096,
    concurrency=32,
    listing_files=10_000,
    tree_folders=10,
    tree_files_per_folder=100,
    repeats=3,
    listing_repeats=9,  # a 10,000-entry PROPFIND varies by half from one minute to the next
    populated_files=10_000_000,
    scale_listing_files=1_000,
    pollers=1_000,
    poll_interval_seconds=3.0,  # under uvicorn's 5 s keep-alive timeout: connections stay open
    poll_seconds=30.0,
)

QUICK = Sizes(
    large_file_bytes=8 * MIB,
    small_files=50,
    small_file_bytes=4096,
    concurrency=32,
    listing_files=200,
    tree_folders=4,
    tree_files_per_folder=5,
    repeats=1,
    listing_repeats=1,
    populated_files=10_000,
    scale_listing_files=200,
    pollers=20,
    poll_interval_seconds=0.2,
    poll_seconds=1.5,
)


def with_populated_files(sizes: Sizes, count: int | None) -> Sizes:
    return sizes if count is None else replace(sizes, populated_files=count)
