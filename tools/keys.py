"""`make key`: make, list and revoke /v1 API keys.

    python -m tools.keys create --tenant acme --scopes read,write [--label till-3] [--usage-plan ID]
    python -m tools.keys create --tenant acme --scopes issue --issue-limit 50000 --daily-issue-limit 1000000
    python -m tools.keys list --tenant acme
    python -m tools.keys revoke key_0123456789abcdef

Where: `make run`'s DynamoDB Local by default (the endpoint it is serving, else its data under .data/);
the endpoint in DYNAMODB_ENDPOINT if set; a deployed stage's table with TALLY_STAGE=<stage> and that
account's AWS credentials in the environment. The token is printed once, by `create`: only its hash is kept.

On a deployed stage, `create --usage-plan <id>` (the stack's `UsagePlanId` output) also gives the tenant an
API Gateway API key in that usage plan the first time, so API Gateway throttles each tenant on its own.
"""
from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
from collections.abc import Iterator
from dataclasses import asdict, replace
from pathlib import Path

from tools import devserver, dynamodb_local


@contextlib.contextmanager
def tables() -> Iterator[None]:
    """Bind the models to the tables this command acts on, for as long as it runs."""
    from chalicelib.config import load
    from chalicelib.core import models

    for name, value in dynamodb_local.LOCAL_CREDENTIALS.items():
        os.environ.setdefault(name, value)
    settings = load()
    if settings.deployed and not settings.dynamodb_endpoint:
        models.bind(settings)  # the stage's real tables, with the caller's AWS credentials
        yield
        return
    existing = settings.dynamodb_endpoint or _serving_endpoint()
    with dynamodb_local.running(None if existing else devserver.DATA_DIR, existing=existing) as endpoint:
        models.bind(replace(settings, dynamodb_endpoint=endpoint))
        models.create_tables()
        yield


def _serving_endpoint() -> str | None:
    """The DynamoDB Local that `make run` is serving from, if it is running."""
    if not devserver.ENDPOINT_FILE.exists():
        return None
    endpoint = devserver.ENDPOINT_FILE.read_text().strip()
    try:
        dynamodb_local.wait_until_ready(endpoint, timeout=2)
    except (RuntimeError, TimeoutError, OSError):
        return None  # left behind by a `make run` that is gone
    return endpoint


def usage_key(tenant: str, stage: str, usage_plan: str) -> str:
    """The tenant's API Gateway API key value in `usage_plan`, made (and added to the plan) if it has none."""
    import boto3

    from chalicelib.core.api_keys import ApiKeys

    existing = ApiKeys(live=True).usage_key_of(tenant)
    if existing:
        return existing
    gateway = boto3.client("apigateway")
    made = gateway.create_api_key(name=f"tally-{stage}-{tenant}", enabled=True,
                                  description=f"Tally tenant {tenant}: its usage plan throttles it")
    gateway.create_usage_plan_key(usagePlanId=usage_plan, keyId=made["id"], keyType="API_KEY")
    return made["value"]


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m tools.keys", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    create = commands.add_parser("create", help="make a key and print its token (shown this once)")
    create.add_argument("--tenant", required=True)
    create.add_argument("--scopes", required=True, help="comma-separated: read,write,issue,points:earn,"
                                                        "points:spend,admin,seed")
    create.add_argument("--issue-limit", type=int, help="the most one request may mint (minor units)")
    create.add_argument("--daily-issue-limit", type=int, help="the most it may mint in one unit in one UTC day")
    create.add_argument("--label")
    create.add_argument("--usage-plan", help="deployed stages: the API Gateway usage plan that throttles tenants")
    create.add_argument("--token-only", action="store_true", help="print only the token")
    listing = commands.add_parser("list", help="a tenant's keys (never their tokens)")
    listing.add_argument("--tenant", required=True)
    revoke = commands.add_parser("revoke", help="revoke a key by its id")
    revoke.add_argument("key_id")
    dev = commands.add_parser("dev", help="make run: print the development key kept in FILE, made if invalid")
    dev.add_argument("--file", type=Path, required=True)
    dev.add_argument("--tenant", default="dev")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    with tables():
        return run(args)


def run(args: argparse.Namespace) -> int:
    """The command, on the tables the models are bound to; 2 on a refused request."""
    from chalicelib.config import load
    from chalicelib.core.api_keys import ApiKeys
    from chalicelib.core.errors import InvalidRequest, LedgerError, Unauthenticated

    settings = load()
    keys = ApiKeys(live=settings.deployed)
    try:
        if args.command == "create":
            scopes = [scope.strip() for scope in args.scopes.split(",") if scope.strip()]
            if settings.deployed and not args.usage_plan:
                raise InvalidRequest("a deployed stage's key needs --usage-plan (the stack's UsagePlanId output): "
                                     "API Gateway refuses a tenant without a usage-plan key", field="usage_plan")
            usage = usage_key(args.tenant, settings.stage, args.usage_plan) if args.usage_plan else None
            key, token = keys.create(args.tenant, scopes, label=args.label, usage_key=usage,
                                     issue_limit=args.issue_limit, daily_issue_limit=args.daily_issue_limit)
            if args.token_only:
                print(token)
            else:
                print(json.dumps({**_shown(asdict(key)), "token": token}, indent=2))
                print("the token is shown this once: only its hash is stored", file=sys.stderr)
        elif args.command == "list":
            for key in keys.of_tenant(args.tenant):
                print(json.dumps(_shown(asdict(key))))
        elif args.command == "revoke":
            print(json.dumps(_shown(asdict(keys.revoke(args.key_id)))))
        else:
            token = args.file.read_text().strip() if args.file.exists() else ""
            try:
                keys.authenticate(token)
            except Unauthenticated:
                _, token = keys.create(args.tenant, ["admin"], label="make run")
                args.file.parent.mkdir(parents=True, exist_ok=True)
                args.file.touch(mode=0o600)
                args.file.write_text(token + "\n")
            print(token)
    except LedgerError as error:
        print(f"error: {error.message}", file=sys.stderr)
        return 2
    return 0


def _shown(key: dict) -> dict:
    key.pop("usage_key", None)  # an API Gateway key value: not for display
    return key


if __name__ == "__main__":
    sys.exit(main())
