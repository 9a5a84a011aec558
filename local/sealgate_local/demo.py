"""``make demo``: one realistic flow per partner through the local stack, checked by the partner's sandbox.

Flows (every call goes through the local API, as an internal service would make it):

- Infosimples: ``POST /v1/encrypt/infosimples`` (parameters -> ``enc_`` parameters and MD5 receipts), then
  ``POST /v1/forward/infosimples``; the sandbox decrypts with ``aes-bridge`` and its receipts must equal the
  ones the encrypt call returned.
- Netcore: ``POST /v1/forward/netcore`` of an event list; the sandbox checks the bearer token and decrypts
  ``encryptedRequest`` with its static key and IV.
- PayKun: ``POST /v1/forward/paykun`` of a payment; the sandbox checks the MAC and opens the envelope.
- dLocal: ``POST /v1/sign/dlocal`` for a refund the caller sends itself (the sandbox verifies the signature);
  ``POST /v1/forward/dlocal`` of a card payment (signature verified, card JWE opened with dLocal's private key);
  then the sandbox's signed notification to ``POST /v1/webhooks/dlocal`` must be accepted and found on the
  inbound queue, and a forged one refused (401).

A forward counts as delivered when ``GET`` on its outcome says ``delivered``; its latency runs from the
``POST`` to that answer (queue, poller, encryption, HTTPS to the sandbox). The output holds names, statuses and
counts only: never a key, a plaintext value, a receipt, a card number or a CVV.
"""

from __future__ import annotations

import http.client
import json
import ssl
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from sealgate import metric_names
from sealgate_local.sandboxes import Verification
from sealgate_local.stack import LocalStack

WAIT_SECONDS = 30.0
TERMINAL = frozenset({"delivered", "rejected", "dead_lettered"})

# Realistic sample data (a valid-format CPF, a test card): none of it may reach the output.
CPF = "52998224725"
BIRTHDATE = "1990-01-15"
CARD_NUMBER = "4111111111111111"
CVV = "737"
SAMPLE_VALUES = (CPF, BIRTHDATE, CARD_NUMBER, "asha.rao@example.com", "thiago@example.com")


@dataclass(frozen=True)
class FlowResult:
    """One row of the demo's table; ``note`` is fixed text (a reason code at most), never a value."""

    partner: str
    scheme: str
    route: str
    delivered: bool
    verified: bool
    latency_ms: float
    note: str = ""


@dataclass(frozen=True)
class Answer:
    status: int
    body: dict[str, Any]
    latency_ms: float


class Demo:
    """Runs the flows against a started :class:`LocalStack`."""

    def __init__(self, stack: LocalStack) -> None:
        self.stack = stack
        url = urlsplit(stack.base_url)
        self._host, self._port, self._prefix = url.hostname or "127.0.0.1", url.port, url.path

    def run(self) -> list[FlowResult]:
        flows: list[Callable[[], FlowResult]] = [
            self.infosimples,
            self.netcore,
            self.paykun,
            self.dlocal_sign,
            self.dlocal_forward,
            self.dlocal_webhook,
        ]
        return [flow() for flow in flows]

    # --- flows ----------------------------------------------------------------------------------------------

    def infosimples(self) -> FlowResult:
        params = {"cpf": CPF, "birthdate": BIRTHDATE}
        encrypted = self.call("POST", "/v1/encrypt/infosimples", {"payload": params})
        if encrypted.status != 200:
            return _failed(
                "infosimples", "infosimples-params", "/v1/encrypt", f"encrypt answered {encrypted.status}"
            )
        receipts = encrypted.body.get("receipts") or {}
        forwarded = self.forward("infosimples", "receita-federal/cpf", params)
        verification = forwarded.verification
        same = verification is not None and verification.md5s == receipts and set(receipts) == set(params)
        if forwarded.verified and not same:
            forwarded = Forwarded(forwarded.delivered, None, forwarded.latency_ms, "MD5 receipts differ")
        return forwarded.row(
            "infosimples", "infosimples-params", "POST /v1/encrypt + /v1/forward", "MD5 receipts match"
        )

    def netcore(self) -> FlowResult:
        events = [
            {
                "asset_id": "local-demo-asset",
                "activity_name": "form_submitted",
                "timestamp": "2025-11-22T08:41:10Z",
                "identity": "9999911111",
                "activity_source": "web",
                "activity_params": {"user_name": "Mahesh", "reason": "demo", "day": "Saturday"},
            }
        ]
        forwarded = self.forward("netcore", "activity", events)
        return forwarded.row(
            "netcore", "aes-cbc-static", "POST /v1/forward/netcore", "token checked, body decrypted"
        )

    def paykun(self) -> FlowResult:
        payment = {
            "order_id": f"ORD-{uuid.uuid4().hex[:10]}",
            "amount": "499.00",
            "currency": "INR",
            "product_name": "Annual plan",
            "customer": {"name": "Asha Rao", "email": "asha.rao@example.com", "mobile": "9999911111"},
        }
        forwarded = self.forward("paykun", "payment", payment)
        return forwarded.row(
            "paykun", "laravel-cbc", "POST /v1/forward/paykun", "MAC checked, envelope opened"
        )

    def dlocal_sign(self) -> FlowResult:
        """The caller asks for the headers, then sends the refund to dLocal (the sandbox) itself."""
        body = json.dumps(
            {"payment_id": f"D-4-{uuid.uuid4()}", "amount": 20.0, "currency": "BRL"}, separators=(",", ":")
        )
        key = str(uuid.uuid4())
        started = time.perf_counter()
        signed = self.call("POST", "/v1/sign/dlocal", {"body": body, "idempotency_key": key})
        if signed.status != 200:
            return _failed("dlocal", "dlocal-v2 signature", "/v1/sign", f"sign answered {signed.status}")
        headers = {**signed.body.get("headers", {}), "Content-Type": "application/json"}
        sandbox = self.stack.sandboxes["dlocal"]
        status = _https_post(
            sandbox.url + "refunds", headers, body.encode("utf-8"), self.stack.sandboxes.ca_bundle
        )
        latency = (time.perf_counter() - started) * 1000
        verification = _verification(self.stack, "dlocal", key)
        verified = status == 200 and verification is not None and verification.ok
        note = "signature verified" if verified else _reason(verification, status)
        return FlowResult(
            "dlocal", "dlocal-v2 signature", "POST /v1/sign/dlocal", status == 200, verified, latency, note
        )

    def dlocal_forward(self) -> FlowResult:
        payment = {
            "amount": 120.0,
            "currency": "BRL",
            "country": "BR",
            "payment_method_id": "CARD",
            "payment_method_flow": "DIRECT",
            "payer": {"name": "Thiago Gabriel", "email": "thiago@example.com", "document": CPF},
            "card": {
                "holder_name": "Thiago Gabriel",
                "expiration_month": 10,
                "expiration_year": 2040,
                "number": CARD_NUMBER,
                "cvv": CVV,
            },
            "order_id": f"ORD-{uuid.uuid4().hex[:10]}",
        }
        forwarded = self.forward("dlocal", "payments", payment)
        verification = forwarded.verification
        card_opened = verification is not None and set(verification.fields) == {"card.number", "card.cvv"}
        if forwarded.verified and not card_opened:
            forwarded = Forwarded(forwarded.delivered, None, forwarded.latency_ms, "card JWE not opened")
        return forwarded.row(
            "dlocal", "jwe-card + dlocal-v2", "POST /v1/forward/dlocal", "signature verified, card JWE opened"
        )

    def dlocal_webhook(self) -> FlowResult:
        """dLocal's signed notification is accepted and queued; a forged one is refused."""
        notification_id = f"D-4-{uuid.uuid4()}"
        payload = {
            "id": notification_id,
            "amount": 120.0,
            "status": "PAID",
            "status_detail": "The payment was paid.",
            "currency": "BRL",
            "country": "BR",
            "payment_method_type": "CARD",
            "order_id": f"ORD-{uuid.uuid4().hex[:10]}",
        }
        url = self.stack.base_url + "/v1/webhooks/dlocal"
        dlocal = self.stack.sandboxes.dlocal
        started = time.perf_counter()
        status, _answer = dlocal.notify(url, payload)
        latency = (time.perf_counter() - started) * 1000
        queued = status == 200 and self._take_inbound(notification_id)
        forged, _ = dlocal.notify(
            url, {**payload, "id": f"D-4-{uuid.uuid4()}"}, secret="forged-" + uuid.uuid4().hex
        )
        verified = queued and forged == 401
        if verified:
            note = "accepted, on the inbound queue; forged one refused"
        elif not queued:
            note = f"webhook answered {status}" if status != 200 else "not on the inbound queue"
        else:
            note = f"forged notification answered {forged}"
        return FlowResult(
            "dlocal", "dlocal-v2 webhook", "POST /v1/webhooks/dlocal", queued, verified, latency, note
        )

    # --- helpers --------------------------------------------------------------------------------------------

    def call(self, method: str, path: str, body: Any = None) -> Answer:
        """One request to the local API (``path`` without the stage)."""
        data = None if body is None else json.dumps(body).encode("utf-8")
        headers = {"Content-Type": "application/json"} if data is not None else {}
        connection = http.client.HTTPConnection(self._host, self._port, timeout=WAIT_SECONDS)
        started = time.perf_counter()
        try:
            connection.request(method, self._prefix + path, body=data, headers=headers)
            response = connection.getresponse()
            raw = response.read()
        finally:
            connection.close()
        latency = (time.perf_counter() - started) * 1000
        try:
            parsed = json.loads(raw) if raw else {}
        except ValueError:
            parsed = {}
        return Answer(response.status, parsed if isinstance(parsed, dict) else {}, latency)

    def forward(self, partner: str, operation: str, payload: Any) -> Forwarded:
        """Enqueue, then follow the outcome until it is final (or :data:`WAIT_SECONDS` pass)."""
        key = str(uuid.uuid4())
        started = time.perf_counter()
        queued = self.call(
            "POST",
            f"/v1/forward/{partner}",
            {"operation": operation, "payload": payload, "idempotency_key": key},
        )
        if queued.status != 202 or "id" not in queued.body:
            return Forwarded(False, None, 0.0, f"enqueue answered {queued.status}")
        status_path = self.status_path(partner, str(queued.body["id"]))
        deadline = time.monotonic() + WAIT_SECONDS
        state = "queued"
        while time.monotonic() < deadline:
            outcome = self.call("GET", status_path)
            state = str(outcome.body.get("status", state))
            if outcome.status == 200 and state in TERMINAL:
                break
            time.sleep(0.05)
        latency = (time.perf_counter() - started) * 1000
        verification = _verification(self.stack, partner, key)
        return Forwarded(
            state == "delivered", verification, latency, "" if state == "delivered" else f"outcome {state}"
        )

    def status_path(self, partner: str, outcome_id: str) -> str:
        """The outcome route's path, whatever its shape (``/v1/forward/{id}`` or ``.../{partner}/{id}``)."""
        route = next(r for r in self.stack.routes if r.function == "forward" and r.method == "GET")
        return route.fill(partner, outcome_id)

    def _take_inbound(self, notification_id: str) -> bool:
        """Find the notification on the inbound queue (and consume it, as the internal consumer would)."""
        clients = self.stack.clients
        assert clients is not None
        queue_url = self.stack.resources.queue_url("InboundQueue")
        deadline = time.monotonic() + 5.0
        while time.monotonic() < deadline:
            messages = clients.sqs.receive_message(
                QueueUrl=queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=1, VisibilityTimeout=5
            ).get("Messages", [])
            for message in messages:
                try:
                    notification = json.loads(json.loads(message.get("Body", "{}")).get("body", "{}"))
                except (ValueError, AttributeError):
                    continue
                if isinstance(notification, dict) and notification.get("id") == notification_id:
                    clients.sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])
                    return True
        return False


@dataclass(frozen=True)
class Forwarded:
    delivered: bool
    verification: Verification | None
    latency_ms: float
    note: str = ""

    @property
    def verified(self) -> bool:
        return self.delivered and self.verification is not None and self.verification.ok

    def row(self, partner: str, scheme: str, route: str, checked: str) -> FlowResult:
        """The table row: ``checked`` says what the sandbox verified; a failure says why instead."""
        note = checked if self.verified else self.note or _reason(self.verification, None)
        return FlowResult(partner, scheme, route, self.delivered, self.verified, self.latency_ms, note)


def _verification(stack: LocalStack, partner: str, idempotency_key: str) -> Verification | None:
    """The sandbox's last verification of the request carrying ``idempotency_key``."""
    found = [v for v in stack.sandboxes[partner].verifications if v.idempotency_key == idempotency_key]
    return found[-1] if found else None


def _reason(verification: Verification | None, status: int | None) -> str:
    if verification is not None:
        return f"sandbox: {verification.reason}"
    return f"sandbox answered {status}" if status is not None else "sandbox received nothing"


def _failed(partner: str, scheme: str, route: str, note: str) -> FlowResult:
    return FlowResult(partner, scheme, route, False, False, 0.0, note)


def _https_post(url: str, headers: dict[str, str], body: bytes, ca_bundle: str) -> int:
    """POST over HTTPS trusting only ``ca_bundle``; the status."""
    parts = urlsplit(url)
    context = ssl.create_default_context(cafile=ca_bundle)
    connection = http.client.HTTPSConnection(
        parts.hostname or "", parts.port, timeout=WAIT_SECONDS, context=context
    )
    try:
        connection.request("POST", parts.path, body=body, headers=headers)
        response = connection.getresponse()
        response.read()
        return response.status
    finally:
        connection.close()


# --- output -------------------------------------------------------------------------------------------------


def table(results: list[FlowResult]) -> str:
    """The flows as a fixed-width table."""
    header = ("partner", "scheme", "route", "delivered", "verified", "latency ms", "checked")
    rows = [
        (
            r.partner,
            r.scheme,
            r.route,
            "yes" if r.delivered else "NO",
            "yes" if r.verified else "NO",
            f"{r.latency_ms:.0f}",
            r.note,
        )
        for r in results
    ]
    widths = [max(len(str(row[i])) for row in [header, *rows]) for i in range(len(header))]
    lines = [
        "  ".join(str(cell).ljust(widths[i]) for i, cell in enumerate(row)).rstrip()
        for row in [header, *rows]
    ]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def summary(stack: LocalStack) -> str:
    """Audit counts by action and outcome; metric counts, signature failures and the alarms from CloudWatch
    (moto's, fed by the functions' EMF lines); the poller's work."""
    observed = stack.logs.summary()
    audit = ", ".join(f"{action} {outcome} {n}" for (action, outcome), n in sorted(observed.audit.items()))
    counts: Counter[str] = Counter()
    signature: Counter[str] = Counter()
    for series, total in stack.metric_totals().items():
        partner = series.dimension("partner")
        if partner is None:
            counts[series.name] += int(total)
        elif series.name == metric_names.SIGNATURE_CHECK_FAILED:
            signature[partner] += int(total)
    metrics = ", ".join(f"{name} {n}" for name, n in sorted(counts.items()))
    failures = ", ".join(f"{partner} {n}" for partner, n in sorted(signature.items()))
    lines = [
        "Summary",
        f"  audit records       {audit or 'none'}",
        f"  CloudWatch metrics  {metrics or 'none'}",
        f"  signature failures  {failures or 'none'}",
    ]
    alarms = stack.alarms()
    for alarm in alarms:
        if alarm.firing:
            lines.append(
                f"  ALARM would fire    {alarm.logical_id}: {alarm.value:g}, threshold {alarm.threshold:g}"
            )
    if not any(alarm.firing for alarm in alarms):
        lines.append(f"  alarms              none of the {len(alarms)} in CloudWatch would fire")
    for alarm in alarms:
        if not alarm.firing and alarm.value:
            lines.append(
                f"                      {alarm.logical_id}: {alarm.value:g}, fires at {alarm.threshold:g}"
            )
    for poller in stack.pollers:
        s = poller.stats
        lines.append(
            f"  sqs poller          {s.batches} batches, {s.received} received, {s.deleted} deleted, "
            f"{s.item_failures} left for redelivery"
        )
    if stack.emf is not None and stack.emf.failed:
        lines.append(f"  metrics lost        {stack.emf.failed} (CloudWatch refused or was unreachable)")
    if observed.unhandled_errors:
        lines.append(f"  unhandled errors    {observed.unhandled_errors} (tracebacks in the function logs)")
    return "\n".join(lines)


def main(*, built: bool = False, echo: Callable[[str, str], None] | None = None) -> int:
    """Start the stack, run the flows, print the table and summary; 0 only if every flow was verified."""
    print(f"Starting the local stack{' from the SAM build' if built else ''}...", flush=True)
    with LocalStack(built=built, echo=echo) as stack:
        results = Demo(stack).run()
        print()
        print(table(results))
        print(
            "verified: the partner's sandbox decrypted and checked what the gateway sent "
            "(webhook: the gateway checked the sandbox's signature)"
        )
        print()
        print(summary(stack))
    ok = all(r.verified for r in results)
    print()
    print("All flows verified by the partner sandboxes." if ok else "Some flows were NOT verified.")
    return 0 if ok else 1
