"""Threaded HTTPS server on 127.0.0.1 (a free port) for tests and local partner sandboxes.

A pluggable handler turns each :class:`Request` into a :class:`Response`; every request received is recorded
(``requests``), so a test can assert "received exactly once". ``mode`` switches failure modes at runtime:

- ``"ok"``: the handler answers.
- ``"error500"``: 500, whatever the handler would say.
- ``"throttle429"``: 429 with ``Retry-After: <retry_after>``.
- ``"hang"``: the request is read and recorded, then nothing is sent until the server stops (at most
  ``hang_limit`` seconds), when the connection is closed.
- ``"trickle"``: the handler's response, its body one byte every ``trickle_interval`` seconds.
- ``"reset"``: the request is read and recorded, then the connection is reset (TCP RST): the handler never
  sees it.
- ``"reset_after"``: the handler processes the request, then the connection is reset instead of answering (the
  client cannot tell whether the request took effect).

``fault`` (a callable, None by default) picks the mode request by request instead (it returns None for
``mode``): fault injection by a seeded rate or a schedule. Every request also leaves an :class:`Exchange`
(``exchanges``): the mode applied, the status answered, whether the whole answer was written to a client that
was still there, and when (epoch seconds).

TLS uses a throwaway PKI (:mod:`sealgate_local.tls`), made in a temporary directory unless one is given;
``plain_http=True`` serves ``http://`` instead (for the client's ``allow_http`` path). Use it as a context
manager, or ``start()`` and ``stop()``; stopping interrupts hangs and trickles and closes every connection.
"""

from __future__ import annotations

import contextlib
import select
import socket
import ssl
import struct
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Literal, Self, cast, get_args

from sealgate_local.lifecycle import Service
from sealgate_local.tls import Pki, make_throwaway_pki

Mode = Literal["ok", "error500", "throttle429", "hang", "trickle", "reset", "reset_after"]
MODES: frozenset[str] = frozenset(get_args(Mode))

# Bounds a TLS handshake or an idle keep-alive connection, so stopping never waits on a silent client long.
_IO_TIMEOUT = 5.0


@dataclass(frozen=True)
class Request:
    """One request as received: ``headers`` keep the client's order and spelling, ``body`` its bytes."""

    method: str
    path: str
    query: str
    headers: tuple[tuple[str, str], ...]
    body: bytes

    def header(self, name: str) -> str | None:
        """First value of header ``name`` (case-insensitive), None if absent."""
        wanted = name.lower()
        return next((value for key, value in self.headers if key.lower() == wanted), None)


@dataclass(frozen=True)
class Response:
    """What to answer. ``Content-Length`` is added unless given or ``Transfer-Encoding: chunked`` is set."""

    status: int = 200
    headers: Mapping[str, str] = field(default_factory=dict)
    body: bytes = b""


@dataclass(frozen=True)
class Exchange:
    """What became of one request: the ``mode`` applied, whether the handler processed it (``handled``), the
    ``status`` answered (None: no answer, a hang or a reset), whether the whole answer was written while the
    client was still connected (``written``), and when the request was read and the answer written (epoch
    seconds). ``written`` is the server's side only: a client that gives up while the answer is in flight may
    still miss it."""

    request: Request
    mode: str
    handled: bool
    status: int | None
    written: bool
    received_at: float
    answered_at: float | None


Handler = Callable[[Request], Response]
#: Picks the mode of one request (None: the server's ``mode``).
FaultPicker = Callable[[Request], Mode | None]


def answer_ok(request: Request) -> Response:
    """Default handler: ``200 ok``."""
    return Response(200, {"Content-Type": "text/plain"}, b"ok")


class HttpsServer(Service):
    """HTTPS server in a background thread; see the module docstring."""

    def __init__(
        self,
        handler: Handler = answer_ok,
        *,
        pki: Pki | None = None,
        plain_http: bool = False,
        mode: Mode = "ok",
        retry_after: str = "1",
        hang_limit: float = 10.0,
        trickle_interval: float = 0.05,
        max_request_bytes: int = 1 << 20,
    ) -> None:
        self.handler = handler
        self.mode = mode
        self.retry_after = retry_after
        self.hang_limit = hang_limit
        self.trickle_interval = trickle_interval
        self.max_request_bytes = max_request_bytes
        self.fault: FaultPicker | None = None
        self._pki = pki
        self._plain_http = plain_http
        self._lock = threading.Lock()
        self._requests: list[Request] = []
        self._exchanges: list[Exchange] = []
        self._errors: list[BaseException] = []
        self._connections: set[socket.socket] = set()
        self._stopping = threading.Event()
        self._tempdir: tempfile.TemporaryDirectory[str] | None = None
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def mode(self) -> Mode:
        """Current failure mode; may be switched while the server runs."""
        return self._mode

    @mode.setter
    def mode(self, value: Mode) -> None:
        if value not in MODES:
            raise ValueError(f"unknown mode {value!r}; expected one of {sorted(MODES)}")
        self._mode = value

    @property
    def url(self) -> str:
        """Base URL, ``https://127.0.0.1:<port>`` (``http://`` with ``plain_http``)."""
        if self._server is None:
            raise RuntimeError("server is not running")
        scheme = "http" if self._plain_http else "https"
        return f"{scheme}://127.0.0.1:{self._server.server_address[1]}"

    @property
    def ca_bundle(self) -> str | None:
        """Path of the CA certificate a client must trust, None for ``plain_http``."""
        return None if self._pki is None or self._plain_http else str(self._pki.ca_cert)

    @property
    def requests(self) -> list[Request]:
        """Every request received so far, in arrival order (a copy)."""
        with self._lock:
            return list(self._requests)

    @property
    def exchanges(self) -> list[Exchange]:
        """What became of every request so far, in the order each was settled (a copy)."""
        with self._lock:
            return list(self._exchanges)

    @property
    def errors(self) -> list[BaseException]:
        """Exceptions raised by the handler (each answered with a 500), or by the server itself."""
        with self._lock:
            return list(self._errors)

    def start(self) -> Self:
        """Bind a free port on 127.0.0.1 and serve in a background thread."""
        if self._server is not None:
            raise RuntimeError("server is already running")
        tls: ssl.SSLContext | None = None
        if not self._plain_http:
            if self._pki is None:
                self._tempdir = tempfile.TemporaryDirectory(prefix="sealgate-throwaway-pki-")
                self._pki = make_throwaway_pki(Path(self._tempdir.name))
            tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            tls.minimum_version = ssl.TLSVersion.TLSv1_2
            tls.load_cert_chain(self._pki.server_cert, self._pki.server_key)
        self._stopping.clear()
        self._server = _Server(self, tls)
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name="https-server",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving, end hangs and trickles, close every connection and wait for the handler threads."""
        server, thread = self._server, self._thread
        if server is None or thread is None:
            return
        self._stopping.set()
        server.shutdown()
        with self._lock:
            connections = list(self._connections)
        for connection in connections:
            # The plain socket's shutdown, not SSLSocket's: it wakes a read blocked in another thread.
            with contextlib.suppress(OSError):
                socket.socket.shutdown(connection, socket.SHUT_RDWR)
        server.server_close()
        thread.join()
        self._server = self._thread = None
        if self._tempdir is not None:
            self._tempdir.cleanup()
            self._tempdir = None
            self._pki = None

    def _record(self, request: Request) -> None:
        with self._lock:
            self._requests.append(request)

    def _record_exchange(self, exchange: Exchange) -> None:
        with self._lock:
            self._exchanges.append(exchange)

    def _pick_mode(self, request: Request) -> Mode:
        picker = self.fault
        picked = picker(request) if picker is not None else None
        if picked is not None and picked not in MODES:
            raise ValueError(f"fault picker returned unknown mode {picked!r}")
        return picked or self._mode

    def _record_error(self, error: BaseException) -> None:
        with self._lock:
            self._errors.append(error)

    def _track(self, connection: socket.socket, *, open_: bool) -> None:
        with self._lock:
            if open_:
                self._connections.add(connection)
            else:
                self._connections.discard(connection)

    def _respond(self, request: Request, mode: Mode) -> Response:
        if mode == "error500":
            return Response(500, {"Content-Type": "text/plain"}, b"sandbox failure mode: error500")
        if mode == "throttle429":
            headers = {"Content-Type": "text/plain", "Retry-After": self.retry_after}
            return Response(429, headers, b"sandbox failure mode: throttle429")
        try:
            return self.handler(request)
        except Exception as error:  # a broken test handler must still answer, and be reported
            self._record_error(error)
            return Response(500, {"Content-Type": "text/plain"}, b"sandbox handler failed")


class _Server(ThreadingHTTPServer):
    """Does the TLS handshake in the connection's thread, so a silent client never blocks accepting."""

    def __init__(self, owner: HttpsServer, tls: ssl.SSLContext | None) -> None:
        self.owner = owner
        self.tls = tls
        super().__init__(("127.0.0.1", 0), _Handler)

    def finish_request(self, request: Any, client_address: Any) -> None:
        connection = cast(socket.socket, request)
        connection.settimeout(_IO_TIMEOUT)
        # Headers and body go out in separate writes: without this, Nagle waits on the client's delayed ACK.
        connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if self.tls is not None:
            connection = self.tls.wrap_socket(connection, server_side=True, do_handshake_on_connect=False)
        self.owner._track(connection, open_=True)
        aborted = False
        try:
            if isinstance(connection, ssl.SSLSocket):
                try:
                    connection.do_handshake()
                except OSError:
                    return  # the client refused our certificate (or hung up): nothing to serve
            aborted = _Handler(connection, client_address, self).aborted
        finally:
            self.owner._track(connection, open_=False)
            if aborted:
                # SO_LINGER 0: close() sends an RST, not a FIN; no TLS close_notify either.
                with contextlib.suppress(OSError):
                    connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            else:
                with contextlib.suppress(OSError):
                    connection.shutdown(socket.SHUT_WR)
            connection.close()

    def handle_error(self, request: Any, client_address: Any) -> None:
        error = sys.exception()
        if error is not None and not isinstance(error, OSError):  # a client going away is routine
            self.owner._record_error(error)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    timeout = _IO_TIMEOUT
    server: _Server
    #: Set when the connection is to be reset rather than closed (modes ``reset`` and ``reset_after``).
    aborted = False

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: tests assert on recorded requests, not on stderr."""

    def _serve(self) -> None:
        owner = self.server.owner
        body = self._read_body()
        if body is None:
            return
        path, _, query = self.path.partition("?")
        request = Request(self.command, path, query, tuple(self.headers.items()), body)
        received_at = time.time()
        owner._record(request)
        mode = owner._pick_mode(request)
        handled, status, written, answered_at = False, None, False, None
        try:
            if mode == "hang":
                self.close_connection = True
                owner._stopping.wait(owner.hang_limit)
                return
            if mode == "reset":
                self.close_connection = self.aborted = True
                return
            response = owner._respond(request, mode)
            handled = mode not in ("error500", "throttle429")
            if mode == "reset_after":
                self.close_connection = self.aborted = True
                return
            status = response.status
            present = self._client_present()
            self._write(response, trickle=mode == "trickle")
            written, answered_at = present, time.time()
        finally:
            owner._record_exchange(
                Exchange(request, mode, handled, status, written, received_at, answered_at)
            )

    do_GET = do_HEAD = do_POST = do_PUT = do_PATCH = do_DELETE = do_OPTIONS = _serve

    def _client_present(self) -> bool:
        """False when the client has already closed or reset the connection (it gave up waiting): an answer
        written now lands in a kernel buffer, not with the client. Peeks at the raw socket (TLS bytes stay)."""
        connection = self.connection
        try:
            readable, _, _ = select.select([connection], [], [], 0)
            if not readable:
                return True  # nothing to read: the client is waiting for the answer
            # Readable: a hang-up (b"") or bytes. The peek returns at once (the socket's timeout waits only
            # for readability, which select just saw).
            return socket.socket.recv(connection, 1, socket.MSG_PEEK) != b""
        except OSError:
            return False

    def _read_body(self) -> bytes | None:
        """The request body, or None after answering 411/413/400 for one this server will not read."""
        if self.headers.get("Transfer-Encoding") is not None:
            self._refuse(411, b"send a Content-Length")
            return None
        try:
            length = int(self.headers.get("Content-Length") or "0")
        except ValueError:
            length = -1
        if length < 0:
            self._refuse(400, b"bad Content-Length")
            return None
        if length > self.server.owner.max_request_bytes:
            self._refuse(413, b"request body too large")
            return None
        return self.rfile.read(length) if length else b""

    def _refuse(self, status: int, message: bytes) -> None:
        self.close_connection = True
        self._write(Response(status, {"Content-Type": "text/plain", "Connection": "close"}, message))

    def _write(self, response: Response, *, trickle: bool = False) -> None:
        names = {name.lower() for name in response.headers}
        chunked = any(
            name.lower() == "transfer-encoding" and value.lower() == "chunked"
            for name, value in response.headers.items()
        )
        self.send_response(response.status)
        for name, value in response.headers.items():
            self.send_header(name, value)
        if not chunked and "content-length" not in names:
            self.send_header("Content-Length", str(len(response.body)))
        self.end_headers()
        if self.command == "HEAD" or response.status in (204, 304):
            return
        payload = response.body
        if chunked:  # the whole body as one chunk, then the empty last chunk
            chunk = f"{len(payload):x}\r\n".encode("ascii") + payload + b"\r\n" if payload else b""
            payload = chunk + b"0\r\n\r\n"
        if not trickle:
            self.wfile.write(payload)
            return
        self.close_connection = True
        stopping = self.server.owner._stopping
        for index in range(len(payload)):
            if stopping.wait(self.server.owner.trickle_interval):
                return
            self.wfile.write(payload[index : index + 1])
