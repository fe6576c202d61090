"""The README's /v1 flow (docs/walkthroughs/v1.sh: loyalty earn, spend and refund; wallet deposit, hold, capture,
transfer, history; the system accounts `@world:<unit>`) through the Python client, and again through the `tally`
command line, against the server `make run` starts, with the key it printed; and the client README's example."""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from tally_client import Conflict, InsufficientFunds, NotFound, Tally, Unauthorized, urllib_transport

pytestmark = pytest.mark.slow  # each starts make run's server
TALLY = Path(sys.executable).parent / "tally"  # the console script `pip install ./clients/python` made
README = Path(__file__).resolve().parent.parent / "clients" / "python" / "README.md"


def test_the_readme_v1_flow_through_the_client(make_run):
    base, key, _ = make_run
    requests: list[str] = []

    def counted(method, url, headers, body, timeout):
        requests.append(f"{method} {url.removeprefix(base)}")
        return urllib_transport(method, url, headers, body, timeout)

    tally = Tally(base, key, transport=counted)
    run = uuid.uuid4().hex[:8]
    member, alice, shop = f"member-{run}", f"alice-{run}", f"shop-{run}"

    # Loyalty: points that expire, a spend across payers, a refund back into the very lots.
    assert tally.create_account("points", id=member, kind="points")["kind"] == "points"
    earned = tally.earn(member, "DANNON", 300, expires_at="2030-01-01T00:00:00Z")
    assert earned["type"] == "earn" and {"account_id": "@world:points", "seq": None, "amount": -300,
                                         "balance_after": None} in earned["entries"]
    tally.earn(member, "UNILEVER", 200)
    spent = tally.spend(member, 400)
    assert (spent["type"], spent["amount"]) == ("spend", 400)
    assert [(lot["payer"], lot["remaining"]) for lot in tally.get_lots(member)["lots"]] == [("UNILEVER", 100)]
    refund = tally.reverse(spent["id"], amount=150)
    assert (refund["type"], refund["amount"], refund["reverses"]) == ("reversal", 150, spent["id"])
    assert {lot["payer"]: lot["remaining"] for lot in tally.get_lots(member)["lots"]} == {"DANNON": 50,
                                                                                         "UNILEVER": 200}
    issuer = tally.get_account("@world:points")
    assert (issuer["kind"], issuer["shards"], issuer["balance"]) == ("system", 32, -250)  # minus the member's 250

    # A wallet: a deposit, a hold captured in part to a hot shop, a transfer, history.
    assert tally.create_account("USD", id=alice, metadata={"user": "7"})["balance"] == 0
    opened = tally.create_account("USD", id=shop, floor=None, shards=4)
    assert (opened["floor"], opened["shards"]) == (None, 4)
    assert tally.post(alice, 10_000)["type"] == "posting"
    hold = tally.create_hold(alice, 2_500)
    assert hold["status"] == "authorized"
    assert {name: tally.get_account(alice)[name] for name in ("balance", "held", "available")} == {
        "balance": 10_000, "held": 2_500, "available": 7_500}
    with pytest.raises(InsufficientFunds) as refused:
        tally.post(alice, -8_000)
    assert (refused.value.status, refused.value.code) == (400, "insufficient_funds")
    captured = tally.capture(hold["id"], amount=2_000, destination=shop)
    assert (captured["hold"]["status"], captured["hold"]["captured_amount"]) == ("captured", 2_000)
    assert captured["transaction"]["type"] == "capture"
    assert tally.transfer(alice, shop, 500)["type"] == "transfer"

    before = len(requests)
    history = list(tally.list_entries(alice, page_size=2))  # every page, two entries each
    assert len(requests) - before == (len(history) + 1) // 2 >= 2  # a full last page says it is the last
    assert sum(entry["amount"] for entry in history) == 7_500 and history[-1]["kind"] == "posting"
    assert tally.get_balance(alice, as_of=datetime.now(UTC) - timedelta(days=1))["balance"] == 0
    assert {name: tally.get_balance(alice)[name] for name in ("balance", "held", "available")} == {
        "balance": 7_500, "held": 0, "available": 7_500}
    assert (tally.get_account(shop)["balance"], tally.get_account(shop)["shards"]) == (2_500, 4)
    assert next(tally.list_entries("@world:USD", page_size=1))["amount"] == -10_000
    assert tally.get_account("@world:USD")["balance"] == -10_000  # the tenant's USD sums to zero

    # Lists, a statement, and what a retry with the same key does.
    assert [held["status"] for held in tally.list_holds(account_id=alice)] == ["captured"]
    assert [made["type"] for made in tally.list_transactions(account_id=alice)] == ["posting", "capture",
                                                                                    "transfer"]
    assert {account["id"] for account in tally.list_accounts(unit="USD", page_size=1)} == {
        alice, shop, "@world:USD"}
    statement = tally.get_statement(alice, start=datetime.now(UTC) - timedelta(hours=1))
    assert (statement["opening_balance"], statement["closing_balance"], statement["credits"],
            statement["debits"]) == (0, 7_500, 10_000, 2_500)
    first = tally.post(alice, 1, idempotency_key=f"order-{run}")
    assert tally.post(alice, 1, idempotency_key=f"order-{run}") == first  # applied once
    assert tally.get_account(alice)["balance"] == 7_501

    # Refusals, each its family's exception.
    with pytest.raises(Conflict) as taken:
        tally.create_account("USD", id=alice)
    assert taken.value.code == "already_exists"
    with pytest.raises(NotFound):
        tally.get_account(f"ghost-{run}")
    with pytest.raises(Unauthorized) as stranger:
        Tally(base, "tk_test_not_a_key").get_account(alice)
    assert (stranger.value.status, stranger.value.code) == (401, "unauthorized")

    # The client README's example, as printed there, on the same server.
    example = re.search(r"```python\n(.*?)```", README.read_text(), re.S).group(1)
    done = subprocess.run([sys.executable, "-c", example], env={**os.environ, "TALLY_URL": base, "TALLY_KEY": key},
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    printed = done.stdout.splitlines()
    assert printed[:3] == ["7500", "400 insufficient_funds", "captured capture"]
    assert [line.split()[0] for line in printed[3:-1]] == ["capture", "hold", "posting"]  # the history, newest first
    held = sum(account["balance"] for account in tally.list_accounts(unit="USD", kind="standard"))
    assert printed[-1] == str(tally.get_account("@world:USD")["balance"]) == str(-held)


def test_the_flow_through_the_tally_command_line_and_its_exit_codes(make_run):
    base, key, _ = make_run
    env = {**os.environ, "TALLY_URL": base, "TALLY_KEY": key}

    def tally(*argv: str, code: int = 0) -> str:
        done = subprocess.run([str(TALLY), *argv], env=env, capture_output=True, text=True, timeout=120)
        assert done.returncode == code, (argv, done.stdout, done.stderr)
        return done.stdout if code == 0 else done.stderr

    run = uuid.uuid4().hex[:8]
    member, alice, shop = f"member-{run}", f"alice-{run}", f"shop-{run}"
    assert json.loads(tally("--json", "accounts", "create", member, "--unit", "points", "--kind", "points"))[
        "kind"] == "points"
    assert "earn 300 points" in tally("earn", member, "DANNON", "300", "--expires-at", "2030-01-01T00:00:00Z")
    spent = json.loads(tally("spend", member, "200", "--json"))  # --json after the command works too
    assert "reversal 50 points" in tally("reverse", spent["id"], "--amount", "50")
    assert tally("accounts", "create", alice, "--unit", "USD", "--meta", "user=7").startswith(
        f"{alice}: balance 0 USD, held 0, available 0 (standard, floor 0, 0 entries)  user=7")
    assert "floor none, 0 entries, 4 shards" in tally("accounts", "create", shop, "--unit", "USD", "--no-floor",
                                                      "--shards", "4")
    deposit = tally("post", alice, "10000").splitlines()
    assert deposit[0].endswith(" USD at " + deposit[0].split(" at ")[1]) and "posting 10000 USD" in deposit[0]
    assert [line.split()[:2] for line in deposit[1:]] == [[alice, "+10000"], ["@world:USD", "-10000"]]
    hold = json.loads(tally("--json", "hold", alice, "2500"))
    assert "10000 USD (held 2500, available 7500)" in tally("balance", alice)
    assert "insufficient_funds" in tally("post", alice, "-8000", code=3)
    assert f"captured hold of 2500 USD on {alice}, 2000 captured" in tally("capture", hold["id"], "--amount", "2000",
                                                                   "--destination", shop)
    assert "transfer 500 USD" in tally("transfer", alice, shop, "500")
    assert "invalid_state" in tally("void", hold["id"], code=6)  # captured already: a conflict
    assert len(tally("history", alice, "--limit", "3").splitlines()) == 3
    entries = json.loads(tally("--json", "history", alice, "--limit", "0"))
    assert sum(entry["amount"] for entry in entries) == 7_500
    assert {account["id"] for account in json.loads(tally("--json", "accounts", "list", "--unit", "USD"))} == {
        alice, shop, "@world:USD"}
    assert "it can read" in tally("keys", "check")

    # Errors: a distinct exit code per family, the reason on stderr (as JSON with --json).
    assert "not_found" in tally("accounts", "get", f"ghost-{run}", code=5)
    assert json.loads(tally("--json", "accounts", "get", f"ghost-{run}", code=5))["code"] == "not_found"
    assert "unauthorized" in tally("--key", "tk_test_not_a_key", "accounts", "get", alice, code=4)
    assert "unauthorized" in tally("keys", "check", "--key", "tk_test_not_a_key", code=4)
    assert "already_exists" in tally("accounts", "create", alice, "--unit", "USD", code=6)
    assert "invalid_request" in tally("post", alice, "0", code=3)

    # The tenant's books add up, as the API shows them.
    report = json.loads(tally("verify", "--json"))
    assert report["violations"] == [] and report["units"] == {"USD": 0, "points": 0}
    assert report["transactions"] == 6  # earn, spend, reversal; deposit, capture, transfer (a hold moves nothing)
    assert report["accounts"] == 5  # member, alice, shop, @world:points, @world:USD
    assert tally("verify").splitlines()[-1] == "0 violations"

