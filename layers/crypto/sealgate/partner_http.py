"""HTTPS client to partner APIs: verified TLS, pooled keep-alive connections, bounded in time and size.

Built on ``urllib3`` (it comes with botocore in the Lambda runtime). Everything comes in as arguments: no
environment, no logging of its own.

- TLS is always verified. ``ca_bundle`` replaces the default trust store (like ``curl --cacert``): it is how
  a local throwaway CA is trusted; a partner with a private CA gets its own bundle.
- ``http://`` only with ``allow_http`` (local development); any other scheme is :class:`InsecureUrl`.
- The request goes out as given: method, path and query byte for byte (a target ``urllib3`` would re-encode
  is :class:`BadInput`, since a signature may cover it), headers and body as passed, plus ``Host``,
  ``Content-Length`` and ``Accept-Encoding: identity`` when absent. The response is not decoded.
- Redirects are not followed (a 3xx comes back as a response) and nothing is retried: the caller decides.
- Time: connecting (TCP and the TLS handshake) gives every socket operation ``timeout`` seconds; once the
  request is sent, the whole response (status line, headers and body) must arrive within ``timeout``
  seconds, however slowly the partner trickles bytes. Socket timeouts bound each read, not their sum, so a
  timer thread shuts the connection down at the deadline, which wakes whichever read is waiting.
- Connections are kept alive and reused: one pool manager per trust store (per ``ca_bundle``), up to 10
  idle connections per partner host, shared by every thread and by every invocation of a warm Lambda. A
  connection goes back to its pool only once its response was read to the end; one that failed, ran out of
  time or was abandoned (a body too large) is closed, and so is one the partner closed while it was idle.
  One idle for 50 seconds is not reused: load balancers and NAT gateways drop idle connections silently.
- Failures raise :class:`PartnerUnreachable` whose message is one fixed word or phrase (``timeout``,
  ``refused``, ``tls``, ``reset``, ``dns``, ``network``, ``bad response``, ``response too large``): never
  the URL's query string, a header or a body.
"""

from __future__ import annotations

import contextlib
import http.client
import math
import re
import socket
import ssl
import threading
import time
from collections.abc import Mapping
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from types import MappingProxyType
from urllib.parse import urlsplit

import urllib3
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.exceptions import (
    HeaderParsingError,
    InvalidHeader,
    LocationValueError,
    NewConnectionError,
    ProtocolError,
    ResponseError,
)
from urllib3.exceptions import HTTPError as Urllib3Error
from urllib3.exceptions import SSLError as Urllib3SSLError
from urllib3.exceptions import TimeoutError as Urllib3Timeout
from urllib3.response import BaseHTTPResponse, HTTPResponse
from urllib3.util import SKIP_HEADER

from sealgate.errors import BadInput, InsecureUrl, PartnerUnreachable

_READ_CHUNK = 64 * 1024
_RETRYABLE = frozenset({408, 425, 429})
_DELTA_SECONDS_CAP = 2147483648.0  # RFC 9111 section 1.2.2: larger delta-seconds mean this
_DEFAULT_PORTS = {"https": 443, "http": 80}
_POOL_SIZE = 10  # idle connections kept per partner host; more concurrent requests open (and drop) extras
_HOSTS_PER_TRUST_STORE = 16  # connection pools kept per pool manager (least recently used closed first)
_TRUST_STORES = 8  # pool managers kept, one per ca_bundle (oldest closed first)
# Under the 60 s idle timeout of AWS load balancers and well under the 350 s after which a NAT gateway drops
# a connection silently (the next request on it would die with a reset).
_IDLE_LIMIT = 50.0
# RFC 9110 token: what a method may be.
_METHOD = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")
# A request target urllib3 sends unchanged: RFC 3986 path and query characters, percent-escapes in upper case.
_TARGET = re.compile(r"/(?:[A-Za-z0-9\-._~!$&'()*+,;=:@/?]|%[0-9A-F]{2})*")


@dataclass(frozen=True)
class PartnerResponse:
    """What the partner answered: status, headers (lower-cased names), body and the time it took."""

    status: int
    headers: Mapping[str, str]
    body: bytes
    elapsed_ms: float


def send(
    method: str,
    url: str,
    *,
    headers: Mapping[str, str],
    body: bytes | None,
    timeout: float,
    ca_bundle: str | None = None,
    allow_http: bool = False,
    max_response_bytes: int = 1 << 20,
) -> PartnerResponse:
    """Send one request and read the whole response.

    Parameters
    ----------
    method, url
        Request method and absolute URL (``https://``; ``http://`` only with ``allow_http``).
    headers, body
        Sent as given; ``Host``, ``Content-Length`` and ``Accept-Encoding: identity`` are added if absent.
    timeout
        Seconds for each connect-time socket operation, and for the whole response once the request is sent.
    ca_bundle
        PEM file of the CAs to trust instead of the default store.
    max_response_bytes
        Larger bodies are refused (declared length or bytes actually read).

    Raises
    ------
    InsecureUrl
        Scheme other than ``https`` (or ``http`` with ``allow_http``), or credentials in the URL.
    BadInput
        Malformed URL, method or header, or a non-positive timeout or size limit.
    PartnerUnreachable
        Connection or TLS failure, timeout, truncated or malformed response, or a body that is too large.
    """
    if not (math.isfinite(timeout) and timeout > 0):
        raise BadInput("timeout must be a positive number of seconds")
    if max_response_bytes < 0:
        raise BadInput("max_response_bytes must not be negative")
    if not _METHOD.fullmatch(method):
        raise BadInput("request method is malformed")
    scheme, host, port, target = _split_url(url, allow_http=allow_http)
    started = time.perf_counter()
    pool = _pool_manager(
        ca_bundle if scheme == "https" else None, tls=scheme == "https"
    ).connection_from_host(host, port, scheme)
    exchange = _Exchange(timeout)
    token = _current_exchange.set(exchange)
    try:
        response = _request(pool, exchange, method=method, target=target, headers=headers, body=body)
        try:
            payload = _read_body(response, exchange, max_response_bytes)
        except BaseException:
            response.close()  # closes the connection: whatever is left of this response must not be reused
            raise
        finally:
            response.release_conn()  # no-op once urllib3 has put it back after the last byte
    finally:
        _current_exchange.reset(token)
        exchange.disown()
    response_headers: dict[str, str] = {}
    for name, value in response.headers.itermerged():  # repeats joined with ", ", in order
        response_headers[name.lower()] = value
    return PartnerResponse(
        status=response.status,
        headers=MappingProxyType(response_headers),
        body=payload,
        elapsed_ms=(time.perf_counter() - started) * 1000.0,
    )


def retry_after(headers: Mapping[str, str], *, now: datetime | None = None) -> float | None:
    """Seconds to wait from ``Retry-After`` (delta-seconds or HTTP-date), None if absent or malformed.

    The header name is matched case-insensitively. A date in the past gives ``0.0``; delta-seconds are
    capped at 2**31 (RFC 9111); a naive ``now`` is taken as UTC.
    """
    value = next((v for k, v in headers.items() if k.lower() == "retry-after"), None)
    if value is None:
        return None
    value = value.strip()
    if value.isascii() and value.isdigit():
        return min(float(value), _DELTA_SECONDS_CAP)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if when.tzinfo is None:  # "-0000": RFC 5322's "UTC, origin unknown"; HTTP-dates are always GMT
        when = when.replace(tzinfo=UTC)
    now = datetime.now(UTC) if now is None else now
    if now.tzinfo is None:
        now = now.replace(tzinfo=UTC)
    return max(0.0, (when - now).total_seconds())


def is_retryable(status: int) -> bool:
    """Whether the same request may succeed later: 408, 425, 429 and every 5xx."""
    return status in _RETRYABLE or 500 <= status <= 599


# --- One exchange --------------------------------------------------------------------------------------------


def _split_url(url: str, *, allow_http: bool) -> tuple[str, str, int, str]:
    """Scheme, host, port and request target (path and query; the fragment is never sent)."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise BadInput("partner URL is malformed") from None
    if parts.scheme != "https" and not (parts.scheme == "http" and allow_http):
        raise InsecureUrl()
    if parts.username is not None or parts.password is not None:
        raise InsecureUrl("partner URL must not carry credentials")
    if not parts.hostname:
        raise BadInput("partner URL has no host")
    target = parts.path or "/"
    if parts.query:
        target = f"{target}?{parts.query}"
    if not _TARGET.fullmatch(target):
        raise BadInput("partner URL path or query is not percent-encoded (RFC 3986, upper-case escapes)")
    # An explicit port: an IPv6 literal's last group must never be read as one.
    return parts.scheme, parts.hostname, _DEFAULT_PORTS[parts.scheme] if port is None else port, target


def _request(
    pool: urllib3.HTTPConnectionPool,
    exchange: _Exchange,
    *,
    method: str,
    target: str,
    headers: Mapping[str, str],
    body: bytes | None,
) -> BaseHTTPResponse:
    """Send the request and read the status line and headers; the body is left on the connection."""
    outgoing = dict(headers)
    if not any(name.lower() == "user-agent" for name in outgoing):
        outgoing["User-Agent"] = SKIP_HEADER  # urllib3 would add its own; none was ever sent
    try:
        return pool.urlopen(
            method,
            target,
            body=body,
            headers=outgoing,
            retries=False,
            redirect=False,
            timeout=urllib3.Timeout(connect=exchange.seconds, read=exchange.seconds),
            preload_content=False,
            decode_content=False,
            release_conn=False,
        )
    except (Urllib3Error, OSError, http.client.HTTPException, ValueError) as error:
        # A failed urlopen has closed the connection and given its slot back to the pool.
        raise _failure(error, exchange) from _cause(error, exchange)


def _read_body(response: BaseHTTPResponse, exchange: _Exchange, max_bytes: int) -> bytes:
    """The whole body, before the deadline, at most ``max_bytes`` of it."""
    declared = response.length_remaining  # None when chunked or delimited by the connection closing
    if declared is not None and declared > max_bytes:
        raise PartnerUnreachable("response too large")
    chunks: list[bytes] = []
    received = 0
    try:
        while True:
            if not response.closed:  # once closed, the connection may be back in the pool: hands off
                if exchange.remaining() <= 0:
                    raise PartnerUnreachable("timeout")
                exchange.limit_reads()
            chunk = response.read(min(_READ_CHUNK, max_bytes + 1 - received), decode_content=False)
            if not chunk:
                break
            received += len(chunk)
            if received > max_bytes:
                raise PartnerUnreachable("response too large")
            chunks.append(chunk)
    except (Urllib3Error, OSError, http.client.HTTPException, ValueError) as error:
        raise _failure(error, exchange) from None
    exchange.disown()
    if exchange.expired:
        # The deadline shut the connection down: what looked like the end of the body may have been that.
        raise PartnerUnreachable("timeout")
    if declared is not None and received != declared:
        raise PartnerUnreachable("reset")
    return b"".join(chunks)


def _failure(error: BaseException, exchange: _Exchange) -> BadInput | PartnerUnreachable:
    """The error to raise for what urllib3, http.client or a socket raised (never quoting it)."""
    if exchange.expired:
        return PartnerUnreachable("timeout")
    if isinstance(error, LocationValueError):
        return BadInput("partner URL is malformed")
    if isinstance(error, ValueError) and not isinstance(error, Urllib3Error) and exchange.deadline is None:
        # http.client refuses a malformed header before sending anything, quoting it: it may be a credential.
        return BadInput("request method, path or a header is malformed")
    inner, connecting = _unwrapped(error, connecting=exchange.connecting)
    reasons = _CONNECT_REASONS if connecting else _EXCHANGE_REASONS
    return PartnerUnreachable(
        next((reason for kind, reason in reasons if isinstance(inner, kind)), "network")
    )


def _unwrapped(error: BaseException, *, connecting: bool) -> tuple[BaseException, bool]:
    """The error under urllib3's wrappers, and whether it happened while connecting."""
    while True:
        if isinstance(error, NewConnectionError) and isinstance(error.__cause__, OSError):
            error, connecting = error.__cause__, True  # TCP connect (NameResolutionError: getaddrinfo)
        elif isinstance(error, ProtocolError | Urllib3SSLError) and (inner := _wrapped(error)) is not None:
            error = inner
        else:
            return error, connecting


def _wrapped(error: BaseException) -> BaseException | None:
    """What ProtocolError and SSLError wrap: they carry it as their last argument."""
    return next((arg for arg in reversed(error.args) if isinstance(arg, BaseException)), None)


def _cause(error: BaseException, exchange: _Exchange) -> BaseException | None:
    """What to chain: a socket or TLS error before the response (errno, certificate problem), nothing else.

    Once the request is sent, errors may quote the partner's bytes (a status line, a header), and urllib3's
    own messages may quote the URL: none of those is chained.
    """
    if exchange.deadline is not None or exchange.expired:
        return None
    inner, _ = _unwrapped(error, connecting=exchange.connecting)
    if isinstance(inner, OSError) and not isinstance(inner, http.client.HTTPException):
        return inner
    return None


_Reasons = tuple[tuple[type[BaseException] | tuple[type[BaseException], ...], str], ...]
# The first class the (unwrapped) error is an instance of names the failure; anything else is "network".
_CONNECT_REASONS: _Reasons = (
    ((Urllib3Timeout, TimeoutError), "timeout"),  # urllib3 reports a TLS handshake timeout as a read timeout
    (ConnectionRefusedError, "refused"),
    (socket.gaierror, "dns"),
    (ssl.SSLError, "tls"),
    (ConnectionError, "reset"),
)
_EXCHANGE_REASONS: _Reasons = (
    ((Urllib3Timeout, TimeoutError), "timeout"),
    # RemoteDisconnected is a ConnectionResetError; after the handshake a TLS close is the partner hanging up;
    # IncompleteRead is a body cut short or a chunk size that never came.
    ((ConnectionError, ssl.SSLEOFError, ssl.SSLZeroReturnError, http.client.IncompleteRead), "reset"),
    (ssl.SSLError, "tls"),
    (
        (InvalidHeader, HeaderParsingError, ResponseError, http.client.HTTPException, ValueError),
        "bad response",
    ),
)


class _Exchange:
    """One request's phase, response deadline and the watchdog that enforces it.

    :func:`send` makes one per request and hands it to the connection through ``_current_exchange``: the
    connection says when it connects and when the request is on the wire, which starts the deadline. Socket
    timeouts bound each read, not their sum, and http.client reads status and header lines, chunk sizes and
    trailers in loops of its own; so at the deadline a timer thread shuts the socket down, which wakes the
    read waiting on it, and ``expired`` tells the reader why its read ended. The watchdog cuts only while the
    connection is this request's: :meth:`disown` (when the exchange ends, or when the pool hands the
    connection out again) rules any later cut out.
    """

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.connecting = False  # in the TCP connect or TLS handshake
        self.deadline: float | None = None  # monotonic; set once the request is on the wire
        self.expired = False  # the watchdog cut the connection
        self._lock = threading.Lock()
        self._sock: socket.socket | None = None
        self._timer: threading.Timer | None = None

    def request_sent(self, sock: socket.socket) -> None:
        with self._lock:
            self.deadline = time.monotonic() + self.seconds
            self._sock = sock
            self._timer = threading.Timer(self.seconds, self._cut)
            self._timer.daemon = True
            self._timer.start()

    def remaining(self) -> float:
        return self.seconds if self.deadline is None else self.deadline - time.monotonic()

    def limit_reads(self) -> None:
        """Give each socket read at most the time left (urllib3 sets the timeout again on the next request)."""
        with self._lock:
            if self._sock is not None:
                with contextlib.suppress(OSError):
                    self._sock.settimeout(max(self.remaining(), 0.001))

    def disown(self) -> None:
        """No cut from now on (idempotent)."""
        with self._lock:
            timer, self._timer, self._sock = self._timer, None, None
        if timer is not None:
            timer.cancel()

    def _cut(self) -> None:
        with self._lock:
            if self._sock is None:
                return
            self.expired = True
            # The plain socket's shutdown: SSLSocket's also drops its TLS state, under the reading thread's feet.
            with contextlib.suppress(OSError):
                socket.socket.shutdown(self._sock, socket.SHUT_RDWR)


_current_exchange: ContextVar[_Exchange | None] = ContextVar("partner_http_exchange", default=None)


# --- Pooled connections ---------------------------------------------------------------------------------------


class _PartnerConnection(HTTPConnection):
    """A pooled connection that tells the current exchange when it connects and when its request is sent,
    and is not reused once idle too long."""

    _exchange: _Exchange | None = None
    _idle_since = 0.0

    def connect(self) -> None:
        exchange = _current_exchange.get()
        if exchange is not None:
            exchange.connecting = True
        super().connect()
        if exchange is not None:
            exchange.connecting = False

    def getresponse(self) -> HTTPResponse:  # type: ignore[override]  # as urllib3's own
        exchange = _current_exchange.get()
        if exchange is not None and self.sock is not None:
            self._exchange = exchange
            exchange.request_sent(self.sock)
        response = super().getresponse()
        self._idle_since = time.monotonic()
        return response

    @property
    def is_connected(self) -> bool:
        # The pool asks this before handing the connection out again: from here on it is not the last
        # exchange's, whose watchdog must not touch it. (Had it cut already, the socket reads as closed.)
        if self._exchange is not None:
            self._exchange.disown()
            self._exchange = None
        return super().is_connected and time.monotonic() - self._idle_since < _IDLE_LIMIT


class _PartnerHTTPSConnection(_PartnerConnection, HTTPSConnection):
    pass


class _PartnerHTTPConnectionPool(urllib3.HTTPConnectionPool):
    ConnectionCls = _PartnerConnection


class _PartnerHTTPSConnectionPool(urllib3.HTTPSConnectionPool):
    ConnectionCls = _PartnerHTTPSConnection


_pool_managers: dict[tuple[str | None, bool], urllib3.PoolManager] = {}
_pool_managers_lock = threading.Lock()


def _pool_manager(ca_bundle: str | None, *, tls: bool) -> urllib3.PoolManager:
    """The pool manager of a trust store, made on first use: building a TLS context costs milliseconds."""
    key = (ca_bundle, tls)
    with _pool_managers_lock:
        manager = _pool_managers.get(key)
        if manager is None:
            manager = _new_pool_manager(ca_bundle, tls=tls)
            if len(_pool_managers) >= _TRUST_STORES:
                # Connections in use finish their exchange, then are closed instead of pooled.
                _pool_managers.pop(next(iter(_pool_managers))).clear()
            _pool_managers[key] = manager
        return manager


def _new_pool_manager(ca_bundle: str | None, *, tls: bool) -> urllib3.PoolManager:
    context: ssl.SSLContext | None = None
    if tls:
        try:
            context = ssl.create_default_context(cafile=ca_bundle)
        except (OSError, ValueError):
            raise PartnerUnreachable("ca bundle unreadable") from None
        context.minimum_version = ssl.TLSVersion.TLSv1_2
    manager = urllib3.PoolManager(
        num_pools=_HOSTS_PER_TRUST_STORE, maxsize=_POOL_SIZE, block=False, retries=False, ssl_context=context
    )
    manager.pool_classes_by_scheme = {
        "http": _PartnerHTTPConnectionPool,
        "https": _PartnerHTTPSConnectionPool,
    }
    return manager
