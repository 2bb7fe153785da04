"""KEKs in a PKCS#11 token (SoftHSM2): non-extractable, and clear refusals when unavailable."""

from __future__ import annotations

import dataclasses
import os
import uuid
from pathlib import Path
from typing import TypedDict

import pkcs11
import pytest
from pkcs11 import Attribute, KeyType, ObjectClass

from ecrin.core.errors import KeyUnavailable, StorageError
from ecrin.storage.encryption.pkcs11_keks import Pkcs11Keys
from ecrin.storage.encryption.records import LocalKeyRecords
from ecrin.storage.encryption.rotation import census, rotate
from ecrin.storage.encryption.store import EncryptedBlobStore
from ecrin.storage.local import LocalBlobStore
from tests.storage.encryption.conftest import SoftHsm, get, put


def hsm_store(root: Path, keks: Pkcs11Keys, kek_id: str) -> EncryptedBlobStore:
    return EncryptedBlobStore(
        LocalBlobStore(root / "blobs", fsync=False),
        LocalKeyRecords(root / "blobs" / "key-records", fsync=False),
        keks,
        kek_id=kek_id,
        segment_size=4096,
    )


def label() -> str:
    return "kek-" + uuid.uuid4().hex[:12]


class SettingChanges(TypedDict, total=False):
    pkcs11_token_label: str
    pkcs11_pin_file: str


async def test_kek_lives_in_the_token_and_cannot_be_extracted(
    softhsm: SoftHsm, tmp_path: Path
) -> None:
    keks = Pkcs11Keys(softhsm.module, softhsm.token_label, pin=softhsm.pin)
    kek = label()
    await keks.open(first_start=True)
    await keks.create(kek)
    assert kek in await keks.ids()
    await keks.close()
    token = pkcs11.lib(softhsm.module).get_token(token_label=softhsm.token_label)
    with token.open(user_pin=softhsm.pin) as session:
        key = session.get_key(ObjectClass.SECRET_KEY, KeyType.AES, label=kek)
        assert key[Attribute.EXTRACTABLE] is False
        assert key[Attribute.SENSITIVE] is True
        with pytest.raises(pkcs11.exceptions.PKCS11Error):
            key[Attribute.VALUE]
    store = hsm_store(tmp_path, keks, kek)
    await store.open()
    data = os.urandom(50_000)
    blob_id = await put(store, data)
    assert await get(store, blob_id) == data
    assert await get(store, blob_id, 4000, 9000) == data[4000:9000]
    await store.close()


async def test_wrong_pin_missing_token_or_missing_key_refuse_with_reasons(
    softhsm: SoftHsm, tmp_path: Path
) -> None:
    cases = [
        (Pkcs11Keys(softhsm.module, softhsm.token_label, pin="0000"), "PIN"),
        (Pkcs11Keys(softhsm.module, "no-such-token", pin=softhsm.pin), "no PKCS#11 token"),
        (Pkcs11Keys(str(tmp_path / "missing.so"), softhsm.token_label, pin="1"), "module"),
        (Pkcs11Keys(softhsm.module, softhsm.token_label), "PIN"),
    ]
    for keks, reason in cases:
        with pytest.raises(KeyUnavailable, match=reason):
            await hsm_store(tmp_path, keks, "any").open()
    keks = Pkcs11Keys(softhsm.module, softhsm.token_label, pin=softhsm.pin)
    with pytest.raises(KeyUnavailable, match="not in PKCS#11 token"):
        await hsm_store(tmp_path, keks, label()).open()
    await keks.close()


async def test_pin_file(softhsm: SoftHsm, tmp_path: Path) -> None:
    pin_file = tmp_path / "pin"
    pin_file.write_text(softhsm.pin + "\n")
    keks = Pkcs11Keys(softhsm.module, softhsm.token_label, pin_file=pin_file)
    await keks.open(first_start=True)
    await keks.close()
    pin_file.write_text("9999\n")
    with pytest.raises(KeyUnavailable, match="PIN"):
        await Pkcs11Keys(softhsm.module, softhsm.token_label, pin_file=pin_file).open(
            first_start=True
        )


async def test_shredding_a_token_key_makes_its_blobs_unreadable_and_rotation_between_keys(
    softhsm: SoftHsm, tmp_path: Path
) -> None:
    keks = Pkcs11Keys(softhsm.module, softhsm.token_label, pin=softhsm.pin)
    old, new, doomed = label(), label(), label()
    await keks.open(first_start=True)
    for kek in (old, new, doomed):
        await keks.create(kek)
    store = hsm_store(tmp_path, keks, old)
    await store.open()
    contents = {await put(store, data): data for data in (os.urandom(n) for n in (0, 10, 9000))}
    shredded = await put(store, b"to be shredded", kek_id=doomed)
    report = await rotate(store, new, source=old)
    assert report.rewrapped == 3 and not report.failed
    assert (await census(store)).by_kek == {new: 3, doomed: 1}
    await keks.destroy(old)
    await keks.destroy(doomed)
    for blob_id, data in contents.items():
        assert await get(store, blob_id) == data
    with pytest.raises(KeyUnavailable, match=doomed):
        await get(store, shredded)
    await store.close()


async def test_tampered_wrapped_key_is_refused(softhsm: SoftHsm, tmp_path: Path) -> None:
    keks = Pkcs11Keys(softhsm.module, softhsm.token_label, pin=softhsm.pin)
    kek = label()
    await keks.open(first_start=True)
    await keks.create(kek)
    store = hsm_store(tmp_path, keks, kek)
    await store.open()
    blob_id = await put(store, b"hello")
    records = store.records
    assert isinstance(records, LocalKeyRecords)
    path = records.path_of(blob_id)
    raw = bytearray(path.read_bytes())
    raw[-2] ^= 1
    path.write_bytes(bytes(raw))
    with pytest.raises(StorageError):
        await get(store, blob_id)
    await store.close()


async def test_the_app_refuses_to_start_without_the_token_or_pin_and_says_why(
    softhsm: SoftHsm, tmp_path: Path
) -> None:
    from ecrin.app import create_app
    from ecrin.settings import Settings

    pin_file = tmp_path / "pin"
    pin_file.write_text("0000\n")
    settings = Settings(
        data_dir=tmp_path / "data",
        fsync=False,
        encryption=True,
        kek_provider="pkcs11",
        pkcs11_module=softhsm.module,
        pkcs11_token_label=softhsm.token_label,
        pkcs11_pin_file=str(pin_file),
        kek_id=label(),
    )
    cases: list[tuple[SettingChanges, str]] = [
        ({}, "PIN of the PKCS#11 token 'ecrin-test' was refused"),
        ({"pkcs11_token_label": "unplugged"}, "no PKCS#11 token labelled 'unplugged'"),
        ({"pkcs11_pin_file": str(tmp_path / "nowhere")}, "cannot read the PKCS#11 PIN file"),
    ]
    for changes, reason in cases:
        app = create_app(dataclasses.replace(settings, **changes))
        try:
            with pytest.raises(KeyUnavailable, match=reason):
                await app.runtime.open()
        finally:
            await app.runtime.close()


# python-pkcs11 finalises a search begun on a dead session in __del__, where the library's
# own error can only be "ignored": that is the token going away, which this test is about.
@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
async def test_a_token_lost_while_serving_refuses_reads_then_recovers(
    softhsm: SoftHsm, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    keks = Pkcs11Keys(softhsm.module, softhsm.token_label, pin=softhsm.pin)
    kek = label()
    await keks.open(first_start=True)
    await keks.create(kek)
    store = hsm_store(tmp_path, keks, kek)
    await store.open()
    blob_id = await put(store, b"held by the token")
    session = keks._session
    assert session is not None
    session.close()  # the token goes away under the server's feet: reconnected once
    assert await get(store, blob_id) == b"held by the token"
    keks._session.close()  # type: ignore[union-attr]
    keks.token_label = "unplugged"  # and now it does not come back
    caplog.clear()
    with pytest.raises(KeyUnavailable, match="not available"):
        await get(store, blob_id)
    assert any("unplugged" in r.getMessage() for r in caplog.records)
    keks.token_label = softhsm.token_label  # plugged in again
    assert await get(store, blob_id) == b"held by the token"
    await store.close()
