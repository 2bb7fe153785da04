"""Where Ecrin spends its time in one workload: py-spy samples the running server.

    python -m bench.profile small-get   # see --help for the other workloads
Starts Ecrin on an empty folder, prepares the workload, records the server with
`py-spy record --gil` (only the thread holding the GIL is sampled, so the numbers are Python
CPU time, not waiting) while the workload runs, then prints the functions with the largest
share of samples, inclusive and self. `--raw FILE` keeps the collapsed stacks for a flame graph.
"""

from __future__ import annotations

import argparse
import collections
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import replace
from pathlib import Path

from bench.client import PROPFIND_ALLPROP, PROPFIND_NAMED, DavClient, Endpoint, run_async, run_pool
from bench.ecrin_server import EcrinServer
from bench.processes import Credentials, open_for_workers, start
from bench.scale import poll
from bench.sizes import FULL, Sizes
from bench.workloads import (
    SETUP_CONCURRENCY,
    TINY_FILE,
    large_file,
    time_propfind,
    tree,
    upload_folder,
)

Work = Callable[[DavClient, Sizes], Awaitable[object]]
LINE_NUMBER = re.compile(r":\d+\)$")


async def _small_put(client: DavClient, sizes: Sizes) -> None:
    await client.mkcol("p/")

    async def put(i: int) -> None:
        await client.put(f"p/f{i:05d}.bin", TINY_FILE * 585)

    await run_pool(sizes.small_files * 2, sizes.concurrency, put)


async def _small_get_setup(client: DavClient, sizes: Sizes) -> None:
    await upload_folder(client, "g/", 100, SETUP_CONCURRENCY)


async def _small_get(client: DavClient, sizes: Sizes) -> None:
    async def get(i: int) -> None:
        await client.get(f"g/f{i % 100:05d}.txt")

    await run_pool(sizes.small_files * 5, sizes.concurrency, get)


async def _listing_setup(client: DavClient, sizes: Sizes) -> None:
    await upload_folder(client, "listing/", sizes.listing_files, SETUP_CONCURRENCY)


async def _listing(client: DavClient, sizes: Sizes) -> float:
    return await time_propfind(client, "listing/", PROPFIND_ALLPROP, sizes.listing_files + 1, 10)


async def _listing_named(client: DavClient, sizes: Sizes) -> float:
    return await time_propfind(client, "listing/", PROPFIND_NAMED, sizes.listing_files + 1, 10)


async def _mkcol(client: DavClient, sizes: Sizes) -> None:
    for i in range(sizes.small_files):
        await client.mkcol(f"d{i:05d}/")


async def _nothing(client: DavClient, sizes: Sizes) -> None:
    return None


# name -> (untimed set-up, profiled work)
WORKLOADS: dict[str, tuple[Work, Work]] = {
    "large-file": (_nothing, large_file),
    "small-put": (_nothing, _small_put),
    "small-get": (_small_get_setup, _small_get),
    "propfind": (_listing_setup, _listing),
    "propfind-named": (_listing_setup, _listing_named),
    "tree": (_nothing, tree),
    "mkcol": (_nothing, _mkcol),
}


def summarize(raw: Path, top: int) -> str:
    """Inclusive and self shares per function from py-spy's collapsed stacks."""
    inclusive: collections.Counter[str] = collections.Counter()
    own: collections.Counter[str] = collections.Counter()
    total = 0
    for line in raw.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        frames = [LINE_NUMBER.sub(")", f) for f in stack.split(";") if f]
        total += int(count)
        for frame in set(frames):
            inclusive[frame] += int(count)
        own[frames[-1]] += int(count)
    if not total:
        return "no samples (is py-spy allowed to attach?)"
    lines = [f"{total} samples with the GIL held", "", "inclusive:"]
    lines += [f"  {100 * n / total:5.1f}%  {f}" for f, n in inclusive.most_common(top)]
    lines += ["", "self:"]
    lines += [f"  {100 * n / total:5.1f}%  {f}" for f, n in own.most_common(top // 2)]
    return "\n".join(lines)


def profile(
    name: str, sizes: Sizes, raw: Path, rate: int, fsync: bool = True
) -> tuple[float, object]:
    """Run workload `name` against a fresh Ecrin under py-spy.

    Returns the profiled seconds and what the workload measured (under py-spy: indicative)."""
    setup, work = WORKLOADS.get(name, (_nothing, _nothing))
    base = Path(tempfile.mkdtemp(prefix="ecrin-profile-"))
    open_for_workers(base)
    credentials = Credentials("bench", "profile-password")
    server = EcrinServer(fsync=fsync)
    try:
        server.prepare(base, credentials)
        running = start(server, base, credentials)
        try:
            run_async(_with_client(running.endpoint, sizes, setup))
            command = [py_spy(), "record", "--pid", str(running.pid), "--gil"]
            command += ["--rate", str(rate), "--format", "raw", "--output", str(raw)]
            spy = subprocess.Popen(
                command,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            time.sleep(1.0)  # py-spy attaches
            started = time.perf_counter()
            if name == "poll":
                measured: object = run_async(poll(running.endpoint, sizes))
            else:
                measured = run_async(_with_client(running.endpoint, sizes, work))
            elapsed = time.perf_counter() - started
            spy.send_signal(signal.SIGINT)
            spy.wait(60)
        finally:
            running.stop()
    finally:
        shutil.rmtree(base, ignore_errors=True)
    return elapsed, measured


def py_spy() -> str:
    beside = Path(sys.executable).parent / "py-spy"
    return str(beside) if beside.exists() else shutil.which("py-spy") or "py-spy"


async def _with_client(endpoint: Endpoint, sizes: Sizes, work: Work) -> object:
    async with DavClient(endpoint, connections=max(64, sizes.pollers)) as client:
        return await work(client, sizes)


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.profile", description=__doc__)
    parser.add_argument("workload", choices=[*WORKLOADS, "poll"])
    parser.add_argument("--rate", type=int, default=100, help="samples per second")
    parser.add_argument("--top", type=int, default=40, help="functions to list")
    parser.add_argument("--raw", type=Path, help="keep py-spy's collapsed stacks here")
    parser.add_argument(
        "--no-fsync",
        action="store_true",
        help="run Ecrin with fsync = false (faster set-up for read workloads)",
    )
    args = parser.parse_args()
    if not Path(py_spy()).exists() and shutil.which("py-spy") is None:
        sys.exit("py-spy is not installed: pip install -e '.[bench]'")
    sizes = replace(FULL, large_file_bytes=FULL.large_file_bytes // 4, poll_seconds=10.0)
    raw = args.raw or Path(tempfile.mkstemp(suffix=".txt", prefix="py-spy-")[1])
    seconds, measured = profile(args.workload, sizes, raw, args.rate, fsync=not args.no_fsync)
    print(f"{args.workload}: {seconds:.1f} s profiled at {args.rate} Hz")
    if measured is not None:
        print(f"measured (under py-spy): {measured}")
    print(summarize(raw, args.top))
    if args.raw is None:
        raw.unlink(missing_ok=True)


if __name__ == "__main__":
    main()
