"""Peak resident memory of a server: its process and every child (workers), sampled by psutil."""

from __future__ import annotations

import threading
from dataclasses import dataclass

import psutil

MIB = 1024 * 1024


@dataclass(frozen=True)
class RssPeak:
    total_mib: float  # the highest sum over the process tree (shared pages count in each process)
    largest_process_mib: float  # the highest RSS of any single process of the tree


def tree_rss(pid: int) -> tuple[int, int]:
    """(sum, max) of the RSS in bytes of `pid` and its descendants, now."""
    try:
        root = psutil.Process(pid)
        processes = [root, *root.children(recursive=True)]
    except psutil.Error:
        return 0, 0
    sizes = []
    for process in processes:
        try:
            sizes.append(process.memory_info().rss)
        except psutil.Error:
            continue  # a worker that exited between the listing and the read
    return sum(sizes), max(sizes, default=0)


class PeakRssSampler:
    """Samples a process tree every `interval` seconds in a thread until stopped."""

    def __init__(self, pid: int, interval: float = 0.05) -> None:
        self._pid = pid
        self._interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"rss-{pid}", daemon=True)
        self._total = 0
        self._largest = 0

    def _sample(self) -> None:
        total, largest = tree_rss(self._pid)
        self._total = max(self._total, total)
        self._largest = max(self._largest, largest)

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            self._sample()

    def start(self) -> PeakRssSampler:
        self._sample()
        self._thread.start()
        return self

    def stop(self) -> RssPeak:
        self._stop.set()
        self._thread.join()
        self._sample()
        return RssPeak(self._total / MIB, self._largest / MIB)
