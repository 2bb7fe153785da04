"""Serving processes raise their open-file limit (`raise_open_file_limit`): each connection
is a descriptor, and a large download holds several. The check runs in a fresh interpreter
whose soft limit starts low."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from ecrin.cli import OPEN_FILES_WANTED

resource = pytest.importorskip("resource")

START = 256
SCRIPT = f"""
import resource
soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
resource.setrlimit(resource.RLIMIT_NOFILE, ({START}, hard))
from ecrin.cli import app_from_environment
app_from_environment()  # what every worker process serving requests runs first
print(resource.getrlimit(resource.RLIMIT_NOFILE)[0])
"""


def test_a_serving_process_raises_its_soft_limit_to_the_hard_one(tmp_path: Path) -> None:
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    if hard != resource.RLIM_INFINITY and hard <= START:
        pytest.skip(f"the hard limit ({hard}) leaves nothing to raise")
    env = {**os.environ, "ECRIN_DATA_DIR": str(tmp_path / "data")}
    result = subprocess.run(
        [sys.executable, "-c", SCRIPT], env=env, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    expected = OPEN_FILES_WANTED if hard == resource.RLIM_INFINITY else hard
    assert int(result.stdout) == expected
