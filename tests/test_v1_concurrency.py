"""/v1 under concurrency, asserted only against Amazon DynamoDB Local (moto is not atomic): transfers
both ways between two accounts, holds racing debits, captures and reversals of one thing from 16 threads.
The journal verifier runs after each test (zero violations)."""
from __future__ import annotations

import random
import uuid

import pytest

import app as tally
from chalicelib.core.models import TransactionModel
from helpers import TENANT, THREADS, race
from tools.local_http import request_json as http

pytestmark = [pytest.mark.race, pytest.mark.usefixtures("verified_afterwards")]


def tenant():
    """The services of the tenant the tests' key acts for."""
    return tally.services.v1_of(TENANT)[0]


def tenant_holds():
    return tally.services.v1_of(TENANT)[1]


def write(base: str, path: str, body: dict | None = None, key: str | None = None) -> tuple[int, dict]:
    return http("POST", f"{base}{path}", body or {}, {"Idempotency-Key": key or str(uuid.uuid4())})


def funded(base: str, account_id: str, amount: int) -> None:
    assert write(base, "/v1/accounts", {"id": account_id, "unit": "USD"})[0] == 201
    if amount:
        assert write(base, "/v1/postings", {"account_id": account_id, "amount": amount})[0] == 201


@pytest.mark.v1_reads_first  # the read path's own race (test_v1_unread.py has the same without a read)
def test_transfers_both_ways_keep_the_total_and_both_floors(live_server):
    transfers_both_ways(live_server)


def transfers_both_ways(live_server: str) -> None:
    """16 threads transfer random amounts between two funded accounts, both ways: neither goes below its floor,
    the total stays, every accepted transfer is two entries (also run with writes without a read)."""
    funded(live_server, "alice", 300)
    funded(live_server, "bob", 300)
    rng = random.Random(7)
    plan = [[(rng.choice([("alice", "bob"), ("bob", "alice")]), rng.randint(1, 60)) for _ in range(8)]
            for _ in range(THREADS)]

    def transfer(index: int, step: int) -> int:
        (source, destination), amount = plan[index][step]
        return write(live_server, "/v1/transfers", {"source": source, "destination": destination,
                                                     "amount": amount})[0]

    statuses = race(transfer, per_thread=8)
    assert set(statuses) <= {201, 400} and statuses[201] > 0, statuses  # no 503: no livelock
    alice, bob = tenant().account("alice"), tenant().account("bob")
    assert alice.balance + bob.balance == 600 and alice.balance >= 0 and bob.balance >= 0
    assert alice.entry_count + bob.entry_count == 2 + 2 * statuses[201]  # two legs per accepted transfer


def test_holds_and_debits_racing_never_take_the_available_balance_below_the_floor(live_server):
    funded(live_server, "alice", 1000)

    def hold_or_debit(index: int, step: int) -> int:
        if index % 2:
            return write(live_server, "/v1/holds", {"account_id": "alice", "amount": 70})[0]
        return write(live_server, "/v1/postings", {"account_id": "alice", "amount": -70})[0]

    statuses = race(hold_or_debit, per_thread=2)  # 32 x 70 asked of 1,000
    assert statuses == {201: 14, 400: 18}, statuses
    alice = tenant().account("alice")
    assert alice.available == 1000 - 14 * 70 and alice.available >= 0


def test_one_hold_captured_and_voided_from_sixteen_threads_settles_once(live_server):
    funded(live_server, "alice", 1000)
    funded(live_server, "shop", 0)
    status, hold = write(live_server, "/v1/holds", {"account_id": "alice", "amount": 400})
    assert status == 201

    def settle(index: int, step: int) -> int:
        if index % 2:
            return write(live_server, f"/v1/holds/{hold['id']}/capture", {"destination": "shop"})[0]
        return write(live_server, f"/v1/holds/{hold['id']}/void")[0]

    statuses = race(settle)
    assert statuses[200] == 1 and statuses[409] == THREADS - 1, statuses
    settled = tenant_holds().get(hold["id"])
    alice = tenant().account("alice")
    assert alice.held == 0
    assert alice.balance == (600 if settled.status == "captured" else 1000)


def test_partial_reversals_from_sixteen_threads_never_reverse_more_than_the_transfer(live_server):
    funded(live_server, "alice", 100)
    funded(live_server, "bob", 0)
    status, transfer = write(live_server, "/v1/transfers", {"source": "alice", "destination": "bob", "amount": 100})
    assert status == 201
    statuses = race(lambda index, step: write(
        live_server, f"/v1/transactions/{transfer['id']}/reversals", {"amount": 15})[0])
    assert statuses == {201: 6, 409: 10}, statuses  # 6 x 15 = 90; a seventh would pass 100
    assert tenant().transaction(transfer["id"]).reversed == 90
    assert tenant().account("alice").balance == 90


def test_points_spends_and_refunds_racing_keep_every_lot_exact(live_server):
    assert write(live_server, "/v1/accounts", {"id": "member", "unit": "points", "kind": "points"})[0] == 201
    for payer in ("A", "B", "C", "D"):
        assert write(live_server, "/v1/points/earn", {"account_id": "member", "payer": payer, "points": 100})[0] == 201
    spends = []

    def spend_then_refund(index: int, step: int) -> int:
        status, spend = write(live_server, "/v1/points/spend", {"account_id": "member", "points": 30})
        if status != 201:
            return status
        spends.append(spend["id"])
        return write(live_server, f"/v1/transactions/{spend['id']}/reversals", {"amount": 10})[0]

    statuses = race(spend_then_refund, per_thread=2)
    assert set(statuses) <= {201, 400}, statuses
    member = tenant().account("member")
    assert member.balance == 400 - 20 * statuses[201]


# -- hot accounts: shards racing ------------------------------------------------------------------------
def test_credits_and_debits_racing_on_a_hot_account_keep_its_floor_and_its_total(live_server):
    assert write(live_server, "/v1/accounts", {"id": "merchant", "unit": "USD", "shards": 8})[0] == 201
    assert write(live_server, "/v1/postings", {"account_id": "merchant", "amount": 400})[0] == 201
    rng = random.Random(11)
    plan = [[rng.choice([1, -1]) * rng.randint(1, 60) for _ in range(12)] for _ in range(THREADS)]
    accepted: list[int] = []
    refusals: list[str] = []

    def post(index: int, step: int) -> int:
        status, body = write(live_server, "/v1/postings", {"account_id": "merchant", "amount": plan[index][step]})
        (accepted if status == 201 else refusals).append(plan[index][step] if status == 201 else body["code"])
        return status

    statuses = race(post, per_thread=12)
    # A 503 (retries out of time, nothing written) is allowed rarely, as on any contended account; most commit.
    assert set(statuses) <= {201, 400, 503} and statuses[503] <= 4 and statuses[201] > THREADS * 6, statuses
    assert set(refusals) <= {"insufficient_funds", "contention"}
    merchant, world = tenant().account("merchant"), tenant().account("@world:USD")
    assert merchant.balance == 400 + sum(accepted) >= 0  # exact, and never below the floor (0)
    assert world.balance == -merchant.balance and world.shards > 1  # the books of USD sum to zero


def test_a_debit_that_needs_several_shards_commits_while_credits_race(live_server):
    assert write(live_server, "/v1/accounts", {"id": "merchant", "unit": "USD", "shards": 4})[0] == 201
    for _ in range(40):  # 1,000 spread over the 4 shards by the postings' ids
        assert write(live_server, "/v1/postings", {"account_id": "merchant", "amount": 25})[0] == 201
    debit: dict = {}

    def debit_or_credit(index: int, step: int) -> int:
        if index == 0 and step == 0:  # all of it: no one shard holds that much, so it must take from several
            status, debit["body"] = write(live_server, "/v1/postings", {"account_id": "merchant", "amount": -1000})
            return status
        return write(live_server, "/v1/postings", {"account_id": "merchant", "amount": 1})[0]

    statuses = race(debit_or_credit, per_thread=10)
    assert statuses == {201: THREADS * 10}, statuses  # credits only add: the debit is always covered
    legs = TransactionModel.get(debit["body"]["id"]).legs
    assert len({leg.shard for leg in legs if leg.account_id == "merchant"}) > 1
    assert debit["body"]["entries"][0] == {"account_id": "merchant", "seq": None, "amount": -1000,
                                           "balance_after": None}
    assert tenant().account("merchant").balance == THREADS * 10 - 1
    assert all(int(shard.balance) >= 0 for shard in tenant().ledger.stored("merchant")[1])


def test_sixteen_writes_with_the_same_expected_seq_apply_once(live_server):
    funded(live_server, "alice", 100)  # alice's last entry is her seq 1

    def post(index: int, _step: int) -> int:
        return write(live_server, "/v1/postings", {"account_id": "alice", "amount": index + 1,
                                                   "expected_seq": {"alice": 1}})[0]

    statuses = race(post)
    assert statuses == {201: 1, 409: THREADS - 1}, statuses
    alice = tenant().account("alice")
    assert alice.entry_count == 2 and 101 <= alice.balance <= 100 + THREADS


def test_one_key_racing_under_a_daily_issue_limit_never_mints_past_it(live_server):
    from helpers import make_key

    funded(live_server, "alice", 0)
    limited = {"Authorization": f"Bearer {make_key(scopes=('issue',), daily_issue_limit=55)}"}

    def deposit(_index: int, _step: int) -> int:
        return http("POST", f"{live_server}/v1/postings", {"account_id": "alice", "amount": 10},
                    {**limited, "Idempotency-Key": str(uuid.uuid4())})[0]

    statuses = race(deposit, per_thread=2)
    assert statuses == {201: 5, 403: 2 * THREADS - 5}, statuses
    assert tenant().account("alice").balance == 50
