"""Partner sandboxes: HTTPS servers on 127.0.0.1 that behave like each partner and check what they receive.

There is one sandbox per partner profile, shipped or added (``SEALGATE_PROFILES_DIR``), and none is written
for a partner: each is composed from the oracles its profile names (:mod:`sealgate_local.sandbox_oracles`):
how the partner reads the body (``body_format``), authenticates the request (``signing``), finds the tokens
(``layout``) and opens them (the cipher ``scheme``). The oracles are independent implementations, never
``sealgate``'s wire-format modules, so an accepted request is an interop check of the whole path.

A request, in order (the first failure answers 400, or 401 for credentials and signatures)::

    route           the path and method of one of the profile's operations       (else 404 / 405)
    signing         the signing scheme's oracle, with the secret fields the profile's section names
    body            the body format's Content-Type and syntax
    layout, cipher  every token the layout expects is where it should be, opens, and holds what it should;
                    nothing the layout protects arrives in the clear
    answer          the partner's own answer when :data:`ANSWERS` knows it, else {"status": "ok", "id": ...}
                    (plus "receipts" for MD5 receipts); dLocal's needs its X-Idempotency-Key and answers the
                    same payment id to the same key

The partners' own answers::

    infosimples  200 {"code": 200, "code_message": ..., "errors": [], "receipts": {name: md5}}
    netcore      200 {"status": "success", "message": "Request accepted", "data": {"requestid": ...}}
    paykun       200 {"status": true, "message": "Request processed", "data": {"reference_id": ...}}
    dlocal       200 {"id": "D-4-...", "status": "PAID", ...}; refunds "REF-4-...", "SUCCESS"

Every request the partner processes (mode ``"ok"``) leaves a :class:`Verification`: what was checked, the
idempotency header received (the profile's: ``Idempotency-Key`` or dLocal's ``X-Idempotency-Key``), the
names (never the values) of the fields that arrived protected, in Sealgate's terms (``cpf``, ``<body>``,
``card.number``), and for the ``enc-params`` layout the MD5 receipts. Receipts are secrets too (an MD5 of a
CPF is reversed by search): they are kept out of ``repr``. The other modes (``"error500"``, ``"throttle429"``
with ``Retry-After``, ``"hang"``, ``"reset"``: the connection reset) answer before the partner looks at the
request; the request is still recorded in ``requests``. ``"reset_after"`` processes the request (it leaves a
verification, and dLocal's payment is made) and then resets the connection instead of answering.

Faults can also be injected request by request (:class:`FaultPlan`, ``faults``): a seeded share of requests
gets one of the failure modes, decided from the seed, the idempotency key and how many requests with that key
came before, so a run is reproducible whatever order the requests arrive in. Every request leaves a
:class:`Receipt` (``receipts``): what the partner saw, and whether a 2xx answer was written whole to the
gateway. A sandbox whose profile has a ``webhook`` also sends that partner's signed
notifications (:meth:`PartnerSandbox.notify`).

Every key here is throwaway test material, given by the caller (see :mod:`sealgate_local.aws_stack`).
"""

from __future__ import annotations

import hashlib
import http.client
import json
import ssl
import threading
import uuid
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, Literal, Self, cast, get_args
from urllib.parse import urlsplit

from sealgate_local.https_server import Exchange, HttpsServer, Request, Response
from sealgate_local.lifecycle import Service
from sealgate_local.sandbox_oracles import (
    BODY_FIELD,
    Opened,
    PartnerKeys,
    ProfileTerms,
    Refused,
    compose,
)
from sealgate_local.tls import Pki, make_throwaway_pki

if TYPE_CHECKING:
    from sealgate.partners import Profile
    from sealgate_local.aws_stack import ThrowawaySecret

__all__ = [
    "BODY_FIELD",
    "FAULT_KINDS",
    "SANDBOX_MODES",
    "FaultPlan",
    "PartnerSandbox",
    "Receipt",
    "SandboxMode",
    "Sandboxes",
    "Verification",
]

SandboxMode = Literal["ok", "error500", "throttle429", "hang", "reset", "reset_after"]
SANDBOX_MODES: frozenset[str] = frozenset(get_args(SandboxMode))
#: Every failure a :class:`FaultPlan` can inject.
FAULT_KINDS: tuple[SandboxMode, ...] = ("error500", "throttle429", "hang", "reset", "reset_after")
#: Longest a hang lasts; stopping the sandbox ends it at once.
HANG_LIMIT = 60.0
NOTIFY_TIMEOUT = 10.0


@dataclass(frozen=True)
class Verification:
    """What a sandbox concluded about one request; names only, never values (receipts kept out of repr)."""

    partner: str
    path: str
    ok: bool
    reason: str
    idempotency_key: str | None
    fields: tuple[str, ...] = ()
    md5s: dict[str, str] = field(default_factory=dict, repr=False)


@dataclass(frozen=True)
class FaultPlan:
    """Inject failures into a share (``rate``) of requests, chosen reproducibly from ``seed``.

    The ``n``-th request carrying one idempotency key gets a fault when the first 8 bytes of
    ``SHA-256(seed, partner, key, n)`` fall under ``rate``; the next 8 bytes pick which of ``kinds``. Requests
    without the key are numbered by arrival instead. A hang lasts ``hang_seconds`` (set it above the gateway's
    timeout), then the connection is closed without an answer; a 429 carries ``Retry-After: <retry_after>``.
    """

    rate: float = 0.2
    seed: int = 0
    kinds: tuple[SandboxMode, ...] = FAULT_KINDS
    hang_seconds: float = 5.0
    retry_after: str = "1"

    def __post_init__(self) -> None:
        if not 0.0 <= self.rate <= 1.0:
            raise ValueError("fault rate must be between 0 and 1")
        unknown = [kind for kind in self.kinds if kind not in FAULT_KINDS]
        if unknown or not self.kinds:
            raise ValueError(f"fault kinds must be some of {list(FAULT_KINDS)}; got {list(self.kinds)}")
        if not self.hang_seconds > 0:
            raise ValueError("hang_seconds must be positive")

    def pick(self, partner: str, key: str, n: int) -> SandboxMode | None:
        """The fault for the ``n``-th request (from 0) with idempotency key ``key``, None for none."""
        digest = hashlib.sha256(f"{self.seed}\n{partner}\n{key}\n{n}".encode()).digest()
        if int.from_bytes(digest[:8]) / 2**64 >= self.rate:
            return None
        return self.kinds[int.from_bytes(digest[8:16]) % len(self.kinds)]


@dataclass(frozen=True)
class Receipt:
    """What the partner saw of one request: its idempotency key, what the sandbox did (``mode``: ``ok`` or a
    fault), whether the partner processed it (its checks ran, its effect took place), the status answered
    (None: no answer), whether a 2xx answer was written whole to the gateway while it was still connected,
    and when the request arrived and the answer was written (epoch seconds)."""

    partner: str
    idempotency_key: str | None
    mode: str
    processed: bool
    status: int | None
    answered_2xx: bool
    received_at: float
    answered_at: float | None


# --- answers: what each partner says back -------------------------------------------------------------------


class Answers:
    """A partner's answer bodies; this generic one is any partner's whose own :data:`ANSWERS` does not know."""

    def __init__(self, terms: ProfileTerms) -> None:
        self.terms = terms

    def accepted(
        self, path: str, body: dict[str, Any], opened: Opened, idempotency_key: str | None
    ) -> dict[str, Any]:
        answer: dict[str, Any] = {"status": "ok", "id": str(uuid.uuid4())}
        if opened.md5s:
            answer["receipts"] = dict(opened.md5s)
        return answer

    def refused(self, status: int, reason: str) -> dict[str, Any]:
        return {"status": "error", "message": reason}


class InfosimplesAnswers(Answers):
    def accepted(
        self, path: str, body: dict[str, Any], opened: Opened, idempotency_key: str | None
    ) -> dict[str, Any]:
        return {
            "code": 200,
            "code_message": "A requisição foi processada com sucesso.",
            "errors": [],
            "receipts": dict(opened.md5s),
        }

    def refused(self, status: int, reason: str) -> dict[str, Any]:
        return {"code": status, "code_message": reason, "errors": [reason]}


class NetcoreAnswers(Answers):
    def accepted(
        self, path: str, body: dict[str, Any], opened: Opened, idempotency_key: str | None
    ) -> dict[str, Any]:
        return {"status": "success", "message": "Request accepted", "data": {"requestid": str(uuid.uuid4())}}

    def refused(self, status: int, reason: str) -> dict[str, Any]:
        return {"status": "fail", "message": reason}


class PaykunAnswers(Answers):
    def accepted(
        self, path: str, body: dict[str, Any], opened: Opened, idempotency_key: str | None
    ) -> dict[str, Any]:
        return {"status": True, "message": "Request processed", "data": {"reference_id": uuid.uuid4().hex}}

    def refused(self, status: int, reason: str) -> dict[str, Any]:
        return {"status": False, "errors": {"errorMessage": reason}}


class DlocalAnswers(Answers):
    """A payment (or refund) as dLocal answers it; the same idempotency key gets the same id."""

    def __init__(self, terms: ProfileTerms) -> None:
        super().__init__(terms)
        self._lock = threading.Lock()
        self._payments: dict[str, str] = {}

    def accepted(
        self, path: str, body: dict[str, Any], opened: Opened, idempotency_key: str | None
    ) -> dict[str, Any]:
        if not idempotency_key:
            raise Refused(400, f"{self.terms.idempotency_header} is missing")
        refund = path.endswith("/refunds")
        with self._lock:
            transaction_id = self._payments.setdefault(
                idempotency_key, f"{'REF' if refund else 'D'}-4-{uuid.uuid4()}"
            )
        echoed = {
            name: body[name]
            for name in ("amount", "currency", "order_id", "payment_id")
            if isinstance(body.get(name), str | int | float)
        }
        status = (
            {"status": "SUCCESS", "status_code": 200} if refund else {"status": "PAID", "status_code": "200"}
        )
        return {
            "id": transaction_id,
            **echoed,
            **status,
            "status_detail": "The refund was paid." if refund else "The payment was paid.",
            "created_date": datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        }

    def refused(self, status: int, reason: str) -> dict[str, Any]:
        return {"code": 3001 if status == 401 else 5000, "message": reason}


#: partner -> its own answers (what the real partner's API says back); any other partner gets :class:`Answers`.
ANSWERS: dict[str, type[Answers]] = {
    "infosimples": InfosimplesAnswers,
    "netcore": NetcoreAnswers,
    "paykun": PaykunAnswers,
    "dlocal": DlocalAnswers,
}


# --- one partner ----------------------------------------------------------------------------------------------


class PartnerSandbox(Service):
    """One partner's HTTPS sandbox, composed from its profile (see the module docstring).

    ``secret`` is the partner's secret as Secrets Manager holds it; ``partner_side`` what only the partner holds
    (``jwe_private_key``). Raises :class:`ValueError` (naming the partner and what, never a value) when the
    profile names something no oracle checks or a key is missing or does not fit.

    Thread-safe: the server answers each connection in its own thread; verifications are appended under a
    lock and read as copies.
    """

    def __init__(
        self,
        profile: Profile,
        secret: Mapping[str, str],
        partner_side: Mapping[str, str] | None = None,
        *,
        pki: Pki | None = None,
    ) -> None:
        terms = ProfileTerms.of(profile)
        self.partner = terms.name
        self._terms = terms
        self._checks = compose(terms, PartnerKeys(terms.name, dict(secret), dict(partner_side or {})))
        self._answers = ANSWERS.get(terms.name, Answers)(terms)
        self._lock = threading.Lock()
        self._verifications: list[Verification] = []
        self._server = HttpsServer(self._handle, pki=pki, hang_limit=HANG_LIMIT)
        self._faults: FaultPlan | None = None
        self._seen: Counter[str | None] = Counter()

    @property
    def url(self) -> str:
        """Base URL ending in ``/``: what Sealgate's base URL override for this partner should be."""
        return self._server.url + "/"

    @property
    def ca_bundle(self) -> str | None:
        """The CA certificate a client must trust to reach this sandbox."""
        return self._server.ca_bundle

    @property
    def mode(self) -> SandboxMode:
        """``"ok"``, ``"error500"``, ``"throttle429"`` (with ``Retry-After``), ``"hang"``, ``"reset"`` or
        ``"reset_after"`` (processed, then reset); switchable live. :attr:`faults` overrides it per request."""
        return cast(SandboxMode, self._server.mode)

    @mode.setter
    def mode(self, value: SandboxMode) -> None:
        if value not in SANDBOX_MODES:
            raise ValueError(f"unknown sandbox mode {value!r}; expected one of {sorted(SANDBOX_MODES)}")
        self._server.mode = value

    @property
    def retry_after(self) -> str:
        """The ``Retry-After`` value sent in mode ``"throttle429"``."""
        return self._server.retry_after

    @retry_after.setter
    def retry_after(self, value: str) -> None:
        self._server.retry_after = value

    @property
    def faults(self) -> FaultPlan | None:
        """The faults injected request by request (None: none, ``mode`` applies to every request)."""
        return self._faults

    @faults.setter
    def faults(self, plan: FaultPlan | None) -> None:
        with self._lock:
            self._faults = plan
            self._seen.clear()
        if plan is None:
            self._server.fault = None
            self._server.hang_limit = HANG_LIMIT
            return
        self._server.hang_limit = plan.hang_seconds
        self._server.retry_after = plan.retry_after
        self._server.fault = self._pick_fault

    @property
    def receipts(self) -> list[Receipt]:
        """What the partner saw of every request settled so far (a hang counts once it ends), in that order."""
        return [self._receipt(exchange) for exchange in self._server.exchanges]

    @property
    def verifications(self) -> list[Verification]:
        """Every request the partner processed, in arrival order (a copy)."""
        with self._lock:
            return list(self._verifications)

    @property
    def requests(self) -> list[Request]:
        """Every request received, whatever the mode (a copy); it holds what was sent, so never log it."""
        return self._server.requests

    @property
    def sends_webhooks(self) -> bool:
        """Whether the profile has a ``webhook``: then :meth:`notify` sends the partner's notifications."""
        return self._checks.notifier is not None

    def start(self) -> Self:
        """Serve on a free port of 127.0.0.1."""
        self._server.start()
        return self

    def stop(self) -> None:
        """Stop serving; ends hangs and closes every connection."""
        self._server.stop()

    def notify(
        self,
        webhook_url: str,
        payload: dict[str, Any],
        *,
        ca_bundle: str | None = None,
        date: str | None = None,
        secret: str | None = None,
    ) -> tuple[int, dict[str, Any]]:
        """POST ``payload`` as the partner's notification, signed its way; returns the status and JSON answer.

        ``date`` replaces the send time (stale notifications), ``secret`` the signing key (forged ones).
        ``http://`` is for the local API on 127.0.0.1; ``https://`` trusts ``ca_bundle`` (or the system's).
        An answer that is not a JSON object comes back as ``{"text": <body>}``.

        Raises
        ------
        ValueError
            The partner's profile has no ``webhook``, or ``webhook_url`` is not http(s).
        """
        notifier = self._checks.notifier
        if notifier is None:
            raise ValueError(f"partner {self.partner} sends no notifications: its profile has no webhook")
        parts = urlsplit(webhook_url)
        if parts.hostname is None or parts.scheme not in ("http", "https"):
            raise ValueError("webhook_url must be an http:// or https:// URL")
        body = json.dumps(payload, separators=(",", ":")).encode("utf-8")
        headers = {"Content-Type": "application/json", **notifier.headers(body, date=date, secret=secret)}
        target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        connection: http.client.HTTPConnection
        if parts.scheme == "https":
            context = ssl.create_default_context(cafile=ca_bundle)
            connection = http.client.HTTPSConnection(
                parts.hostname, parts.port, timeout=NOTIFY_TIMEOUT, context=context
            )
        else:
            connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=NOTIFY_TIMEOUT)
        try:
            connection.request("POST", target, body=body, headers=headers)
            response = connection.getresponse()
            status, text = response.status, response.read().decode("utf-8", "replace")
        finally:
            connection.close()
        try:
            answer = json.loads(text)
        except ValueError:
            answer = None
        return status, answer if isinstance(answer, dict) else {"text": text}

    def _pick_fault(self, request: Request) -> SandboxMode | None:
        plan = self._faults
        if plan is None:
            return None
        key = request.header(self._terms.idempotency_header)
        with self._lock:
            n = self._seen[key]
            self._seen[key] += 1
        return plan.pick(self.partner, key if key is not None else "", n)

    def _receipt(self, exchange: Exchange) -> Receipt:
        status = exchange.status
        return Receipt(
            partner=self.partner,
            idempotency_key=exchange.request.header(self._terms.idempotency_header),
            mode=exchange.mode,
            processed=exchange.handled,
            status=status,
            answered_2xx=exchange.written and status is not None and 200 <= status < 300,
            received_at=exchange.received_at,
            answered_at=exchange.answered_at,
        )

    def _handle(self, request: Request) -> Response:
        idempotency_key = request.header(self._terms.idempotency_header)
        try:
            method = self._terms.routes.get(request.path)
            if method is None:
                raise Refused(404, "unknown path")
            if request.method != method:
                raise Refused(405, "method not allowed")
            body, opened = self._checks.check(request)
            answer = self._answers.accepted(request.path, body, opened, idempotency_key)
        except Refused as refusal:
            self._record(Verification(self.partner, request.path, False, refusal.reason, idempotency_key))
            return _json_response(refusal.status, self._answers.refused(refusal.status, refusal.reason))
        self._record(
            Verification(self.partner, request.path, True, "ok", idempotency_key, opened.fields, opened.md5s)
        )
        return _json_response(200, answer)

    def _record(self, verification: Verification) -> None:
        with self._lock:
            self._verifications.append(verification)


# --- every partner --------------------------------------------------------------------------------------------


class Sandboxes:
    """One sandbox per partner profile under one throwaway CA; a context manager that stops them all on exit."""

    def __init__(self, sandboxes: Mapping[str, PartnerSandbox], pki: Pki) -> None:
        self._sandboxes = dict(sandboxes)
        self._pki = pki

    @classmethod
    def start(
        cls,
        profiles: Mapping[str, Profile],
        secrets: Mapping[str, ThrowawaySecret],
        *,
        directory: Path,
    ) -> Sandboxes:
        """Make the throwaway PKI in ``directory`` and start a sandbox for every profile.

        ``profiles`` are the loaded partner profiles (``sealgate.partners.load_profiles``); ``secrets`` the
        local stack's throwaway secrets by partner: the value Secrets Manager holds and the partner's own side
        (:class:`sealgate_local.aws_stack.ThrowawaySecret`).

        Raises
        ------
        ValueError
            A partner has no secret, its secret lacks a field or a key does not fit, or its profile names
            something no sandbox oracle checks (the message names the partner and what, never a value). No
            sandbox is started then.
        """
        for partner in profiles:
            if partner not in secrets:
                raise ValueError(f"no secret for partner {partner}")
        pki = make_throwaway_pki(directory)
        sandboxes = {
            partner: PartnerSandbox(profile, secrets[partner].value, secrets[partner].partner_side, pki=pki)
            for partner, profile in profiles.items()
        }
        started = cls(sandboxes, pki)
        try:
            for sandbox in sandboxes.values():
                sandbox.start()
        except BaseException:
            started.stop()
            raise
        return started

    @property
    def ca_bundle(self) -> str:
        """Path of the throwaway CA certificate: the forward function's ``ca_bundle``."""
        return str(self._pki.ca_cert)

    @property
    def urls(self) -> dict[str, str]:
        """partner -> base URL (ending in ``/``): the forward function's base URL overrides."""
        return {partner: sandbox.url for partner, sandbox in self._sandboxes.items()}

    @property
    def dlocal(self) -> PartnerSandbox:
        """The dLocal sandbox (it sends dLocal's notifications: :meth:`PartnerSandbox.notify`)."""
        return self._sandboxes["dlocal"]

    def __getitem__(self, partner: str) -> PartnerSandbox:
        return self._sandboxes[partner]

    def inject(self, plan: FaultPlan | None) -> None:
        """Give every sandbox the fault plan (None: no more injected faults)."""
        for sandbox in self._sandboxes.values():
            sandbox.faults = plan

    def receipts(self) -> list[Receipt]:
        """What every partner saw (see :attr:`PartnerSandbox.receipts`)."""
        return [receipt for sandbox in self._sandboxes.values() for receipt in sandbox.receipts]

    def stop(self) -> None:
        """Stop every sandbox (those not started are skipped)."""
        for sandbox in self._sandboxes.values():
            sandbox.stop()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()


def _json_response(status: int, answer: dict[str, Any]) -> Response:
    body = json.dumps(answer, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    return Response(status, {"Content-Type": "application/json"}, body)
