"""``make demo``: one realistic flow per partner profile through the local stack, checked independently.

Every flow goes through the local API, as an internal service would call it (SigV4-signed: ``make demo`` starts
the stack with ``iam_auth``), and takes its data and its labels
from the partner's profile (``layers/crypto/sealgate/partners/profiles/<partner>.json``): a partner added as a
profile gets its rows without code here, as long as the local stack has a sandbox for it.

- **forward**, one per profile: ``POST /v1/encrypt/{partner}`` then ``POST /v1/forward/{partner}`` of the
  profile's ``example`` (payload and operation). The partner's sandbox checks the signature or credentials and
  opens what the gateway protected; it must have opened exactly the fields the profile's layout protects, and
  where the encrypt answer gives MD5 receipts (Infosimples) they must equal the sandbox's.
- **sign**, one per profile whose signer has an independent check below (:data:`SIGNATURE_CHECKS`; dLocal's
  ``dlocal-v2``): ``POST /v1/sign/{partner}`` for the exact body of the example's protected payload. The
  derived signature must equal one computed here with Python's ``hmac`` and the stack's throwaway secret; the
  answer must carry no stored credential (compared with every value of the secret) and must name the
  credential headers the gateway attaches itself in ``attached_by_gateway``. Nothing is sent to the partner:
  without those credentials a caller cannot, by design.
- **webhook**, one per profile with a webhook whose sandbox sends notifications (dLocal): the example
  notification, signed by the sandbox, must be accepted and found on the inbound queue (it is left there), and
  a forged one refused (401).

A forward counts as delivered when ``GET`` on its outcome says ``delivered``; its latency runs from the
``POST /v1/forward`` to that answer (queue, poller, encryption, HTTPS to the sandbox). The output holds names,
statuses and counts only: never a key, a plaintext value, a receipt, a card number or a CVV. Every answer of the
local API is kept in :attr:`Demo.answers` (the leak tests search them).
"""

from __future__ import annotations

import hashlib
import hmac
import http.client
import json
import sys
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, runtime_checkable
from urllib.parse import urlsplit

import sealgate
import sealgate_local
from sealgate import metric_names
from sealgate.partners import Profile
from sealgate_local.aws_stack import PROFILES_DIR_VARIABLE
from sealgate_local.generate import Example, profile_documents
from sealgate_local.sandboxes import Verification
from sealgate_local.sigv4 import sign
from sealgate_local.stack import ROOT, LocalStack

WAIT_SECONDS = 30.0
TERMINAL = frozenset({"delivered", "rejected", "dead_lettered"})


@dataclass(frozen=True)
class FlowResult:
    """One row of the demo's table; ``note`` is fixed text (names and reason codes), never a value.
    ``delivered`` is None where nothing is sent to a partner (the sign flow)."""

    partner: str
    scheme: str
    route: str
    delivered: bool | None
    verified: bool
    latency_ms: float
    note: str = ""


@dataclass(frozen=True)
class Answer:
    """One answer of the local API, as received (``raw``) and parsed (``body``: {} if not a JSON object)."""

    method: str
    path: str
    status: int
    body: dict[str, Any]
    raw: str
    latency_ms: float


@dataclass(frozen=True)
class PartnerExample:
    """A partner as the demo drives it: its resolved profile, the profile's JSON (the options an independent
    check reads) and its ``example``."""

    profile: Profile
    document: Mapping[str, Any]
    example: Example

    @property
    def name(self) -> str:
        return self.profile.name

    @property
    def label(self) -> str:
        """``<cipher> (<layout>)``, and ``+ <signer>`` when the partner's requests are signed."""
        protection = self.profile.protection
        label = f"{protection.scheme} ({protection.layout.name})"
        signing = self.profile.signing
        return label if signing is None else f"{label} + {signing.signer.name}"

    def protected_fields(self) -> tuple[str, ...]:
        """The names the profile's layout protects in the example (no cipher involved: the tokens are blank)."""
        protection = self.profile.protection
        return protection.layout.protect(
            self.example.payload, lambda _plaintext: "", protection.layout_options
        ).fields


def partner_examples(stack: LocalStack) -> list[PartnerExample]:
    """Every profile the stack serves (its own and ``SEALGATE_PROFILES_DIR``'s), with its example."""
    resources = stack.resources
    extra_dirs = sorted(
        {d for f in resources.functions.values() if (d := f.environment.get(PROFILES_DIR_VARIABLE))}
    )
    documents = profile_documents(resources.profiles, extra_dirs)
    return [
        PartnerExample(profile, documents[name], Example.of(profile, documents[name]))
        for name, profile in resources.profiles.items()
    ]


# --- independent checks of a signer's derived headers --------------------------------------------------------


@dataclass(frozen=True)
class SignatureVerdict:
    """What an independent check concluded: ``problem`` (None: the signature is right), the secret fields the
    derived headers may show (an account login) and the headers only the gateway may attach."""

    problem: str | None
    shown_fields: frozenset[str]
    attached_by_gateway: frozenset[str]


SignatureCheck = Callable[[Mapping[str, Any], Mapping[str, str], Mapping[str, str], bytes], SignatureVerdict]


def dlocal_v2_check(
    signing: Mapping[str, Any], secret: Mapping[str, str], headers: Mapping[str, str], body: bytes
) -> SignatureVerdict:
    """dLocal's published V2-HMAC-SHA256, written again from its documentation:
    ``Authorization: V2-HMAC-SHA256, Signature: hex(HMAC-SHA256(secret_key, X-Login + X-Date + body))``.
    ``signing`` is the profile's ``signing`` section (which secret fields hold the login and the key)."""
    login = secret[signing["login"]]
    date = headers.get("X-Date", "")
    mac = hmac.new(
        secret[signing["secret"]].encode("utf-8"), login.encode() + date.encode() + body, hashlib.sha256
    )
    expected = f"V2-HMAC-SHA256, Signature: {mac.hexdigest()}"
    problem: str | None = None
    if headers.get("X-Login") != login:
        problem = "X-Login is not the account's login"
    elif not date:
        problem = "no X-Date"
    elif not hmac.compare_digest(headers.get("Authorization", "").encode(), expected.encode()):
        problem = "signature differs from an independent HMAC"
    return SignatureVerdict(problem, frozenset({signing["login"]}), frozenset({"X-Trans-Key"}))


#: signer name -> its independent check; a profile whose signer is here gets a sign row.
SIGNATURE_CHECKS: dict[str, SignatureCheck] = {"dlocal-v2": dlocal_v2_check}


@runtime_checkable
class Notifier(Protocol):
    """A sandbox that sends its partner's signed notifications (dLocal's)."""

    def notify(
        self,
        webhook_url: str,
        payload: dict[str, Any],
        *,
        date: str | None = None,
        secret: str | None = None,
    ) -> tuple[int, dict[str, Any]]: ...


# --- the flows ----------------------------------------------------------------------------------------------


class Demo:
    """Runs the flows against a started :class:`LocalStack`."""

    def __init__(self, stack: LocalStack) -> None:
        self.stack = stack
        self.examples = partner_examples(stack)
        self.answers: list[Answer] = []
        url = urlsplit(stack.base_url)
        self._host, self._port, self._prefix = url.hostname or "127.0.0.1", url.port, url.path

    def run(self) -> list[FlowResult]:
        """Every flow the profiles call for: forwards first, then signatures, then webhooks."""
        results = [self.forward_flow(p) for p in self.examples]
        results += [
            self.sign_flow(p, SIGNATURE_CHECKS[p.profile.signing.signer.name])
            for p in self.examples
            if p.profile.signing is not None and p.profile.signing.signer.name in SIGNATURE_CHECKS
        ]
        results += [self.webhook_flow(p) for p in self.examples if p.profile.webhook is not None]
        return results

    def forward_flow(self, partner: PartnerExample) -> FlowResult:
        """Encrypt, then forward the example; the sandbox must open what the layout protects."""
        name, example = partner.name, partner.example
        route = f"POST /v1/encrypt + /v1/forward/{name}"
        if name not in self.stack.sandboxes.urls:
            # Without a sandbox the forward function would reach the partner's real base URL.
            return _failed(name, partner.label, route, "no sandbox for this partner: not forwarded")
        encrypted = self.call("POST", f"/v1/encrypt/{name}", {"payload": example.payload})
        if encrypted.status != 200:
            return _failed(name, partner.label, route, f"encrypt answered {encrypted.status}")
        forwarded = self.forward(name, example.operation, example.payload)
        verification = forwarded.verification
        fields = partner.protected_fields()
        checked = [f"opened {', '.join(fields)}"]
        problem: str | None = None
        if verification is not None and set(verification.fields) != set(fields):
            problem = "sandbox opened other fields than the layout protects"
        receipts = encrypted.body.get("receipts")
        if receipts is not None:
            checked.append("MD5 receipts match")
            if verification is not None and verification.md5s != receipts:
                problem = problem or "MD5 receipts differ"
        if partner.profile.signing is not None:
            checked.append(f"{partner.profile.signing.signer.name} checked")
        if forwarded.verified and problem is not None:
            forwarded = Forwarded(forwarded.delivered, None, forwarded.latency_ms, problem)
        return forwarded.row(name, partner.label, route, "; ".join(checked))

    def sign_flow(self, partner: PartnerExample, check: SignatureCheck) -> FlowResult:
        """``/v1/sign`` for the exact body of the protected example, checked without Sealgate's code."""
        name, signing = partner.name, partner.profile.signing
        assert signing is not None
        label = f"{signing.signer.name} (signature)"
        route = f"POST /v1/sign/{name}"
        encrypted = self.call("POST", f"/v1/encrypt/{name}", {"payload": partner.example.payload})
        if encrypted.status != 200:
            return _failed(name, label, route, f"encrypt answered {encrypted.status}")
        body = json.dumps(encrypted.body.get("payload"), separators=(",", ":"))
        key = str(uuid.uuid4())
        signed = self.call("POST", f"/v1/sign/{name}", {"body": body, "idempotency_key": key})
        if signed.status != 200:
            return _failed(name, label, route, f"sign answered {signed.status}")
        headers = signed.body.get("headers")
        headers = {str(k): str(v) for k, v in headers.items()} if isinstance(headers, dict) else {}
        secret = self.stack.resources.secrets[name].value
        verdict = check(partner.document["signing"], secret, headers, body.encode("utf-8"))
        texts = list(_strings(signed.body))
        returned = sorted(
            field_name
            for field_name, value in secret.items()
            if field_name not in verdict.shown_fields and any(value in text for text in texts)
        )
        named = signed.body.get("attached_by_gateway")
        missing = sorted(verdict.attached_by_gateway - set(named if isinstance(named, list) else []))
        if verdict.problem is not None:
            note = verdict.problem
        elif returned:
            note = f"stored credential returned: {', '.join(returned)}"
        elif missing:
            note = f"attached_by_gateway does not name {', '.join(missing)}"
        elif headers.get(partner.profile.idempotency_header) != key:
            note = f"no {partner.profile.idempotency_header}"
        else:
            note = (
                "independent HMAC matches; no stored credential returned; "
                f"{', '.join(sorted(verdict.attached_by_gateway))} attached by the gateway"
            )
            return FlowResult(name, label, route, None, True, signed.latency_ms, note)
        return FlowResult(name, label, route, None, False, signed.latency_ms, note)

    def webhook_flow(self, partner: PartnerExample) -> FlowResult:
        """The partner's signed notification is accepted and queued; a forged one is refused."""
        name, webhook = partner.name, partner.profile.webhook
        assert webhook is not None
        label = f"{webhook.verifier.name} (webhook)"
        route = f"POST /v1/webhooks/{name}"
        body = partner.example.webhook_body
        sandbox = self._notifier(name)
        if sandbox is None or not isinstance(body, dict):
            return _failed(name, label, route, "no sandbox that sends this partner's notifications")
        identifying = getattr(webhook.options, "dedupe_fields", ())
        notification = {**body, **_fresh_identity(body, identifying)}
        url = self.stack.base_url + f"/v1/webhooks/{name}"
        started = time.perf_counter()
        status, answer = sandbox.notify(url, notification)
        latency = (time.perf_counter() - started) * 1000
        self._keep("POST", f"/v1/webhooks/{name}", status, answer, latency)
        queued = status == 200 and self._on_inbound_queue(notification)
        forged = {**body, **_fresh_identity(body, identifying)}
        forged_status, forged_answer = sandbox.notify(url, forged, secret="forged-" + uuid.uuid4().hex)
        self._keep("POST", f"/v1/webhooks/{name}", forged_status, forged_answer, 0.0)
        verified = queued and forged_status == 401
        if verified:
            note = "accepted, on the inbound queue; forged one refused"
        elif not queued:
            note = f"webhook answered {status}" if status != 200 else "not on the inbound queue"
        else:
            note = f"forged notification answered {forged_status}"
        return FlowResult(name, label, route, queued, verified, latency, note)

    # --- helpers --------------------------------------------------------------------------------------------

    def call(self, method: str, path: str, body: Any = None) -> Answer:
        """One request to the local API (``path`` without the stage), signed with SigV4 (botocore's signer, the
        stack's throwaway credentials) as a caller of the deployed API signs it; the answer is also kept in
        :attr:`answers`."""
        data = None if body is None else json.dumps(body).encode("utf-8")
        headers = sign(
            method,
            self.stack.base_url + path,
            body=data or b"",
            headers={"Content-Type": "application/json"} if data is not None else {},
            credentials=self.stack.credentials,
            region=self.stack.region,
        )
        connection = http.client.HTTPConnection(self._host, self._port, timeout=WAIT_SECONDS)
        started = time.perf_counter()
        try:
            connection.request(method, self._prefix + path, body=data, headers=headers)
            response = connection.getresponse()
            raw = response.read()
        finally:
            connection.close()
        latency = (time.perf_counter() - started) * 1000
        text = raw.decode("utf-8", "replace")
        try:
            parsed = json.loads(text) if text else {}
        except ValueError:
            parsed = {}
        answer = Answer(
            method, path, response.status, parsed if isinstance(parsed, dict) else {}, text, latency
        )
        self.answers.append(answer)
        return answer

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

    def _notifier(self, partner: str) -> Notifier | None:
        """The partner's sandbox if it sends notifications."""
        if partner not in self.stack.sandboxes.urls:
            return None
        sandbox = self.stack.sandboxes[partner]
        return sandbox if isinstance(sandbox, Notifier) else None

    def _keep(self, method: str, path: str, status: int, body: dict[str, Any], latency_ms: float) -> None:
        """Keep an answer the local API gave to someone else (a sandbox's notification)."""
        self.answers.append(Answer(method, path, status, body, json.dumps(body), latency_ms))

    def _on_inbound_queue(self, notification: Mapping[str, Any]) -> bool:
        """Whether the notification is on the inbound queue. It is left there (visible again at once), as the
        internal consumer's to take."""
        clients = self.stack.clients
        assert clients is not None
        queue_url = self.stack.resources.queue_url("InboundQueue")
        deadline = time.monotonic() + 5.0
        while time.monotonic() < deadline:
            messages = clients.sqs.receive_message(
                QueueUrl=queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=1, VisibilityTimeout=0
            ).get("Messages", [])
            for message in messages:
                try:
                    queued = json.loads(json.loads(message.get("Body", "{}")).get("body", "{}"))
                except (ValueError, AttributeError):
                    continue
                if queued == notification:
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
        note = checked if self.verified else self.note or _reason(self.verification)
        return FlowResult(partner, scheme, route, self.delivered, self.verified, self.latency_ms, note)


def _fresh_identity(body: Mapping[str, Any], dedupe_fields: tuple[str, ...]) -> dict[str, Any]:
    """A new value for the first field that identifies a notification, so that each run's is a new one."""
    for name in dedupe_fields:
        if isinstance(body.get(name), str):
            return {name: f"{body[name]}-{uuid.uuid4().hex[:12]}"}
    return {}


def _strings(value: Any) -> Iterator[str]:
    """Every string in a parsed JSON value, keys included."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield str(key)
            yield from _strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item)


def _verification(stack: LocalStack, partner: str, idempotency_key: str) -> Verification | None:
    """The sandbox's last verification of the request carrying ``idempotency_key``."""
    found = [v for v in stack.sandboxes[partner].verifications if v.idempotency_key == idempotency_key]
    return found[-1] if found else None


def _reason(verification: Verification | None) -> str:
    return "sandbox received nothing" if verification is None else f"sandbox: {verification.reason}"


def _failed(partner: str, scheme: str, route: str, note: str) -> FlowResult:
    return FlowResult(partner, scheme, route, False, False, 0.0, note)


# --- output -------------------------------------------------------------------------------------------------


def table(results: list[FlowResult]) -> str:
    """The flows as a fixed-width table."""
    header = ("partner", "scheme", "route", "delivered", "verified", "latency ms", "checked")
    rows = [
        (
            r.partner,
            r.scheme,
            r.route,
            "-" if r.delivered is None else "yes" if r.delivered else "NO",
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


def checkout_of(directory: Path) -> Path:
    """The checkout the demo is about: ``directory`` (where the command was started) if it holds one, else
    the one this package belongs to."""
    is_checkout = (directory / "template.yaml").is_file() and (directory / "layers/crypto/sealgate").is_dir()
    return directory.resolve() if is_checkout else ROOT


def loaded_outside(checkout: Path, stack: LocalStack | None = None) -> list[str]:
    """What would run from outside ``checkout``: this process's ``sealgate`` and ``sealgate_local``, and with
    ``stack`` every worker's ``sealgate``, handler and harness (see :meth:`LocalStack.loaded_outside`)."""
    found = [
        f"demo: {module.__name__}: {Path(module.__file__).resolve().parent}"
        for module in (sealgate, sealgate_local)
        if module.__file__ and not Path(module.__file__).resolve().is_relative_to(checkout)
    ]
    return found + (stack.loaded_outside(checkout) if stack is not None else [])


def _refuse(checkout: Path, found: list[str]) -> int:
    print(f"REFUSED: the demo would not run this checkout's code ({checkout}):", file=sys.stderr)
    for line in found:
        print(f"  {line}", file=sys.stderr)
    print(
        "  Run it with `make demo` (it puts layers/crypto and local first on the path), or reinstall the venv.",
        file=sys.stderr,
    )
    return 2


def main(*, built: bool = False, echo: Callable[[str, str], None] | None = None) -> int:
    """Start the stack, run the flows, print the table and summary; 0 only if every flow was verified, 2 if any
    code would come from outside the checkout (a copied tree run with another tree's install)."""
    checkout = checkout_of(Path.cwd())
    found = loaded_outside(checkout)
    if found:
        return _refuse(checkout, found)
    print(f"Starting the local stack{' from the SAM build' if built else ''}...", flush=True)
    with LocalStack(built=built, echo=echo, iam_auth=True) as stack:
        found = loaded_outside(checkout, stack)
        if found:
            return _refuse(checkout, found)
        workers = sum(map(len, stack.origins().values()))
        print(f"Every worker ({workers}) runs this checkout's sealgate and functions.", flush=True)
        results = Demo(stack).run()
        print()
        print(table(results))
        print(
            "verified: forward: the partner's sandbox checked and opened what the gateway sent; "
            "signature: an independent HMAC matched and no stored credential came back; "
            "webhook: the gateway checked the sandbox's signature"
        )
        print()
        print(summary(stack))
    ok = all(r.verified for r in results)
    print()
    print("All flows verified." if ok else "Some flows were NOT verified.")
    return 0 if ok else 1
