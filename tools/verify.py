"""`make verify`: read Tally's tables and check the ledger's invariants; print what was checked and every
violation; exit 1 if there is any.

- every account: a gapless journal whose balances-after chain to the balance, never below its floor;
- every points holder: payers and lots replayed from the journal and its lot links, never below zero, open
  lots == payer balances == the holder's balance, only open lots indexed, no take left pending;
- every idempotency record: it points at a journal entry that exists and says the same (every leg's);
- /v1: held == the sum of authorized holds; transactions agree with their entries, each sums to zero,
  reversed totals match their reversals; each tenant's balances of a unit sum to zero; a hot account's
  shards are all there and their floors sum to its floor.

Endpoint and tables from the environment (DYNAMODB_ENDPOINT, TALLY_STAGE, TALLY_TABLE_PREFIX); without an
endpoint it opens `make run`'s data (.data/dynamodb) in a DynamoDB Local of its own (stop `make run` first).
"""
from __future__ import annotations

import sys
from collections import Counter
from dataclasses import dataclass, field, replace

from chalicelib.config import load
from chalicelib.core import models
from chalicelib.core.ledger import Ledger
from chalicelib.core.models import AccountModel, EntryModel, HoldModel, IdempotencyModel, LotModel, TransactionModel
from chalicelib.core.points import PointsBook
from chalicelib.core.verify import (
    check_account,
    check_books_sum_to_zero,
    check_holds,
    check_points_holder,
    check_transactions,
)


@dataclass
class Report:
    checked: Counter = field(default_factory=Counter)
    violations: list[str] = field(default_factory=list)


def verify_tables() -> Report:
    report = Report()
    for account in AccountModel.scan():
        book, account_id = account.key.split(":", 1)
        if account.kind == "points":  # seed holders are marked by their first earn
            report.violations += check_points_holder(PointsBook(book), account_id)
            report.checked["points holders"] += 1
        else:
            report.violations += check_account(Ledger(book), account_id)
            report.checked["accounts"] += 1
        report.checked["journal entries"] += int(account.entry_count)
    for record in IdempotencyModel.scan():
        report.checked["idempotency records"] += 1
        if record.seq is None:  # every account was settled above: a posting still in a log was written meanwhile
            report.violations.append(f"idempotency {record.key}: its posting is not in the journal yet")
            continue
        if int(record.seq) == 0:  # an account opened
            if AccountModel.count(record.account, consistent_read=True) != 1:
                report.violations.append(f"idempotency {record.key}: no account {record.account}")
            continue
        for leg in record.legs or [record]:
            report.violations += _record_leg_problems(record.key, leg)
    report.violations += check_holds() + check_transactions() + check_books_sum_to_zero()
    report.checked["lots"] = LotModel.count()
    report.checked["holds"] = HoldModel.count()
    report.checked["transactions"] = TransactionModel.count()
    return report


def _record_leg_problems(key: str, leg) -> list[str]:
    try:
        entry = EntryModel.get(leg.account, int(leg.seq), consistent_read=True)
    except EntryModel.DoesNotExist:
        return [f"idempotency {key}: no entry {leg.account}#{leg.seq}"]
    if (int(entry.amount), int(entry.balance_after)) != (int(leg.amount), int(leg.balance_after)):
        return [f"idempotency {key}: says {leg.amount} -> {leg.balance_after}, "
                f"entry {leg.account}#{leg.seq} says {entry.amount} -> {entry.balance_after}"]
    return []


def print_report(report: Report, where: str) -> None:
    counts = ", ".join(f"{count:,} {what}" for what, count in report.checked.items())
    print(f"verified {where}: {counts or 'no data'}")
    for violation in report.violations:
        print(f"  VIOLATION {violation}")
    print(f"{len(report.violations)} violations")


def main() -> int:
    import os

    from tools import dynamodb_local

    for name, value in dynamodb_local.LOCAL_CREDENTIALS.items():
        os.environ.setdefault(name, value)  # DynamoDB Local keeps one database per access key and region
    settings = load()
    existing = settings.dynamodb_endpoint
    data = None if existing else dynamodb_local.PROJECT_ROOT / ".data" / "dynamodb"
    with dynamodb_local.running(data, existing=existing) as endpoint:
        models.bind(replace(settings, dynamodb_endpoint=endpoint))
        report = verify_tables()
    print_report(report, f"{settings.table_prefix}-* at {endpoint}")
    return 1 if report.violations else 0


if __name__ == "__main__":
    sys.exit(main())
