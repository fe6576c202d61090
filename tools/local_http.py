"""The app behind Chalice's threaded local HTTP server, in this process, on 127.0.0.1.

Tests and the benchmark drive the real HTTP stack through it while sharing the
process's model binding (DynamoDB Local tables) and request counter.
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


class _QuietHandler(ChaliceRequestHandler):
    def log_message(self, *_args) -> None:  # one line per request would drown test and bench output
        pass


@contextlib.contextmanager
def serving(app) -> Iterator[str]:
    """Yield the base URL; the server is shut down on exit. Chalice can wrap an app only once."""
    config = Config.create(chalice_stage="local")
    server = create_local_server(app, config, "127.0.0.1", 0)
    server.server.RequestHandlerClass = functools.partial(_QuietHandler, app_object=app, config=config)
    # socketserver listens with a backlog of 5: a burst of 16 client threads can overflow it (resets).
    server.server.socket.listen(128)
    thread = threading.Thread(target=server.server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server.server_address[1]}"
    finally:
        server.shutdown()
        server.server.server_close()
        thread.join(timeout=10)


def request_json(method: str, url: str, body: dict | None = None, headers: dict | None = None):
    """(status, decoded JSON body) of one request; HTTP errors are answers, not exceptions."""
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, method=method,
                                     headers={"Content-Type": "application/json", **(headers or {})})
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, json.loads(response.read() or b"null")
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"null")
