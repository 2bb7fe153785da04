"""`ecrin serve` keeps glibc from holding on to freed argon2 memory (`release_large_blocks`).

Without it, each executor thread that ran an argon2 check kept the check's 19 MiB resident
(glibc raises its mmap threshold to the size of the blocks it frees), so a process grew by
19 MiB per thread. The check runs in a fresh interpreter: the allocator's state is per
process, and this one's is whatever the test suite left.
"""

from __future__ import annotations

import subprocess
import sys

import pytest

ARGON2_MIB = 19  # the default argon2_memory_kib, rounded down

CHECKS = """
import asyncio
import psutil
from ecrin.auth.passwords import PasswordHashing
from ecrin.cli import release_large_blocks

if not release_large_blocks():
    print("unsupported")
    raise SystemExit
hashing = PasswordHashing()
password = "a password, long enough"
hashed = hashing.hash(password)

async def checks() -> None:
    for _ in range(3):
        await asyncio.gather(
            *(asyncio.to_thread(hashing.verify, hashed, password) for _ in range(4))
        )

before = psutil.Process().memory_info().rss
asyncio.run(checks())
print(psutil.Process().memory_info().rss - before)
"""


def test_argon2_checks_on_many_threads_give_their_memory_back() -> None:
    result = subprocess.run(
        [sys.executable, "-c", CHECKS], capture_output=True, text=True, timeout=120, check=True
    )
    if result.stdout.strip() == "unsupported":
        pytest.skip("not glibc: the allocator is left as it is")
    growth_mib = int(result.stdout) / 2**20
    # 12 checks on 4 threads: without the fixed threshold, ~4 x 19 MiB stay resident.
    assert growth_mib < ARGON2_MIB, f"the process kept {growth_mib:.0f} MiB after argon2"
