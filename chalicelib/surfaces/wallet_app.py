"""Seed 002, the Wallet App: `/api/v1/...` with JWT bearer auth. See `shared/seeds/contracts.md` ("002")."""
from __future__ import annotations

from chalicelib.config import Settings
from chalicelib.core.errors import InvalidRequest, NotFound
from chalicelib.core.wallets import Movement, Wallet, Wallets
from chalicelib.web import auth
from chalicelib.web.money import money_json
from chalicelib.web.routing import IDEMPOTENCY_KEY, Surface
from chalicelib.web.validation import parse_int, parse_timestamp


def _caller() -> int:
    """The access token's user. Its own contract's authorization: routes with a body check it before reading it,
    so without a valid token the answer is a 401 whatever the body."""
    return auth.authenticated_user(_settings(), surface.request.headers)


surface = Surface(__name__, tag="seed 002: Wallet App", schemas="chalicelib.surfaces.wallet_schemas",
                  own_authorization=True, authenticate=_caller)


def _settings() -> Settings:
    return surface.services.settings


def _wallets() -> Wallets:
    return surface.services.wallets_of("wallet_app")


def _wallet(wallet: Wallet) -> dict:
    return {"wallet_id": wallet.wallet_id, "user_id": wallet.user_id, "type": wallet.wallet_type,
            "balance": money_json(wallet.balance)}


def _transaction(movement: Movement) -> dict:
    return {"transaction_id": movement.transaction_id, "wallet_id": movement.wallet_id,
            "amount": money_json(abs(movement.amount)), "is_credit": movement.amount > 0,
            "balance": money_json(movement.balance_after), "created_at": movement.created_at}


def _path_id(name: str, value: str) -> int:
    """A path id that is not an integer names nothing: 404, as for an unknown one."""
    try:
        return parse_int(name, value)
    except InvalidRequest:
        raise NotFound(f"{name} {value} not found") from None


@surface.route("/api/v1/users", "POST", status=201, request="RegisterRequest", response="Registered", errors=(409,))
def register(body):
    user = surface.services.users_of("wallet_app").register(body.phone_number)
    access, refresh_token = auth.new_session(_settings(), user.user_id, surface.services.refresh_tokens)
    return {"user_id": user.user_id, "phone_number": user.phone_number, "access_token": access,
            "refresh_token": refresh_token}


@surface.route("/api/v1/token/refresh", "POST", response="AccessToken", errors=(401,), bearer=True)
def refresh():
    """A new token pair; the refresh token sent is used up, and a second use revokes every token of its family
    (each a 401)"""
    access, refresh_token = auth.refreshed(_settings(), surface.request.headers, surface.services.refresh_tokens)
    return {"access_token": access, "refresh_token": refresh_token}


@surface.route("/api/v1/wallet/create", "POST", status=201, request="WalletCreateRequest", response="WalletOut",
               errors=(404, 409), bearer=True)
def create_wallet(body, caller: int):
    auth.must_be(caller, body.user_id)
    return _wallet(_wallets().create(body.user_id, body.type, floor=_wallets().minimum))


@surface.route("/api/v1/wallet/get/{user_id}/{wallet_type}", "GET", response="WalletOut", errors=(404,), bearer=True)
def get_wallet(user_id: str, wallet_type: str):
    caller = auth.must_be(_caller(), _path_id("user_id", user_id))
    return _wallet(_wallets().find(caller, wallet_type))


@surface.route("/api/v1/transactions/create", "POST", status=201, request="TransactionRequest",
               response="TransactionOut", errors=(404, 409), bearer=True, headers=(IDEMPOTENCY_KEY,))
def create_transaction(body, caller: int):
    auth.must_be(caller, body.user_id)
    wallets = _wallets()
    movement = wallets.move(body.wallet_id, body.amount if body.is_credit else -body.amount, owner=caller,
                            minimum=wallets.debit_minimum(), **surface.idempotency())
    return _transaction(movement)


@surface.route("/api/v1/transactions/get/{user_id}/{wallet_id}", "GET", response="TransactionPage", errors=(400, 404),
               bearer=True, query=(("limit", False, {"type": "integer", "minimum": 1, "maximum": 1000}),
                                   ("cursor", False, {"type": "string"})))
def list_transactions(user_id: str, wallet_id: str):
    caller = auth.must_be(_caller(), _path_id("user_id", user_id))
    limit = parse_int("limit", surface.query("limit")) if surface.query("limit") is not None else 1000
    movements, cursor = _wallets().history(_path_id("wallet_id", wallet_id), owner=caller, limit=limit,
                                           cursor=surface.query("cursor"))
    return {"transactions": [_transaction(movement) for movement in movements], "next_cursor": cursor}


@surface.route("/api/v1/transactions/get/total_in_period", "POST", request="PeriodRequest", response="Totals",
               errors=(404,), bearer=True)
def total_in_period(body, caller: int):
    auth.must_be(caller, body.user_id)
    start, end = parse_timestamp("start_date", body.start_date), parse_timestamp("end_date", body.end_date)
    totals = _wallets().totals(body.wallet_id, start, end, owner=caller)
    return {"total_credit": money_json(totals.credit), "total_debit": money_json(totals.debit),
            "count": totals.count}
