"""Holds (two-phase): authorize reserves an amount of an account's available balance, then capture (all
or part) moves it, or void gives it back; an authorized hold that is not settled by `expires_at` expires.

The account keeps `held`, the sum of its authorized holds; available = balance - held. Each step is one
posting of the core (a journal entry: amount 0 and held +amount for an authorization, -captured and
held -amount for a capture, held -amount for a void or an expiry), so the floor is enforced on the
available balance in the write's condition, and held is rebuilt from the journal like the balance.
The hold's own item changes only under `status = authorized`, in the same transaction.
"""
from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from chalicelib.core.errors import InvalidRequest, InvalidState, NotFound
from chalicelib.core.guard import datastore_guarded
from chalicelib.core.ledger import Extension, Leg, PlannedLeg, WithoutRead, findable, parse_stamp, stamp
from chalicelib.core.models import HoldModel, TransactionModel, due, expiry_shard
from chalicelib.core.transactions import (
    BOOK,
    Transaction,
    Transactions,
    accounts_agree,
    check_metadata,
    new_id,
    positive,
    preconditions,
)


@dataclass(frozen=True)
class Hold:
    id: str
    account_id: str
    amount: int
    unit: str
    status: str
    captured: int
    capture_transaction: str | None
    expires_at: str
    metadata: dict
    created_at: str
    updated_at: str
    replayed: bool = False  # this answer replays what an earlier request with the same idempotency key made


def hold_of(model: HoldModel) -> Hold:
    return Hold(model.id, model.account_id, int(model.amount), model.unit, model.status, int(model.captured or 0),
                model.capture_transaction, model.expires_at, model.metadata or {}, model.created_at,
                model.updated_at)


# The kinds of entry a hold makes on its own (no money moves): their `transaction` attribute names the hold.
HOLD_ENTRY_KINDS = frozenset({"hold", "void", "hold_expiry"})
DEFAULT_HOLD = timedelta(days=7)  # how long a hold lasts when its request names no expiry


def stored_hold(hold_id: str, book: str | None = None) -> HoldModel:
    """A hold read consistently; NotFound if there is none (or, given `book`, none of that book)."""
    try:
        model = HoldModel.get(findable("hold", hold_id), consistent_read=True)
    except HoldModel.DoesNotExist:
        model = None
    if model is None or (book is not None and (model.book or BOOK) != book):
        raise NotFound(f"hold {hold_id} not found")
    return model


def due_holds(now: datetime) -> Iterator[str]:
    """Ids of authorized holds (of every book) whose expiry has come, from the sparse `by_expiry` index,
    oldest first."""
    for item in due(HoldModel, "holds", stamp(now)):
        yield item.id


@datastore_guarded
class Holds:
    def __init__(self, transactions: Transactions) -> None:
        self.transactions = transactions
        self.ledger = transactions.ledger

    def get(self, hold_id: str) -> Hold:
        return hold_of(self._stored(hold_id))

    def authorize(self, account_id: str, amount: int, expires_at: datetime | None = None, *,
                  metadata: dict | None = None, idempotency_key: str, expected_seq: dict | None = None) -> Hold:
        """Reserve `amount` until `expires_at` (by default DEFAULT_HOLD from now)."""
        amount = positive("amount", amount)
        metadata = check_metadata(metadata)
        asked = stamp(expires_at) if expires_at is not None else None  # what identifies the request: a default
        if expires_at is None:  # expiry, made from the time, differs on each retry
            expires_at = self.ledger.now() + DEFAULT_HOLD
        expiry = stamp(expires_at)
        expected = preconditions(expected_seq, account_id)
        hold_id = new_id("hold")
        made: list[HoldModel] = []

        def hold_at(unit: str, created_at: str) -> Extension:
            hold = HoldModel(hold_id, book=self.ledger.book, account_id=account_id, amount=amount, unit=unit,
                             status="authorized", captured=0, expires_at=expiry, metadata=metadata,
                             created_at=created_at, updated_at=created_at, expiry_shard=expiry_shard("holds", hold_id),
                             expiry=f"{expiry}#{hold_id}")
            made[:] = [hold]
            return Extension(puts=[(hold, HoldModel.id.does_not_exist())])

        def plan(planned_legs: tuple[PlannedLeg, ...]) -> Extension:
            # Checked when the hold is planned, after its key was looked up: a retry that comes once expires_at has
            # passed replays the first answer.
            if expires_at <= self.ledger.now():
                raise InvalidRequest("expires_at must be in the future", field="expires_at")
            return hold_at(accounts_agree(planned_legs, "standard"), planned_legs[0].created_at)

        def unplanned(_posted: tuple[Leg, ...], created_at: str, unit: str) -> Extension | None:
            # Past expires_at, the read path says whether this is a replay or a refusal.
            return hold_at(unit, created_at) if expires_at > parse_stamp(created_at) else None

        legs: tuple[Leg, ...] = (Leg(account_id, 0, hold_change=amount, create=False,
                                     expected_seq=expected.get(account_id)),)
        without_read = None
        if self.ledger.unread_writes:
            legs, without_read = self.transactions.without_read(legs, unplanned)
        postings = self.ledger.post_legs(
            legs, idempotency_key=idempotency_key,
            fingerprint={"op": "hold", "account": account_id, "amount": amount, "expires_at": asked,
                         "metadata": metadata, **({"expected_seq": expected} if expected else {})},
            key_ttl_seconds=self.transactions.key_ttl_seconds, extend=plan, resource=hold_id,
            entry_attributes={"transaction": hold_id, "kind": "hold"}, without_read=without_read)
        return replace(self.get(postings[0].made()), replayed=True) if postings[0].replayed else hold_of(made[0])

    def capture(self, hold_id: str, amount: int | None = None, *, destination: str | None = None,
                metadata: dict | None = None, idempotency_key: str) -> tuple[Hold, Transaction]:
        """Move `amount` (default: all) of the hold out of its account, to `destination` if given (else out of the
        ledger, to the system account of its unit); the rest of the hold is released. One capture per hold."""
        hold = self._stored(hold_id)
        amount = int(hold.amount) if amount is None else positive("amount", amount)
        if amount > int(hold.amount):
            raise InvalidRequest(f"amount must be at most the hold's {hold.amount}", field="amount")
        if destination == hold.account_id:
            raise InvalidRequest("the destination is the hold's own account", field="destination")
        metadata = check_metadata(metadata)
        # To the destination, or out of the ledger: to the system account of the hold's unit.
        to = (self.transactions.counter_of(hold.account_id) if destination is None
              else self.transactions.named_counter(destination, beside=hold.account_id, field="destination"))
        legs = [Leg(hold.account_id, -amount, hold_change=-int(hold.amount), create=False),
                Leg(to, amount, create=False)]

        settled: dict[str, Hold] = {}  # by the capture transaction planned: the hold as that plan leaves it

        def settle_at(created_at: str, stored: TransactionModel) -> Extension:
            extension = self._settle(hold_id, created_at, "captured", expired_ok=False, captured=amount,
                                     capture_transaction=stored.id)
            settled[stored.id] = extension.planned()
            return extension

        made = self.transactions.record(
            "capture", tuple(legs), amount, metadata=metadata, idempotency_key=idempotency_key,
            extend=lambda planned_legs, stored: settle_at(planned_legs[0].created_at, stored),
            extend_unread=lambda created_at, stored: _unless_refused(lambda: settle_at(created_at, stored)),
            fingerprint={"op": "capture", "hold": hold_id, "amount": amount, "destination": destination,
                         "metadata": metadata}, hold_id=hold_id)
        # A replay answers another request's transaction: read the hold as it is.
        return settled.get(made.id) or self.get(hold_id), made

    def void(self, hold_id: str, *, idempotency_key: str | None) -> Hold:
        """Release the hold without moving anything."""
        return self._release(hold_id, "voided", idempotency_key)

    def expire(self, hold_id: str) -> bool:
        """Release an authorized hold past its expiry (the sweep); False if there was nothing to do."""
        try:
            self._release(hold_id, "expired", None)
        except InvalidState:
            return False
        return True

    # -- helpers -----------------------------------------------------------------
    def _release(self, hold_id: str, status: str, idempotency_key: str | None) -> Hold:
        hold = self._stored(hold_id)
        settled: list[Hold] = []

        def settle_at(created_at: str) -> Extension:
            extension = self._settle(hold_id, created_at, status, expired_ok=True, must_be_due=status == "expired")
            settled[:] = [extension.planned()]
            return extension

        kind = "void" if status == "voided" else "hold_expiry"
        # Giving back what is held lowers no available balance: nothing of the account's to check, so a void does
        # not read it (the hold's own state is the condition on the hold). The sweep's expiry reads: it has no client
        # waiting, and without a read it would need a record of its own, which its role does not write.
        unread = self.ledger.unread_writes and status == "voided"
        postings = self.ledger.post_legs(
            (Leg(hold.account_id, 0, hold_change=-int(hold.amount), create=False),),
            idempotency_key=idempotency_key, fingerprint={"op": kind, "hold": hold_id},
            key_ttl_seconds=self.transactions.key_ttl_seconds,
            extend=lambda planned_legs: settle_at(planned_legs[0].created_at), resource=hold_id,
            entry_attributes={"transaction": hold_id, "kind": kind},
            without_read=WithoutRead(extend=lambda _posted, created_at: _unless_refused(lambda: settle_at(created_at)))
            if unread else None)
        return replace(self.get(hold_id), replayed=True) if postings[0].replayed else settled[0]

    def _settle(self, hold_id: str, now: str, status: str, *, expired_ok: bool, must_be_due: bool = False,
                **changes) -> Extension[Hold]:
        """Move an authorized hold to `status` (with `changes`), read consistently at each plan: only an
        authorized hold moves on, and the write is conditioned on it. The result is the hold as it leaves it."""
        hold = self._stored(hold_id)
        if hold.status != "authorized":
            raise InvalidState(f"hold {hold_id} is {hold.status}")
        if hold.expires_at <= now and not expired_ok:
            raise InvalidState(f"hold {hold_id} expired at {hold.expires_at}")
        if must_be_due and hold.expires_at > now:
            raise InvalidState(f"hold {hold_id} has not expired")
        changes = {"status": status, "updated_at": now, **changes}
        actions = [getattr(HoldModel, name).set(value) for name, value in changes.items()]
        actions += [HoldModel.expiry_shard.remove(), HoldModel.expiry.remove()]
        for name, value in changes.items():
            setattr(hold, name, value)
        return Extension(updates=[(HoldModel(hold_id), actions, HoldModel.status == "authorized")],
                         result=hold_of(hold))

    def _stored(self, hold_id: str) -> HoldModel:
        """The hold, if it is this book's: another tenant's answers exactly as one that does not exist."""
        return stored_hold(hold_id, self.ledger.book)


def _unless_refused(settle: Callable[[], Extension]) -> Extension | None:
    """A hold's move planned without a read: None where it would be refused, which the read path says (the request
    may be a replay of one that moved it)."""
    try:
        return settle()
    except InvalidState:
        return None
