"""The HTTP server our tools start (`make run`'s, the tests' and the benchmark's: `tools.local_http.local_server`)
answers a kept-alive connection without Nagle's delay: each answer leaves as several small writes, and with the
algorithm on, the second waited for the client's delayed ACK of the first (issue 24 measured ~40 ms a request)."""
from __future__ import annotations

import http.client
import socket
from urllib.parse import urlsplit

from tools import local_http


def test_a_kept_alive_connection_is_served_with_nagles_algorithm_off(_http_server, monkeypatch):
    options: list[int] = []
    setup = local_http._Handler.setup

    def recorded(handler) -> None:
        setup(handler)
        options.append(handler.connection.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))

    monkeypatch.setattr(local_http._Handler, "setup", recorded)
    address = urlsplit(_http_server)
    connection = http.client.HTTPConnection(address.hostname, address.port, timeout=30)
    try:
        for _ in range(3):  # one connection, kept alive
            connection.request("GET", "/ping")
            answer = connection.getresponse()
            assert answer.status == 200 and answer.read()
    finally:
        connection.close()
    assert len(options) == 1 and options[0] != 0, options

