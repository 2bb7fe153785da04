"""The report with a second Ecrin column: ecrin's ratios and targets as before, ecrin-scaleout's
own ratios to the peers beside them (JSON `scaleout_ratios`, table column S/apache)."""

from __future__ import annotations

import json
from dataclasses import asdict
from typing import Any

from bench.report import finish, render_markdown, render_text, summarize_rounds
from bench.sizes import QUICK


def _results(medians: dict[str, dict[str, float]]) -> dict[str, Any]:
    return finish(
        {
            "sizes": asdict(QUICK),
            "metrics": {name: summarize_rounds([values]) for name, values in medians.items()},
            "scale": {},
        }
    )


def test_scaleout_ratios_stand_beside_ecrins_without_changing_them() -> None:
    results = _results(
        {
            "ecrin": {"large_put_mb_s": 200.0, "tree_total_s": 2.0},
            "apache": {"large_put_mb_s": 400.0, "tree_total_s": 0.5},
            "ecrin-scaleout": {"large_put_mb_s": 100.0, "tree_total_s": 4.0},
        }
    )

    assert results["ratios"]["large_put_mb_s"] == {"apache": 0.5, "ecrin-scaleout": 2.0}
    assert results["scaleout_ratios"] == {
        "large_put_mb_s": {"apache": 0.25},
        "tree_total_s": {"apache": 8.0},
    }
    large_put = next(t for t in results["targets"] if t["target"].startswith("Large PUT"))
    assert large_put["value"] == 0.5  # the targets stay the embedded profile's
    assert any("ecrin-scaleout" in note for note in results["notes"])
    json.dumps(results)  # still plain JSON

    table = render_text(results).splitlines()
    assert table[0].split() == [
        "metric",
        "unit",
        "ecrin",
        "apache",
        "ecrin-scaleout",
        "E/apache",
        "E/ecrin-scaleout",
        "S/apache",
    ]
    put_row = next(line for line in table if line.startswith("(1) 8 MiB PUT"))
    assert put_row.split()[-3:] == ["0.50x", "2.00x", "0.25x"]
    assert "| S/apache |" in render_markdown(results)


def test_without_scaleout_the_table_and_notes_are_as_before() -> None:
    results = _results({"ecrin": {"large_put_mb_s": 200.0}, "apache": {"large_put_mb_s": 400.0}})

    assert results["scaleout_ratios"] == {}
    assert "S/" not in render_text(results).splitlines()[0]
    assert not any("ecrin-scaleout" in note for note in results["notes"])
