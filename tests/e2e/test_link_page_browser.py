"""The public-link page in a real browser (headless Chromium driven by Selenium): a file
drop uploads through the page's own script, a protected link opens after its password."""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from selenium import webdriver
from selenium.common.exceptions import StaleElementReferenceException, WebDriverException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support.ui import WebDriverWait

from tests.e2e.conftest import LiveServer, StartServer

CHROMIUM = shutil.which("chromium")
CHROMEDRIVER = shutil.which("chromedriver")
pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(
        (CHROMIUM is None or CHROMEDRIVER is None) and not os.environ.get("CI"),
        reason="chromium and chromium-driver are not installed",
    ),
]


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[webdriver.Chrome]:
    assert CHROMIUM and CHROMEDRIVER, "chromium and chromium-driver must be installed"
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={tmp_path / 'chromium-profile'}",
    ):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    try:
        yield driver
    finally:
        driver.quit()


def _submit_password(browser: webdriver.Chrome, password: str) -> None:
    """Type the password, submit, and wait until the form's page has been replaced."""
    field = browser.find_element(By.ID, "password")
    field.send_keys(password)
    browser.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
    WebDriverWait(browser, 30).until(lambda _: _detached(field))


def _detached(element: WebElement) -> bool:
    """Whether the page that held `element` has been replaced. Mid-navigation Chromium may
    answer "does not belong to the document" instead of a stale reference: same meaning."""
    try:
        element.is_enabled()
    except StaleElementReferenceException:
        return True
    except WebDriverException as error:
        if "does not belong to the document" in str(error):
            return True
        raise
    return False


def _link(server: LiveServer, *args: str) -> str:
    output = server.ecrin("share", "link", "admin", *args).stdout
    match = re.search(r"/s/(\S+)", output)
    assert match, output
    return match.group(1)


def _dav(server: LiveServer) -> httpx.Client:
    return httpx.Client(base_url=server.base_url, auth=(server.user, server.password))


def test_file_drop_page_uploads_without_showing_anything(
    live_server: StartServer, browser: webdriver.Chrome, tmp_path: Path
) -> None:
    server = live_server()
    with _dav(server) as dav:
        assert dav.request("MKCOL", server.dav_path("/Homework")).status_code == 201
        assert dav.put(server.dav_path("/Homework/someone else.txt"), content=b"x").is_success
    token = _link(server, "/Homework", "--upload-only")
    essay = tmp_path / "my essay.txt"
    essay.write_bytes("Rédaction, version finale\n".encode() * 1000)

    browser.get(f"{server.base_url}/s/{token}")
    assert "someone else" not in browser.page_source
    browser.find_element(By.ID, "files").send_keys(str(essay))
    browser.find_element(By.ID, "send").click()
    status = browser.find_element(By.ID, "status")
    WebDriverWait(browser, 30).until(lambda _: "my essay.txt" in status.text)
    assert status.text.startswith("Sent"), status.text

    with _dav(server) as dav:
        uploaded = dav.get(server.dav_path("/Homework/my essay.txt"))
        assert uploaded.status_code == 200 and uploaded.content == essay.read_bytes()


def test_protected_link_opens_after_its_password(
    live_server: StartServer, browser: webdriver.Chrome
) -> None:
    server = live_server()
    with _dav(server) as dav:
        assert dav.request("MKCOL", server.dav_path("/Minutes")).status_code == 201
        assert dav.put(server.dav_path("/Minutes/2026-11.odt"), content=b"minutes").is_success
    token = _link(server, "/Minutes", "--password", "council-2026")

    browser.get(f"{server.base_url}/s/{token}")
    assert "2026-11.odt" not in browser.page_source
    _submit_password(browser, "not it")
    assert "2026-11.odt" not in browser.page_source
    _submit_password(browser, "council-2026")
    WebDriverWait(browser, 30).until(lambda d: "2026-11.odt" in d.page_source)
    link = browser.find_element(By.PARTIAL_LINK_TEXT, "2026-11.odt").get_attribute("href")
    assert link and f"/s/{token}/download" in link
