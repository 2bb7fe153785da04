"""The litmus WebDAV conformance suite, every group, against a live server."""

from __future__ import annotations

import os
import re
import shutil
import subprocess

import pytest

from tests.e2e.conftest import StartServer

pytestmark = pytest.mark.e2e

GROUPS = ("basic", "copymove", "props", "locks", "http")
SUMMARY = re.compile(
    r"<- summary for `(?P<group>\w+)': of (?P<run>\d+) tests run: "
    r"(?P<passed>\d+) passed, (?P<failed>\d+) failed"
)


def _litmus() -> str:
    found = shutil.which("litmus")
    if found is None:
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail("litmus is not installed (it is a Debian package: see scripts/test)")
        pytest.skip("litmus is not installed")
    return found


def test_litmus_passes_every_group(live_server: StartServer) -> None:
    litmus = _litmus()
    server = live_server()
    result = subprocess.run(
        [litmus, server.dav_url("/"), server.user, server.password],
        env={**os.environ, "TESTS": " ".join(GROUPS)},
        cwd=server.log_dir,  # litmus writes debug.log and child.log where it runs
        capture_output=True,
        text=True,
        timeout=300,
    )
    output = result.stdout + result.stderr
    summaries = {m["group"]: m for m in SUMMARY.finditer(output)}
    assert set(summaries) == set(GROUPS), f"litmus did not run every group:\n{output}"
    failures = {g: int(m["failed"]) for g, m in summaries.items() if int(m["failed"])}
    assert not failures, f"litmus failures {failures}:\n{output}"
    for group, match in summaries.items():
        assert int(match["run"]) == int(match["passed"]) > 0, group
    assert result.returncode == 0, output
    # A PUT whose If header is false fails with 412 even on a locked resource (RFC 4918 10.4.1).
    assert "PUT failed with 423 not 412" not in output
