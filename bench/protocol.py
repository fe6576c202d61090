"""The write protocol (issue 24): postings written without a read, on one account and on many, against the
physical reference — raw one-item TransactWriteItems on the same DynamoDB Local — in one run, 16 client threads.

Rows: seed 004's `POST /amount` on one account (credits; credits and debits mixed) and on 100 accounts; seed
003's wallet on one wallet (credits; credits and debits against its floor), every posting through the real HTTP
stack. After the rows, the verifier checks each account the rows wrote (journal = balance, floor kept at every
entry). `python -m bench.protocol` runs this section alone; `--against URL [--seconds N]` runs seed 004's and 003's
one-account rows against a server already running (`make run`), for N seconds each, and reads back what landed.
"""
from __future__ import annotations

import argparse
import uuid

from bench.common import (
    CONTENDED_HEADER,
    THREADS,
    contended,
    contended_cells,
    for_seconds,
    note,
    run_alone,
    table,
)
from bench.hot import raw_transact_writes
from tools.local_http import request_json as http

PER_THREAD = 40  # 640 postings a row
WARM_UP = 10


def amount(base: str, account: str, value: int) -> int:
    return http("POST", f"{base}/amount", {"account_id": account, "amount": value},
                {"Transaction-Id": str(uuid.uuid4())})[0]


def wallet_move(base: str, wallet_id: int, value: float) -> int:
    path = "credit" if value > 0 else "debit"
    return http("POST", f"{base}/wallet/{path}", {"wallet_id": wallet_id, "amount": abs(value)})[0]


def new_wallet(base: str, phone: str) -> int:
    status, user = http("POST", f"{base}/register", {"phone_number": phone})
    status, wallet = http("POST", f"{base}/wallet/create", {"user_id": user["user_id"]})
    return wallet["wallet_id"]


def run(base: str, endpoint: str) -> None:
    import app as tally
    from bench.common import use_fresh_tables
    from chalicelib.core.verify import check_account
    from tools.request_counter import DynamoDBRequests

    use_fresh_tables(endpoint, "protocol")
    raw = raw_transact_writes(endpoint, PER_THREAD)
    one, mixed, spread = str(uuid.uuid4()), str(uuid.uuid4()), [str(uuid.uuid4()) for _ in range(100)]
    credits_wallet, floor_wallet = new_wallet(base, "5551000001"), new_wallet(base, "5551000002")
    wallet_move(base, floor_wallet, 50.0)  # the floor is 003's minimum; a debit of 1.00 from every other thread
    with DynamoDBRequests() as requests:
        contended(requests, lambda index, step: amount(base, spread[(index * WARM_UP + step) % 100], 1), WARM_UP)
        rows = [
            ("004 POST /amount, one account, credits",
             contended(requests, lambda index, step: amount(base, one, 1), PER_THREAD)),
            # Half the threads credit 2, half debit 1 (seed 004 has no floor).
            ("004 POST /amount, one account, credits and debits",
             contended(requests, lambda index, step: amount(base, mixed, 2 if index % 2 else -1), PER_THREAD)),
            ("004 POST /amount, 100 accounts, credits",
             contended(requests, lambda index, step: amount(base, spread[(index * PER_THREAD + step) % 100], 1),
                       PER_THREAD)),
            ("003 POST /wallet/credit, one wallet",
             contended(requests, lambda index, step: wallet_move(base, credits_wallet, 1.0), PER_THREAD)),
            # Credits of 0.50 and debits of 1.00: the balance falls to the floor, where debits are refused (400).
            ("003 credits and debits against the floor, one wallet",
             contended(requests, lambda index, step: wallet_move(base, floor_wallet, 0.5 if index % 2 else -1.0),
                       PER_THREAD)),
        ]
    reference = raw["per_second"]
    body = [[label, *contended_cells(result), f"{result['per_second'] / reference:.2f}"] for label, result in rows]
    body.append(["raw TransactWriteItems, one item (no Tally)", *contended_cells(raw), "1.00"])
    table(f"The write protocol: postings without a read, {THREADS} client threads, {THREADS * PER_THREAD} a row",
          ["case", *CONTENDED_HEADER, "x raw"], body)
    problems = [problem for book, account in [(tally.services.accounts, one), (tally.services.accounts, mixed),
                                              (tally.services.wallets.ledger, str(credits_wallet)),
                                              (tally.services.wallets.ledger, str(floor_wallet))]
                for problem in check_account(book, account)]
    note(f"verifier after the rows: {len(problems)} violations (journal = balance, floor kept at every entry)"
         + "".join(f"\n  {problem}" for problem in problems[:5]))
    note("targets (issue 24): one account, credits >= 0.5x raw; mixed with a floor >= 0.35x raw; p99 <= 1 s in "
         "every contended row")


def against(base: str, seconds: float) -> None:
    """The one-account rows on a running server; each followed by reading the balance back (nothing lost)."""
    one, mixed = str(uuid.uuid4()), str(uuid.uuid4())
    wallet = new_wallet(base, f"555{uuid.uuid4().int % 10**7:07d}")
    rows = [("004 POST /amount, one account, credits", one, lambda index: amount(base, one, 1), 1),
            ("004 POST /amount, one account, credits and debits", mixed,
             lambda index: amount(base, mixed, 2 if index % 2 else -1), None),
            ("003 POST /wallet/credit, one wallet", wallet, lambda index: wallet_move(base, wallet, 1.0), 100)]
    for label, account, call, unit in rows:
        result = for_seconds(call, seconds)
        if unit is None:
            landed = "balance not checked (mixed amounts)"
        else:
            path = f"/balance/{account}" if isinstance(account, str) else f"/wallet/balance/{account}"
            balance = http("GET", f"{base}{path}")[1]["balance"]
            balance = round(balance * 100) if isinstance(account, int) else balance
            landed = f"accepted {result['accepted']}, balance {balance}, lost {result['accepted'] * unit - balance}"
        print(f"{label}: {result['per_second']:.1f}/s accepted over {seconds:.0f}s ({THREADS} threads), "
              f"p50 {result['p50']:.0f} ms, p99 {result['p99']:.0f} ms, statuses {result['statuses']}; {landed}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--against", help="the base URL of a running server (make run)")
    parser.add_argument("--seconds", type=float, default=15.0)
    arguments = parser.parse_args()
    if arguments.against:
        against(arguments.against.rstrip("/"), arguments.seconds)
    else:
        run_alone(run)


if __name__ == "__main__":
    main()
