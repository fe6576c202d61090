"""Fixtures: moto for behaviour, Amazon DynamoDB Local for atomicity and concurrency."""
from __future__ import annotations

import os
import queue
import signal
import subprocess
import sys
import threading
import uuid
from dataclasses import replace

from tools import dynamodb_local, local_gateway, local_http

# Before any chalicelib import: behaviour tests talk to moto, which must not see a
# custom endpoint. An endpoint given by the environment is kept for DynamoDB Local tests.
EXTERNAL_ENDPOINT = dynamodb_local.endpoint_from_environment()
for _name in ("DYNAMODB_ENDPOINT", "AWS_ENDPOINT_URL_DYNAMODB", "AWS_ENDPOINT_URL", "AWS_PROFILE"):
    os.environ.pop(_name, None)
os.environ.update(AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing",
                  AWS_SESSION_TOKEN="testing", AWS_DEFAULT_REGION="us-east-1", TALLY_STAGE="test",
                  TALLY_LOG_LEVEL="WARNING")

import pytest  # noqa: E402
from chalice.test import Client  # noqa: E402
from moto import mock_aws  # noqa: E402

import app as tally  # noqa: E402
from chalicelib import composition  # noqa: E402
from chalicelib.config import load  # noqa: E402
from chalicelib.core import models  # noqa: E402
from helpers import Clock, make_key, serving  # noqa: E402

STARTUP_SECONDS = 180  # make run: DynamoDB Local, the tables and the server, on a busy 2-core machine

local_gateway.install()  # the test client answers a refusing authorizer as API Gateway does


def pytest_collection_modifyitems(items) -> None:
    """Lanes: a test that reaches DynamoDB Local, through whichever fixture, is marked so by what it uses, not
    by hand; the package tests share one worker (chalice package writes the project's .chalice/deployments)."""
    for item in items:
        if "dynamodb_endpoint" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.dynamodb_local)
        if item.get_closest_marker("package"):
            item.add_marker(pytest.mark.xdist_group("package"))


class KeyedHTTP:
    """The test client's `http`, sending `key` to /v1 when a request names no Authorization of its own."""

    def __init__(self, http, key: str) -> None:
        self._http, self.key = http, key

    def request(self, method: str, path: str, headers: dict | None = None, body: bytes | str = b""):
        headers = dict(headers or {})
        if path.startswith("/v1/") and not any(name.lower() == "authorization" for name in headers):
            headers["Authorization"] = f"Bearer {self.key}"
        return self._http.request(method, path, headers=headers, body=body)

    def __getattr__(self, method: str):
        if method.upper() not in ("GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"):
            raise AttributeError(method)
        return lambda path, **kwargs: self.request(method.upper(), path, **kwargs)


@pytest.fixture
def clock():
    """The services' clock: the wall clock until the test sets `clock.now`."""
    return Clock()


@pytest.fixture
def services(clock):
    """Fresh moto DynamoDB with Tally's tables, and the app serving services built for this test (its clock)."""
    with mock_aws():
        built = composition.build(load(), clock=clock)
        models.create_tables()
        with serving(built):
            yield built


@pytest.fixture
def aws(services):
    """Fresh moto DynamoDB with Tally's tables."""
    return services


@pytest.fixture
def client(aws):
    """The app through Chalice's test client; /v1 requests carry tenant t1's admin key unless they name one."""
    with Client(tally.app) as test_client:
        test_client.raw_http = test_client.http
        test_client._http_client = KeyedHTTP(test_client.raw_http, make_key())
        yield test_client


@pytest.fixture(scope="session")
def dynamodb_endpoint():
    with dynamodb_local.running(existing=EXTERNAL_ENDPOINT) as endpoint:
        yield endpoint


@pytest.fixture
def local_tables(request, dynamodb_endpoint, clock):
    """Tally's tables on DynamoDB Local under a prefix of their own, so tests never share data; the app serves
    services built on them (/v1 reading before it writes for a test marked `v1_reads_first`)."""
    settings = replace(load(), dynamodb_endpoint=dynamodb_endpoint, table_prefix=f"t{uuid.uuid4().hex[:12]}",
                       v1_writes_without_read=request.node.get_closest_marker("v1_reads_first") is None)
    with serving(composition.build(settings, clock=clock)):
        models.create_tables()
        local_http.v1_key = make_key()
        yield settings
        local_http.v1_key = None


@pytest.fixture(scope="session")
def _http_server():
    with local_http.serving(tally.app) as base_url:
        yield base_url


@pytest.fixture
def live_server(local_tables, _http_server):
    """The real HTTP stack, backed by this test's tables on DynamoDB Local."""
    return _http_server


@pytest.fixture
def verified_afterwards(local_tables):
    """After the test, the whole stored ledger still verifies (`make verify`'s check)."""
    from tools.verify import verify_tables

    yield
    assert verify_tables().violations == []


@pytest.fixture
def make_run_env(tmp_path, dynamodb_endpoint) -> dict[str, str]:
    """The environment `make_run` starts its server with: its port, data folder, tables and DynamoDB (a tool run
    with it, `python -m tools.keys` say, acts on that server's tables)."""
    env = {**os.environ, "PORT": str(dynamodb_local.free_port()), "TALLY_DATA_DIR": str(tmp_path),
           "TALLY_RUN_SECONDS": "600", "TALLY_SCHEDULE_SECONDS": "1",
           "TALLY_TABLE_PREFIX": f"run{uuid.uuid4().hex[:8]}", "TALLY_LOG_LEVEL": "WARNING",
           "DYNAMODB_ENDPOINT": dynamodb_endpoint, "PYTHONUNBUFFERED": "1"}
    env.pop("TALLY_STAGE", None)  # the stage `make run` uses: local
    return env


@pytest.fixture
def make_run(make_run_env):
    """`make run`'s server on a free port and a fresh data folder: (base URL, the key it printed, the lines it
    prints from then on). Its scheduled sweep runs every second instead of every minute."""
    env, port = make_run_env, make_run_env["PORT"]
    process = subprocess.Popen([sys.executable, "-m", "tools.devserver"], cwd=dynamodb_local.PROJECT_ROOT, env=env,
                               text=True,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)
    lines: queue.Queue[str] = queue.Queue()
    output: list[str] = []

    def drain() -> None:  # read everything, so the server never blocks on a full pipe
        for line in process.stdout:
            output.append(line)
            lines.put(line)
        lines.put("")

    threading.Thread(target=drain, daemon=True).start()
    token = None
    try:
        while True:
            line = lines.get(timeout=STARTUP_SECONDS)
            assert line, "make run stopped:\n" + "".join(output)
            if "export TALLY_KEY=" in line:
                token = line.split("=", 1)[1].strip()
            if "Serving on" in line:
                break
        yield f"http://127.0.0.1:{port}", token, lines
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=60)
