"""status.php, OCS capabilities and user, in both envelopes and both OCS versions."""

from __future__ import annotations

import httpx
import pytest
from lxml import etree

from ecrin.app import EcrinApp
from tests.support import PASSWORD, Dav

OCS = {"OCS-APIREQUEST": "true"}


async def test_status_php_needs_no_authentication(client: httpx.AsyncClient) -> None:
    response = await client.get("/status.php")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/json")
    status = response.json()
    assert status["installed"] is True
    assert status["maintenance"] is False
    assert status["needsDbUpgrade"] is False
    assert int(status["version"].split(".")[0]) >= 10  # clients gate features on it
    assert status["versionstring"]


async def test_status_php_ignores_wrong_credentials(client: httpx.AsyncClient) -> None:
    response = await client.get("/status.php", auth=("nobody", "wrong"))
    assert response.status_code == 200


async def test_captive_portal_check(client: httpx.AsyncClient) -> None:
    response = await client.get("/index.php/204")
    assert response.status_code == 204
    assert response.content == b""


async def test_capabilities_v1_json(alice: Dav) -> None:
    response = await alice.client.get(
        "/ocs/v1.php/cloud/capabilities?format=json", auth=alice.auth, headers=OCS
    )
    assert response.status_code == 200
    ocs = response.json()["ocs"]
    assert ocs["meta"]["statuscode"] == 100
    assert ocs["meta"]["status"] == "ok"
    capabilities = ocs["data"]["capabilities"]
    assert capabilities["dav"]["chunking"] == "1.0"
    assert "bulkupload" not in capabilities["dav"]
    assert capabilities["checksums"] == {"supportedTypes": ["SHA1"], "preferredUploadType": "SHA1"}
    assert capabilities["core"]["webdav-root"] == "remote.php/webdav"
    assert ocs["data"]["version"]["major"] >= 10


async def test_capabilities_v2_xml_by_default(alice: Dav) -> None:
    response = await alice.client.get("/ocs/v2.php/cloud/capabilities", auth=alice.auth)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/xml")
    root = etree.fromstring(response.content)
    assert root.findtext("meta/statuscode") == "200"
    assert root.findtext("data/capabilities/dav/chunking") == "1.0"
    supported = root.findall("data/capabilities/checksums/supportedTypes/element")
    assert [e.text for e in supported] == ["SHA1"]


async def test_json_chosen_by_accept_header(alice: Dav) -> None:
    response = await alice.client.get(
        "/ocs/v2.php/cloud/capabilities", auth=alice.auth, headers={"Accept": "application/json"}
    )
    assert response.json()["ocs"]["meta"]["statuscode"] == 200


async def test_capabilities_are_public_without_credentials(client: httpx.AsyncClient) -> None:
    response = await client.get("/ocs/v1.php/cloud/capabilities?format=json")
    assert response.status_code == 200
    assert response.json()["ocs"]["data"]["capabilities"]["dav"]["chunking"] == "1.0"


@pytest.mark.parametrize("version", ["v1", "v2"])
async def test_wrong_password_is_a_401(alice: Dav, version: str) -> None:
    """nextcloudcmd reports 'Error connecting to server' only on a real 401 here."""
    response = await alice.client.get(
        f"/ocs/{version}.php/cloud/capabilities?format=json", auth=("alice", "wrong password")
    )
    assert response.status_code == 401
    assert response.headers["www-authenticate"].startswith("Basic")
    assert response.json()["ocs"]["meta"]["statuscode"] == (997 if version == "v1" else 401)


async def test_cloud_user_gives_the_dav_user_id(app: EcrinApp, client: httpx.AsyncClient) -> None:
    await app.runtime.services.accounts.create_user(
        "carol", PASSWORD, display_name="Carol <Admin>", quota_bytes=1000
    )
    response = await client.get("/ocs/v1.php/cloud/user?format=json", auth=("carol", PASSWORD))
    assert response.status_code == 200
    data = response.json()["ocs"]["data"]
    assert data["id"] == "carol"
    assert data["display-name"] == data["displayname"] == "Carol <Admin>"
    assert data["quota"]["quota"] == 1000
    assert data["quota"]["free"] == 1000
    assert data["quota"]["used"] == 0


async def test_cloud_user_quota_follows_usage_and_unlimited_is_minus_3(alice: Dav) -> None:
    await alice.put("/a.bin", b"x" * 100, status=201)
    response = await alice.client.get("/ocs/v2.php/cloud/user?format=json", auth=alice.auth)
    quota = response.json()["ocs"]["data"]["quota"]
    assert quota["used"] == 100
    assert quota["quota"] == -3


async def test_cloud_user_xml_escapes_display_name(
    app: EcrinApp, client: httpx.AsyncClient
) -> None:
    await app.runtime.services.accounts.create_user("dave", PASSWORD, display_name="D & <d>")
    response = await client.get("/ocs/v1.php/cloud/user", auth=("dave", PASSWORD))
    root = etree.fromstring(response.content)
    assert root.findtext("meta/statuscode") == "100"
    assert root.findtext("data/display-name") == "D & <d>"


async def test_cloud_user_needs_credentials(client: httpx.AsyncClient) -> None:
    response = await client.get("/ocs/v1.php/cloud/user?format=json")
    assert response.status_code == 401


@pytest.mark.parametrize(("version", "http", "code"), [("v1", 200, 998), ("v2", 404, 404)])
async def test_unknown_ocs_endpoint(
    client: httpx.AsyncClient, version: str, http: int, code: int
) -> None:
    response = await client.get(f"/ocs/{version}.php/apps/nothing/here?format=json")
    assert response.status_code == http
    assert response.json()["ocs"]["meta"]["statuscode"] == code
