"""Requests per second through one URL, for comparing 1 and N workers behind nginx.

Start the workers and nginx yourself (docs/scaling.md, "Measuring 1 and 2 workers"), then:

    python -m bench.workers --url http://127.0.0.1:28100 --user admin --password …

Two operation classes, each for `--seconds` with `--concurrency` clients on keep-alive
connections: `poll` (PROPFIND Depth 0 of the home, what a sync client sends every 30 s)
and `put` (a 4 KiB file overwritten, one metadata write transaction plus one blob each).
Every answer must be a success; the script stops at the first that is not.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from collections.abc import Awaitable, Callable

import httpx

BODY = b"x" * 4096


async def _measure(
    client: httpx.AsyncClient, step: Callable[[int, int], Awaitable[int]], args: argparse.Namespace
) -> float:
    done = 0
    deadline = time.perf_counter() + args.seconds

    async def loop(worker: int) -> None:
        nonlocal done
        count = 0
        while time.perf_counter() < deadline:
            status = await step(worker, count)
            if status >= 300:
                raise SystemExit(f"unexpected status {status}")
            count += 1
            done += 1

    started = time.perf_counter()
    await asyncio.gather(*(loop(worker) for worker in range(args.concurrency)))
    return done / (time.perf_counter() - started)


async def run(args: argparse.Namespace) -> dict[str, float]:
    home = f"/remote.php/dav/files/{args.user}"
    limits = httpx.Limits(max_connections=args.concurrency)
    async with httpx.AsyncClient(
        base_url=args.url, auth=(args.user, args.password), timeout=60, limits=limits
    ) as client:
        for worker in range(args.concurrency):
            await client.request("MKCOL", f"{home}/bench-{worker}")

        async def poll(_worker: int, _count: int) -> int:
            response = await client.request("PROPFIND", home + "/", headers={"Depth": "0"})
            return response.status_code - 100 if response.status_code == 207 else 599

        async def put(worker: int, count: int) -> int:
            response = await client.put(f"{home}/bench-{worker}/f{count % 8}", content=BODY)
            return response.status_code

        results = {}
        for name, step in (("poll", poll), ("put", put)):
            await _measure(client, step, argparse.Namespace(**{**vars(args), "seconds": 2}))
            results[name] = round(await _measure(client, step, args), 1)
        return results


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.workers", description=__doc__)
    parser.add_argument("--url", required=True)
    parser.add_argument("--user", default="admin")
    parser.add_argument("--password", required=True)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=20.0)
    print(json.dumps(asyncio.run(run(parser.parse_args()))))


if __name__ == "__main__":
    main()
