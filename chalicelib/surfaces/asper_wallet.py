"""Seed 003, Asper-Wallet: `/register`, `/wallet/create|credit|debit`, `/wallet/balance/<id>`,
`/wallet/transactions`. No auth, as the original. Its wallet is the user's wallet of type `default`;
a wallet of another type is not one of this surface's. See `shared/seeds/contracts.md` ("003")."""
from __future__ import annotations

from datetime import UTC, datetime, time

from chalicelib.core.errors import AlreadyExists, InvalidRequest, NotFound
from chalicelib.core.wallets import Wallets
from chalicelib.web.money import money_json
from chalicelib.web.routing import IDEMPOTENCY_KEY, Surface
from chalicelib.web.validation import parse_int, parse_timestamp

# The original answers 400 for a taken phone, a second wallet and an unknown user or wallet.
surface = Surface(__name__, tag="seed 003: Asper-Wallet", schemas="chalicelib.surfaces.wallet_schemas",
                  statuses={AlreadyExists: 400, NotFound: 400})
WALLET_TYPE = "default"


def _wallets() -> Wallets:
    return surface.services.wallets_of("asper_wallet")


@surface.route("/register", "POST", status=201, request="RegisterRequest", response="AsperRegistered")
def register(body):
    user = surface.services.users_of("asper_wallet").register(body.phone_number)
    return {"message": "user registered", "user_id": user.user_id}


@surface.route("/wallet/create", "POST", status=201, request="AsperWalletCreateRequest", response="WalletId")
def create_wallet(body):
    wallets = _wallets()
    wallet = wallets.create(body.user_id, WALLET_TYPE, floor=wallets.minimum)
    return {"wallet_id": wallet.wallet_id}


@surface.route("/wallet/credit", "POST", request="CreditRequest", response="NewBalance", errors=(409,),
               headers=(IDEMPOTENCY_KEY,))
def credit(body):
    return _moved(body.wallet_id, body.amount)


@surface.route("/wallet/debit", "POST", request="DebitRequest", response="NewBalance", errors=(409,),
               headers=(IDEMPOTENCY_KEY,))
def debit(body):
    return _moved(body.wallet_id, -body.amount, body.minimum_balance)


@surface.route("/wallet/balance/{wallet_id}", "GET", response="AsperBalance", errors=(400,))
def balance(wallet_id: str):
    return {"balance": money_json(_wallets().get(_wallet_id(wallet_id), wallet_type=WALLET_TYPE).balance)}


@surface.route("/wallet/transactions", "GET", response="AsperHistory", errors=(400,),
               query=(("wallet_id", True, {"type": "integer", "minimum": 1}), ("start_date", False, {"type": "string"}),
                      ("end_date", False, {"type": "string"})))
def transactions():
    wallet_id = parse_int("wallet_id", surface.query("wallet_id"))
    start = _day_or_moment("start_date", surface.query("start_date"), end_of_day=False)
    end = _day_or_moment("end_date", surface.query("end_date"), end_of_day=True)
    totals, movements = _wallets().statement(wallet_id, start, end, wallet_type=WALLET_TYPE)  # unknown: 400
    history = [{"amount": money_json(abs(movement.amount)), "type": "credit" if movement.amount > 0 else "debit",
                "date": movement.created_at} for movement in movements]
    return {"total_credit": money_json(totals.credit), "total_debit": money_json(totals.debit), "history": history}


def _moved(wallet_id: int, amount: int, requested_minimum: int | None = None) -> dict:
    wallets = _wallets()
    movement = wallets.move(wallet_id, amount, wallet_type=WALLET_TYPE,
                            minimum=wallets.debit_minimum(requested_minimum), **surface.idempotency())
    return {"new_balance": money_json(movement.balance_after)}


def _wallet_id(value: str) -> int:
    try:
        return parse_int("wallet_id", value)
    except InvalidRequest:
        raise NotFound(f"wallet {value} not found") from None


def _day_or_moment(name: str, value: str | None, end_of_day: bool) -> datetime | None:
    """`YYYY-MM-DD` (an end date includes its whole day) or ISO 8601; absent means open-ended."""
    if not value:
        return None
    if len(value) == 10:
        day = parse_timestamp(name, value).date()
        return datetime.combine(day, time.max if end_of_day else time.min, tzinfo=UTC)
    return parse_timestamp(name, value)
