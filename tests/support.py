"""Readable DAV test helpers: one method per verb, each taking the status it expects; and
`run_ecrin`, the command line on a server's data folder."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from urllib.parse import quote

import httpx
from lxml import etree

PASSWORD = "correct horse battery staple"
NS = {"d": "DAV:", "oc": "http://owncloud.org/ns", "nc": "http://nextcloud.org/ns"}


class Dav:
    def __init__(
        self, client: httpx.AsyncClient, user: str, password: str, prefix: str | None = None
    ) -> None:
        self.client = client
        self.user = user
        self.auth = (user, password) if user else None  # no user: no credentials at all
        self.prefix = prefix or f"/remote.php/dav/files/{user}"

    @property
    def credentials(self) -> tuple[str, str]:
        """`auth` where credentials are required (httpx's post/put/delete do not take None)."""
        assert self.auth is not None, "this Dav is anonymous: it has no credentials"
        return self.auth

    def url(self, path: str) -> str:
        return self.prefix + quote(path if path.startswith("/") else "/" + path)

    async def request(
        self,
        method: str,
        path: str,
        *,
        status: int | None = None,
        body: bytes | str = b"",
        headers: Mapping[str, str] | None = None,
    ) -> httpx.Response:
        response = await self.client.request(
            method, self.url(path), content=body, headers=dict(headers or {}), auth=self.auth
        )
        if status is not None:
            assert response.status_code == status, (
                f"{method} {path}: {response.status_code} != {status}\n{response.text[:2000]}"
            )
        return response

    async def put(
        self, path: str, data: bytes | str, status: int | None = None, **headers: str
    ) -> httpx.Response:
        return await self.request("PUT", path, status=status, body=data, headers=_headers(headers))

    async def get(self, path: str, status: int | None = 200, **headers: str) -> httpx.Response:
        return await self.request("GET", path, status=status, headers=_headers(headers))

    async def mkcol(self, path: str, status: int | None = 201) -> httpx.Response:
        return await self.request("MKCOL", path, status=status)

    async def delete(self, path: str, status: int | None = 204, **headers: str) -> httpx.Response:
        return await self.request("DELETE", path, status=status, headers=_headers(headers))

    async def move(
        self, path: str, destination: str, status: int | None = None, **headers: str
    ) -> httpx.Response:
        return await self.request(
            "MOVE",
            path,
            status=status,
            headers={"Destination": self.url(destination), **_headers(headers)},
        )

    async def copy(
        self, path: str, destination: str, status: int | None = None, **headers: str
    ) -> httpx.Response:
        return await self.request(
            "COPY",
            path,
            status=status,
            headers={"Destination": self.url(destination), **_headers(headers)},
        )

    async def propfind(
        self, path: str, props: list[str] | None = None, depth: str = "1", status: int | None = 207
    ) -> httpx.Response:
        body = ""
        if props is not None:
            inner = "".join(f"<{p}/>" for p in props)
            body = (
                f'<?xml version="1.0"?><d:propfind xmlns:d="DAV:" '
                f'xmlns:oc="http://owncloud.org/ns" xmlns:nc="http://nextcloud.org/ns">'
                f"<d:prop>{inner}</d:prop></d:propfind>"
            )
        return await self.request(
            "PROPFIND", path, status=status, body=body, headers={"Depth": depth}
        )

    async def prop(self, path: str, prop: str) -> str | None:
        """The text of one property of `path` (Depth 0), or None if not found."""
        response = await self.propfind(path, [prop], depth="0")
        tree = etree.fromstring(response.content)
        for propstat in tree.iterfind(".//d:propstat", NS):
            if "200" in propstat.findtext("d:status", "", NS):
                element = propstat.find(f"d:prop/{prop}", NS)
                if element is not None:
                    return element.text or ""
        return None


def _headers(headers: Mapping[str, str]) -> dict[str, str]:
    """Python keyword names -> HTTP header names (if_match -> If-Match)."""
    return {k.replace("_", "-"): v for k, v in headers.items()}


def hrefs(response: httpx.Response) -> list[str]:
    tree = etree.fromstring(response.content)
    return [h.text or "" for h in tree.iterfind(".//d:response/d:href", NS)]


def run_ecrin(
    data_dir: Path, env: Mapping[str, str], *args: str, check: bool = True
) -> subprocess.CompletedProcess[str]:
    """Run an `ecrin` command on a data folder, as an administrator would beside a server."""
    result = subprocess.run(
        [sys.executable, "-m", "ecrin", *args, "--data-dir", str(data_dir)],
        capture_output=True,
        text=True,
        env=dict(env),
        timeout=120,
        check=False,
    )
    if check:
        assert result.returncode == 0, (
            f"ecrin {' '.join(args)} exited with {result.returncode}:\n"
            f"{result.stdout}\n{result.stderr}"
        )
    return result
