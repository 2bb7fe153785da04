"""Results: medians and ranges over rounds, Ecrin/peer ratios, targets; as a table and JSON.

Ratios (`ratios` in the JSON, the E/x columns) and targets are the embedded `ecrin`'s. When
`ecrin-scaleout` ran, its ratios to the non-Ecrin peers are in `scaleout_ratios` (same shape:
metric -> peer -> ratio), and the table adds its ratio to Apache (S/apache).
"""

from __future__ import annotations

import json
import statistics
from pathlib import Path
from typing import Any

from bench.metrics import METRICS, SCALE_METRICS, TARGETS, Metric, Target
from bench.sizes import Sizes

NOTES = (
    "Durability: Ecrin fsyncs file contents, their directory and the SQLite commit "
    "(synchronous=FULL; a file of up to 16 KiB is in that commit) before it acknowledges a "
    "write; Apache, WsgiDAV and nginx do not fsync.",
    "ecrin runs the embedded profile: one process, where Apache and nginx use several "
    "processes or threads across both cores.",
    "Ecrin's DELETE moves a tree to the owner's trash (recoverable); the peers remove it.",
    "A ratio is Ecrin's median divided by the peer's: above 1 is better for rates (MB/s, "
    "files/s, req/s), below 1 is better for times, memory and latencies.",
    "The load client (aiohttp on uvloop) shares the machine with the server; its nginx numbers "
    "are the ceiling of what it can drive.",
    "Server CPU is the user and system time of the server's processes (the kernel counts it in "
    "10 ms ticks) over the timed requests, divided by their number (each) or by their wall "
    "time (cores busy: 1.0 is one core's worth, out of the machine's 2).",
    "Each round restarts every server, in a rotated order; a server keeps its folder from "
    "round to round (the folder PROPFIND lists is uploaded once). Values are medians over "
    "rounds, with the min-max range.",
)


ECRIN = "ecrin"
SCALEOUT = "ecrin-scaleout"
SCALEOUT_REFERENCE = "apache"  # the peer whose S/x column the table shows
SCALEOUT_NOTE = (
    "ecrin-scaleout is `ecrin serve --workers 2` on PostgreSQL, S3 and Redis, all on this "
    "machine: the services share its cores with the workers and the load client, and its "
    "durability is theirs (scripts/services' PostgreSQL runs with fsync off). S/x is its "
    "median divided by x's. Its peak RSS counts the supervisor and both workers, not the "
    "services; the largest process is a worker. "
    "Workload (6) runs on the embedded profile only."
)


def summarize(samples: list[float]) -> dict[str, Any]:
    return {
        "median": statistics.median(samples),
        "min": min(samples),
        "max": max(samples),
        "samples": samples,
    }


def summarize_rounds(rounds: list[dict[str, float]]) -> dict[str, dict[str, Any]]:
    keys = [key for key in rounds[0] if all(key in r for r in rounds)] if rounds else []
    return {key: summarize([r[key] for r in rounds]) for key in keys}


Metrics = dict[str, dict[str, dict[str, Any]]]  # server -> metric key -> summary


def is_ecrin(server: str) -> bool:
    return server == ECRIN or server.startswith(ECRIN + "-")


def ratios_of(metrics: Metrics, server: str, peers: list[str]) -> dict[str, dict[str, float]]:
    """metric key -> peer -> `server`'s median / the peer's."""
    mine = metrics.get(server, {})
    table: dict[str, dict[str, float]] = {}
    for metric in METRICS:
        if metric.key not in mine:
            continue
        for peer in peers:
            values = metrics.get(peer, {})
            if metric.key in values and values[metric.key]["median"] > 0:
                ratio = mine[metric.key]["median"] / values[metric.key]["median"]
                table.setdefault(metric.key, {})[peer] = ratio
    return table


def ratios(metrics: Metrics) -> dict[str, dict[str, float]]:
    """The embedded ecrin against every other server (Ecrin's other profiles included)."""
    return ratios_of(metrics, ECRIN, [s for s in metrics if s != ECRIN])


def scaleout_ratios(metrics: Metrics) -> dict[str, dict[str, float]]:
    """ecrin-scaleout against the peers that are not Ecrin."""
    return ratios_of(metrics, SCALEOUT, [s for s in metrics if not is_ecrin(s)])


def evaluate_target(target: Target, results: dict[str, Any]) -> dict[str, Any]:
    value: float | None = None
    if target.peer is not None:
        value = results["ratios"].get(target.key, {}).get(target.peer)
    elif target.key in results.get("scale", {}):
        value = results["scale"][target.key]["median"]
    elif target.key in results["metrics"].get("ecrin", {}):
        value = results["metrics"]["ecrin"][target.key]["median"]
    met = (
        None
        if value is None
        else (value >= target.bound if target.at_least else value <= target.bound)
    )
    return {"target": target.text, "value": value, "met": met}


def finish(results: dict[str, Any]) -> dict[str, Any]:
    """Add ratios and target verdicts to collected results."""
    results["ratios"] = ratios(results["metrics"])
    results["scaleout_ratios"] = scaleout_ratios(results["metrics"])
    results["targets"] = [evaluate_target(t, results) for t in TARGETS]
    results["notes"] = list(NOTES)
    if SCALEOUT in results["metrics"]:
        results["notes"].append(SCALEOUT_NOTE)
    return results


def number(value: float) -> str:
    if value >= 100:
        return f"{value:,.0f}"
    if value >= 10:
        return f"{value:.1f}"
    if value >= 1:
        return f"{value:.2f}"
    return f"{value:.3f}"


def cell(summary: dict[str, Any] | None) -> str:
    if summary is None:
        return "-"
    text = number(summary["median"])
    if summary["min"] != summary["max"]:
        text += f" ({number(summary['min'])}-{number(summary['max'])})"
    return text


def _rows(results: dict[str, Any]) -> tuple[list[str], list[list[str]]]:
    sizes = Sizes(**results["sizes"])
    servers = list(results["metrics"])
    peers = [s for s in servers if s != ECRIN] if ECRIN in servers else []
    scaleout_peers = [SCALEOUT_REFERENCE] if {SCALEOUT, SCALEOUT_REFERENCE} <= set(servers) else []
    header = ["metric", "unit", *servers, *(f"E/{p}" for p in peers)]
    header += [f"S/{p}" for p in scaleout_peers]
    rows: list[list[str]] = []
    for metric in METRICS:
        if not any(metric.key in results["metrics"][s] for s in servers):
            continue
        row = [metric.label(sizes), metric.unit]
        row += [cell(results["metrics"][s].get(metric.key)) for s in servers]
        row += [_ratio(results["ratios"], metric, p) for p in peers]
        row += [_ratio(results.get("scaleout_ratios", {}), metric, p) for p in scaleout_peers]
        rows.append(row)
    for metric in SCALE_METRICS:
        if metric.key in results.get("scale", {}):
            row = [metric.label(sizes), metric.unit, cell(results["scale"][metric.key])]
            rows.append(row + [""] * (len(header) - len(row)))
    return header, rows


def _ratio(table: dict[str, dict[str, float]], metric: Metric, peer: str) -> str:
    value = table.get(metric.key, {}).get(peer)
    return "-" if value is None else f"{value:.2f}x"


def _verdict(target: dict[str, Any]) -> str:
    if target["met"] is None:
        return "n/a (not measured)"
    return f"{'met   ' if target['met'] else 'MISSED'} ({target['value']:.2f})"


def render_text(results: dict[str, Any]) -> str:
    header, rows = _rows(results)
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    lines = ["  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True))]
    lines.append("  ".join("-" * w for w in widths))
    for row in rows:
        cells = [row[0].ljust(widths[0])] + [
            c.rjust(w) for c, w in zip(row[1:], widths[1:], strict=True)
        ]
        lines.append("  ".join(cells))
    lines += ["", "Targets:"]
    lines += [f"  {_verdict(t):<22} {t['target']}" for t in results["targets"]]
    lines += ["", "Notes:"] + [f"  - {note}" for note in results["notes"]]
    return "\n".join(lines)


def render_markdown(results: dict[str, Any]) -> str:
    header, rows = _rows(results)
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    lines += ["", "| target | Ecrin | verdict |", "|---|---|---|"]
    for target in results["targets"]:
        value = "-" if target["value"] is None else f"{target['value']:.2f}"
        verdict = "n/a" if target["met"] is None else ("met" if target["met"] else "**missed**")
        lines.append(f"| {target['target']} | {value} | {verdict} |")
    return "\n".join(lines) + "\n"


def write_json(results: dict[str, Any], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(results, indent=2) + "\n")
