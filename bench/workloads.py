"""Workloads (1) to (4), identical for every server; each returns {metric key: value}.

Every server instance starts empty, so each workload creates what it measures. Set-up that is
not measured (uploading the folder to list, the tree to move) uses concurrency 8, a level every
server handles well (WsgiDAV on cheroot slows down sharply past about 10 connections).
"""

from __future__ import annotations

import os
import statistics
import time
from collections.abc import Awaitable, Callable

from bench.client import (
    PROPFIND_ALLPROP,
    PROPFIND_NAMED,
    BenchError,
    DavClient,
    count_responses,
    repeat_bytes,
    run_pool,
)
from bench.cpu import ServerCpu
from bench.sizes import MIB, Sizes

Progress = Callable[[str], None]
TINY_FILE = b"listed\n"
SETUP_CONCURRENCY = 8


async def timed(action: Awaitable[object]) -> float:
    started = time.perf_counter()
    await action
    return time.perf_counter() - started


async def large_file(client: DavClient, sizes: Sizes) -> dict[str, float]:
    """(1) `repeats` files streamed up, then each read back; MB/s = 10^6 bytes per second,
    the median of the transfers each way (one alone swings by tens of percent here)."""
    size = sizes.large_file_bytes
    block = os.urandom(MIB)
    names = [f"large-{i}.bin" for i in range(sizes.repeats)]
    put_seconds = []
    for name in names:
        put_seconds.append(await timed(client.put_stream(name, repeat_bytes(block, size), size)))
    get_seconds = []
    for name in names:
        started = time.perf_counter()
        received = await client.get(name)
        get_seconds.append(time.perf_counter() - started)
        if received != size:
            raise BenchError(f"GET {name}: {received} bytes, expected {size}")
    for name in names:
        await client.delete(name)
    return {
        "large_put_mb_s": size / 1e6 / statistics.median(put_seconds),
        "large_get_mb_s": size / 1e6 / statistics.median(get_seconds),
    }


async def with_cpu(server_cpu: ServerCpu, action: Awaitable[float]) -> tuple[float, float]:
    """`action`'s own result (its elapsed seconds) and the server's CPU seconds meanwhile."""
    before = server_cpu()
    seconds = await action
    return seconds, server_cpu() - before


async def small_files(client: DavClient, sizes: Sizes, server_cpu: ServerCpu) -> dict[str, float]:
    """(2) Distinct small files PUT at concurrency 1, then 32; then GET at concurrency 32.
    At concurrency 32, the server's CPU too: a file's share, and the cores it kept busy."""
    count, concurrency = sizes.small_files, sizes.concurrency
    blob = os.urandom(count * sizes.small_file_bytes)
    bodies = [
        blob[i * sizes.small_file_bytes : (i + 1) * sizes.small_file_bytes] for i in range(count)
    ]
    await client.mkcol("small-c1/")
    await client.mkcol("small-c32/")

    async def put_c1(i: int) -> None:
        await client.put(f"small-c1/f{i:05d}.bin", bodies[i])

    async def put_c32(i: int) -> None:
        await client.put(f"small-c32/f{i:05d}.bin", bodies[i])

    async def get_c32(i: int) -> None:
        if await client.get(f"small-c32/f{i:05d}.bin") != sizes.small_file_bytes:
            raise BenchError(f"GET small-c32/f{i:05d}.bin: wrong length")

    put_c1_seconds = await run_pool(count, 1, put_c1)
    put_seconds, put_cpu = await with_cpu(server_cpu, run_pool(count, concurrency, put_c32))
    get_seconds, get_cpu = await with_cpu(server_cpu, run_pool(count, concurrency, get_c32))
    return {
        "small_put_c1_files_s": count / put_c1_seconds,
        "small_put_c32_files_s": count / put_seconds,
        "small_put_c32_cpu_us": 1e6 * put_cpu / count,
        "small_put_c32_cores": put_cpu / put_seconds,
        "small_get_c32_req_s": count / get_seconds,
        "small_get_c32_cpu_us": 1e6 * get_cpu / count,
        "small_get_c32_cores": get_cpu / get_seconds,
    }


async def upload_folder(client: DavClient, folder: str, count: int, concurrency: int) -> None:
    await client.mkcol(folder)

    async def put(i: int) -> None:
        await client.put(f"{folder}f{i:05d}.txt", TINY_FILE)

    await run_pool(count, concurrency, put)


async def time_propfind(
    client: DavClient, folder: str, body: bytes, expected: int, repeats: int
) -> float:
    """The median of `repeats` PROPFIND Depth 1 (after one untimed warm-up)."""
    times = []
    for attempt in range(repeats + 1):
        started = time.perf_counter()
        answer = await client.propfind(folder, "1", body)
        elapsed = time.perf_counter() - started
        if count_responses(answer) != expected:
            raise BenchError(f"PROPFIND {folder}: {count_responses(answer)} of {expected} entries")
        if attempt:
            times.append(elapsed)
    return statistics.median(times)


async def listing(client: DavClient, sizes: Sizes) -> dict[str, float]:
    """(3) PROPFIND Depth 1 of a folder of many files: allprop, then 4 named properties.

    `client` works at the WebDAV root: the folder is uploaded in the first round only."""
    if not await client.exists("listing/"):
        await upload_folder(client, "listing/", sizes.listing_files, SETUP_CONCURRENCY)
    expected = sizes.listing_files + 1
    return {
        "propfind_allprop_s": await time_propfind(
            client, "listing/", PROPFIND_ALLPROP, expected, sizes.listing_repeats
        ),
        "propfind_named_s": await time_propfind(
            client, "listing/", PROPFIND_NAMED, expected, sizes.listing_repeats
        ),
    }


async def tree(client: DavClient, sizes: Sizes) -> dict[str, float]:
    """(4) MKCOL a tree's folders; fill them (untimed); MOVE it, COPY it, DELETE both."""
    folders = [f"tree/d{k:02d}/" for k in range(sizes.tree_folders)]
    started = time.perf_counter()
    for folder in ("tree/", *folders):
        await client.mkcol(folder)
    mkcol_seconds = time.perf_counter() - started

    per_folder = sizes.tree_files_per_folder

    async def put(i: int) -> None:
        await client.put(f"{folders[i // per_folder]}f{i % per_folder:04d}.bin", TINY_FILE)

    await run_pool(sizes.tree_files, SETUP_CONCURRENCY, put)
    move_seconds = await timed(client.move("tree/", "moved/"))
    copy_seconds = await timed(client.copy("moved/", "copied/"))
    copied = count_responses(await client.propfind("copied/d00/", "1"))
    if copied != per_folder + 1:
        raise BenchError(f"COPY: copied/d00/ holds {copied - 1} of {per_folder} files")
    started = time.perf_counter()
    await client.delete("moved/")
    await client.delete("copied/")
    delete_seconds = time.perf_counter() - started
    if await client.exists("copied/"):
        raise BenchError("DELETE copied/: still there")
    return {
        "tree_mkcol_s": mkcol_seconds,
        "tree_move_s": move_seconds,
        "tree_copy_s": copy_seconds,
        "tree_delete_s": delete_seconds,
        "tree_total_s": mkcol_seconds + move_seconds + copy_seconds + delete_seconds,
    }


async def run_workloads(
    client: DavClient, sizes: Sizes, round_index: int, server_cpu: ServerCpu, progress: Progress
) -> dict[str, float]:
    """Every workload; all but the listing work in a folder of their own for this round."""
    await client.mkcol(f"round{round_index}/")
    in_round = client.within(f"round{round_index}/")
    workloads: dict[str, Callable[[], Awaitable[dict[str, float]]]] = {
        "large file": lambda: large_file(in_round, sizes),
        "small files": lambda: small_files(in_round, sizes, server_cpu),
        "listing": lambda: listing(client, sizes),
        "tree": lambda: tree(in_round, sizes),
    }
    results: dict[str, float] = {}
    for name, workload in workloads.items():
        measured = await workload()
        progress(f"{name}: " + ", ".join(f"{k} {v:.4g}" for k, v in measured.items()))
        results.update(measured)
    return results
