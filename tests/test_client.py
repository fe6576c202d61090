"""The Python client's own behaviour, on a scripted transport (no server, no sleeping): the key and endpoint it
sends, retries with the same idempotency key, its exceptions, its page iterators, and the CLI's exit codes."""
from __future__ import annotations

import functools
import json

import pytest
from tally_client import (
    Conflict,
    Forbidden,
    InsufficientFunds,
    InvalidRequest,
    NotFound,
    RateLimited,
    Tally,
    TallyError,
    Unauthorized,
    Unavailable,
    cli,
)

ACCOUNT = {"id": "alice", "object": "account", "unit": "USD", "kind": "standard", "floor": 0, "balance": 5,
           "held": 0, "available": 5, "metadata": {}, "entry_count": 1, "shards": 1,
           "created_at": "2026-11-26T09:30:00.000000Z"}


class Script:
    """A transport that answers from a script: each item is (status, body[, headers]) or an exception to raise."""

    def __init__(self, *answers) -> None:
        self.answers = list(answers)
        self.requests: list[tuple[str, str, dict, bytes | None]] = []

    def __call__(self, method, url, headers, body, timeout):
        self.requests.append((method, url, dict(headers), body))
        answer = self.answers.pop(0)
        if isinstance(answer, BaseException):
            raise answer
        status, body, *headers = answer
        return status, (headers[0] if headers else {}), json.dumps(body).encode()


def client(script: Script, sleeps: list[float] | None = None, **options) -> Tally:
    return Tally("http://tally.test/api/", "tk_test_k", transport=script,
                 sleep=(sleeps.append if sleeps is not None else _never), **options)


def _never(seconds: float) -> None:
    raise AssertionError(f"slept {seconds}s")


def error(status: int, code: str, param: str | None = None) -> tuple[int, dict, dict]:
    return status, {"error": f"{code} happened", "code": code, "type": "some_error", "param": param}, {
        "x-request-id": "req-1"}


def test_endpoint_and_key_come_from_arguments_or_the_environment(monkeypatch):
    monkeypatch.setenv("TALLY_URL", "http://elsewhere:9000/")
    monkeypatch.setenv("TALLY_KEY", "tk_test_env")
    script = Script((200, ACCOUNT))
    assert Tally(transport=script).get_account("alice") == ACCOUNT
    method, url, headers, body = script.requests[0]
    assert (method, url, headers["Authorization"], body) == ("GET", "http://elsewhere:9000/v1/accounts/alice",
                                                             "Bearer tk_test_env", None)
    assert "Idempotency-Key" not in headers and "tk_test_env" not in repr(Tally())
    monkeypatch.delenv("TALLY_URL")
    assert Tally(key="k").url == "http://127.0.0.1:8000"


def test_no_key_is_refused_before_anything_is_sent(monkeypatch):
    monkeypatch.delenv("TALLY_KEY", raising=False)
    script = Script()
    with pytest.raises(Unauthorized, match="TALLY_KEY"):
        Tally(transport=script).get_account("alice")
    assert script.requests == []


def test_ids_are_escaped_in_paths_but_a_system_account_reads_as_written():
    script = Script((200, ACCOUNT), (200, ACCOUNT))
    tally = client(script)
    tally.get_account("@world:USD")
    tally.get_balance("a/b c", as_of="2026-01-01T00:00:00+01:00")
    assert [url for _, url, _, _ in script.requests] == [
        "http://tally.test/api/v1/accounts/@world:USD",
        "http://tally.test/api/v1/accounts/a%2Fb%20c/balance?as_of=2026-01-01T00%3A00%3A00%2B01%3A00"]


def test_every_write_has_an_idempotency_key_and_a_503_is_retried_with_the_same_one():
    sleeps: list[float] = []
    script = Script(error(503, "contention"), ConnectionResetError("reset"), (201, {"id": "txn_1"}),
                    (201, {"id": "txn_2"}), (201, {"id": "txn_3"}))
    tally = client(script, sleeps)
    assert tally.post("alice", 5, metadata={"order": "7"})["id"] == "txn_1"
    keys = [headers["Idempotency-Key"] for _, _, headers, _ in script.requests]
    assert len(keys) == 3 and len(set(keys)) == 1 and keys[0]  # one key for all three attempts
    assert [json.loads(body) for _, _, _, body in script.requests] == [
        {"account_id": "alice", "amount": 5, "metadata": {"order": "7"}}] * 3
    assert sleeps == [0.5, 1.0]  # exponential back-off
    tally.post("alice", 5)
    tally.post("alice", 5, idempotency_key="order-7")
    assert script.requests[3][2]["Idempotency-Key"] not in keys  # a new write, a new key
    assert script.requests[4][2]["Idempotency-Key"] == "order-7"  # the caller's own


def test_retries_wait_at_least_retry_after_and_stop_at_the_limit():
    sleeps: list[float] = []
    busy = (429, {"error": "slow down", "code": "throttled", "type": "rate_limit_error", "param": None},
            {"retry-after": "3"})
    with pytest.raises(RateLimited) as refused:
        client(Script(busy, busy, busy), sleeps, retries=2).get_account("alice")
    assert (refused.value.status, refused.value.code) == (429, "throttled")
    assert isinstance(refused.value, Unavailable) and sleeps == [3.0, 3.0]
    sleeps.clear()
    with pytest.raises(Unavailable) as unanswered:
        client(Script(*[ConnectionRefusedError("refused")] * 4), sleeps, max_delay=1.5).void("hold_1")
    assert unanswered.value.status is None and "after 4 attempts" in unanswered.value.message  # retries=3
    assert sleeps == [0.5, 1.0, 1.5]


@pytest.mark.parametrize(("answer", "kind"), [
    (error(400, "invalid_request", "amount"), InvalidRequest), (error(400, "insufficient_funds"), InsufficientFunds),
    (error(401, "unauthorized"), Unauthorized), (error(403, "forbidden"), Forbidden),
    (error(404, "not_found"), NotFound), (error(409, "idempotency_key_reused"), Conflict),
    (error(415, "unsupported_media_type"), InvalidRequest), (error(500, "internal_server_error"), Unavailable)])
def test_an_error_answer_raises_its_familys_exception_with_the_body(answer, kind):
    with pytest.raises(kind) as raised:
        client(Script(answer)).post("alice", -5)  # a 500 is not retried: it is not the server being busy
    status, body, _ = answer
    assert (raised.value.status, raised.value.code, raised.value.param, raised.value.type) == (
        status, body["code"], body["param"], "some_error")
    assert raised.value.request_id == "req-1" and raised.value.message == body["error"]
    assert str(raised.value).startswith(f"{status} {body['code']}: ")


def test_an_answer_that_is_not_tallys_still_raises_a_tally_error():
    tally = Tally("http://tally.test", "k", transport=lambda *_: (502, {}, b"<html>Bad gateway</html>"),
                  retries=0)
    with pytest.raises(Unavailable) as raised:
        tally.get_account("alice")
    assert (raised.value.status, raised.value.code, raised.value.message) == (502, None, "HTTP 502")
    weird = Tally("http://tally.test", "k", transport=lambda *_: (200, {}, b"not json"))
    with pytest.raises(TallyError, match="not JSON"):
        weird.get_account("alice")


def page(items: list, cursor: str | None) -> tuple[int, dict]:
    return 200, {"object": "list", "data": items, "has_more": cursor is not None, "next_cursor": cursor}


def test_lists_are_lazy_iterators_that_follow_the_cursor_with_the_same_query():
    script = Script(page([1, 2], "c1"), page([3], "c2"), page([], None))
    entries = client(script).list_entries("alice", order="asc", page_size=2)
    assert script.requests == []  # nothing read until the first item is
    assert list(entries) == [1, 2, 3]
    assert [url.split("?", 1)[1] for _, url, _, _ in script.requests] == [
        "order=asc&limit=2", "order=asc&limit=2&cursor=c1", "order=asc&limit=2&cursor=c2"]
    script = Script(page([ACCOUNT], "c1"))
    first = next(client(script).list_accounts(metadata=("user", "7")))
    assert first == ACCOUNT and len(script.requests) == 1 and "metadata=user%3A7" in script.requests[0][1]


def run_cli(monkeypatch, capsys, script: Script, *argv: str) -> tuple[int, str, str]:
    monkeypatch.setattr(cli, "Tally", functools.partial(Tally, transport=script, sleep=lambda _: None))
    code = cli.main(["--key", "tk_test_k", *argv])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize(("answer", "exit_code"), [
    (error(400, "invalid_request", "amount"), cli.EXIT_INVALID), (error(401, "unauthorized"), cli.EXIT_UNAUTHORIZED),
    (error(403, "forbidden"), cli.EXIT_UNAUTHORIZED), (error(404, "not_found"), cli.EXIT_NOT_FOUND),
    (error(409, "invalid_state"), cli.EXIT_CONFLICT), (error(503, "unavailable"), cli.EXIT_UNAVAILABLE),
    (ConnectionRefusedError("refused"), cli.EXIT_UNAVAILABLE)])
def test_the_cli_exits_with_a_code_per_error_family_and_says_why_on_stderr(monkeypatch, capsys, answer, exit_code):
    code, out, err = run_cli(monkeypatch, capsys, Script(*[answer] * 4), "--json", "void", "hold_1")
    assert (code, out) == (exit_code, "")
    said = json.loads(err)
    assert said["status"] == (None if isinstance(answer, Exception) else answer[0])
    code, out, err = run_cli(monkeypatch, capsys, Script(*[answer] * 4), "void", "hold_1")
    assert code == exit_code and err.startswith("tally: error: ")


def test_the_cli_prints_people_lines_or_json_and_refuses_bad_metadata_before_sending(monkeypatch, capsys):
    code, out, _ = run_cli(monkeypatch, capsys, Script((200, ACCOUNT)), "accounts", "get", "alice")
    assert code == 0 and out == "alice: balance 5 USD, held 0, available 5 (standard, floor 0, 1 entries)\n"
    code, out, _ = run_cli(monkeypatch, capsys, Script((200, ACCOUNT)), "accounts", "get", "alice", "--json")
    assert code == 0 and json.loads(out) == ACCOUNT
    script = Script()
    code, _, err = run_cli(monkeypatch, capsys, script, "post", "alice", "-5", "--meta", "no-equals-sign")
    assert code == cli.EXIT_INVALID and "key=value" in err and script.requests == []
    with pytest.raises(SystemExit) as usage:
        cli.main(["post", "alice", "five"])
    assert usage.value.code == cli.EXIT_USAGE


def test_every_command_has_help_and_names_the_exit_codes(capsys):
    commands = ["keys", "accounts", "accounts create", "accounts get", "accounts list", "balance", "history", "post",
                "transfer", "hold", "capture", "void", "reverse", "earn", "spend", "verify"]
    for command in ["", *commands]:
        with pytest.raises(SystemExit) as done:
            cli.main([*command.split(), "--help"])
        out = capsys.readouterr().out
        assert done.value.code == 0 and out.startswith(f"usage: tally {command}".rstrip()), command
        assert "exit codes: 0 ok" in out and "TALLY_KEY" in out, command
    assert cli.main(["keys"]) == 0 and "make key TENANT=" in capsys.readouterr().out
