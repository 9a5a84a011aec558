"""``sealgate.partner_http`` against real servers on 127.0.0.1.

The HTTPS servers (``sealgate_local.https_server``, on the standard library's ``http.server``) trust nothing of
the client: they record the request as their own parser read it, and count the connections they accept.
Failures the server cannot produce (a reset, a truncated body, a malformed status line, trickled headers) come
from raw sockets scripted here. Every test starts with no pooled connection.
"""

from __future__ import annotations

import contextlib
import socket
import ssl
import struct
import threading
import time
import traceback
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import urllib3

from sealgate import partner_http
from sealgate.errors import BadInput, InsecureUrl, PartnerUnreachable
from sealgate.partner_http import PartnerResponse
from sealgate_local.https_server import HttpsServer, Request, Response
from sealgate_local.tls import Pki, make_throwaway_pki

TIMEOUT = 0.5


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_throwaway_pki(tmp_path_factory.mktemp("throwaway-pki"))


@pytest.fixture
def server(pki: Pki) -> Iterator[HttpsServer]:
    with HttpsServer(pki=pki) as running:
        yield running


@pytest.fixture(autouse=True)
def fresh_pools(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """No connection pooled by an earlier test; the ones this test pooled are closed after it."""
    managers: dict[object, urllib3.PoolManager] = {}
    monkeypatch.setattr(partner_http, "_pool_managers", managers)
    yield
    for manager in managers.values():
        manager.clear()


def accepted_connections(server: HttpsServer, monkeypatch: pytest.MonkeyPatch) -> list[socket.socket]:
    """The TCP connections ``server`` accepts from now on, in order (it tracks each one to close it on stop)."""
    accepted: list[socket.socket] = []
    track = server._track

    def counting(connection: socket.socket, *, open_: bool) -> None:
        if open_:
            accepted.append(connection)
        track(connection, open_=open_)

    monkeypatch.setattr(server, "_track", counting)
    return accepted


def get(server: HttpsServer, path: str = "/", **options: object) -> PartnerResponse:
    arguments: dict[str, object] = {
        "headers": {},
        "body": None,
        "timeout": 2.0,
        "ca_bundle": server.ca_bundle,
    }
    arguments.update(options)
    return partner_http.send("GET", server.url + path, **arguments)  # type: ignore[arg-type]


def unreachable(call: Callable[[], object]) -> tuple[PartnerUnreachable, float]:
    """The PartnerUnreachable ``call`` raises, and how long it took."""
    started = time.monotonic()
    with pytest.raises(PartnerUnreachable) as caught:
        call()
    return caught.value, time.monotonic() - started


def formatted(error: BaseException) -> str:
    """Everything a logger would print for ``error``: message, repr and the chained tracebacks."""
    return "".join(traceback.format_exception(error)) + repr(error)


@contextlib.contextmanager
def raw_http_server(
    reply: Callable[[socket.socket, bytes], None], host: str = "127.0.0.1", *, connections: int = 1
) -> Iterator[str]:
    """A TCP server for ``connections`` connections, one after the other: for each it reads the request head,
    then ``reply`` does what it likes with the socket (which is closed after it)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    listener = socket.create_server((host, 0), family=family)
    listener.settimeout(5)

    def serve_one() -> None:
        with contextlib.suppress(OSError), listener.accept()[0] as connection:
            connection.settimeout(5)
            head = b""
            while b"\r\n\r\n" not in head and (chunk := connection.recv(4096)):
                head += chunk
            reply(connection, head)

    def serve() -> None:
        for _ in range(connections):
            serve_one()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield f"http://{'[' + host + ']' if ':' in host else host}:{listener.getsockname()[1]}/"
    finally:
        thread.join(5)
        listener.close()


def require_ipv6_loopback() -> None:
    try:
        with socket.socket(socket.AF_INET6) as probe:
            probe.bind(("::1", 0))
    except OSError:
        pytest.skip("::1 is not available on this host")


# --- Success -----------------------------------------------------------------------------------------------


def test_success_with_the_throwaway_ca(server: HttpsServer) -> None:
    response = get(server, "/health")
    assert response.status == 200
    assert response.body == b"ok"
    assert response.headers["content-type"] == "text/plain"
    assert all(name == name.lower() for name in response.headers)
    assert response.elapsed_ms > 0
    assert [request.path for request in server.requests] == ["/health"]


def test_localhost_matches_the_certificate(server: HttpsServer) -> None:
    url = server.url.replace("127.0.0.1", "localhost")
    response = partner_http.send("GET", url, headers={}, body=None, timeout=2.0, ca_bundle=server.ca_bundle)
    assert response.status == 200


def test_request_arrives_byte_exact(server: HttpsServer) -> None:
    body = bytes(range(256)) * 4 + b"\r\n\r\n0\r\n\r\n"
    headers = {
        "X-Login": "throwaway-login",
        "X-Date": "2018-07-12T13:46:28.629Z",
        "Authorization": "V2-HMAC-SHA256, Signature: 0a1b2c",
        "Content-Type": "application/octet-stream",
        "x-lower-case": "Value With  Two Spaces",
    }
    response = partner_http.send(
        "POST",
        server.url + "/v1/payments?a=1&b=%2F&c=",
        headers=headers,
        body=body,
        timeout=2.0,
        ca_bundle=server.ca_bundle,
    )
    assert response.status == 200
    [request] = server.requests
    assert (request.method, request.path, request.query) == ("POST", "/v1/payments", "a=1&b=%2F&c=")
    assert request.body == body
    for pair in headers.items():
        assert pair in request.headers
    assert request.header("content-length") == str(len(body))
    assert request.header("accept-encoding") == "identity"
    assert request.header("user-agent") is None  # nothing of the client's own is added


def test_a_request_target_goes_out_unchanged(server: HttpsServer) -> None:
    target = "/v1/a%2Fb/~x;y=1,z@:!$'()*+?q=%3D%20&r=/?s"
    response = get(server, target)
    assert response.status == 200
    [request] = server.requests
    assert f"{request.path}?{request.query}" == target


def test_response_arrives_byte_exact(server: HttpsServer) -> None:
    body = bytes(range(256)) * 16
    server.handler = lambda request: Response(201, {"X-Trace": "t-1", "Content-Type": "application/x"}, body)
    response = get(server)
    assert response.status == 201
    assert response.body == body
    assert response.headers["x-trace"] == "t-1"
    assert response.headers["content-length"] == str(len(body))


def test_chunked_response_is_read_whole(server: HttpsServer) -> None:
    body = b"chunked body " * 100
    server.handler = lambda request: Response(200, {"Transfer-Encoding": "chunked"}, body)
    assert get(server).body == body


def test_head_has_no_body(server: HttpsServer) -> None:
    response = partner_http.send(
        "HEAD", server.url + "/", headers={}, body=None, timeout=2.0, ca_bundle=server.ca_bundle
    )
    assert (response.status, response.body, response.headers["content-length"]) == (200, b"", "2")


def test_redirect_is_not_followed(server: HttpsServer) -> None:
    server.handler = lambda request: Response(302, {"Location": server.url + "/elsewhere"}, b"")
    response = get(server, "/start")
    assert response.status == 302
    assert response.headers["location"] == server.url + "/elsewhere"
    assert [request.path for request in server.requests] == ["/start"]


# --- Statuses the caller retries ---------------------------------------------------------------------------


def test_error500_is_returned_as_a_retryable_response(server: HttpsServer) -> None:
    server.mode = "error500"
    response = get(server)
    assert response.status == 500
    assert partner_http.is_retryable(response.status)
    assert len(server.requests) == 1


def test_throttle429_carries_a_parsable_retry_after(server: HttpsServer) -> None:
    server.mode = "throttle429"
    server.retry_after = "7"
    response = get(server)
    assert response.status == 429
    assert partner_http.is_retryable(response.status)
    assert partner_http.retry_after(response.headers) == 7.0
    assert len(server.requests) == 1


# --- TLS and schemes ---------------------------------------------------------------------------------------


def test_without_the_ca_bundle_the_certificate_is_refused(server: HttpsServer) -> None:
    error, _ = unreachable(lambda: get(server, ca_bundle=None))
    assert error.message == "tls"
    assert server.requests == []


def test_a_bundle_of_another_ca_is_refused(server: HttpsServer, tmp_path: Path) -> None:
    stranger = make_throwaway_pki(tmp_path)
    error, _ = unreachable(lambda: get(server, ca_bundle=str(stranger.ca_cert)))
    assert error.message == "tls"
    assert server.requests == []


def test_an_unreadable_ca_bundle_is_reported(server: HttpsServer, tmp_path: Path) -> None:
    error, _ = unreachable(lambda: get(server, ca_bundle=str(tmp_path / "missing.pem")))
    assert error.message == "ca bundle unreadable"


def test_plain_http_needs_allow_http() -> None:
    with HttpsServer(plain_http=True) as plain:
        assert plain.url.startswith("http://")
        with pytest.raises(InsecureUrl):
            partner_http.send("GET", plain.url + "/", headers={}, body=None, timeout=2.0)
        assert plain.requests == []
        response = partner_http.send(
            "GET", plain.url + "/", headers={}, body=None, timeout=2.0, allow_http=True
        )
        assert response.status == 200
        assert len(plain.requests) == 1


def test_tls_contexts_are_cached_per_bundle(server: HttpsServer, monkeypatch: pytest.MonkeyPatch) -> None:
    created: list[str | None] = []
    original = ssl.create_default_context

    def counting(*args: object, cafile: str | None = None, **kwargs: object) -> ssl.SSLContext:
        created.append(cafile)
        return original(*args, cafile=cafile, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(ssl, "create_default_context", counting)
    for _ in range(3):
        assert get(server).status == 200
    assert created == [server.ca_bundle]


# --- Time and size limits ----------------------------------------------------------------------------------


def test_hang_is_cut_at_the_timeout(server: HttpsServer) -> None:
    server.mode = "hang"
    error, took = unreachable(lambda: get(server, timeout=TIMEOUT))
    assert error.message == "timeout"
    assert TIMEOUT * 0.8 <= took < TIMEOUT + 1.0
    assert len(server.requests) == 1


@pytest.mark.parametrize("headers", [{}, {"Transfer-Encoding": "chunked"}], ids=["declared", "chunked"])
def test_a_trickled_body_is_cut_at_the_deadline(server: HttpsServer, headers: dict[str, str]) -> None:
    # One byte every 50 ms: every read succeeds well within the timeout, the whole body would take 50 s.
    server.mode = "trickle"
    server.trickle_interval = 0.05
    server.handler = lambda request: Response(200, headers, b"x" * 1000)
    error, took = unreachable(lambda: get(server, timeout=TIMEOUT))
    assert error.message == "timeout"
    assert TIMEOUT * 0.8 <= took < TIMEOUT + 1.0


def test_a_body_delimited_by_the_connection_closing_is_cut_not_taken_as_whole() -> None:
    # Headers and exactly one read's worth of body come late, then the body stalls: the socket's read timeout
    # would end after the deadline, so the deadline's cut ends it, which looks like the connection closing,
    # which is how such a body ends. What came is still not the whole body.
    def stall(connection: socket.socket, head: bytes) -> None:
        time.sleep(TIMEOUT * 0.4)
        connection.sendall(b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n" + b"x" * partner_http._READ_CHUNK)
        time.sleep(TIMEOUT * 1.5)

    with raw_http_server(stall) as url:
        error, took = unreachable(
            lambda: partner_http.send("GET", url, headers={}, body=None, timeout=TIMEOUT, allow_http=True)
        )
    assert error.message == "timeout"
    assert TIMEOUT * 0.8 <= took < TIMEOUT + 1.0


def test_trickled_headers_are_cut_at_the_deadline() -> None:
    # The status line arrives at once, then a header one byte every 50 ms, and no body would ever follow.
    def trickle(connection: socket.socket, head: bytes) -> None:
        connection.sendall(b"HTTP/1.1 200 OK\r\n")
        for byte in b"X-Slow: " + b"a" * 1000:
            connection.sendall(bytes([byte]))
            time.sleep(0.05)

    with raw_http_server(trickle) as url:
        error, took = unreachable(
            lambda: partner_http.send("GET", url, headers={}, body=None, timeout=TIMEOUT, allow_http=True)
        )
    assert error.message == "timeout"
    assert TIMEOUT * 0.8 <= took < TIMEOUT + 1.0


@pytest.mark.parametrize("headers", [{}, {"Transfer-Encoding": "chunked"}], ids=["declared", "chunked"])
def test_a_body_over_the_limit_is_refused(server: HttpsServer, headers: dict[str, str]) -> None:
    server.handler = lambda request: Response(200, headers, b"y" * 1001)
    error, _ = unreachable(lambda: get(server, max_response_bytes=1000))
    assert error.message == "response too large"


@pytest.mark.parametrize("headers", [{}, {"Transfer-Encoding": "chunked"}], ids=["declared", "chunked"])
def test_a_body_at_the_limit_is_accepted(server: HttpsServer, headers: dict[str, str]) -> None:
    server.handler = lambda request: Response(200, headers, b"y" * 1000)
    assert get(server, max_response_bytes=1000).body == b"y" * 1000


# --- Connection failures -----------------------------------------------------------------------------------


def test_nothing_listening_is_refused() -> None:
    with socket.socket() as bound:  # bound, never listening: the kernel refuses connections to it
        bound.bind(("127.0.0.1", 0))
        url = f"https://127.0.0.1:{bound.getsockname()[1]}/"
        error, _ = unreachable(lambda: partner_http.send("GET", url, headers={}, body=None, timeout=TIMEOUT))
    assert error.message == "refused"


def test_a_reset_connection_is_reported() -> None:
    def reset(connection: socket.socket, head: bytes) -> None:
        connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))

    with raw_http_server(reset) as url:
        error, _ = unreachable(
            lambda: partner_http.send("GET", url, headers={}, body=None, timeout=2.0, allow_http=True)
        )
    assert error.message == "reset"


def test_a_truncated_body_is_reported_as_reset() -> None:
    def truncate(connection: socket.socket, head: bytes) -> None:
        connection.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc")

    with raw_http_server(truncate) as url:
        error, _ = unreachable(
            lambda: partner_http.send("GET", url, headers={}, body=None, timeout=2.0, allow_http=True)
        )
    assert error.message == "reset"


def test_a_malformed_status_line_is_not_quoted() -> None:
    def garbage(connection: socket.socket, head: bytes) -> None:
        connection.sendall(b"partner-private-garbage\r\n\r\n")

    with raw_http_server(garbage) as url:
        error, _ = unreachable(
            lambda: partner_http.send("GET", url, headers={}, body=None, timeout=2.0, allow_http=True)
        )
    assert error.message == "bad response"
    assert "partner-private-garbage" not in formatted(error)


def test_ipv6_literals_keep_their_port_and_host_header() -> None:
    require_ipv6_loopback()
    heads: list[bytes] = []

    def answer(connection: socket.socket, head: bytes) -> None:
        heads.append(head)
        connection.sendall(b"HTTP/1.1 204 No Content\r\nConnection: close\r\n\r\n")

    with raw_http_server(answer, host="::1") as url:
        response = partner_http.send("GET", url, headers={}, body=None, timeout=2.0, allow_http=True)
    assert response.status == 204
    port = url.rsplit(":", 1)[1].rstrip("/")
    assert f"\r\nHost: [::1]:{port}\r\n".encode() in heads[0]


def test_an_ipv6_literal_without_a_port_goes_to_the_default_port() -> None:
    require_ipv6_loopback()
    # Nothing listens on [::1]:443 here; misreading "::1" as host ":" port 1 would fail on name resolution.
    error, _ = unreachable(
        lambda: partner_http.send("GET", "https://[::1]/", headers={}, body=None, timeout=TIMEOUT)
    )
    assert error.message in {"refused", "network", "tls"}  # anything but "dns"


# --- Connection reuse -------------------------------------------------------------------------------------


def test_sequential_requests_reuse_one_connection(
    server: HttpsServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    accepted = accepted_connections(server, monkeypatch)
    server.handler = lambda request: Response(200, {}, request.path.encode())
    for path in ("/one", "/two", "/three"):
        assert get(server, path).body == path.encode()
    assert [request.path for request in server.requests] == ["/one", "/two", "/three"]
    assert len(accepted) == 1


def test_different_bundles_do_not_share_connections(
    server: HttpsServer, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    accepted = accepted_connections(server, monkeypatch)
    assert get(server).status == 200
    assert server.ca_bundle is not None
    copy = tmp_path / "same-ca.pem"
    copy.write_bytes(Path(server.ca_bundle).read_bytes())
    assert get(server, ca_bundle=str(copy)).status == 200
    assert len(accepted) == 2


def test_a_connection_outlives_its_deadline_in_the_pool(
    server: HttpsServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The watchdog of a finished exchange must never cut the connection it gave back.
    accepted = accepted_connections(server, monkeypatch)
    assert get(server, timeout=0.2).status == 200
    time.sleep(0.4)
    assert get(server, timeout=0.2).body == b"ok"
    assert len(accepted) == 1


def test_after_a_timeout_mid_body_the_next_request_gets_a_fresh_connection(
    server: HttpsServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    accepted = accepted_connections(server, monkeypatch)
    server.mode = "trickle"
    server.handler = lambda request: Response(200, {}, b"x" * 1000)
    error, _ = unreachable(lambda: get(server, timeout=TIMEOUT))
    assert error.message == "timeout"
    server.mode = "ok"
    server.handler = lambda request: Response(200, {}, b"fresh")
    assert get(server).body == b"fresh"
    assert len(accepted) == 2


def test_after_an_abandoned_body_the_next_request_gets_a_fresh_connection(
    server: HttpsServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The server keeps the connection open with the rest of the body on it: reusing it would read that.
    accepted = accepted_connections(server, monkeypatch)
    server.handler = lambda request: Response(200, {}, b"HTTP/1.1 200 OK\r\n" * 1000)
    error, _ = unreachable(lambda: get(server, max_response_bytes=1000))
    assert error.message == "response too large"
    server.handler = lambda request: Response(200, {}, b"fresh")
    assert get(server).body == b"fresh"
    assert len(accepted) == 2


def test_an_abandoned_response_is_never_read_as_the_next_one() -> None:
    # The first body is too large by its Content-Length and comes only once the client has given up on it. Had
    # that connection gone back to the pool, the next request would read this body as its own response.
    leftover = b"HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\nstolen"
    replies = [
        b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % len(leftover),
        b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nfresh",
    ]

    def reply(connection: socket.socket, head: bytes) -> None:
        first = len(replies) == 2
        connection.sendall(replies.pop(0))
        if first:
            time.sleep(0.3)
            connection.sendall(leftover)
            with contextlib.suppress(OSError):
                connection.recv(4096)  # a request the client should never send here

    with raw_http_server(reply, connections=2) as url:
        error, _ = unreachable(
            lambda: partner_http.send(
                "GET", url, headers={}, body=None, timeout=2.0, allow_http=True, max_response_bytes=10
            )
        )
        assert error.message == "response too large"
        response = partner_http.send("GET", url, headers={}, body=None, timeout=2.0, allow_http=True)
    assert response.body == b"fresh"


def test_after_a_reset_mid_body_the_next_request_gets_a_fresh_connection() -> None:
    replies = [
        b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc",
        b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nfresh",
    ]

    def reply(connection: socket.socket, head: bytes) -> None:
        connection.sendall(replies.pop(0))

    with raw_http_server(reply, connections=2) as url:
        error, _ = unreachable(
            lambda: partner_http.send("GET", url, headers={}, body=None, timeout=2.0, allow_http=True)
        )
        assert error.message == "reset"
        response = partner_http.send("GET", url, headers={}, body=None, timeout=2.0, allow_http=True)
    assert response.body == b"fresh"
    assert replies == []


def test_a_pooled_connection_the_partner_closed_is_not_reused() -> None:
    closed = threading.Event()

    def reply(connection: socket.socket, head: bytes) -> None:
        connection.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
        connection.close()  # an idle keep-alive connection closed by the partner, without saying so before
        closed.set()

    with raw_http_server(reply, connections=2) as url:
        first = partner_http.send("GET", url, headers={}, body=None, timeout=2.0, allow_http=True)
        assert closed.wait(5)
        closed.clear()
        second = partner_http.send("GET", url, headers={}, body=None, timeout=2.0, allow_http=True)
        assert closed.wait(5)
    assert (first.body, second.body) == (b"ok", b"ok")


def test_connection_close_from_the_partner_is_honoured(
    server: HttpsServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    accepted = accepted_connections(server, monkeypatch)
    server.handler = lambda request: Response(200, {"Connection": "close"}, b"bye")
    assert get(server).body == b"bye"
    assert get(server).body == b"bye"
    assert len(accepted) == 2


def test_a_connection_idle_too_long_is_not_reused(
    server: HttpsServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    accepted = accepted_connections(server, monkeypatch)
    monkeypatch.setattr(partner_http, "_IDLE_LIMIT", 0.1)
    assert get(server).status == 200
    assert get(server).status == 200
    assert len(accepted) == 1
    time.sleep(0.2)
    assert get(server).status == 200
    assert len(accepted) == 2


def test_concurrent_requests_from_threads_all_succeed(
    server: HttpsServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    threads, per_thread = 8, 5
    accepted = accepted_connections(server, monkeypatch)
    server.handler = lambda request: Response(200, {}, request.path.encode() * 100)
    start = threading.Barrier(threads)

    def work(worker: int) -> list[bytes]:
        start.wait(5)
        return [get(server, f"/w{worker}/r{index}").body for index in range(per_thread)]

    with ThreadPoolExecutor(threads) as executor:
        results = list(executor.map(work, range(threads)))
    for worker, bodies in enumerate(results):
        assert bodies == [f"/w{worker}/r{index}".encode() * 100 for index in range(per_thread)]
    assert len(server.requests) == threads * per_thread
    assert len(accepted) <= threads  # each thread holds one connection at a time; the rest were reused


def test_concurrent_requests_survive_a_failing_neighbour(
    server: HttpsServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Requests to /slow are answered only after their deadline, while the others go through on the same pool.
    def answer(request: Request) -> Response:
        if request.path == "/slow":
            time.sleep(TIMEOUT * 2)
        return Response(200, {}, request.path.encode())

    server.handler = answer

    def work(path: str) -> str:
        try:
            return get(server, path, timeout=TIMEOUT).body.decode()
        except PartnerUnreachable as error:
            return error.message

    paths = ["/slow" if index % 4 == 0 else f"/fast{index}" for index in range(24)]
    with ThreadPoolExecutor(6) as executor:
        outcomes = list(executor.map(work, paths))
    assert outcomes == ["timeout" if path == "/slow" else path for path in paths]


# --- Nothing sensitive in errors ---------------------------------------------------------------------------


def test_failures_never_quote_the_query_headers_or_body(server: HttpsServer) -> None:
    server.mode = "hang"
    error, _ = unreachable(
        lambda: partner_http.send(
            "POST",
            server.url + "/pay?token=secret-in-query",
            headers={"Authorization": "secret-in-header"},
            body=b"secret-in-body",
            timeout=TIMEOUT,
            ca_bundle=server.ca_bundle,
        )
    )
    text = formatted(error)
    for secret in ("secret-in-query", "secret-in-header", "secret-in-body"):
        assert secret not in text
    [request] = server.requests
    assert request.query == "token=secret-in-query"  # it was sent, just never quoted


@pytest.mark.parametrize(
    "headers",
    [
        {"X-Key": "secret-value\r\nX-Injected: 1"},
        {"X-Key\r\nX-Injected": "secret-value"},
        {"X-Key": "secret-é€"},
    ],
    ids=["crlf-in-value", "crlf-in-name", "not-latin-1"],
)
def test_a_malformed_header_is_bad_input_without_its_value(
    server: HttpsServer, headers: dict[str, str]
) -> None:
    with pytest.raises(BadInput) as caught:
        get(server, headers=headers)
    assert "secret-value" not in formatted(caught.value)
    assert "secret-" not in formatted(caught.value)
    assert server.requests == []


def test_a_recorded_request_exposes_headers_case_insensitively() -> None:
    request = Request("GET", "/", "", (("X-Trace", "a"), ("x-trace", "b")), b"")
    assert request.header("X-TRACE") == "a"
    assert request.header("missing") is None
