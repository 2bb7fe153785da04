"""The benchmark's quick mode runs end to end against a real Ecrin and reports every metric.

Peers are not needed: the test runs Ecrin only. The full benchmark is not part of the suite.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from bench.metrics import METRICS, SCALE_METRICS, TARGETS

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.e2e
def test_quick_mode_reports_every_metric_with_a_positive_value(tmp_path: Path) -> None:
    output = tmp_path / "results.json"
    command = [sys.executable, "-m", "bench", "--quick", "--only", "ecrin"]
    command += ["--output", str(output), "--tmp-dir", str(tmp_path)]
    run = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-4000:]

    results = json.loads(output.read_text())
    assert results["mode"] == "quick"
    ecrin = results["metrics"]["ecrin"]
    for metric in METRICS:
        # The kernel counts CPU in 10 ms ticks: quick mode's 50 small files may take fewer.
        cpu = metric.unit in ("µs", "cores")
        assert ecrin[metric.key]["median"] >= 0 if cpu else ecrin[metric.key]["median"] > 0, (
            metric.key
        )
        assert ecrin[metric.key]["min"] <= ecrin[metric.key]["median"] <= ecrin[metric.key]["max"]
    for metric in SCALE_METRICS:
        assert results["scale"][metric.key]["median"] > 0, metric.key
    assert results["population"]["files"] > 0
    assert [t["target"] for t in results["targets"]] == [t.text for t in TARGETS]
    assert any("fsync" in note for note in results["notes"])
    assert "(1)" in run.stdout and "Targets:" in run.stdout  # the table went to stdout
    assert not list(tmp_path.glob("ecrin-bench-*")), "temporary data left behind"
