"""Behaviour of ``sealgate_local.https_server``, driven by the standard library's ``http.client``.

The client here is deliberately not ``sealgate.partner_http``: the server is what that client is tested
against, so the server is checked on its own.
"""

from __future__ import annotations

import http.client
import ssl
import threading
import time
from collections.abc import Iterator

import pytest

from sealgate_local.https_server import HttpsServer, Request, Response
from sealgate_local.tls import Pki, make_throwaway_pki


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_throwaway_pki(tmp_path_factory.mktemp("throwaway-pki"))


@pytest.fixture
def server(pki: Pki) -> Iterator[HttpsServer]:
    with HttpsServer(pki=pki) as running:
        yield running


def exchange(
    server: HttpsServer, method: str = "GET", path: str = "/", body: bytes | None = None, timeout: float = 2.0
) -> tuple[int, dict[str, str], bytes]:
    host, port = server.url.removeprefix("https://").split(":")
    context = ssl.create_default_context(cafile=server.ca_bundle)
    connection = http.client.HTTPSConnection(host, int(port), timeout=timeout, context=context)
    try:
        connection.request(method, path, body=body)
        response = connection.getresponse()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
    finally:
        connection.close()


def test_default_handler_answers_ok(server: HttpsServer) -> None:
    assert exchange(server)[::2] == (200, b"ok")
    assert server.errors == []


def test_every_request_is_recorded_in_order(server: HttpsServer) -> None:
    exchange(server, "POST", "/one?x=1", b"first")
    exchange(server, "PUT", "/two", b"second")
    assert [(r.method, r.path, r.query, r.body) for r in server.requests] == [
        ("POST", "/one", "x=1", b"first"),
        ("PUT", "/two", "", b"second"),
    ]


def test_the_handler_sees_the_request_and_shapes_the_response(server: HttpsServer) -> None:
    def echo(request: Request) -> Response:
        return Response(207, {"X-Method": request.method}, request.body[::-1])

    server.handler = echo
    status, headers, body = exchange(server, "PATCH", "/", b"abc")
    assert (status, headers["x-method"], body) == (207, "PATCH", b"cba")


def test_a_failing_handler_answers_500_and_is_reported(server: HttpsServer) -> None:
    def broken(request: Request) -> Response:
        raise RuntimeError("handler bug")

    server.handler = broken
    assert exchange(server)[0] == 500
    [error] = server.errors
    assert isinstance(error, RuntimeError)


def test_modes_switch_while_running(server: HttpsServer) -> None:
    server.mode = "error500"
    assert exchange(server)[0] == 500
    server.mode = "throttle429"
    server.retry_after = "30"
    status, headers, _ = exchange(server)
    assert (status, headers["retry-after"]) == (429, "30")
    server.mode = "ok"
    assert exchange(server)[0] == 200
    assert len(server.requests) == 3


def test_an_unknown_mode_is_refused(server: HttpsServer) -> None:
    with pytest.raises(ValueError, match="unknown mode"):
        server.mode = "flaky"  # type: ignore[assignment]


def test_hang_records_the_request_and_answers_nothing(server: HttpsServer) -> None:
    server.mode = "hang"
    with pytest.raises(TimeoutError):
        exchange(server, timeout=0.3)
    assert len(server.requests) == 1


def test_stopping_ends_a_hang_at_once(pki: Pki) -> None:
    running = HttpsServer(pki=pki, mode="hang", hang_limit=30.0).start()
    outcome: list[BaseException] = []

    def client() -> None:
        try:
            exchange(running, timeout=10.0)
        except Exception as error:
            outcome.append(error)

    thread = threading.Thread(target=client)
    thread.start()
    deadline = time.monotonic() + 2.0
    while not running.requests and time.monotonic() < deadline:
        time.sleep(0.01)
    started = time.monotonic()
    running.stop()
    assert time.monotonic() - started < 1.0
    thread.join(2.0)
    assert len(outcome) == 1  # the connection closed without an answer
    assert isinstance(outcome[0], http.client.RemoteDisconnected | ConnectionError)


def test_an_idle_keep_alive_connection_does_not_delay_stopping(pki: Pki) -> None:
    running = HttpsServer(pki=pki).start()
    host, port = running.url.removeprefix("https://").split(":")
    connection = http.client.HTTPSConnection(
        host, int(port), context=ssl.create_default_context(cafile=running.ca_bundle)
    )
    connection.request("GET", "/")
    connection.getresponse().read()  # the connection stays open, its server thread waits for a next request
    started = time.monotonic()
    running.stop()
    connection.close()
    assert time.monotonic() - started < 1.0


def test_trickle_sends_the_body_slowly_but_whole(server: HttpsServer) -> None:
    server.mode = "trickle"
    server.trickle_interval = 0.01
    server.handler = lambda request: Response(200, {}, b"0123456789")
    started = time.monotonic()
    assert exchange(server)[2] == b"0123456789"
    assert time.monotonic() - started >= 0.09


def test_chunked_transfer_encoding(server: HttpsServer) -> None:
    server.handler = lambda request: Response(200, {"Transfer-Encoding": "chunked"}, b"in chunks")
    _, headers, body = exchange(server)
    assert (headers["transfer-encoding"], body) == ("chunked", b"in chunks")
    assert "content-length" not in headers


def test_an_oversized_request_is_refused_with_413(pki: Pki) -> None:
    with HttpsServer(pki=pki, max_request_bytes=10) as running:
        assert exchange(running, "POST", "/", b"x" * 11)[0] == 413
        assert running.requests == []


def test_a_client_that_distrusts_the_certificate_gets_nothing_and_breaks_nothing(server: HttpsServer) -> None:
    host, port = server.url.removeprefix("https://").split(":")
    connection = http.client.HTTPSConnection(
        host, int(port), timeout=2.0, context=ssl.create_default_context()
    )
    with pytest.raises(ssl.SSLCertVerificationError):
        connection.request("GET", "/")
    connection.close()
    assert exchange(server)[0] == 200
    assert len(server.requests) == 1
    assert server.errors == []


def test_plain_http_and_own_pki() -> None:
    with HttpsServer(plain_http=True) as plain:
        assert plain.url.startswith("http://127.0.0.1:")
        assert plain.ca_bundle is None
    with HttpsServer() as own:
        assert own.ca_bundle is not None
        assert exchange(own)[0] == 200
    assert own.ca_bundle is None  # its temporary PKI went with it


def test_url_needs_a_running_server() -> None:
    with pytest.raises(RuntimeError):
        _ = HttpsServer().url
