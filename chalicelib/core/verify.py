"""Invariant checks over stored data: a balance is what its journal says, lots agree with payers.

Each check reads with strongly consistent requests and returns the violations it
found (an empty list when all hold). Tests run them after every race.
"""
from __future__ import annotations

import functools

from chalicelib.core.ledger import Ledger
from chalicelib.core.models import (
    AccountModel,
    EntryModel,
    HoldModel,
    LinkPartModel,
    LotModel,
    PayerModel,
    TransactionModel,
)
from chalicelib.core.points import PointsBook
from chalicelib.core.transactions import BOOK, is_v1_book, leg_account


def check_account(ledger: Ledger, account_id: str) -> list[str]:
    """Gapless sequence; each balance-after = previous + amount; the last one is the balance; held (open
    holds) and the running sums of credits and debits rebuilt the same way; the available balance (balance -
    held) kept at or above the floor, and as the account keeps it."""
    key = ledger.account_key(account_id)
    ledger.settle(account_id, force=True)  # postings written without a read, still in its log: into the journal
    try:
        account = AccountModel.get(key, consistent_read=True)
    except AccountModel.DoesNotExist:
        return [f"{key}: no such account"]
    problems = []
    running, held, previous_stamp = 0, 0, ""
    credited = debited = 0
    counting = False  # the running sums of credits and debits, checked from the first entry that has them
    floor = None if account.floor is None else int(account.floor)
    entries = list(EntryModel.query(key, consistent_read=True))
    for expected_seq, entry in enumerate(entries, start=1):
        if int(entry.seq) != expected_seq:
            problems.append(f"{key}: entry {entry.seq} where {expected_seq} was due (gap)")
        running += int(entry.amount)
        held_change = int(entry.held_change or 0)
        held += held_change
        if int(entry.balance_after) != running:
            problems.append(f"{key}#{entry.seq}: balance after {entry.balance_after}, journal sums to {running}")
        credited += max(int(entry.amount), 0)
        debited += max(-int(entry.amount), 0)
        if entry.credited_after is not None and not counting:
            # The first entry with running sums starts them (an account with entries from before they existed
            # starts them at 0 there): the chain is checked from it on.
            counting, credited, debited = True, int(entry.credited_after), int(entry.debited_after)
        if entry.credited_after is not None and (int(entry.credited_after), int(entry.debited_after)) != (
                credited, debited):
            problems.append(f"{key}#{entry.seq}: credited/debited after {entry.credited_after}/{entry.debited_after}, "
                            f"journal sums to {credited}/{debited}")
        if held_change and int(entry.held_after) != held:
            problems.append(f"{key}#{entry.seq}: held after {entry.held_after}, journal sums to {held}")
        if held < 0:
            problems.append(f"{key}#{entry.seq}: held {held} below zero")
        if floor is not None and int(entry.amount) - held_change < 0 and running - held < floor:
            problems.append(f"{key}#{entry.seq}: available {running - held} below the floor {floor}")
        if entry.created_at <= previous_stamp:
            problems.append(f"{key}#{entry.seq}: time {entry.created_at} not after the previous entry's")
        previous_stamp = entry.created_at
    if running != int(account.balance):
        problems.append(f"{key}: balance {account.balance}, journal sums to {running}")
    if counting and account.credited is not None and (int(account.credited), int(account.debited)) != (
            credited, debited):
        problems.append(f"{key}: credited/debited {account.credited}/{account.debited}, journal sums to "
                        f"{credited}/{debited}")
    if held != int(account.held or 0):
        problems.append(f"{key}: held {account.held or 0}, journal sums to {held}")
    if account.available is not None and int(account.available) != running - held:
        problems.append(f"{key}: available {account.available}, journal sums to {running - held} (balance - held)")
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
    if bool(account.pending) != bool(account.pending_shard):
        problems.append(f"{key}: pending {account.pending!r} but on the pending index as {account.pending_shard!r}")
    stored = {item.payer: int(item.points) for item in PayerModel.query(key, consistent_read=True)}
    lots = {int(lot.lot): lot for lot in LotModel.query(key, consistent_read=True)}
    payers: dict[str, int] = {}
    remaining = {number: int(lot.points) for number, lot in lots.items()}
    for entry in EntryModel.query(key, consistent_read=True):
        for change in entry.detail or []:
            payers[change.payer] = payers.get(change.payer, 0) + int(change.points)
            if payers[change.payer] < 0:
                problems.append(f"{key}#{entry.seq}: payer {change.payer} went to {payers[change.payer]}")
        for part in LinkPartModel.query(book.parts_ref(key, entry), consistent_read=True):
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


@functools.lru_cache(maxsize=1024)
def _ledger_of(book: str | None) -> Ledger:
    """The ledger of a record's book (records written before tenants carry none: the book `v1`), built once per
    book rather than once per record (a Ledger reads the configuration)."""
    return Ledger(book or BOOK)


def check_holds() -> list[str]:
    """Every /v1 account's held (in every tenant's book) is the sum of its authorized holds; a captured hold
    captured at most its amount."""
    problems = []
    held: dict[str, int] = {}
    for hold in HoldModel.scan(consistent_read=True):
        account_key = _ledger_of(hold.book).account_key(hold.account_id)
        if hold.status == "authorized":
            held[account_key] = held.get(account_key, 0) + int(hold.amount)
            if hold.expiry is None:
                problems.append(f"hold {hold.id}: authorized but not on the expiry index")
        elif hold.expiry is not None:
            problems.append(f"hold {hold.id}: {hold.status} but still on the expiry index")
        if not 0 <= int(hold.captured or 0) <= int(hold.amount):
            problems.append(f"hold {hold.id}: captured {hold.captured} of {hold.amount}")
    for account in AccountModel.scan(AccountModel.key.startswith(f"{BOOK}"), consistent_read=True):
        if not is_v1_book(account.key.split(":", 1)[0]):
            continue
        if int(account.held or 0) != held.get(account.key, 0):
            problems.append(f"{account.key}: held {account.held or 0}, its authorized holds sum to "
                            f"{held.get(account.key, 0)}")
    return problems


def check_transactions() -> list[str]:
    """Each transaction's legs are journal entries that say the same (a hot account's, on its shards); every
    transaction sums to zero; the reversed total of each is what its reversals moved, never more than its
    amount."""
    problems = []
    reversed_by: dict[str, int] = {}
    stored = list(TransactionModel.scan(consistent_read=True))
    for number, transaction in enumerate(stored):
        ledger = _ledger_of(transaction.book)
        waiting = [leg for leg in transaction.legs if leg.seq is None]
        if waiting:
            # Written without a read: its legs wait in their accounts' logs for a drain to number them.
            for leg in waiting:
                ledger.settle(leg_account(leg), force=True)  # the verifier drains them into the journal
            transaction = stored[number] = TransactionModel.get(transaction.id, consistent_read=True)
        for leg in transaction.legs:
            core_id = leg_account(leg)
            if leg.seq is None:
                problems.append(f"transaction {transaction.id}: its leg on {core_id} still waits for its seq")
                continue
            try:
                entry = EntryModel.get(ledger.account_key(core_id), int(leg.seq), consistent_read=True)
            except EntryModel.DoesNotExist:
                problems.append(f"transaction {transaction.id}: no entry {core_id}#{leg.seq}")
                continue
            if int(entry.amount) != int(leg.amount) or entry.transaction != transaction.id:
                problems.append(f"transaction {transaction.id}: entry {core_id}#{leg.seq} says "
                                f"{entry.amount} of {entry.transaction}, the transaction {leg.amount}")
        total = sum(int(leg.amount) for leg in transaction.legs)
        if total != 0:
            problems.append(f"transaction {transaction.id}: its legs sum to {total}, not zero")
        if transaction.reverses:
            reversed_by[transaction.reverses] = reversed_by.get(transaction.reverses, 0) + int(transaction.amount)
    for transaction in stored:
        total = reversed_by.get(transaction.id, 0)
        if int(transaction.reversed or 0) != total or total > int(transaction.amount):
            problems.append(f"transaction {transaction.id}: reversed {transaction.reversed} of {transaction.amount}, "
                            f"its reversals moved {total}")
    return problems


def check_books_sum_to_zero() -> list[str]:
    """/v1 is double entry: in every tenant's book the balances of each unit sum to zero (the system account
    `@world:<unit>` holds minus the rest). A hot account counts through its shards: its own item keeps no
    balance, and its shards' floors sum to its floor."""
    problems = []
    sums: dict[tuple[str, str], int] = {}
    shards: dict[str, list[AccountModel]] = {}
    hot: list[AccountModel] = []
    for account in AccountModel.scan(AccountModel.key.startswith(f"{BOOK}"), consistent_read=True):
        book = account.key.split(":", 1)[0]
        if not is_v1_book(book):
            continue
        if account.shards:
            hot.append(account)
        if account.shard_of:
            shards.setdefault(account.shard_of, []).append(account)
        sums[book, account.unit or ""] = sums.get((book, account.unit or ""), 0) + int(account.balance)
    for (book, unit), total in sorted(sums.items()):
        if total != 0:
            problems.append(f"{book}: the balances in {unit} sum to {total}, not zero")
    for account in hot:
        own = shards.get(account.key, [])
        if int(account.balance) or int(account.entry_count):
            problems.append(f"{account.key}: a hot account's own item holds a balance or entries")
        if len(own) != int(account.shards):
            problems.append(f"{account.key}: {len(own)} shards, {account.shards} expected")
        floors = [shard.floor for shard in own]
        if (account.floor is None) != all(floor is None for floor in floors) or (
                account.floor is not None and sum(int(floor) for floor in floors if floor is not None)
                != int(account.floor)):
            problems.append(f"{account.key}: shard floors {floors} do not sum to the floor {account.floor}")
    return problems
