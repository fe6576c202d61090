"""The app behind Chalice's threaded local HTTP server, on 127.0.0.1: `make run`'s server, and the one tests
and the benchmark drive in their own process (sharing its model binding and request counter).

Both listen with a backlog of `BACKLOG` (socketserver's default of 5 resets connections under a burst of
clients) and answer a refusing API-key authorizer as API Gateway does (`tools/local_gateway.py`).

CLI (`make run` starts it): python -m tools.local_http [--port N] [--stage local]
"""
from __future__ import annotations

import contextlib
import functools
import json
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator

from chalice.config import Config
from chalice.local import ChaliceRequestHandler, create_local_server

from tools import local_gateway

BACKLOG = 128  # queued connections before the kernel refuses more: a burst of 128 clients is served


class _QuietHandler(ChaliceRequestHandler):
    def log_message(self, *_args) -> None:  # one line per request would drown test and bench output
        pass


@contextlib.contextmanager
def serving(app) -> Iterator[str]:
    """Yield the base URL; the server is shut down on exit. Chalice can wrap an app only once."""
    config = Config.create(chalice_stage="local")
    local_gateway.install()
    server = create_local_server(app, config, "127.0.0.1", 0)
    server.server.RequestHandlerClass = functools.partial(_QuietHandler, app_object=app, config=config)
    server.server.socket.listen(BACKLOG)
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


def request_json(method: str, url: str, body: dict | None = None, headers: dict | None = None):
    """(status, decoded JSON body) of one request; HTTP errors are answers, not exceptions."""
    data = json.dumps(body).encode() if body is not None else None
    headers = {"Content-Type": "application/json", **(headers or {})}
    if v1_key and "/v1/" in url and "/api/v1/" not in url and "Authorization" not in headers:
        headers["Authorization"] = f"Bearer {v1_key}"
    request = urllib.request.Request(url, data=data, method=method, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, json.loads(response.read() or b"null")
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"null")


def main(argv: list[str] | None = None) -> int:
    """Serve the app of this project as `chalice local` would (the stage's variables from .chalice/config.json,
    the routes Chalice would deploy), on 127.0.0.1 with a backlog of `BACKLOG`, until stopped."""
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
    local_gateway.install()
    server = factory.create_local_server(config.chalice_app, config, "127.0.0.1", args.port)
    server.server.socket.listen(BACKLOG)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
