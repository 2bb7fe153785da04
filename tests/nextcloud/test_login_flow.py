"""Login flow v2: start, browser page, poll."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from lxml import html

from ecrin.app import EcrinApp, create_app
from ecrin.core.clock import ManualClock
from ecrin.settings import Settings
from tests.support import PASSWORD, Dav

CLIENT = "Mozilla/5.0 (Linux) mirall/3.7.3 (Nextcloud, <test> & co)"


async def _start(client: httpx.AsyncClient) -> dict[str, str]:
    response = await client.post("/index.php/login/v2", headers={"User-Agent": CLIENT})
    assert response.status_code == 200
    started = response.json()
    assert started["poll"]["endpoint"] == "http://testserver/login/v2/poll"
    assert started["login"].startswith("http://testserver/login/v2/flow/")
    return {"poll": started["poll"]["token"], "login": started["login"]}


async def _poll(client: httpx.AsyncClient, token: str) -> httpx.Response:
    return await client.post("/login/v2/poll", data={"token": token})


async def test_full_flow(client: httpx.AsyncClient, alice: Dav) -> None:
    flow = await _start(client)
    assert (await _poll(client, flow["poll"])).status_code == 404  # not granted yet

    page = await client.get(flow["login"])
    assert page.status_code == 200
    assert page.headers["x-frame-options"] == "DENY"
    assert "frame-ancestors 'none'" in page.headers["content-security-policy"]
    document: html.HtmlElement = html.fromstring(page.text)
    assert CLIENT in document.text_content()  # shown, and escaped: the page still parses
    assert document.xpath("//form/@method") == ["post"]

    granted = await client.post(flow["login"], data={"user": "alice", "password": PASSWORD})
    assert granted.status_code == 200
    assert "granted" in granted.text.lower()

    collected = await _poll(client, flow["poll"])
    assert collected.status_code == 200
    body = collected.json()
    assert body["server"] == "http://testserver"
    assert body["loginName"] == "alice"
    response = await client.get(
        "/ocs/v1.php/cloud/user?format=json", auth=("alice", body["appPassword"])
    )
    assert response.json()["ocs"]["data"]["id"] == "alice"

    assert (await _poll(client, flow["poll"])).status_code == 404  # only once
    assert (await client.get(flow["login"])).status_code == 404  # the link is used up


async def test_wrong_password_shows_the_form_again(client: httpx.AsyncClient, alice: Dav) -> None:
    flow = await _start(client)
    page = await client.post(flow["login"], data={"user": "alice", "password": "nope"})
    assert page.status_code == 401
    assert "wrong user name or password" in page.text
    assert (await _poll(client, flow["poll"])).status_code == 404


async def test_app_passwords_cannot_grant(
    app: EcrinApp, client: httpx.AsyncClient, alice: Dav
) -> None:
    _, token = await app.runtime.services.accounts.create_app_password("alice", "cli")
    flow = await _start(client)
    page = await client.post(flow["login"], data={"user": "alice", "password": token})
    assert page.status_code == 403
    assert (await _poll(client, flow["poll"])).status_code == 404


async def test_flows_expire(
    app: EcrinApp, client: httpx.AsyncClient, alice: Dav, clock: ManualClock
) -> None:
    flow = await _start(client)
    clock.advance(21 * 60)
    assert (await client.get(flow["login"])).status_code == 404
    page = await client.post(flow["login"], data={"user": "alice", "password": PASSWORD})
    assert page.status_code == 404
    assert await app.runtime.services.login_flows.expire() == 1


@pytest.mark.parametrize("token", ["", "x" * 5000, "unknown"])
async def test_poll_with_bad_tokens(client: httpx.AsyncClient, token: str) -> None:
    response = await _poll(client, token)
    assert response.status_code in (404, 413)


async def test_poll_body_is_bounded(client: httpx.AsyncClient) -> None:
    response = await client.post("/login/v2/poll", content=b"token=" + b"a" * 100_000)
    assert response.status_code == 413


async def test_public_url_setting_names_the_server(tmp_path: Path, clock: ManualClock) -> None:
    settings = Settings(
        data_dir=tmp_path / "p", fsync=False, public_url="https://cloud.example.org/"
    )
    app = create_app(settings, clock)
    await app.runtime.open()
    try:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://internal") as client:
            started = (await client.post("/index.php/login/v2")).json()
    finally:
        await app.runtime.close()
    assert started["poll"]["endpoint"] == "https://cloud.example.org/login/v2/poll"
    assert started["login"].startswith("https://cloud.example.org/login/v2/flow/")
