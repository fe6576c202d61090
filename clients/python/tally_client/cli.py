"""`tally`: Tally's /v1 from the command line, on the `Tally` client.

Endpoint and key: `--url` / `--key`, else the environment's `TALLY_URL` (default http://127.0.0.1:8000) and
`TALLY_KEY`. Human output by default, JSON with `--json`. Exit codes: see EXIT below (docs/clients.md).
"""
from __future__ import annotations

import argparse
import itertools
import json
import sys
import unicodedata
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from tally_client.client import DEFAULT, DEFAULT_URL, Tally
from tally_client.errors import (
    Conflict,
    InvalidRequest,
    NotFound,
    TallyError,
    Unauthorized,
    Unavailable,
)

# Exit codes: 0 success; 2 a command line argparse refused; one per family of refusals.
EXIT_OK = 0
EXIT_FAILED = 1  # verify found a violation; or an answer of no family below
EXIT_USAGE = 2
EXIT_INVALID = 3  # 400 (and other 4xx): the request was wrong, nothing written
EXIT_UNAUTHORIZED = 4  # 401/403, or no key given
EXIT_NOT_FOUND = 5  # 404
EXIT_CONFLICT = 6  # 409
EXIT_UNAVAILABLE = 7  # 5xx, 429 or no answer, after the client's retries
EXIT_BY_ERROR: tuple[tuple[type[TallyError], int], ...] = (
    (InvalidRequest, EXIT_INVALID), (Unauthorized, EXIT_UNAUTHORIZED), (NotFound, EXIT_NOT_FOUND),
    (Conflict, EXIT_CONFLICT), (Unavailable, EXIT_UNAVAILABLE))

EPILOG = f"""exit codes: 0 ok; 1 verify found a violation; 2 usage; 3 invalid request (400); 4 no key, unauthorized
or forbidden (401/403); 5 not found (404); 6 conflict (409); 7 unavailable (5xx, 429, no answer) after retries.
environment: TALLY_URL (default {DEFAULT_URL}), TALLY_KEY."""

KEYS_HELP = """\
API keys are not made through the API: no /v1 route makes one, on purpose. A key is a tenant's credential, made
by an operator with access to the key table (only its hash is stored), so this client cannot make one:

  make run                                  prints a development key (tenant dev, scope admin),
                                            kept in .data/dev-key
  make key TENANT=acme SCOPES=read,write    makes a key and prints its token once
                                            (python -m tools.keys --help: list and revoke too)

Scopes: read, write, points:earn, points:spend, admin. Then:

  export TALLY_KEY=tk_...
  tally keys check                          asks the server whether it takes the key
"""


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    as_json = getattr(args, "json", False)
    client = Tally(getattr(args, "url", None), getattr(args, "key", None))
    try:
        return args.run(client, args, Output(as_json))
    except TallyError as error:
        if as_json:
            print(json.dumps({"error": error.message, "code": error.code, "type": error.type, "param": error.param,
                              "status": error.status, "request_id": error.request_id}), file=sys.stderr)
        else:
            print(terminal_safe(f"tally: error: {error}"), file=sys.stderr)
        return next((code for kind, code in EXIT_BY_ERROR if isinstance(error, kind)), EXIT_FAILED)
    except BrokenPipeError:  # `tally ... | head`
        return EXIT_OK


# What the API answers is printed into an operator's terminal: control characters (ESC starts the sequences that
# retitle, clear or rewrite it), format characters (bidirectional overrides reorder a line, zero-width ones hide
# in a name) and line and paragraph separators are shown escaped, never sent raw. JSON output needs nothing:
# json.dumps escapes every non-ASCII and control character itself.
_ESCAPED = frozenset({"Cc", "Cf", "Zl", "Zp"})


def terminal_safe(line: str) -> str:
    """`line` with every character that could act on a terminal or hide in it written as its escape (`\\x1b`,
    `\\u202e`)."""
    return "".join(character.encode("unicode_escape").decode("ascii")
                   if unicodedata.category(character) in _ESCAPED else character for character in line)


class Output:
    """Prints an answer: as JSON with --json, else as the command's human lines."""

    def __init__(self, as_json: bool) -> None:
        self.as_json = as_json

    def __call__(self, value: Any, human: Callable[[Any], Iterable[str]]) -> None:
        if self.as_json:
            print(json.dumps(value, indent=2))
        else:
            for line in human(value):
                print(terminal_safe(line))

    def many(self, values: Iterable[Any], human: Callable[[Any], Iterable[str]]) -> None:
        """A list: one JSON array with --json (read to its end first), else lines as the pages come."""
        if self.as_json:
            print(json.dumps(list(values), indent=2))
        else:
            for value in values:
                for line in human(value):
                    print(terminal_safe(line))


# -- human lines -----------------------------------------------------------------------------------------------
def _signed(amount: int) -> str:
    return f"{amount:+d}"


def _meta(metadata: dict[str, str] | None) -> str:
    return "  " + " ".join(f"{key}={value}" for key, value in metadata.items()) if metadata else ""


def account_lines(account: dict) -> list[str]:
    floor = "none" if account["floor"] is None else account["floor"]
    hot = f", {account['shards']} shards" if account["shards"] > 1 else ""
    return [f"{account['id']}: balance {account['balance']} {account['unit']}, held {account['held']}, "
            f"available {account['available']} ({account['kind']}, floor {floor}, {account['entry_count']} "
            f"entries{hot}){_meta(account['metadata'])}"]


def transaction_lines(transaction: dict) -> list[str]:
    lines = [f"{transaction['id']}: {transaction['type']} {transaction['amount']} {transaction['unit']} at "
             f"{transaction['created_at']}" + (f", reversed {transaction['reversed_amount']}"
                                                if transaction["reversed_amount"] else "")
             + (f", reverses {transaction['reverses']}" if transaction["reverses"] else "")
             + _meta(transaction["metadata"])]
    width = max((len(entry["account_id"]) for entry in transaction["entries"]), default=0)
    for entry in transaction["entries"]:
        after = "" if entry["balance_after"] is None else f"  -> {entry['balance_after']}"
        lines.append(f"  {entry['account_id']:<{width}}  {_signed(entry['amount']):>12}{after}")
    return lines


def hold_lines(hold: dict) -> list[str]:
    captured = f", {hold['captured_amount']} captured" if hold["captured_amount"] else ""
    return [f"{hold['id']}: {hold['status']} hold of {hold['amount']} {hold['unit']} on {hold['account_id']}"
            f"{captured}, expires {hold['expires_at']}{_meta(hold['metadata'])}"]


def capture_lines(capture: dict) -> list[str]:
    return hold_lines(capture["hold"]) + transaction_lines(capture["transaction"])


def balance_lines(balance: dict) -> list[str]:
    held = "" if balance["held"] is None else f" (held {balance['held']}, available {balance['available']})"
    return [f"{balance['account_id']}: {balance['balance']} {balance['unit']}{held} as of {balance['as_of']}"]


def entry_lines(entry: dict) -> list[str]:
    after = "" if entry["balance_after"] is None else f"-> {entry['balance_after']}"
    made_by = entry["transaction"] or entry["hold_id"] or ""
    return [f"{entry['created_at']}  {entry['kind'] or '':<12} {_signed(entry['amount']):>12} {after:<14} "
            f"held {entry['held_after']:<8} {made_by}"]


# -- commands --------------------------------------------------------------------------------------------------
def metadata_of(pairs: list[str] | None) -> dict[str, str] | None:
    if not pairs:
        return None
    parsed = {}
    for pair in pairs:
        key, equals, value = pair.partition("=")
        if not equals or not key:
            raise InvalidRequest(f"--meta takes key=value, not {pair!r}", param="metadata")
        parsed[key] = value
    return parsed


def keys(client: Tally, args, out: Output) -> int:
    if args.action != "check":
        print(KEYS_HELP, end="")
        return EXIT_OK
    next(iter(client.list_accounts(page_size=1)), None)  # 401 or 403 raise
    out({"url": client.url, "accepted": True, "scopes_checked": ["read"]},
        lambda _: [f"{client.url} accepts the key (it can read)"])
    return EXIT_OK


def accounts_create(client: Tally, args, out: Output) -> int:
    floor: Any = DEFAULT
    if args.no_floor:
        floor = None
    elif args.floor is not None:
        floor = args.floor
    out(client.create_account(args.unit, id=args.id, kind=args.kind, floor=floor,
                              overdraft_limit=args.overdraft_limit, shards=args.shards,
                              metadata=metadata_of(args.meta), idempotency_key=args.idempotency_key), account_lines)
    return EXIT_OK


def accounts_get(client: Tally, args, out: Output) -> int:
    out(client.get_account(args.id), account_lines)
    return EXIT_OK


def accounts_list(client: Tally, args, out: Output) -> int:
    pair = metadata_of(args.meta)
    listed = client.list_accounts(unit=args.unit, kind=args.kind,
                                  metadata=next(iter(pair.items())) if pair else None,
                                  page_size=min(args.limit, 100) if args.limit else None)
    out.many(itertools.islice(listed, args.limit) if args.limit else listed, account_lines)
    return EXIT_OK


def balance(client: Tally, args, out: Output) -> int:
    out(client.get_balance(args.id, as_of=args.as_of), balance_lines)
    return EXIT_OK


def history(client: Tally, args, out: Output) -> int:
    entries = client.list_entries(args.id, start=args.start, end=args.end, order=args.order,
                                  page_size=min(args.limit, 1000) if args.limit else None)
    out.many(itertools.islice(entries, args.limit) if args.limit else entries, entry_lines)
    return EXIT_OK


def post(client: Tally, args, out: Output) -> int:
    out(client.post(args.account, args.amount, counter_account=args.counter, metadata=metadata_of(args.meta),
                    idempotency_key=args.idempotency_key), transaction_lines)
    return EXIT_OK


def transfer(client: Tally, args, out: Output) -> int:
    out(client.transfer(args.source, args.destination, args.amount, metadata=metadata_of(args.meta),
                        idempotency_key=args.idempotency_key), transaction_lines)
    return EXIT_OK


def hold(client: Tally, args, out: Output) -> int:
    out(client.create_hold(args.account, args.amount, expires_at=args.expires_at, metadata=metadata_of(args.meta),
                           idempotency_key=args.idempotency_key), hold_lines)
    return EXIT_OK


def capture(client: Tally, args, out: Output) -> int:
    out(client.capture(args.hold, amount=args.amount, destination=args.destination, metadata=metadata_of(args.meta),
                       idempotency_key=args.idempotency_key), capture_lines)
    return EXIT_OK


def void(client: Tally, args, out: Output) -> int:
    out(client.void(args.hold, idempotency_key=args.idempotency_key), hold_lines)
    return EXIT_OK


def reverse(client: Tally, args, out: Output) -> int:
    out(client.reverse(args.transaction, amount=args.amount, metadata=metadata_of(args.meta),
                       idempotency_key=args.idempotency_key), transaction_lines)
    return EXIT_OK


def earn(client: Tally, args, out: Output) -> int:
    out(client.earn(args.account, args.payer, args.points, expires_at=args.expires_at,
                    metadata=metadata_of(args.meta), idempotency_key=args.idempotency_key), transaction_lines)
    return EXIT_OK


def spend(client: Tally, args, out: Output) -> int:
    out(client.spend(args.account, args.points, metadata=metadata_of(args.meta),
                     idempotency_key=args.idempotency_key), transaction_lines)
    return EXIT_OK


def check_books(client: Tally, unit: str | None = None) -> dict:
    """What `tally verify` checks, through the API, in the key's tenant (optionally one unit):

    - every transaction: its entries sum to zero, its `amount` is positive and equals what its entries credit,
      and no more than that was reversed (0 <= reversed_amount <= amount);
    - every account (system accounts included): available == balance - held, and available is at or above the
      floor, if it has one;
    - every unit: the balances of the tenant's accounts, `@world:<unit>` included, sum to zero.

    Lists are read page by page, not as one snapshot: on a tenant that is being written to, a sum can be caught
    between two writes. Run it when the tenant is quiet (`make verify` checks the stored tables themselves)."""
    violations: list[str] = []
    transactions = 0
    for transaction in client.list_transactions():
        if unit is not None and transaction["unit"] != unit:
            continue
        transactions += 1
        amounts = [entry["amount"] for entry in transaction["entries"]]
        where = f"transaction {transaction['id']} ({transaction['type']})"
        if sum(amounts) != 0:
            violations.append(f"{where}: its entries sum to {sum(amounts)}, not 0")
        credited = sum(amount for amount in amounts if amount > 0)
        if transaction["amount"] <= 0 or credited != transaction["amount"]:
            violations.append(f"{where}: amount {transaction['amount']}, but its entries credit {credited}")
        if not 0 <= transaction["reversed_amount"] <= transaction["amount"]:
            violations.append(f"{where}: reversed {transaction['reversed_amount']} of {transaction['amount']}")
    sums: dict[str, int] = {}
    accounts = 0
    for account in client.list_accounts(unit=unit):
        accounts += 1
        sums[account["unit"]] = sums.get(account["unit"], 0) + account["balance"]
        if account["available"] != account["balance"] - account["held"]:
            violations.append(f"account {account['id']}: available {account['available']} is not balance "
                              f"{account['balance']} - held {account['held']}")
        if account["floor"] is not None and account["available"] < account["floor"]:
            violations.append(f"account {account['id']}: available {account['available']} is below its floor "
                              f"{account['floor']}")
    violations += [f"unit {name}: the balances sum to {total}, not 0" for name, total in sorted(sums.items()) if total]
    return {"transactions": transactions, "accounts": accounts, "units": dict(sorted(sums.items())),
            "violations": violations}


def verify(client: Tally, args, out: Output) -> int:
    report = check_books(client, args.unit)

    def human(report: dict) -> list[str]:
        units = ", ".join(f"{name} {total}" for name, total in report["units"].items()) or "none"
        return [f"checked {report['transactions']} transactions and {report['accounts']} accounts at {client.url}; "
                f"balances per unit: {units}",
                *(f"  VIOLATION {violation}" for violation in report["violations"]),
                f"{len(report['violations'])} violations"]

    out(report, human)
    return EXIT_FAILED if report["violations"] else EXIT_OK


RAW = argparse.RawDescriptionHelpFormatter  # keeps the epilog's and verify's lines


# -- the parser ------------------------------------------------------------------------------------------------
def parser() -> argparse.ArgumentParser:
    # --url, --key and --json are taken before or after the command (SUPPRESS: a default hides no value given).
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--url", default=argparse.SUPPRESS, help=f"the API (default: $TALLY_URL, else {DEFAULT_URL})")
    common.add_argument("--key", default=argparse.SUPPRESS, help="the API key (default: $TALLY_KEY; the environment "
                                                                 "keeps it out of the process list)")
    common.add_argument("--json", action="store_true", default=argparse.SUPPRESS, help="print JSON")
    top = argparse.ArgumentParser(prog="tally", parents=[common], epilog=EPILOG, formatter_class=RAW,
                                  description="Tally's /v1 ledger API from the command line.")
    commands = top.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(name: str, run: Callable[..., int], help: str, into=commands, **kwargs) -> argparse.ArgumentParser:
        made = into.add_parser(name, parents=[common], help=help, description=help, epilog=EPILOG,
                               formatter_class=RAW, **kwargs)
        made.set_defaults(run=run)
        return made

    def write(made: argparse.ArgumentParser, meta: bool = True) -> argparse.ArgumentParser:
        if meta:
            made.add_argument("--meta", action="append", metavar="KEY=VALUE", help="metadata (repeatable)")
        made.add_argument("--idempotency-key", help="the write's key (default: a fresh one, kept across retries)")
        return made

    made = command("keys", keys, "how API keys are made; `keys check` asks the server whether it takes yours")
    made.add_argument("action", nargs="?", choices=["check"], help="check: call the API with the key")

    accounts = command("accounts", lambda *_: EXIT_USAGE, "open, read and list accounts")  # needs an ACTION
    actions = accounts.add_subparsers(dest="action", required=True, metavar="ACTION")
    made = write(command("create", accounts_create, "open an account", into=actions))
    made.add_argument("id")
    made.add_argument("--unit", required=True, help="USD, EUR, points...")
    made.add_argument("--kind", choices=["standard", "points"])
    floor = made.add_mutually_exclusive_group()
    floor.add_argument("--floor", type=int, help="the lowest available balance (default 0; below 0 needs admin)")
    floor.add_argument("--no-floor", action="store_true", help="no floor at all (needs admin)")
    floor.add_argument("--overdraft-limit", type=int, help="the balance may go this far below zero (needs admin)")
    made.add_argument("--shards", type=int, help="2-32: a hot account")
    command("get", accounts_get, "an account: balance, held, available", into=actions).add_argument(
        "id", help="an account id, or @world:<unit>")
    made = command("list", accounts_list, "the tenant's accounts, oldest first", into=actions)
    made.add_argument("--unit")
    made.add_argument("--kind", choices=["standard", "points", "system"])
    made.add_argument("--meta", action="append", metavar="KEY=VALUE", help="one metadata pair to filter by")
    made.add_argument("--limit", type=int, help="at most this many (default: all)")

    made = command("balance", balance, "an account's balance, now or as of a moment")
    made.add_argument("id")
    made.add_argument("--as-of", help="ISO 8601 time")
    made = command("history", history, "an account's journal, newest first")
    made.add_argument("id")
    made.add_argument("--limit", type=int, default=20, help="at most this many entries (default 20; 0: all)")
    made.add_argument("--order", choices=["asc", "desc"])
    made.add_argument("--start", help="ISO 8601 time")
    made.add_argument("--end", help="ISO 8601 time")

    made = write(command("post", post, "credit (amount > 0) or debit (< 0) an account, from or to @world:<unit>"))
    made.add_argument("account")
    made.add_argument("amount", type=int, help="minor units; negative debits")
    made.add_argument("--counter", help="the other side (default @world:<unit>)")
    made = write(command("transfer", transfer, "move an amount between two accounts of one unit"))
    made.add_argument("source")
    made.add_argument("destination")
    made.add_argument("amount", type=int)
    made = write(command("hold", hold, "reserve an amount of an account's available balance"))
    made.add_argument("account")
    made.add_argument("amount", type=int)
    made.add_argument("--expires-at", help="ISO 8601 time (default: 7 days)")
    made = write(command("capture", capture, "capture all or part of a hold; the rest is released"))
    made.add_argument("hold")
    made.add_argument("--amount", type=int, help="default: the whole hold")
    made.add_argument("--destination", help="an account (default: out of the ledger, to @world:<unit>)")
    write(command("void", void, "release a hold without moving anything"), meta=False).add_argument("hold")
    made = write(command("reverse", reverse, "reverse a transaction, all that is left or --amount of it"))
    made.add_argument("transaction")
    made.add_argument("--amount", type=int)
    made = write(command("earn", earn, "earn points from a payer into a points account"))
    made.add_argument("account")
    made.add_argument("payer")
    made.add_argument("points", type=int)
    made.add_argument("--expires-at", help="ISO 8601 time (default: never)")
    made = write(command("spend", spend, "spend points, oldest lots first"))
    made.add_argument("account")
    made.add_argument("points", type=int)

    made = command("verify", verify, "check through the API that the tenant's books add up")
    made.description = "check through the API that the tenant's books add up:\n\n" + "\n".join(
        line.removeprefix("    ") for line in (check_books.__doc__ or "").splitlines()[2:])
    made.add_argument("--unit", help="only this unit")
    return top


if __name__ == "__main__":
    sys.exit(main())
