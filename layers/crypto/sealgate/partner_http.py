"""HTTPS client to partner APIs: one request, one connection, verified TLS, bounded in time and size.

Stdlib only (``http.client`` + ``ssl``). Everything comes in as arguments: no environment, no logging.

- TLS is always verified. ``ca_bundle`` replaces the default trust store (like ``curl --cacert``): it is how
  a local throwaway CA is trusted; a partner with a private CA gets its own bundle.
- ``http://`` only with ``allow_http`` (local development); any other scheme is :class:`InsecureUrl`.
- Redirects are not followed: a 3xx comes back as a response.
- Time: connecting (TCP and the TLS handshake) gives every socket operation ``timeout`` seconds; once the
  request is sent, the whole response (status line, headers and body) must arrive within ``timeout``
  seconds, however slowly the partner trickles bytes.
- Failures raise :class:`PartnerUnreachable` whose message is one fixed word or phrase (``timeout``,
  ``refused``, ``tls``, ``reset``, ``dns``, ``network``, ``bad response``, ``response too large``): never
  the URL's query string, a header or a body.
"""

from __future__ import annotations

import functools
import http.client
import io
import math
import socket
import ssl
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from types import MappingProxyType
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from sealgate.errors import BadInput, InsecureUrl, PartnerUnreachable

if TYPE_CHECKING:
    from _typeshed import WriteableBuffer

_READ_CHUNK = 64 * 1024
_RETRYABLE = frozenset({408, 425, 429})
_DELTA_SECONDS_CAP = 2147483648.0  # RFC 9111 section 1.2.2: larger delta-seconds mean this
_DEFAULT_PORTS = {"https": 443, "http": 80}


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
    scheme, host, port, target = _split_url(url, allow_http=allow_http)
    started = time.perf_counter()
    connection: http.client.HTTPConnection
    if scheme == "https":
        connection = http.client.HTTPSConnection(host, port, timeout=timeout, context=_tls_context(ca_bundle))
    else:
        connection = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        _connect(connection)
        _send_request(connection, method, target, headers, body)
        status, response_headers, payload = _read_response(
            connection.sock, method, deadline=time.monotonic() + timeout, max_bytes=max_response_bytes
        )
    finally:
        connection.close()
    return PartnerResponse(
        status=status,
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


@functools.lru_cache(maxsize=8)
def _tls_context(ca_bundle: str | None) -> ssl.SSLContext:
    """Verifying client context, cached per bundle: building one costs milliseconds."""
    try:
        context = ssl.create_default_context(cafile=ca_bundle)
    except (OSError, ValueError):
        raise PartnerUnreachable("ca bundle unreadable") from None
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    return context


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
    # An explicit port: given none, http.client would read the last group of an IPv6 address as one.
    return parts.scheme, parts.hostname, _DEFAULT_PORTS[parts.scheme] if port is None else port, target


def _connect(connection: http.client.HTTPConnection) -> None:
    """TCP connect and, for HTTPS, the verified handshake."""
    try:
        connection.connect()
    except OSError as exc:
        raise PartnerUnreachable(_connect_failure(exc)) from exc


def _send_request(
    connection: http.client.HTTPConnection,
    method: str,
    target: str,
    headers: Mapping[str, str],
    body: bytes | None,
) -> None:
    try:
        connection.request(method, target, body=body, headers=dict(headers))
    except OSError as exc:
        raise PartnerUnreachable(_exchange_failure(exc)) from exc
    except (ValueError, http.client.InvalidURL):
        # http.client quotes the offending value in its message: it may be a credential.
        raise BadInput("request method, path or a header is malformed") from None


def _read_response(
    sock: socket.socket, method: str, *, deadline: float, max_bytes: int
) -> tuple[int, dict[str, str], bytes]:
    """Status, headers (lower-cased names, repeats joined with ``", "``) and body, all before ``deadline``."""
    response = _DeadlineResponse(sock, method, deadline)
    try:
        response.begin()
        declared = response.length  # None when chunked or delimited by the connection closing
        if declared is not None and declared > max_bytes:
            raise PartnerUnreachable("response too large")
        chunks: list[bytes] = []
        received = 0
        while chunk := response.read(min(_READ_CHUNK, max_bytes + 1 - received)):
            received += len(chunk)
            if received > max_bytes:
                raise PartnerUnreachable("response too large")
            chunks.append(chunk)
        if declared is not None and received != declared:
            # http.client returns a short body without complaint when the connection closes early.
            raise PartnerUnreachable("reset")
        headers: dict[str, str] = {}
        for name, value in response.getheaders():
            key = name.lower()
            headers[key] = f"{headers[key]}, {value}" if key in headers else value
        return response.status, headers, b"".join(chunks)
    except OSError as exc:
        raise PartnerUnreachable(_exchange_failure(exc)) from exc
    except http.client.HTTPException as exc:
        # A malformed status line is quoted in the exception: it is the partner's data, so it is not chained.
        reason = "reset" if isinstance(exc, http.client.IncompleteRead) else "bad response"
        raise PartnerUnreachable(reason) from None
    finally:
        response.close()


def _connect_failure(exc: OSError) -> str:
    if isinstance(exc, TimeoutError):
        return "timeout"
    if isinstance(exc, ConnectionRefusedError):
        return "refused"
    if isinstance(exc, ssl.SSLError):
        return "tls"
    if isinstance(exc, ConnectionError):
        return "reset"
    if isinstance(exc, socket.gaierror):
        return "dns"
    return "network"


def _exchange_failure(exc: OSError) -> str:
    if isinstance(exc, TimeoutError):
        return "timeout"
    if isinstance(exc, ConnectionError | ssl.SSLEOFError | ssl.SSLZeroReturnError):
        return "reset"  # RemoteDisconnected is a ConnectionResetError
    if isinstance(exc, ssl.SSLError):
        return "tls"
    return "network"


class _DeadlineReader(io.RawIOBase):
    """Socket reads that each get only the time left until ``deadline``."""

    def __init__(self, sock: socket.socket, deadline: float) -> None:
        super().__init__()
        self._sock = sock
        self._deadline = deadline

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: WriteableBuffer, /) -> int:
        remaining = self._deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError("response deadline passed")
        self._sock.settimeout(remaining)
        return self._sock.recv_into(buffer)


class _DeadlineResponse(http.client.HTTPResponse):
    """A response read through :class:`_DeadlineReader`.

    Built directly rather than by ``HTTPConnection.getresponse``: the connection is used for this one
    request and closed right after, so nothing of its keep-alive bookkeeping is needed.
    """

    def __init__(self, sock: socket.socket, method: str, deadline: float) -> None:
        super().__init__(sock, method=method)
        self.fp.close()
        self.fp = io.BufferedReader(_DeadlineReader(sock, deadline))
