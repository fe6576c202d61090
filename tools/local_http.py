"""The app behind Chalice's threaded local HTTP server, in this process, on 127.0.0.1.

Tests and the benchmark drive the real HTTP stack through it while sharing the
process's model binding (DynamoDB Local tables) and request counter.
"""
from __future__ import annotations

import contextlib
import functools
import threading
from typing import Iterator

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
    thread = threading.Thread(target=server.server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server.server_address[1]}"
    finally:
        server.shutdown()
        server.server.server_close()
        thread.join(timeout=10)
