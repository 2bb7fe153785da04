"""`python -m bench`: run the benchmark, print the table, write the JSON results."""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

from bench.ecrin_server import EcrinServer
from bench.processes import Server
from bench.report import render_markdown, render_text, write_json
from bench.runner import Options, run
from bench.scaleout_server import EcrinScaleOutServer
from bench.servers import PEERS
from bench.sizes import FULL, QUICK, with_populated_files

RESULTS = Path(__file__).resolve().parent / "results" / "latest.json"
# ecrin-scaleout runs when its services are set (bench/services.py), else it is skipped.
DEFAULT_SERVERS: tuple[Server, ...] = (EcrinServer(), *PEERS, EcrinScaleOutServer())
ALL_SERVERS: tuple[Server, ...] = (
    *DEFAULT_SERVERS,
    EcrinServer(fsync=False),
    EcrinServer(encryption=True),
    EcrinServer(workers=2),
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m bench",
        description="Compare Ecrin with Apache mod_dav, WsgiDAV and nginx on identical "
        "WebDAV workloads (run bench/setup.sh first to install the peers). Ecrin runs its "
        "embedded profile, and its scale-out one (ecrin-scaleout) when PostgreSQL, S3 and "
        "Redis are named by the variables scripts/services/start-test-backends.sh prints.",
    )
    parser.add_argument(
        "--quick", action="store_true", help="tiny sizes, one round: a smoke test in seconds"
    )
    parser.add_argument("--rounds", type=int, help="rounds (default 3, or 1 with --quick)")
    parser.add_argument(
        "--only",
        help="comma-separated servers to run, among: "
        + ", ".join(s.name for s in ALL_SERVERS)
        + " (default: all but ecrin-nofsync, ecrin-encrypted and ecrin-2w; a server that "
        "cannot run here is skipped, with the reason, unless named)",
    )
    parser.add_argument(
        "--populate",
        type=int,
        metavar="FILES",
        help="files in the populated Ecrin instance of workload (6) "
        f"(default {FULL.populated_files:,}, or {QUICK.populated_files:,} with --quick)",
    )
    parser.add_argument(
        "--no-scale", action="store_true", help="skip workload (6) (embedded Ecrin only)"
    )
    parser.add_argument("--output", type=Path, default=RESULTS, help="the JSON results file")
    parser.add_argument("--markdown", type=Path, help="also write the table as Markdown here")
    parser.add_argument(
        "--tmp-dir",
        type=Path,
        default=Path(tempfile.gettempdir()),
        help="where the servers' temporary data goes (deleted afterwards)",
    )
    parser.add_argument(
        "--keep",
        action="store_true",
        help="keep the temporary data (and ecrin-scaleout's database and prefixes, named in "
        "its folder's instance.json)",
    )
    return parser


def select_servers(only: str | None) -> tuple[tuple[Server, ...], dict[str, str]]:
    """The servers to run and, for the others, why not. Naming a missing server is an error."""
    by_name = {s.name: s for s in ALL_SERVERS}
    default = [s.name for s in DEFAULT_SERVERS]
    wanted = [n.strip() for n in only.split(",") if n.strip()] if only else default
    unknown = [n for n in wanted if n not in by_name]
    if unknown:
        raise SystemExit(f"unknown server(s): {', '.join(unknown)}; choose among {list(by_name)}")
    chosen: list[Server] = []
    skipped: dict[str, str] = {}
    for name in wanted:
        reason = by_name[name].missing()
        if reason is None:
            chosen.append(by_name[name])
        elif only:
            raise SystemExit(f"{name}: {reason}")
        else:
            skipped[name] = reason
    return tuple(chosen), skipped


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    servers, skipped = select_servers(args.only)
    for name, reason in skipped.items():
        print(f"skipping {name}: {reason}", file=sys.stderr)
    sizes = with_populated_files(QUICK if args.quick else FULL, args.populate)
    options = Options(
        mode="quick" if args.quick else "full",
        sizes=sizes,
        rounds=args.rounds or (1 if args.quick else 3),
        servers=servers,
        skipped=skipped,
        scale=not args.no_scale and any(s.name == "ecrin" for s in servers),
        temp_root=args.tmp_dir,
        keep=args.keep,
    )
    results = run(options, checkpoint=lambda partial: write_json(partial, args.output))
    print(render_text(results))
    write_json(results, args.output)
    print(f"\nresults written to {args.output}", file=sys.stderr)
    if args.markdown:
        args.markdown.write_text(render_markdown(results))
