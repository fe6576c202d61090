"""Invariant checks over stored data: a balance is what its journal says, lots agree with payers.

Each check reads with strongly consistent requests and returns the violations it
found (an empty list when all hold). Tests run them after every race.
"""
from __future__ import annotations

from chalicelib.core.ledger import Ledger
from chalicelib.core.models import AccountModel, EntryModel, LinkPartModel, LotModel
from chalicelib.core.points import PointsBook


def check_account(ledger: Ledger, account_id: str) -> list[str]:
    """Gapless sequence; each balance-after = previous + amount; the last one is the balance; floor kept."""
    key = ledger.account_key(account_id)
    try:
        account = AccountModel.get(key, consistent_read=True)
    except AccountModel.DoesNotExist:
        return [f"{key}: no such account"]
    problems = []
    running, previous_stamp = 0, ""
    floor = None if account.floor is None else int(account.floor)
    entries = list(EntryModel.query(key, consistent_read=True))
    for expected_seq, entry in enumerate(entries, start=1):
        if int(entry.seq) != expected_seq:
            problems.append(f"{key}: entry {entry.seq} where {expected_seq} was due (gap)")
        running += int(entry.amount)
        if int(entry.balance_after) != running:
            problems.append(f"{key}#{entry.seq}: balance after {entry.balance_after}, journal sums to {running}")
        if floor is not None and int(entry.amount) < 0 and running < floor:
            problems.append(f"{key}#{entry.seq}: balance {running} below the floor {floor}")
        if entry.created_at <= previous_stamp:
            problems.append(f"{key}#{entry.seq}: time {entry.created_at} not after the previous entry's")
        previous_stamp = entry.created_at
    if running != int(account.balance):
        problems.append(f"{key}: balance {account.balance}, journal sums to {running}")
    if len(entries) != int(account.entry_count):
        problems.append(f"{key}: entry count {account.entry_count}, journal has {len(entries)}")
    return problems


def check_points_holder(book: PointsBook, holder: str) -> list[str]:
    """The account checks, plus: replaying the journal gives every payer's balance and no payer or lot
    ever went below zero; open lots sum to the holder's balance; only open lots are indexed."""
    key = book.holder_key(holder)
    try:
        account = AccountModel.get(key, consistent_read=True)
    except AccountModel.DoesNotExist:
        return []  # nothing earned yet, nothing to check
    problems = check_account(book.ledger, holder)
    if account.pending:
        problems.append(f"{key}: a take is still pending ({account.pending}); run settle()")
    stored = {item.payer: int(item.points) for item in account.payers or []}
    lots = {int(lot.lot): lot for lot in LotModel.query(key, consistent_read=True)}
    payers: dict[str, int] = {}
    remaining = {number: int(lot.points) for number, lot in lots.items()}
    for entry in EntryModel.query(key, consistent_read=True):
        for change in entry.detail or []:
            payers[change.payer] = payers.get(change.payer, 0) + int(change.points)
            if payers[change.payer] < 0:
                problems.append(f"{key}#{entry.seq}: payer {change.payer} went to {payers[change.payer]}")
        for part in LinkPartModel.query(book.posting_ref(key, int(entry.seq)), consistent_read=True):
            for link in part.links:
                remaining[int(link.lot)] = remaining.get(int(link.lot), 0) - int(link.points)
                if remaining[int(link.lot)] < 0:
                    problems.append(f"{key}#{entry.seq}: lot {link.lot} taken below zero")
    if payers != stored:
        problems.append(f"{key}: payers {stored}, journal says {payers}")
    if sum(stored.values()) != int(account.balance):
        problems.append(f"{key}: payers sum to {sum(stored.values())}, balance {account.balance}")
    open_total = 0
    for number, lot in lots.items():
        if int(lot.remaining) != remaining[number]:
            problems.append(f"{key} lot {number}: remaining {lot.remaining}, its links leave {remaining[number]}")
        if int(lot.remaining) < 0:
            problems.append(f"{key} lot {number}: remaining {lot.remaining} below zero")
        if (int(lot.remaining) > 0) != (lot.open_holder is not None and lot.open_payer is not None):
            problems.append(f"{key} lot {number}: remaining {lot.remaining} but open-index keys "
                            f"{lot.open_holder!r}, {lot.open_payer!r}")
        open_total += max(int(lot.remaining), 0)
    if open_total != int(account.balance):
        problems.append(f"{key}: open lots sum to {open_total}, balance {account.balance}")
    return problems
