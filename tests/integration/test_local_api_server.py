"""The local API over real loopback sockets: it must not add latency of its own to what it measures.

Without ``TCP_NODELAY`` each keep-alive answer (headers and body in two writes) waited ~40 ms for the client's
delayed ACK: 20 requests on one connection took ~880 ms; with it, a few ms. With socketserver's listen backlog
of 5, the seventh connection of a burst waited a second for its SYN to be resent.
"""

from __future__ import annotations

import http.client
import socket
import time
from collections.abc import Iterator, Mapping
from http.server import BaseHTTPRequestHandler
from typing import Any

import pytest

from sealgate_local.api_server import LISTEN_BACKLOG, ApiServer, HttpServer, Route
from sealgate_local.worker import Invocation

REQUESTS = 20
DELAYED_ACK_SECONDS = 0.040


def answer(_function: str, _event: Mapping[str, Any], _request_id: str) -> Invocation:
    return Invocation(
        ok=True,
        result={"statusCode": 200, "headers": {"Content-Type": "application/json"}, "body": '{"ok":true}'},
    )


@pytest.fixture
def api() -> Iterator[ApiServer]:
    route = Route("sign", "POST", "/v1/sign/{partner}", public=False)
    with ApiServer([route], answer, stage="dev", account_id="123456789012") as server:
        yield server


@pytest.fixture
def idle_server() -> Iterator[HttpServer]:
    """The local API's HTTP server, listening but not accepting until a test calls ``get_request``."""
    server = HttpServer(("127.0.0.1", 0), BaseHTTPRequestHandler)
    try:
        yield server
    finally:
        server.server_close()


def test_an_accepted_connection_has_nagle_off(idle_server: HttpServer) -> None:
    with socket.create_connection(("127.0.0.1", idle_server.server_address[1]), timeout=5) as client:
        accepted, address = idle_server.get_request()
        with accepted:
            assert address == client.getsockname()
            assert accepted.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) != 0


def test_the_listen_backlog_holds_a_burst_of_64_connections(idle_server: HttpServer) -> None:
    clients: list[socket.socket] = []
    try:
        # Nothing accepts: each connection completes only if the kernel's accept queue has room for it.
        started = time.perf_counter()
        for _ in range(64):
            clients.append(socket.create_connection(("127.0.0.1", idle_server.server_address[1]), timeout=2))
        elapsed = time.perf_counter() - started
    finally:
        for client in clients:
            client.close()

    assert len(clients) == 64
    assert elapsed < 0.5  # no SYN was dropped and resent (that costs a second)
    assert idle_server.request_queue_size == LISTEN_BACKLOG >= 64


def test_keep_alive_requests_do_not_wait_for_delayed_acks(api: ApiServer) -> None:
    host, port = api.base_url.removeprefix("http://").split("/", 1)[0].split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=5)
    try:
        connection.request("POST", "/dev/v1/sign/dlocal", body=b"{}")  # connect and warm up
        assert connection.getresponse().read() == b'{"ok":true}'
        first = connection.sock

        started = time.perf_counter()
        for _ in range(REQUESTS):
            connection.request("POST", "/dev/v1/sign/dlocal", body=b"{}")
            response = connection.getresponse()
            assert (response.status, response.read()) == (200, b'{"ok":true}')
            assert connection.sock is first  # one connection kept alive, never reopened
        elapsed = time.perf_counter() - started
    finally:
        connection.close()

    # One delayed ACK per request would be REQUESTS * 40 ms = 800 ms; half of that is the generous bound.
    assert elapsed < REQUESTS * DELAYED_ACK_SECONDS / 2, (
        f"{REQUESTS} keep-alive requests took {elapsed:.3f} s"
    )
