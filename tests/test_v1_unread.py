"""/v1 postings and transfers written without a read (the default; `TALLY_V1_WRITES_WITHOUT_READ=0` reads first),
on DynamoDB Local, through the real HTTP stack: 16 threads on one account and on a pair of accounts (both floors),
one key from 16 threads; each answer is what the transaction then reads, lists and verifies as (the verifier runs
after each test)."""
from __future__ import annotations

import random
import threading
import uuid

import pytest
from test_v1_concurrency import funded, tenant, transfers_both_ways, write

import app as tally
from chalicelib.core import drains
from chalicelib.core.models import AccountModel, EntryModel, TransactionModel
from helpers import THREADS, race
from tools.local_http import request_json as http
from tools.request_counter import DynamoDBRequests

pytestmark = [pytest.mark.race, pytest.mark.usefixtures("verified_afterwards")]


def test_a_posting_of_a_known_account_is_one_transaction_and_one_batch_read(live_server):
    funded(live_server, "alice", 100)  # its first posting reads, and teaches the container the account
    with DynamoDBRequests() as requests:
        status, posting = write(live_server, "/v1/postings", {"account_id": "alice", "amount": 5})
    assert status == 201 and [entry["seq"] for entry in posting["entries"]] == [2, None]  # the system account: shards
    # The key's read, the one transaction, the answer's read of both accounts: no read before the write.
    assert dict(requests.calls) == {"GetItem": 1, "TransactWriteItems": 1, "BatchGetItem": 1}
    status, stored = http("GET", f"{live_server}/v1/transactions/{posting['id']}")
    assert status == 200 and stored == posting  # its legs still in the logs: read from there, as answered
    status, listed = http("GET", f"{live_server}/v1/transactions?type=posting")
    assert status == 200 and listed["data"][-1] == posting


def test_credits_and_debits_of_one_account_from_sixteen_threads_keep_its_floor(live_server):
    funded(live_server, "alice", 200)
    rng = random.Random(11)
    amounts = [[rng.choice([25, -40]) for _ in range(6)] for _ in range(THREADS)]
    answers: list[dict] = []

    def post(index: int, step: int) -> int:
        status, body = write(live_server, "/v1/postings", {"account_id": "alice", "amount": amounts[index][step]})
        if status == 201:
            answers.append(body)
        return status

    statuses = race(post, per_thread=6)
    assert set(statuses) <= {201, 400} and statuses[201] > 0, statuses
    alice = tenant().account("alice")
    assert alice.balance >= 0 and alice.entry_count == 1 + statuses[201]
    assert alice.balance == 200 + sum(answer["entries"][0]["amount"] for answer in answers)
    # Every answer is the journal's: its seq and balance after are the entry's, and no two answers share a seq.
    seqs = [answer["entries"][0]["seq"] for answer in answers]
    assert len(set(seqs)) == len(seqs)
    page = http("GET", f"{live_server}/v1/accounts/alice/entries?order=asc&limit=1000")[1]["data"]
    journal = {entry["seq"]: entry["balance_after"] for entry in page}
    assert all(journal[answer["entries"][0]["seq"]] == answer["entries"][0]["balance_after"] for answer in answers)


def test_transfers_both_ways_without_a_read_keep_the_total_and_both_floors(live_server):
    transfers_both_ways(live_server)


def test_one_key_from_sixteen_threads_posts_once_and_every_thread_gets_its_answer(live_server):
    funded(live_server, "alice", 10)
    key = str(uuid.uuid4())
    answers: list[dict] = []

    def post(_index: int, _step: int) -> int:
        status, body = write(live_server, "/v1/postings", {"account_id": "alice", "amount": 7}, key=key)
        answers.append(body)
        return status

    statuses = race(post)
    assert statuses[201] == THREADS, statuses
    assert len({answer["id"] for answer in answers}) == 1
    assert {(answer["entries"][0]["seq"], answer["entries"][0]["balance_after"]) for answer in answers} == {(2, 17)}
    assert tenant().account("alice").balance == 17


def test_a_transfer_read_with_one_leg_drained_and_the_other_waiting_shows_both(live_server):
    funded(live_server, "alice", 100)
    funded(live_server, "bob", 5)  # known to the container, as alice is: the transfer goes without a read
    status, transfer = write(live_server, "/v1/transfers", {"source": "alice", "destination": "bob", "amount": 30})
    assert status == 201
    tenant().ledger.settle("alice")  # alice's leg into the journal (and the transaction); bob's still in his log
    assert [leg.seq for leg in TransactionModel.get(transfer["id"], consistent_read=True).legs] == [2, None]
    assert http("GET", f"{live_server}/v1/transactions/{transfer['id']}") == (200, transfer)
    listed = http("GET", f"{live_server}/v1/transactions?type=transfer")[1]["data"]
    assert listed == [transfer]


def test_a_drainer_racing_sixteen_writers_moves_every_posting_into_the_journal_once(live_server):
    """What `drain_logs` does with the accounts' stream, while 16 threads keep logging postings: its drains race the
    writers' own and never double or lose one (the verifier runs afterwards); once the writers stop, one more batch
    leaves nothing waiting."""
    funded(live_server, "alice", 0)
    funded(live_server, "bob", 0)
    keys = [tenant().ledger.account_key(account_id) for account_id in ("alice", "bob")]
    batch = [{"eventName": "MODIFY", "dynamodb": {"NewImage": {"key": {"S": key}, "log": {"L": [{"M": {}}]}}}}
             for key in keys]  # what the stream's newest images of the two accounts say: postings wait
    writing = threading.Event()
    writing.set()
    rounds: list[drains.Drained] = []

    def drain_while_writing() -> None:
        while writing.is_set():
            rounds.append(drains.drain_logs(batch, tally.services.drain_budget))

    drainer = threading.Thread(target=drain_while_writing)
    drainer.start()
    try:
        statuses = race(lambda index, _step: write(live_server, "/v1/transfers", {
            "source": "@world:USD", "destination": ("alice", "bob")[index % 2], "amount": 3})[0], per_thread=4)
    finally:
        writing.clear()
        drainer.join()
    assert statuses == {201: THREADS * 4} and sum(drained.settled for drained in rounds) > 0
    assert drains.drain_logs(batch, tally.services.drain_budget) == drains.Drained(settled=2, busy=0)
    for key in keys:
        account = AccountModel.get(key, consistent_read=True)
        assert not account.log and int(account.balance) == 3 * THREADS * 4 // 2
        assert EntryModel.count(key) == int(account.entry_count)


def test_a_replay_is_the_cancelled_write_and_one_read_of_the_accounts_its_posting_waits_in(live_server):
    funded(live_server, "alice", 100)
    key = str(uuid.uuid4())
    status, first = write(live_server, "/v1/postings", {"account_id": "alice", "amount": 5}, key=key)
    assert status == 201
    with DynamoDBRequests() as requests:
        assert write(live_server, "/v1/postings", {"account_id": "alice", "amount": 5}, key=key) == (201, first)
    # The key's record comes back with the cancelled write's reason (no read of it); its legs, still in their logs,
    # from one read of the accounts; the transaction it made (a GetItem), and the API key's read.
    assert dict(requests.calls) == {"GetItem": 2, "TransactWriteItems": 1, "BatchGetItem": 1}
    assert dict(requests.by_table)[f"{tally.services.settings.table_prefix}-idempotency"] == 1  # the write alone


def test_a_transfer_of_the_read_path_meeting_logs_drains_each_once_then_writes(live_server):
    """A posting of the read path (`expected_seq` reads) that finds logs drains them and writes what it planned, on
    condition that the logs are empty: a drain moves no version, and the plan's seq and time already follow the
    logged postings'."""
    funded(live_server, "alice", 100)
    funded(live_server, "bob", 0)
    status, transfer = write(live_server, "/v1/transfers", {"source": "alice", "destination": "bob", "amount": 30})
    assert status == 201
    with DynamoDBRequests() as requests:
        status, back = write(live_server, "/v1/transfers", {"source": "bob", "destination": "alice", "amount": 10,
                                                             "expected_seq": {"bob": 1}})
    assert status == 201, back
    # The API key's read; the accounts and the record read, a drain of each log, the write.
    assert dict(requests.calls) == {"GetItem": 1, "TransactGetItems": 1, "TransactWriteItems": 3}
    entries = http("GET", f"{live_server}/v1/accounts/alice/entries?order=asc")[1]["data"]
    assert [entry["seq"] for entry in entries] == [1, 2, 3]  # after the transfer it drained, in time too
    assert entries[1]["created_at"] < entries[2]["created_at"]


def test_a_reversal_of_transfers_between_known_accounts_writes_without_reading_them(live_server):
    funded(live_server, "alice", 100)
    funded(live_server, "bob", 0)
    status, transfer = write(live_server, "/v1/transfers", {"source": "alice", "destination": "bob", "amount": 30})
    assert status == 201
    with DynamoDBRequests() as requests:
        status, reversal = write(live_server, f"/v1/transactions/{transfer['id']}/reversals", {"amount": 10})
    assert status == 201, reversal
    # The API key's read, the transaction reversed, the one transaction (under its reversed total), the answer's
    # read of both accounts.
    assert dict(requests.calls) == {"GetItem": 2, "TransactWriteItems": 1, "BatchGetItem": 1}
    assert [entry["amount"] for entry in reversal["entries"]] == [10, -10]
    for _ in range(2):  # what is left, then nothing: the total's condition refuses what was reversed meanwhile
        status, answer = write(live_server, f"/v1/transactions/{transfer['id']}/reversals")
    assert status == 409 and answer["code"] == "invalid_state"
    alice, bob = tenant().account("alice"), tenant().account("bob")
    assert (alice.balance, bob.balance) == (100, 0)


def test_a_hold_its_capture_and_a_void_of_a_known_account_write_without_reading_it(live_server):
    funded(live_server, "alice", 100)
    assert write(live_server, "/v1/accounts", {"id": "shop", "unit": "USD"})[0] == 201
    with DynamoDBRequests() as requests:
        status, hold = write(live_server, "/v1/holds", {"account_id": "alice", "amount": 30})
    assert status == 201 and hold["status"] == "authorized"
    # The key's read, the one transaction, the answer's read of the account: no read before the write.
    assert dict(requests.calls) == {"GetItem": 2, "TransactWriteItems": 1}
    with DynamoDBRequests() as requests:
        status, captured = write(live_server, f"/v1/holds/{hold['id']}/capture", {"amount": 20, "destination": "shop"})
    assert status == 200 and captured["hold"]["status"] == "captured"
    # The key, the hold (and again as the write is planned), the one transaction, the answer's read of both accounts.
    assert dict(requests.calls) == {"GetItem": 3, "TransactWriteItems": 1, "BatchGetItem": 1}
    status, other = write(live_server, "/v1/holds", {"account_id": "alice", "amount": 50})
    with DynamoDBRequests() as requests:
        status, voided = write(live_server, f"/v1/holds/{other['id']}/void")
    assert status == 200 and voided["status"] == "voided"
    assert dict(requests.calls) == {"GetItem": 4, "TransactWriteItems": 1}
    alice = tenant().account("alice")
    assert (alice.balance, alice.held) == (80, 0)


def test_holds_captures_and_voids_of_one_account_from_sixteen_threads_keep_its_floor_and_what_it_holds(live_server):
    funded(live_server, "alice", 1_000)
    assert write(live_server, "/v1/accounts", {"id": "shop", "unit": "USD"})[0] == 201
    settled: list[str] = []

    def hold_then_settle(index: int, step: int) -> int:
        status, hold = write(live_server, "/v1/holds", {"account_id": "alice", "amount": 45})
        if status != 201:
            return status
        if index % 3 == 0:
            return status  # left authorized
        path = "capture" if index % 3 == 1 else "void"
        body = {"amount": 15, "destination": "shop"} if path == "capture" else None
        status, _answer = write(live_server, f"/v1/holds/{hold['id']}/{path}", body)
        if status == 200:
            settled.append(path)
        return status

    statuses = race(hold_then_settle, per_thread=3)  # up to 48 x 45 asked of 1,000
    assert set(statuses) <= {200, 201, 400} and statuses[400] > 0, statuses
    alice, shop = tenant().account("alice"), tenant().account("shop")
    captured = settled.count("capture")
    assert shop.balance == 15 * captured and alice.balance == 1_000 - 15 * captured
    assert 0 <= alice.balance - alice.held  # the floor (0) held on the available balance
