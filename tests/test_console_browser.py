"""The operator console in a real browser: headless Chromium (Debian's `chromium` and `chromium-driver`, installed by
`tools/chromium.py`, which `make test` runs first) driven by Selenium, against the server `make run` starts.

The data is made through /v1 with `make run`'s admin key; the console is opened with a `read` key; what the page
shows (accounts, a journal with balance after, lots with expiry, an open hold, a hot account's "—") is compared
with what /v1 answers. `TALLY_SCREENSHOTS=1` also saves the main views to docs/console/ (committed, shown in
docs/operations/console.md).

The browser reaches nothing but 127.0.0.1: every other address goes to a proxy that does not exist, so a page
that loaded anything from another site would fail here (and its error would show in the browser's log).
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from tools import chromium
from tools.local_http import request_json

pytestmark = pytest.mark.slow  # starts make run's server and a browser
ROOT = Path(__file__).resolve().parent.parent
SCREENSHOTS = ROOT / "docs" / "console"
WAIT_SECONDS = 60  # a busy 2-core machine
DASH = "\u2014"
WIDTH = 1280


@pytest.fixture(scope="module")
def browser():
    try:
        found = chromium.ensure()
    except chromium.Unavailable as why:
        pytest.skip(str(why))
    from selenium import webdriver
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    options = Options()
    options.binary_location = found.chromium
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                     f"--window-size={WIDTH},900", "--no-first-run", "--no-default-browser-check",
                     "--disable-extensions", "--disable-sync", "--disable-background-networking",
                     "--disable-component-update", "--disable-default-apps", "--password-store=basic",
                     # Loopback is reached directly; any other address only through this dead proxy.
                     "--proxy-server=http://127.0.0.1:9"):
        options.add_argument(argument)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(found.driver), options=options)  # the driver named: nothing fetched
    driver.set_page_load_timeout(WAIT_SECONDS)
    try:
        yield driver
    finally:
        driver.quit()


def read_key(env: dict[str, str]) -> str:
    """A `read`-only key of make run's tenant, made with `make key`'s tool on that server's tables."""
    made = subprocess.run([sys.executable, "-m", "tools.keys", "create", "--tenant", "dev", "--scopes", "read",
                           "--token-only"], env=env, cwd=ROOT, check=True, capture_output=True, text=True, timeout=120)
    return made.stdout.strip()


class Api:
    def __init__(self, base: str, token: str) -> None:
        self.base, self.token = base, token

    def get(self, path: str) -> dict:
        status, body = request_json("GET", f"{self.base}/v1/{path}", headers={"Authorization": f"Bearer {self.token}"})
        assert status == 200, (path, body)
        return body

    def write(self, path: str, body: dict) -> dict:
        status, answer = request_json("POST", f"{self.base}/v1/{path}", body,
                                      {"Authorization": f"Bearer {self.token}", "Idempotency-Key": str(uuid.uuid4())})
        assert status == 201, (path, answer)
        return answer


def shown(value) -> str:
    """How the console writes a value of the API's: null as a dash, metadata as compact JSON."""
    if value is None or value == {}:
        return DASH
    if isinstance(value, dict):
        return json.dumps(value, separators=(",", ":"), ensure_ascii=False)
    return str(value)


def rows(driver, table: str) -> list[dict[str, str]]:
    """The rows a table shows, each as {field: text}; none when it shows its "none" row."""
    return driver.execute_script(
        "return [...document.querySelectorAll(`#${arguments[0]} tbody tr:not(.empty)`)].map((tr) =>"
        " Object.fromEntries([...tr.cells].map((td) => [td.dataset.field, td.textContent])));", table)


def wait_for(driver, condition, what: str):
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(driver, WAIT_SECONDS, poll_frequency=0.1).until(condition, f"waiting for {what}")


def status(driver) -> str:
    return driver.find_element("id", "status").text


def open_account(driver, account_id: str, unit: str, kind: str) -> None:
    from selenium.common.exceptions import NoSuchElementException, StaleElementReferenceException

    def click(d) -> bool:
        try:
            d.find_element("link text", account_id).click()
        except (NoSuchElementException, StaleElementReferenceException):
            return False  # the list is being drawn (again): find the link afresh
        return True

    wait_for(driver, click, f"{account_id}'s link")
    wait_for(driver, lambda d: status(d) == f"{account_id}: {kind} account in {unit}.", f"{account_id} to be shown")


def screenshot(driver, name: str) -> None:
    if not os.environ.get("TALLY_SCREENSHOTS"):
        return
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    height = driver.execute_script("return document.documentElement.scrollHeight")
    # The whole page, not only what the window shows: a viewport as tall as the page for this one picture.
    driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride",
                           {"width": WIDTH, "height": max(480, height), "deviceScaleFactor": 1, "mobile": False})
    try:
        driver.save_screenshot(str(SCREENSHOTS / name))
    finally:
        driver.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})


def errors_logged(driver) -> list[str]:
    return [entry["message"] for entry in driver.get_log("browser") if entry["level"] == "SEVERE"]


def test_the_console_shows_accounts_journals_lots_and_holds_as_v1_answers_them(make_run, make_run_env, browser):
    base, admin, _ = make_run
    api = Api(base, admin)
    api.write("accounts", {"id": "member-7", "unit": "points", "kind": "points", "metadata": {"tier": "gold"}})
    api.write("points/earn", {"account_id": "member-7", "payer": "DANNON", "points": 300,
                              "expires_at": "2030-01-01T00:00:00Z"})
    api.write("points/earn", {"account_id": "member-7", "payer": "UNILEVER", "points": 200})  # never expires
    api.write("points/spend", {"account_id": "member-7", "points": 100})  # FIFO: from DANNON's lot
    api.write("accounts", {"id": "wallet-7", "unit": "USD", "metadata": {"note": "<b>not bold</b>"}})
    api.write("postings", {"account_id": "wallet-7", "amount": 10000})
    hold = api.write("holds", {"account_id": "wallet-7", "amount": 2500, "metadata": {"order": "A-1"}})
    api.write("postings", {"account_id": "wallet-7", "amount": -1500})
    key = read_key(make_run_env)
    reader = Api(base, key)  # what the operator's key reads: the console must show the same

    browser.get(f"{base}/console")
    assert browser.title == "Tally console"
    assert not browser.find_element("id", "accounts-view").is_displayed()  # nothing before a key
    screenshot(browser, "key.png")
    browser.find_element("id", "key").send_keys(key)
    browser.find_element("id", "connect-button").click()
    wait_for(browser, lambda d: rows(d, "accounts"), "the account list")

    # The key is in the script's memory only: not in the field, the address, the storage or a cookie.
    assert browser.find_element("id", "key").get_attribute("value") == ""
    assert key not in browser.current_url
    assert browser.execute_script("return [localStorage.length, sessionStorage.length, document.cookie]") == [0, 0, ""]

    listed = reader.get("accounts?limit=25")["data"]
    assert [row["id"] for row in rows(browser, "accounts")] == [account["id"] for account in listed]
    assert {"member-7", "wallet-7", "@world:points", "@world:USD"} <= {account["id"] for account in listed}
    for row, account in zip(rows(browser, "accounts"), listed, strict=True):
        assert row == {"id": account["id"], "kind": account["kind"], "unit": account["unit"],
                       "balance": str(account["balance"]), "held": str(account["held"]),
                       "available": str(account["available"]),
                       "floor": "none" if account["floor"] is None else str(account["floor"]),
                       "shards": str(account["shards"]), "created_at": account["created_at"],
                       "metadata": shown(account["metadata"])}
    wallet_row = next(row for row in rows(browser, "accounts") if row["id"] == "wallet-7")
    assert wallet_row["metadata"] == '{"note":"<b>not bold</b>"}'  # the tenant's text, shown as text
    screenshot(browser, "accounts.png")

    # A USD account: its journal with the balance after each entry, and its open hold.
    open_account(browser, "wallet-7", "USD", "standard")
    account = reader.get("accounts/wallet-7")
    summary = {field: browser.find_element("css selector", f'#account-summary dd[data-field="{field}"]').text
               for field in ("balance", "held", "available")}
    assert summary == {"balance": "8500", "held": "2500", "available": "6000"}
    assert (account["balance"], account["held"], account["available"]) == (8500, 2500, 6000)
    journal = reader.get("accounts/wallet-7/entries")["data"]
    assert [(row["amount"], row["balance_after"], row["seq"]) for row in rows(browser, "entries")] == [
        (str(entry["amount"]), shown(entry["balance_after"]), shown(entry["seq"])) for entry in journal]
    assert [row["balance_after"] for row in rows(browser, "entries") if row["kind"] != "hold"][:2] == ["8500", "10000"]
    held = reader.get("holds?status=authorized&account_id=wallet-7")["data"]
    assert [hold["id"]] == [item["id"] for item in held]
    assert rows(browser, "holds") == [{"id": hold["id"], "amount": "2500", "expires_at": hold["expires_at"],
                                       "created_at": hold["created_at"], "metadata": '{"order":"A-1"}'}]
    assert not browser.find_element("id", "lots-part").is_displayed()  # a standard account has no lots
    screenshot(browser, "account-usd.png")

    # A points account: lots in FIFO order with their expiry, balances per payer, the journal.
    browser.find_element("id", "back").click()
    wait_for(browser, lambda d: rows(d, "accounts") and d.find_element("id", "accounts-view").is_displayed(),
             "the account list again")
    open_account(browser, "member-7", "points", "points")
    lots = reader.get("accounts/member-7/lots")
    assert rows(browser, "lots") == [
        {"payer": lot["payer"], "points": str(lot["points"]), "remaining": str(lot["remaining"]),
         "earned_at": lot["earned_at"], "expires_at": lot["expires_at"] or "never", "lot": str(lot["lot"])}
        for lot in lots["lots"]]
    assert [(row["payer"], row["remaining"], row["expires_at"]) for row in rows(browser, "lots")] == [
        ("DANNON", "200", "2030-01-01T00:00:00.000000Z"), ("UNILEVER", "200", "never")]
    assert {row["payer"]: row["points"] for row in rows(browser, "payers")} == {
        payer: str(points) for payer, points in lots["balances"].items()} == {"DANNON": "200", "UNILEVER": "200"}
    entries = reader.get("accounts/member-7/entries")["data"]
    assert [(row["amount"], row["balance_after"]) for row in rows(browser, "entries")] == [
        (str(entry["amount"]), str(entry["balance_after"])) for entry in entries] == [
        ("-100", "400"), ("200", "500"), ("300", "300")]
    screenshot(browser, "account-points.png")

    # A hot account (the tenant's system account of USD, 32 shards): no seq, no balance after.
    browser.get("about:blank")
    browser.get(f"{base}/console#account/@world:USD")  # a new page: the key went with the old one
    assert not browser.find_element("id", "account-view").is_displayed()
    browser.find_element("id", "key").send_keys(key)
    browser.find_element("id", "connect-button").click()
    wait_for(browser, lambda d: status(d) == "@world:USD: system account in USD.", "the system account")
    hot = reader.get("accounts/@world:USD/entries")["data"]
    assert hot and all(entry["seq"] is None and entry["balance_after"] is None for entry in hot)
    assert [(row["amount"], row["seq"], row["balance_after"]) for row in rows(browser, "entries")] == [
        (str(entry["amount"]), DASH, DASH) for entry in hot]
    assert not browser.find_element("id", "holds-part").is_displayed()  # a hot account takes no holds
    screenshot(browser, "account-hot.png")
    assert errors_logged(browser) == []  # no blocked script or style, nothing from another site, no failed call

    # Forget the key: everything read is gone from the page, and nothing more is read.
    browser.find_element("id", "forget").click()
    assert rows(browser, "entries") == [] and not browser.find_element("id", "account-view").is_displayed()
    # A key the API refuses is dropped at once, with the reason.
    browser.find_element("id", "key").send_keys("tk_test_not_a_key")
    browser.find_element("id", "connect-button").click()
    wait_for(browser, lambda d: "refused (401)" in status(d), "the refusal")
    assert not browser.find_element("id", "forget").is_displayed()
