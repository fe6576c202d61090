"""Users and wallets (seeds 002 and 003): registration by phone number, typed wallets with floors.

- A phone number names one user and a user has one wallet of each type. Both are enforced inside the
  write: the uniqueness item (`phone#<phone>`, `wallet#<user>#<type>`) is put in the same transaction
  as what it guards, under attribute_not_exists — never by a read first (a read first only spares an
  id when the answer is already known).
- User and wallet ids are integers from an atomic counter (one UpdateItem ADD), starting at 1, never
  reused; an id drawn by a request that then lost its race is skipped, not handed out again.
- A wallet is a ledger account in the `wallets` book: every credit or debit is one posting, one transaction
  without a read (`ledger/sequencer.py`), with the floor and the wallet's surface, owner and type in its
  condition. Money is integer minor units.
- Each surface keeps its own users and wallets (contracts.md): a user and a wallet carry the surface
  that made them, and a surface's `Directory` and `Wallets` see only their own — another surface's id
  answers as one that does not exist, in every read and in the write's condition. Only the phone
  number is shared: one phone number, one user (contracts.md), whichever surface registered it.
"""
from __future__ import annotations

import copy
import re
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import NoReturn

from pynamodb.exceptions import TransactGetError
from pynamodb.transactions import TransactGet

from chalicelib.core import models
from chalicelib.core.errors import AlreadyExists, Forbidden, InvalidRequest, NotFound
from chalicelib.core.guard import datastore_guarded, is_client_fault
from chalicelib.core.ledger import (
    Extension,
    Ledger,
    Page,
    Posting,
    Totals,
    WithoutRead,
    require_int,
    resolved,
    stamp,
    utc_now,
)
from chalicelib.core.ledger.runner import Refused, Writes, busy, write_once
from chalicelib.core.models import AccountModel, CounterModel, DirectoryModel

PHONE_NUMBER = re.compile(r"\+?[0-9]{7,15}")
WALLET_TYPE = re.compile(r"[A-Za-z0-9_-]{1,32}")


def money_text(units: int) -> str:
    """Minor units as currency text, exactly: 1050 -> '10.50'."""
    return f"{Decimal(units).scaleb(-2):.2f}"


@dataclass(frozen=True)
class User:
    user_id: int
    phone_number: str
    created_at: str


@dataclass(frozen=True)
class Wallet:
    wallet_id: int
    user_id: int
    wallet_type: str
    balance: int
    floor: int | None


@dataclass(frozen=True)
class Movement:
    """A credit (amount > 0) or debit (amount < 0) of a wallet, with the balance right after it."""

    wallet_id: int
    seq: int
    amount: int
    balance_after: int
    created_at: str
    replayed: bool = False

    @property
    def transaction_id(self) -> str:
        return f"{self.wallet_id}-{self.seq}"


@datastore_guarded
class Directory:
    """Users of one surface, and the unique names that point at them."""

    def __init__(self, surface: str, clock=utc_now) -> None:
        self.surface = surface
        self._clock = clock

    def register(self, phone_number: str) -> User:
        if not isinstance(phone_number, str) or not PHONE_NUMBER.fullmatch(phone_number):
            raise InvalidRequest("phone_number must be 7 to 15 digits, with an optional leading +",
                                 field="phone_number")
        phone_key = f"phone#{phone_number}"
        if _exists(DirectoryModel, phone_key):
            raise _phone_taken(phone_number)
        user_id = next_id("users")
        created_at = stamp(self._clock())
        user = DirectoryModel(f"user#{user_id}", user_id=user_id, phone_number=phone_number, created_at=created_at,
                              surface=self.surface)
        phone = DirectoryModel(phone_key, user_id=user_id, phone_number=phone_number, created_at=created_at,
                               surface=self.surface)

        def user_and_phone(writes: Writes) -> None:
            writes.put("user", user, DirectoryModel.key.does_not_exist())
            writes.put("phone", phone, DirectoryModel.key.does_not_exist())
        try:
            write_once(user_and_phone)
        except Refused:
            raise _phone_taken(phone_number) from None
        return User(user_id, phone_number, created_at)


@datastore_guarded
class Wallets:
    """Wallets are accounts of the `wallets` book, keyed by wallet id (ids are unique across surfaces).

    A view `of(surface)` sees that surface's wallets and users only; this unrestricted one (no surface)
    is the operator's, for tools and tests, and creates nothing."""

    def __init__(self, surface: str | None = None, **ledger_options) -> None:
        self.surface = surface
        self.minimum = 0
        self.ledger = Ledger("wallets", show=money_text, unread_writes=True, **ledger_options)

    def of(self, surface: str, minimum: int = 0) -> Wallets:
        """The same book as seen by one surface, whose wallets keep at least `minimum` (minor units)."""
        view = copy.copy(self)
        view.surface = surface
        view.minimum = minimum
        return view

    def debit_minimum(self, requested: int | None = None) -> int:
        """A movement's minimum balance: the surface's, which a request may raise for itself, never lower."""
        return max(self.minimum, requested or 0)

    def create(self, user_id: int, wallet_type: str, floor: int) -> Wallet:
        if self.surface is None:
            raise ValueError("a wallet is created by a surface: use Wallets.of(surface)")
        user_id = require_int("user_id", user_id)
        if not isinstance(wallet_type, str) or not WALLET_TYPE.fullmatch(wallet_type):
            raise InvalidRequest("type must be 1 to 32 of A-Z, a-z, 0-9, _ and -", field="type")
        user_key, unique_key = f"user#{user_id}", f"wallet#{user_id}#{wallet_type}"
        try:
            with TransactGet(connection=models.transaction_connection) as reads:
                user_future = reads.get(DirectoryModel, user_key)
                unique_future = reads.get(DirectoryModel, unique_key)
        except TransactGetError as error:
            if is_client_fault(error):
                raise
            raise busy() from None
        user = resolved(user_future)
        if user is None or user.surface != self.surface:
            raise NotFound(f"user {user_id} not found")
        if resolved(unique_future) is not None:
            raise _wallet_taken(user_id, wallet_type)
        wallet_id = next_id("wallets")

        def user_and_unique_type(account: AccountModel, writes: Writes) -> None:
            writes.check("user", DirectoryModel, user_key, DirectoryModel.surface == self.surface)
            unique = DirectoryModel(unique_key, user_id=user_id, wallet_id=wallet_id, created_at=account.created_at)
            writes.put("unique", unique, DirectoryModel.key.does_not_exist())
        try:
            self.ledger.open(str(wallet_id), floor=floor, attributes={"owner": user_id, "wallet_type": wallet_type,
                                                                       "surface": self.surface},
                             idempotency_key=None, fingerprint={}, requires=user_and_unique_type)
        except Refused as refused:
            if "user" in refused.roles:
                raise NotFound(f"user {user_id} not found") from None
            raise _wallet_taken(user_id, wallet_type) from None
        return Wallet(wallet_id, user_id, wallet_type, 0, floor)

    def get(self, wallet_id: int, *, owner: int | None = None, wallet_type: str | None = None) -> Wallet:
        """One GetItem. `owner`: the user who asks, `wallet_type`: the only type this caller may see; a wallet
        of another owner, type or surface is not found, exactly as one that does not exist."""
        try:
            account = AccountModel.get(self._key(wallet_id), consistent_read=True)
        except AccountModel.DoesNotExist:
            raise _no_wallet(wallet_id) from None
        if not self._sees(account) or (wallet_type is not None and account.wallet_type != wallet_type) or (
                owner is not None and int(account.owner) != owner):
            raise _no_wallet(wallet_id)
        return Wallet(wallet_id, int(account.owner), account.wallet_type, int(account.balance),
                      None if account.floor is None else int(account.floor))

    def find(self, user_id: int, wallet_type: str) -> Wallet:
        """The user's wallet of a type: two GetItems (the uniqueness item names the wallet)."""
        if not isinstance(wallet_type, str) or not WALLET_TYPE.fullmatch(wallet_type):
            # No wallet has such a type (nor could its key be stored: a path may carry kilobytes).
            raise NotFound(f"user {user_id} has no wallet of type {wallet_type[:32]}")
        try:
            unique = DirectoryModel.get(f"wallet#{user_id}#{wallet_type}", consistent_read=True)
        except DirectoryModel.DoesNotExist:
            raise NotFound(f"user {user_id} has no wallet of type {wallet_type}") from None
        return self.get(int(unique.wallet_id))

    def move(self, wallet_id: int, amount: int, *, owner: int | None = None, wallet_type: str | None = None,
             minimum: int | None = None, idempotency_key: str | None = None,
             key_ttl_seconds: int | None = None) -> Movement:
        """Credit (amount > 0) or debit (amount < 0) one wallet, never below its floor or `minimum`."""
        amount = require_int("amount", amount)
        if amount == 0:
            raise InvalidRequest("amount must be greater than 0", field="amount")

        def checked(draft) -> Extension:
            account = draft.account
            # Another owner's wallet is refused as a missing one, after the same one read (ids are sequential).
            if not self._sees(account) or (wallet_type is not None and account.wallet_type != wallet_type) or (
                    owner is not None and int(account.owner) != owner):
                raise _no_wallet(wallet_id)
            # The surface read is also the write's condition (it never changes; the version would catch it).
            return Extension(entry_attributes={"owner": int(account.owner), "surface": account.surface},
                             account_condition=None if self.surface is None else AccountModel.surface == self.surface)

        # What `checked` checks, said as the write's condition, so the posting needs no read (`sequencer.py`).
        unread = None
        if self.surface is not None:
            unread = AccountModel.surface == self.surface
            if wallet_type is not None:
                unread &= AccountModel.wallet_type == wallet_type
            if owner is not None:
                unread &= AccountModel.owner == owner
        # A client's key is scoped to the user (or the surface, without users), like Stripe's per account.
        try:
            posting = self.ledger.post(str(wallet_id), amount, idempotency_key=idempotency_key, create=False,
                                       idempotency_scope=str(owner) if owner is not None else "-",
                                       minimum=minimum, extend=checked, key_ttl_seconds=key_ttl_seconds,
                                       request={"owner": owner, "minimum": minimum},
                                       floor=self.minimum,
                                       without_read=None if unread is None else WithoutRead((unread,)))
        except NotFound:
            raise _no_wallet(wallet_id) from None  # worded as for another surface's wallet: nothing tells them apart
        return _movement(wallet_id, posting)

    def history(self, wallet_id: int, *, owner: int | None = None, limit: int = 100, cursor: str | None = None,
                newest_first: bool = True, start: datetime | None = None,
                end: datetime | None = None) -> tuple[list[Movement], str | None]:
        """A page of the wallet's movements: the log's GetItem (`Ledger.settle`: postings written without a read
        put in the journal first), one Query, and a GetItem more when the page is empty or is not
        the owner's (each entry names the wallet's surface and owner, checked on the page): the wallet's item
        tells an empty wallet from one that does not exist or is another's. Another's and a missing wallet
        are then the same answer (not found) after the same reads, a Query and a GetItem."""
        try:
            page: Page = self.ledger.history(str(wallet_id), limit=limit, cursor=cursor, newest_first=newest_first,
                                             start=start, end=end, owner=owner, surface=self.surface)
        except (NotFound, Forbidden):
            self._refuse(wallet_id, owner)
        if not page.postings:
            self.get(wallet_id, owner=owner)
        return [_movement(wallet_id, posting) for posting in page.postings], page.next_cursor

    def totals(self, wallet_id: int, start: datetime, end: datetime, *, owner: int | None = None) -> Totals:
        """The period's totals: the log's GetItem, one Query, and a GetItem more as in `history` (the same reads
        for another's wallet as for a missing one)."""
        try:
            totals = self.ledger.totals(str(wallet_id), start, end, owner=owner, surface=self.surface)
        except (NotFound, Forbidden):
            self._refuse(wallet_id, owner)
        if totals.count == 0:
            self.get(wallet_id, owner=owner)
        return totals

    def statement(self, wallet_id: int, start: datetime | None, end: datetime | None, *,
                  wallet_type: str | None = None) -> tuple[Totals, list[Movement]]:
        """The period's totals and movements, oldest first: one GetItem (the wallet is this view's), the log's
        GetItem, then the period's Query pages."""
        self.get(wallet_id, wallet_type=wallet_type)
        totals, postings = self.ledger.statement(str(wallet_id), start, end)
        return totals, [_movement(wallet_id, posting) for posting in postings]

    def _refuse(self, wallet_id: int, owner: int | None) -> NoReturn:
        """A page that is not this view's or this owner's: refused as a wallet that does not exist, after the
        wallet's GetItem that an empty page costs too, so the two take the same reads."""
        self.get(wallet_id, owner=owner)  # raises NotFound: the page was another's
        raise _no_wallet(wallet_id)  # the item reads as the caller's although its entries do not: still not theirs

    def _key(self, wallet_id: int) -> str:
        return self.ledger.account_key(str(wallet_id))

    def _sees(self, account: AccountModel) -> bool:
        """A surface's view sees its own wallets only (one written before wallets carried a surface: none)."""
        return self.surface is None or account.surface == self.surface


def next_id(kind: str) -> int:
    """The next integer id of a kind: one atomic UpdateItem (ADD 1), so no two requests get the same one."""
    counter = CounterModel(f"ids:{kind}")
    counter.update(actions=[CounterModel.value.add(1)])
    return int(counter.value)


def _exists(model, key: str) -> bool:
    try:
        model.get(key, consistent_read=True)
    except model.DoesNotExist:
        return False
    return True


def _movement(wallet_id: int, posting: Posting) -> Movement:
    return Movement(wallet_id, posting.seq, posting.amount, posting.balance_after, posting.created_at,
                    posting.replayed)


def _phone_taken(phone_number: str) -> AlreadyExists:
    return AlreadyExists(f"phone number {phone_number} is already registered", field="phone_number")


def _wallet_taken(user_id: int, wallet_type: str) -> AlreadyExists:
    return AlreadyExists(f"user {user_id} already has a wallet of type {wallet_type}", field="type")


def _no_wallet(wallet_id: int) -> NotFound:
    return NotFound(f"wallet {wallet_id} not found")
