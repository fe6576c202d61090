"""The app behind Chalice's threaded local HTTP server, on 127.0.0.1: `make run`'s server, and the one tests
and the benchmark drive in their own process (sharing its model binding and request counter).

Both listen with a backlog of `BACKLOG` (socketserver's default of 5 resets connections under a burst of
clients), send without Nagle's delay (`_Handler`) and answer a refusing API-key authorizer as API Gateway does
(`tools/local_gateway.py`).

CLI (`make run` starts it): python -m tools.local_http [--port N] [--stage local]
"""
from __future__ import annotations

import contextlib
import functools
import json
import os
import threading
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator

from chalice.config import Config
from chalice.local import ChaliceRequestHandler, create_local_server

from tools import local_gateway

BACKLOG = 128  # queued connections before the kernel refuses more: a burst of 128 clients is served


class _Handler(ChaliceRequestHandler):
    # An answer leaves as several small writes (status and headers, then the body). With Nagle's algorithm on, the
    # second waits for the client's ACK of the first, which a keep-alive client delays (~40 ms on Linux): every
    # request on a kept-alive connection stalled that long. API Gateway does not; so our servers send at once.
    disable_nagle_algorithm = True


class _QuietHandler(_Handler):
    def log_message(self, *_args) -> None:  # one line per request would drown test and bench output
        pass


def local_server(app, config: Config, port: int, handler: type[ChaliceRequestHandler] = _Handler):
    """Chalice's local server of `app` on 127.0.0.1:`port` (0: any free one), answering as API Gateway does, with
    Nagle's algorithm off on every connection and a listen backlog of `BACKLOG`: what `make run`, the tests and the
    benchmark serve."""
    local_gateway.install()
    server = create_local_server(app, config, "127.0.0.1", port)
    server.server.RequestHandlerClass = functools.partial(handler, app_object=app, config=config)
    server.server.socket.listen(BACKLOG)
    return server


@contextlib.contextmanager
def serving(app) -> Iterator[str]:
    """Yield the base URL; the server is shut down on exit. Chalice can wrap an app only once."""
    server = local_server(app, Config.create(chalice_stage="local"), 0, _QuietHandler)
    thread = threading.Thread(target=server.server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server.server_address[1]}"
    finally:
        server.shutdown()
        server.server.server_close()
        thread.join(timeout=10)


# The API key `request_json` sends to /v1 when its caller gives no Authorization: tests and the benchmark
# act as one tenant unless they say otherwise.
v1_key: str | None = None


def request_json(method: str, url: str, body: dict | None = None, headers: dict | None = None,
                 timeout: float = 60):
    """(status, decoded JSON body) of one request; HTTP errors are answers, not exceptions."""
    data = json.dumps(body).encode() if body is not None else None
    headers = {"Content-Type": "application/json", **(headers or {})}
    if v1_key and "/v1/" in url and "/api/v1/" not in url and "Authorization" not in headers:
        headers["Authorization"] = f"Bearer {v1_key}"
    request = urllib.request.Request(url, data=data, method=method, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, json.loads(response.read() or b"null")
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"null")


def run_schedules(app, stop: threading.Event, seconds: float | None = None) -> list[threading.Thread]:
    """Run each `@app.schedule` function of `app` on its rate, in this process, as EventBridge invokes it when
    deployed (`chalice local` runs none). `seconds` overrides every rate (tests). Each run prints one line."""
    import importlib
    import logging
    import sys
    from datetime import UTC, datetime

    from chalice.app import Rate

    unit_seconds = {Rate.MINUTES: 60, Rate.HOURS: 3600, Rate.DAYS: 86400}
    threads = []
    for source in app.event_sources:
        expression = getattr(source, "schedule_expression", None)
        if not isinstance(expression, Rate):
            continue
        module, _, name = source.handler_string.rpartition(".")
        handler = getattr(importlib.import_module(module), name)
        every = seconds or expression.value * unit_seconds[expression.unit]

        def loop(handler=handler, name=source.name, every=every) -> None:
            while not stop.wait(every):
                event = {"version": "0", "id": str(uuid.uuid4()), "detail-type": "Scheduled Event",
                         "source": "aws.events", "account": "000000000000", "region": "local",
                         "time": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"), "resources": [], "detail": {}}
                try:
                    print(f"{name}: {json.dumps(handler(event, None))}", flush=True)
                except Exception:  # a failed run is logged, and the next one comes as deployed
                    logging.getLogger("tally").exception("scheduled function %s failed", name)
                    sys.stdout.flush()

        thread = threading.Thread(target=loop, name=f"schedule-{source.name}", daemon=True)
        thread.start()
        threads.append(thread)
    return threads


def main(argv: list[str] | None = None) -> int:
    """Serve the app of this project as `chalice local` would (the stage's variables from .chalice/config.json,
    the routes Chalice would deploy), on 127.0.0.1 with a backlog of `BACKLOG`, until stopped; and run its
    scheduled functions on their schedules, as a deployed stage does (TALLY_SCHEDULE_SECONDS overrides)."""
    import argparse
    import logging
    import sys
    from pathlib import Path

    from chalice.cli.factory import CLIFactory
    from chalice.deploy.validate import validate_routes

    parser = argparse.ArgumentParser(prog="python -m tools.local_http")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--stage", default="local")
    args = parser.parse_args(argv)
    logging.basicConfig(stream=sys.stdout, level=logging.INFO, format="%(message)s")  # as `chalice local`
    factory = CLIFactory(project_dir=str(Path(__file__).resolve().parent.parent))
    config = factory.create_config_obj(chalice_stage_name=args.stage)
    validate_routes(config.chalice_app.routes)
    server = local_server(config.chalice_app, config, args.port)
    stop = threading.Event()
    override = os.environ.get("TALLY_SCHEDULE_SECONDS")
    run_schedules(config.chalice_app, stop, float(override) if override else None)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        stop.set()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
