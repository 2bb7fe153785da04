"""docs/nginx.md shows the nginx site that start-lb.sh and the scale-out tests run."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).parents[1]


def test_the_documented_site_is_the_one_the_scripts_run() -> None:
    site = (ROOT / "scripts" / "services" / "nginx" / "ecrin.conf").read_text("utf-8")
    page = (ROOT / "docs" / "nginx.md").read_text("utf-8")
    assert f"```nginx\n{site}```" in page


def test_the_site_streams_both_ways_without_a_size_limit() -> None:
    site = (ROOT / "scripts" / "services" / "nginx" / "ecrin.conf").read_text("utf-8")
    for directive in (
        "proxy_request_buffering off;",
        "proxy_buffering off;",
        "client_max_body_size 0;",
        "proxy_http_version 1.1;",
        "keepalive 32;",
        "proxy_set_header Host $http_host;",
        "proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;",
    ):
        assert directive in site, directive
