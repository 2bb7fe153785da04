"""The server CPU the benchmark reports counts every process of the server's tree."""

from __future__ import annotations

import subprocess
import sys

import psutil
from bench.cpu import tree_cpu_seconds

SPIN = "import time\nend = time.process_time() + 0.3\nwhile time.process_time() < end: pass\n"
SPIN_AND_STAY = SPIN + "print('spun', flush=True)\ntime.sleep(60)\n"
# A parent that runs one child to its end (reaped), then starts a second that spins and
# stays: the tree has spent at least 0.6 s of CPU once that second child says so.
TREE = f"""
import subprocess, sys, time
subprocess.run([sys.executable, "-c", {SPIN!r}], check=True)
subprocess.Popen([sys.executable, "-c", {SPIN_AND_STAY!r}])
time.sleep(60)
"""


def test_counts_live_and_reaped_descendants() -> None:
    parent = subprocess.Popen([sys.executable, "-c", TREE], stdout=subprocess.PIPE, text=True)
    try:
        assert parent.stdout is not None
        assert parent.stdout.readline() == "spun\n"
        assert tree_cpu_seconds(parent.pid) >= 0.6
    finally:
        for child in psutil.Process(parent.pid).children(recursive=True):
            child.kill()
        parent.kill()
        parent.communicate()


def test_a_process_that_is_gone_has_spent_nothing() -> None:
    assert tree_cpu_seconds(2**22 + 7) == 0.0  # above the largest pid Linux gives
