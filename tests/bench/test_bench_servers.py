"""Which Ecrin variants the benchmark knows, and how it starts them."""

from __future__ import annotations

from pathlib import Path

from bench.cli import DEFAULT_SERVERS, select_servers
from bench.processes import Credentials


def test_two_embedded_workers_run_only_on_request() -> None:
    assert "ecrin-2w" not in [server.name for server in DEFAULT_SERVERS]
    chosen, skipped = select_servers("ecrin,ecrin-2w")
    assert [server.name for server in chosen] == ["ecrin", "ecrin-2w"] and not skipped
    launch = chosen[1].launch(Path("/tmp/bench"), 8080, Credentials("bench", "secret"))
    assert launch.command[-2:] == ["--workers", "2"]
    assert "--workers" not in chosen[0].launch(Path("/tmp/b"), 8080, Credentials("b", "s")).command
    assert "2 worker processes" in chosen[1].describe()


def test_a_random_password_may_begin_with_a_dash(tmp_path: Path) -> None:
    (server,), _ = select_servers("ecrin")
    server.prepare(tmp_path, Credentials("bench", "-rAnd0m-Passw0rd"))  # raised BenchError
    assert (tmp_path / "data").is_dir()
