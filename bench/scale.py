"""Workload (6), Ecrin only: does a big instance stay fast?

Two instances are prepared once: one whose metadata holds `populated_files` files (written
straight into SQLite, see populate.py) and a nearly empty one; both have the same folder of
`scale_listing_files` entries. Each round starts both and times PROPFIND Depth 1 of that
folder on each in turn; on the populated one, `pollers` keep-alive clients then poll
PROPFIND Depth 0.
"""

from __future__ import annotations

import asyncio
import os
import random
import statistics
import time
from dataclasses import dataclass
from pathlib import Path

from bench.client import PROPFIND_ALLPROP, PROPFIND_NAMED, DavClient, Endpoint, run_async
from bench.ecrin_server import EcrinServer, database_path
from bench.populate import Population, populate
from bench.processes import Credentials, RunningServer, open_for_workers, start
from bench.sizes import Sizes
from bench.workloads import Progress, time_propfind

LISTED = "list/"


@dataclass(frozen=True)
class ScaleInstances:
    populated: Path
    empty: Path
    population: Population


def prepare(
    base: Path, sizes: Sizes, credentials: Credentials, progress: Progress
) -> ScaleInstances:
    server = EcrinServer()
    folders = {}
    for name in ("populated", "empty"):
        folder = base / f"ecrin-{name}"
        folder.mkdir()
        open_for_workers(folder)
        server.prepare(folder, credentials)
        folders[name] = folder
    progress(f"populating an Ecrin instance with {sizes.populated_files:,} files")
    population = populate(
        folders["populated"],
        database_path(folders["populated"]),
        credentials.user,
        sizes.populated_files,
        sizes.scale_listing_files,
    )
    progress(
        f"populated in {population.seconds:.1f} s, "
        f"database {population.database_bytes / 1e9:.2f} GB"
    )
    populate(
        folders["empty"],
        database_path(folders["empty"]),
        credentials.user,
        0,
        sizes.scale_listing_files,
    )
    # The database is written with fsync off: left to the kernel, its gigabytes would reach
    # the disk while the first round measures its first server.
    started = time.perf_counter()
    os.sync()
    progress(f"written to disk in {time.perf_counter() - started:.1f} s")
    return ScaleInstances(folders["populated"], folders["empty"], population)


async def poll(endpoint: Endpoint, sizes: Sizes) -> dict[str, float]:
    """`pollers` clients, each on its own keep-alive connection, PROPFIND Depth 0 of the root
    every `poll_interval_seconds` (random phase). The first interval (connections opening)
    is not counted."""
    interval = sizes.poll_interval_seconds
    latencies: list[float] = []
    # Pooled connections stay open between polls (the interval is below the idle limit).
    idle = interval + 1.0
    async with DavClient(endpoint, connections=sizes.pollers, idle_seconds=idle) as client:
        measure_from = time.perf_counter() + interval
        stop_at = measure_from + sizes.poll_seconds

        async def poller() -> None:
            await asyncio.sleep(random.uniform(0, interval))
            while (started := time.perf_counter()) < stop_at:
                await client.propfind("", "0", PROPFIND_NAMED)
                elapsed = time.perf_counter() - started
                if started >= measure_from:
                    latencies.append(elapsed)
                await asyncio.sleep(max(0.0, interval - elapsed))

        async with asyncio.TaskGroup() as group:
            for _ in range(sizes.pollers):
                group.create_task(poller())
    cuts = statistics.quantiles(latencies, n=100, method="inclusive")
    return {
        "poll_p50_ms": statistics.median(latencies) * 1000,
        "poll_p99_ms": cuts[98] * 1000,
        "poll_req_s": len(latencies) / sizes.poll_seconds,
    }


async def _listing_times(populated: Endpoint, empty: Endpoint, sizes: Sizes) -> dict[str, float]:
    """PROPFIND Depth 1 of the listed folder on both instances, taking turns (which goes first
    alternates), so that both see the machine as it is at that moment: timed one after the
    other, half a minute apart, their ratio swung from 0.6 to 1.6 on this VM. Medians of
    `listing_repeats`, after one warm-up each."""
    expected = sizes.scale_listing_files + 1
    times: dict[str, list[float]] = {"populated": [], "empty": []}
    async with DavClient(populated) as on_populated, DavClient(empty) as on_empty:
        clients = [("populated", on_populated), ("empty", on_empty)]
        for attempt in range(sizes.listing_repeats + 1):
            for name, client in clients if attempt % 2 else clients[::-1]:
                elapsed = await time_propfind(client, LISTED, PROPFIND_ALLPROP, expected, 1)
                if attempt:
                    times[name].append(elapsed)
    return {f"propfind_{name}_s": statistics.median(found) for name, found in times.items()}


def run_round(
    instances: ScaleInstances,
    sizes: Sizes,
    credentials: Credentials,
    progress: Progress,
) -> dict[str, float]:
    server = EcrinServer()
    results: dict[str, float] = {}
    populated: RunningServer = start(server, instances.populated, credentials)
    try:
        empty: RunningServer = start(server, instances.empty, credentials)
        try:
            results.update(run_async(_listing_times(populated.endpoint, empty.endpoint, sizes)))
        finally:
            empty.stop()
        results.update(run_async(poll(populated.endpoint, sizes)))
    finally:
        populated.stop()
    results["propfind_populated_ratio"] = (
        results["propfind_populated_s"] / results["propfind_empty_s"]
    )
    progress("scale: " + ", ".join(f"{k} {v:.4g}" for k, v in results.items()))
    return results
