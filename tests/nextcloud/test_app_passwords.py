"""OCS core/getapppassword and core/apppassword."""

from __future__ import annotations

from ecrin.app import EcrinApp
from tests.support import Dav


async def _get_app_password(alice: Dav, auth: tuple[str, str]) -> str:
    response = await alice.client.get(
        "/ocs/v2.php/core/getapppassword?format=json",
        auth=auth,
        headers={"OCS-APIREQUEST": "true", "User-Agent": "Nextcloud-android/3.0"},
    )
    assert response.status_code == 200, response.text
    token = response.json()["ocs"]["data"]["apppassword"]
    assert isinstance(token, str)
    return token


async def test_password_traded_for_a_working_app_password(app: EcrinApp, alice: Dav) -> None:
    token = await _get_app_password(alice, alice.credentials)
    response = await alice.client.request(
        "PROPFIND", "/remote.php/dav/files/alice/", auth=("alice", token), headers={"Depth": "0"}
    )
    assert response.status_code == 207
    listed = await app.runtime.services.accounts.list_app_passwords("alice")
    assert [p.name for p in listed] == ["Nextcloud-android/3.0"]


async def test_an_app_password_cannot_mint_another(alice: Dav) -> None:
    token = await _get_app_password(alice, alice.credentials)
    response = await alice.client.get(
        "/ocs/v2.php/core/getapppassword?format=json", auth=("alice", token)
    )
    assert response.status_code == 403
    assert response.json()["ocs"]["meta"]["statuscode"] == 403


async def test_delete_revokes_the_app_password_in_use(alice: Dav) -> None:
    token = await _get_app_password(alice, alice.credentials)
    response = await alice.client.delete(
        "/ocs/v2.php/core/apppassword?format=json", auth=("alice", token)
    )
    assert response.status_code == 200
    response = await alice.client.request(
        "PROPFIND", "/remote.php/dav/files/alice/", auth=("alice", token), headers={"Depth": "0"}
    )
    assert response.status_code == 401


async def test_delete_with_the_real_password_is_refused(alice: Dav) -> None:
    response = await alice.client.delete("/ocs/v2.php/core/apppassword", auth=alice.credentials)
    assert response.status_code == 403
