"""The API console at /docs, in a real browser: headless Chromium (Debian's package) driven over DevTools.

Chromium is not a Python package: `.ci/run` installs it with apt where it is missing, and
these tests are skipped, saying why, on a machine without it.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest

from tests.e2e.conftest import GATEWAY_URL

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = pytest.mark.skipif(
    CHROMIUM is None, reason="no Chromium on this machine (apt-get install chromium; .ci/run does)"
)
websocket = pytest.importorskip("websocket", reason="websocket-client drives Chromium's DevTools protocol")


class Browser:
    """One page of a headless Chromium, reached over the DevTools protocol."""

    def __init__(self, ws_url: str):
        self.ws = websocket.create_connection(ws_url, timeout=30, suppress_origin=True)
        self.next_id = 0

    def call(self, method: str, **params: Any) -> dict[str, Any]:
        self.next_id += 1
        self.ws.send(json.dumps({"id": self.next_id, "method": method, "params": params}))
        while True:
            message = json.loads(self.ws.recv())
            if message.get("id") == self.next_id:
                if "error" in message:
                    raise AssertionError(f"{method}: {message['error']}")
                return message["result"]

    def js(self, expression: str) -> Any:
        result = self.call("Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True)
        if "exceptionDetails" in result:
            raise AssertionError(f"{expression}: {result['exceptionDetails']}")
        return result["result"].get("value")

    def wait(self, expression: str, *, what: str, timeout: float = 30.0) -> Any:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            value = self.js(expression)
            if value:
                return value
            time.sleep(0.2)
        raise AssertionError(f"the page never showed {what}")


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    profile = tempfile.mkdtemp(prefix="shop-chromium-")
    process = subprocess.Popen(
        [
            CHROMIUM,
            "--headless",
            "--no-sandbox",  # tests run as root here
            "--disable-gpu",
            "--no-first-run",
            f"--user-data-dir={profile}",
            "--remote-debugging-port=0",
            "about:blank",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        port = None
        deadline = time.monotonic() + 30
        while port is None and time.monotonic() < deadline:
            line = process.stderr.readline()
            if not line and process.poll() is not None:
                break
            match = re.search(r"DevTools listening on ws://127\.0\.0\.1:(\d+)/", line)
            port = match and match.group(1)
        assert port, "Chromium did not open its DevTools port"
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=10) as answer:
            pages = [t for t in json.load(answer) if t["type"] == "page"]
        page = Browser(pages[0]["webSocketDebuggerUrl"])
        yield page
        page.ws.close()
    finally:
        process.terminate()
        process.wait(timeout=15)
        shutil.rmtree(profile, ignore_errors=True)


def _open_docs(browser: Browser) -> None:
    browser.call("Page.navigate", url=GATEWAY_URL + "/docs")
    browser.wait(
        "!!document.querySelector('.opblock-summary-path[data-path=\"/orders/add\"]')",
        what="the operation POST /orders/add",
    )


def test_the_docs_page_is_swagger_ui_listing_every_public_route(browser, gw):
    _open_docs(browser)
    shown = set(browser.js("[...document.querySelectorAll('.opblock-summary-path')].map(e => e.dataset.path)"))
    documented = set(gw.get("/api/schema").json()["paths"])
    assert "/orders/add" in shown and "/payment/{order_id}" in shown
    assert shown == documented
    assert browser.js("!!document.querySelector('.auth-wrapper .authorize')"), "no Authorize button"


_SET_INPUT = """
(() => {
  const input = document.querySelector(%s);
  const setter = Object.getOwnPropertyDescriptor(HTMLInputElement.prototype, 'value').set;
  setter.call(input, %s);
  input.dispatchEvent(new Event('input', {bubbles: true}));
  return true;
})()
"""


def test_authorize_then_try_it_out_calls_the_gateway_with_the_token(browser, buyer):
    _open_docs(browser)
    browser.js("document.querySelector('.auth-wrapper .authorize').click()")
    browser.wait("!!document.querySelector('.modal-ux input')", what="the Authorize dialog")
    browser.js(_SET_INPUT % (json.dumps(".modal-ux input"), json.dumps(buyer["token"])))
    browser.js("document.querySelector('.modal-ux .auth-btn-wrapper .authorize').click()")
    browser.wait("!!document.querySelector('.modal-ux .auth-btn-wrapper .btn-done')", what="the token accepted")
    browser.js("document.querySelector('.modal-ux .btn-done').click()")

    block = "#operations-member-member_mypage_retrieve"
    browser.wait(f"!!document.querySelector('{block}')", what="GET /member/mypage")
    browser.js(f"document.querySelector('{block} .opblock-summary-control').click()")
    browser.wait(f"!!document.querySelector('{block} .try-out__btn')", what="Try it out")
    browser.js(f"document.querySelector('{block} .try-out__btn').click()")
    browser.wait(f"!!document.querySelector('{block} .execute')", what="Execute")
    browser.js(f"document.querySelector('{block} .execute').click()")
    status = browser.wait(
        f"(document.querySelector('{block} .live-responses-table tr.response .response-col_status') || {{}}).textContent",
        what="the gateway's answer",
    )
    body = browser.js(f"document.querySelector('{block} .live-responses-table .microlight').textContent")
    assert status.strip() == "200", body
    assert json.loads(body)["email"] == buyer["email"]
