"""CPU time a server spends: its process and every descendant (workers), sampled by psutil."""

from __future__ import annotations

from collections.abc import Callable

import psutil

ServerCpu = Callable[[], float]  # the server's CPU seconds so far


def tree_cpu_seconds(pid: int) -> float:
    """User and system CPU seconds of `pid` and its descendants, those that have exited and
    were waited for included (Apache's and nginx's parents reap the workers they replace)."""
    try:
        root = psutil.Process(pid)
        processes = [root, *root.children(recursive=True)]
    except psutil.Error:
        return 0.0
    total = 0.0
    for process in processes:
        try:
            times = process.cpu_times()
        except psutil.Error:
            continue  # a worker that exited between the listing and the read
        total += times.user + times.system + times.children_user + times.children_system
    return total
