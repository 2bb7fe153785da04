"""SoftHSM2, a real PKCS#11 module, for the tests: one token configuration per session.

With `ECRIN_TEST_ENCRYPTION=pkcs11` the whole in-process suite runs with encryption at rest
and its key-encryption key inside such a token (see tests/conftest.py).
"""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest

from ecrin.storage.encryption.pkcs11_keks import Pkcs11Keys

SOFTHSM_MODULES = (
    "/usr/lib/softhsm/libsofthsm2.so",
    "/usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so",
    "/usr/lib/aarch64-linux-gnu/softhsm/libsofthsm2.so",
    "/usr/local/lib/softhsm/libsofthsm2.so",
)


@dataclass(frozen=True)
class SoftHsm:
    module: str
    token_label: str
    pin: str
    other_token_label: str


@pytest.fixture(scope="session")
def softhsm(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SoftHsm]:
    """One SoftHSM2 configuration per test session (the PKCS#11 library is loaded once)."""
    module = next((m for m in SOFTHSM_MODULES if os.path.exists(m)), None)
    if module is None or shutil.which("softhsm2-util") is None:
        pytest.skip("SoftHSM2 is not installed (scripts/test installs the softhsm2 package)")
    root = tmp_path_factory.mktemp("softhsm")
    (root / "tokens").mkdir()
    conf = root / "softhsm2.conf"
    conf.write_text(
        f"directories.tokendir = {root / 'tokens'}\nobjectstore.backend = file\nlog.level = ERROR\n"
    )
    previous = os.environ.get("SOFTHSM2_CONF")
    os.environ["SOFTHSM2_CONF"] = str(conf)
    for label in ("ecrin-test", "ecrin-other"):
        subprocess.run(
            [
                "softhsm2-util",
                "--init-token",
                "--free",
                "--label",
                label,
                "--pin",
                "1234",
                "--so-pin",
                "5678",
            ],
            check=True,
            capture_output=True,
        )
    try:
        yield SoftHsm(module, "ecrin-test", "1234", "ecrin-other")
    finally:
        if previous is None:
            os.environ.pop("SOFTHSM2_CONF", None)
        else:
            os.environ["SOFTHSM2_CONF"] = previous


SUITE_KEK = "ecrin-suite"


@pytest.fixture(scope="session")
def suite_hsm(softhsm: SoftHsm, tmp_path_factory: pytest.TempPathFactory) -> tuple[SoftHsm, Path]:
    """The token with a key-encryption key for the whole suite, and a PIN file for it."""
    keks = Pkcs11Keys(softhsm.module, softhsm.token_label, pin=softhsm.pin)

    async def create() -> None:
        await keks.open(first_start=False)
        try:
            if SUITE_KEK not in await keks.ids():
                await keks.create(SUITE_KEK)
        finally:
            await keks.close()

    # The suite's event loop may already run (fixtures resolved inside async ones): create
    # the key on a loop of its own, in another thread.
    with ThreadPoolExecutor(1) as thread:
        thread.submit(asyncio.run, create()).result()
    pin_file = tmp_path_factory.mktemp("hsm-pin") / "pin"
    pin_file.write_text(softhsm.pin + "\n")
    return softhsm, pin_file
