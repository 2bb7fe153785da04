"""Rounds: each round restarts every server (in a rotated order) and runs the same workloads."""

from __future__ import annotations

import secrets
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench import scale
from bench.client import DavClient, Endpoint, run_async
from bench.cpu import ServerCpu, tree_cpu_seconds
from bench.machine import describe_machine
from bench.memory import PeakRssSampler
from bench.processes import Credentials, Server, open_for_workers, start
from bench.report import finish, summarize_rounds
from bench.sizes import Sizes
from bench.workloads import Progress, run_workloads


@dataclass(frozen=True)
class Options:
    mode: str  # "full" or "quick"
    sizes: Sizes
    rounds: int
    servers: tuple[Server, ...]
    skipped: dict[str, str]  # server name -> why it was not run
    scale: bool  # run workload (6) (needs Ecrin among the servers)
    temp_root: Path
    keep: bool  # keep the temporary data (debugging)


def stderr_progress(message: str) -> None:
    print(f"[{datetime.now():%H:%M:%S}] {message}", file=sys.stderr, flush=True)


def rotated(servers: tuple[Server, ...], round_index: int) -> list[Server]:
    shift = round_index % len(servers) if servers else 0
    return [*servers[shift:], *servers[:shift]]


async def _session(
    endpoint: Endpoint, sizes: Sizes, round_index: int, server_cpu: ServerCpu, progress: Progress
) -> dict[str, float]:
    async with DavClient(endpoint, connections=max(64, sizes.concurrency)) as client:
        return await run_workloads(client, sizes, round_index, server_cpu, progress)


def server_round(
    server: Server,
    directory: Path,
    sizes: Sizes,
    credentials: Credentials,
    round_index: int,
    progress: Progress,
) -> dict[str, float]:
    """Start `server` on its folder, run workloads (1)-(4), sample its memory (5), stop it.

    The folder is prepared on the first round and kept for the next ones (the big folder
    PROPFIND lists is uploaded once); every round starts a new server process."""
    if not directory.exists():
        directory.mkdir()
        open_for_workers(directory)
        server.prepare(directory, credentials)
    running = start(server, directory, credentials)
    sampler = PeakRssSampler(running.pid).start()
    try:
        measured = run_async(
            _session(
                running.endpoint,
                sizes,
                round_index,
                lambda: tree_cpu_seconds(running.pid),
                lambda m: progress(f"{server.name} {m}"),
            )
        )
    finally:
        peak = sampler.stop()
        running.stop()
    measured["peak_rss_mib"] = peak.total_mib
    measured["peak_rss_process_mib"] = peak.largest_process_mib
    progress(f"{server.name} peak RSS {peak.total_mib:.0f} MiB ({peak.largest_process_mib:.0f})")
    return measured


def run(
    options: Options,
    progress: Progress = stderr_progress,
    checkpoint: Callable[[dict[str, Any]], None] | None = None,
) -> dict[str, Any]:
    """Run every round; `checkpoint` receives the results so far after each round."""
    started = time.perf_counter()
    sizes = options.sizes
    header: dict[str, Any] = {
        "schema": 1,
        "mode": options.mode,
        "rounds": options.rounds,
        "started_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": describe_machine(),
        "sizes": asdict(sizes),
        "servers": {s.name: s.describe() for s in options.servers},
        "skipped": dict(options.skipped),
    }
    credentials = Credentials("bench", secrets.token_urlsafe(12))
    base = Path(tempfile.mkdtemp(prefix="ecrin-bench-", dir=options.temp_root))
    open_for_workers(base)
    samples: dict[str, list[dict[str, float]]] = {s.name: [] for s in options.servers}
    scale_samples: list[dict[str, float]] = []
    instances: scale.ScaleInstances | None = None

    def collect(rounds_done: int) -> dict[str, Any]:
        results = dict(header, rounds_completed=rounds_done)
        results["metrics"] = {name: summarize_rounds(rounds) for name, rounds in samples.items()}
        results["scale"] = summarize_rounds(scale_samples)
        if instances is not None:
            results["population"] = asdict(instances.population)
        results["duration_s"] = round(time.perf_counter() - started, 1)
        return finish(results)

    try:
        instances = scale.prepare(base, sizes, credentials, progress) if options.scale else None
        for round_index in range(options.rounds):
            progress(f"round {round_index + 1}/{options.rounds}")
            for server in rotated(options.servers, round_index):
                samples[server.name].append(
                    server_round(
                        server, base / server.name, sizes, credentials, round_index, progress
                    )
                )
            if instances is not None:
                scale_samples.append(scale.run_round(instances, sizes, credentials, progress))
            if checkpoint is not None:
                checkpoint(collect(round_index + 1))
    finally:
        if options.keep:
            progress(f"kept the temporary data in {base}")
        else:
            release(options.servers, base, progress)
            shutil.rmtree(base, ignore_errors=True)
    return collect(options.rounds)


def release(servers: tuple[Server, ...], base: Path, progress: Progress) -> None:
    """Let every server that prepared a folder remove what it made outside it. A failure is
    reported, not raised: it must not hide the run's results or its own error."""
    for server in servers:
        if not (base / server.name).exists():
            continue
        try:
            server.release(base / server.name)
        except Exception as error:  # a service gone away: say so, release the others
            progress(f"{server.name}: could not release its resources: {error!r}")
