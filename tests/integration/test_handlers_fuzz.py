"""Malformed and adversarial input at every route of the three functions, on moto: API Gateway proxy events
from ``events/`` mutated by hypothesis, and SQS batches of arbitrary records for the forward function.

What must hold, whatever the input (the project's standard):

- an API answer is below 500 and strict UTF-8 JSON (no ``NaN``, no lone surrogate); a refusal is exactly
  ``{"code", "message"}``, its code one the layer defines (``errors.py``, ``http_api``), with that code's status;
- nothing the functions print (logs, audit records, EMF metrics) holds a traceback, a throwaway key of the stack
  or a marker of the payloads (a fake card number, CVV, CPF); neither does an answer, except what a route returns
  of the caller's own data by design: the decrypt route's plaintext, the encrypt route's fields that are not
  protected (checked equal to what was sent), the idempotency key an enqueue or a signature echoes, and what
  the sign route derives from the partner's current secret (X-Login, x-asset); a stored credential (X-Trans-Key,
  a bearer API key, PayKun's headers) is only named in ``attached_by_gateway``, never returned;
- an enqueue queues the protected form only: the fields the scheme protects hold no marker;
- a webhook's every refused authentication is a 401 counted in ``SignatureCheckFailed``;
- an SQS batch never raises; with every dependency up, each record is delivered, or (a producer's plain message)
  protected and queued again, or dead-lettered with a stable ``reason``, or is the duplicate of an earlier one
  (Powertools idempotency), and none is left failed. A dead letter is the protected record as it was, or
  metadata only: never a plaintext payload.

Examples share one cold start per test (moto state included), as the invocations of a warm Lambda do.
"""

from __future__ import annotations

import base64
import copy
import json
import re
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import event as note
from hypothesis import strategies as st
from hypothesis.control import currently_in_test_context

from sealgate import errors, http_api, metric_names
from sealgate.outbound import forward_id
from sealgate.partners import Profile, load_profiles, served_by
from sealgate_local.aws_stack import StackResources
from sealgate_local.https_server import HttpsServer
from tests.integration import oracles
from tests.integration.conftest import (
    EVENTS,
    Answer,
    Function,
    Output,
    event,
    leaks,
    receive,
    secret_values,
    sqs_event,
)

# A request that emits no metric is normal; Powertools warns about it on every such invocation.
pytestmark = pytest.mark.filterwarnings("ignore:No application metrics to publish:UserWarning")

PROFILES: dict[str, Profile] = load_profiles()
SIGNED = served_by("sign", PROFILES)  # partners that sign requests or send webhooks

# Distinctive values put into the payloads: none may reach a log, a refusal or a protected field's place.
CARD = "4000056655665556"
CVV = "Cvv7319Marker"
CPF = "39053344705"
MARKERS = {"card number": CARD, "cvv": CVV, "cpf": CPF}


def _refusal_statuses() -> dict[str, int]:
    """Every code a refusal (status < 500) may carry, and its status: from the layer's error classes."""
    assert http_api.BadJson.code == "bad_json"  # the one refusal defined outside errors.py
    found: dict[str, int] = {}
    pending: list[type[errors.SealgateError]] = [errors.SealgateError]
    while pending:
        cls = pending.pop()
        pending.extend(cls.__subclasses__())
        if cls.http_status < 500:
            assert found.setdefault(cls.code, cls.http_status) == cls.http_status, cls
    return found


REFUSALS = _refusal_statuses()


def fuzz(examples: int) -> settings:
    return settings(
        max_examples=examples,
        deadline=None,
        suppress_health_check=[
            HealthCheck.function_scoped_fixture,  # one cold start per test, like a warm Lambda
            HealthCheck.too_slow,
            HealthCheck.data_too_large,
        ],
    )


# --- JSON-ish text: valid JSON, and everything Python's json reads that is not ---------------------------------


@dataclass(frozen=True)
class Raw:
    """JSON text placed as is in a document (it may not be JSON at all)."""

    text: str


def dump(value: Any, *, ascii_only: bool = True) -> str:
    """``value`` as JSON text, :class:`Raw` parts verbatim."""
    if isinstance(value, Raw):
        return value.text
    if isinstance(value, dict):
        members = (
            f"{json.dumps(str(k), ensure_ascii=ascii_only)}:{dump(v, ascii_only=ascii_only)}"
            for k, v in value.items()
        )
        return "{" + ",".join(members) + "}"
    if isinstance(value, list):
        return "[" + ",".join(dump(v, ascii_only=ascii_only) for v in value) + "]"
    return json.dumps(value, ensure_ascii=ascii_only)


def mostly(usual: st.SearchStrategy[Any], odd: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """``usual`` three times in four, else ``odd``."""
    return st.integers(0, 3).flatmap(lambda n: odd if n == 0 else usual)


ANY_TEXT = st.text(st.characters(codec=None, exclude_categories=()), max_size=40)  # surrogates included
ODD_TEXT = [
    '"\\ud800"',  # a lone surrogate: no UTF-8 for it
    '"x\\udfffy"',
    '"\\ud83d\\ude00"',  # a valid pair
    '"\\u0000"',
    '"\u202e\ufeff"',
    '"' + "\\" * 3 + '"',  # not JSON
]
ODD_NUMBERS = ["NaN", "Infinity", "-Infinity", "1e999", "-1e999", "1e-999", "-0", "0e0"]
TOO_MANY_DIGITS = st.sampled_from([4300, 4301, 5000]).map(lambda n: "1" * n)  # Python's int digit limit: 4300
FIELD_NAMES = [
    "payload",
    "body",
    "operation",
    "idempotency_key",
    "partner",
    "id",
    "card",
    "number",
    "cvv",
    "cpf",
    "cnpj",
    "birthdate",
    "enc_cpf",
    "enc_",
    "encrypted_data",
    "encryptedRequest",
    "encrypted_request",
    "iv",
    "value",
    "mac",
    "tag",
    "__proto__",
    "",
]

keys = st.one_of(
    st.sampled_from(FIELD_NAMES).map(json.dumps), ANY_TEXT.map(json.dumps), st.sampled_from(ODD_TEXT)
)


def json_texts(*, markers: bool = True) -> st.SearchStrategy[str]:
    """Any JSON-ish text (valid or not); with ``markers``, some of its strings are markers."""
    scalars = st.one_of(
        st.none().map(json.dumps),
        st.booleans().map(json.dumps),
        st.integers().map(str),
        st.floats(allow_nan=False, allow_infinity=False).map(json.dumps),
        st.tuples(ANY_TEXT, st.booleans()).map(lambda t: json.dumps(t[0], ensure_ascii=t[1])),
        st.sampled_from(sorted(MARKERS.values()) if markers else ["0"]).map(json.dumps),
        st.sampled_from(ODD_TEXT + ODD_NUMBERS),
        TOO_MANY_DIGITS,
    )
    return st.recursive(
        scalars,
        lambda inner: st.one_of(
            st.lists(inner, max_size=4).map(lambda items: "[" + ",".join(items) + "]"),
            st.lists(st.tuples(keys, inner), max_size=4).map(
                lambda pairs: "{" + ",".join(f"{k}:{v}" for k, v in pairs) + "}"
            ),
        ),
        max_leaves=12,
    )


raw_json = json_texts()
raw_json_without_markers = json_texts(markers=False)


@st.composite
def deep(draw: st.DrawFn) -> str:
    """Nesting from ordinary to far past the recursion limit."""
    depth = draw(st.sampled_from([50, 63, 64, 65, 100, 900, 1000, 5000, 9990, 20000]))
    if draw(st.booleans()):
        return "[" * depth + "]" * depth
    return '{"a":' * depth + "1" + "}" * depth


def _paths(value: Any, at: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    yield at
    if isinstance(value, dict):
        for key, child in value.items():
            yield from _paths(child, (*at, key))
    elif isinstance(value, list):
        for index, child in enumerate(value):
            yield from _paths(child, (*at, index))


def _at(value: Any, path: tuple[Any, ...]) -> Any:
    for step in path:
        value = value[step]
    return value


CHANGES = ["retype", "retype", "marker", "drop", "add", "wrap"]


@st.composite
def mutated(draw: st.DrawFn, document: Any, *, markers: bool = True) -> Any:
    """``document`` with 0-3 changes: a value of another type (any JSON-ish text), a marker, a key removed or
    added, a value wrapped in a list. Without ``markers``, no marker is put in."""
    texts = raw_json if markers else raw_json_without_markers
    value = copy.deepcopy(document)
    for _ in range(draw(st.integers(0, 3))):
        path = draw(st.sampled_from(list(_paths(value))))
        change = draw(st.sampled_from(CHANGES if markers else [c for c in CHANGES if c != "marker"]))
        if change == "add":
            target = _at(value, path)
            if isinstance(target, dict):
                target[draw(st.sampled_from(FIELD_NAMES))] = Raw(draw(texts))
            elif isinstance(target, list):
                target.append(Raw(draw(texts)))
            continue
        if change == "drop" and path:
            parent = _at(value, path[:-1])
            del parent[path[-1]]
            continue
        old = _at(value, path)
        new: Any = {
            "retype": Raw(draw(texts)),
            "marker": draw(st.sampled_from(sorted(MARKERS.values()))),
            "wrap": [old],
            "drop": None,
        }[change]
        if not path:
            value = new
        else:
            _at(value, path[:-1])[path[-1]] = new
    return value


def json_bodies(document: Any) -> st.SearchStrategy[str | None]:
    """Request bodies around a valid ``document``: mutated copies of it (most), any JSON-ish text, junk text,
    deep nesting, oversize."""
    return mostly(
        st.tuples(mutated(document), st.booleans()).map(lambda t: dump(t[0], ascii_only=t[1])),
        st.one_of(
            raw_json,
            ANY_TEXT,
            st.sampled_from(
                [None, "", " ", "null", "[]", "{}", '"payload"', '{"payload":}', '{"payload":1,}']
            ),
            deep(),
            st.sampled_from([300 * 1024, 256 * 1024 + 1]).map(lambda n: '{"payload":"' + "x" * n + '"}'),
        ),
    )


@st.composite
def transported(draw: st.DrawFn, bodies: st.SearchStrategy[str | None]) -> tuple[str | None, bool]:
    """(body, isBase64Encoded): the body as text, or base64 of its bytes, or base64 that is not valid."""
    text = draw(bodies)
    how = draw(st.sampled_from(["text", "text", "text", "base64", "urlsafe", "unpadded", "junk"]))
    if how == "text" or text is None:
        return text, how != "text" and draw(st.booleans())
    data = text.encode("utf-8", "surrogatepass")
    if how == "base64":
        return base64.b64encode(data).decode(), True
    if how == "urlsafe":
        return base64.urlsafe_b64encode(data).decode(), True
    if how == "unpadded":
        return base64.b64encode(data).decode().rstrip("="), True
    return text + "%%%", True


def seeded(name: str) -> Any:
    """The body of ``events/<name>.json`` with the markers in it: card number, CVV and CPF where the event has
    them, and as extra fields of payloads that have none."""
    text = event(name)["body"]
    text = text.replace("4111111111111111", CARD).replace('"cvv":"123"', f'"cvv":"{CVV}"')
    document: Any = json.loads(text.replace("52998224725", CPF))
    if not isinstance(document, dict):  # Netcore's webhook: a list of events
        return document
    payload = document.get("payload")
    if isinstance(payload, list):
        payload.append({"card": CARD, "cvv": CVV, "cpf": CPF})
    elif isinstance(payload, dict) and "card" not in payload and "cpf" not in payload:
        payload.update(card_number=CARD, cvv=CVV, document=CPF)
    if isinstance(document.get("body"), str):  # sign: the exact body to send
        document["body"] = json.dumps({"card": {"number": CARD, "cvv": CVV}, "document": CPF})
    return document


# --- route names and partners -----------------------------------------------------------------------------------

ROUTE_CHARS = st.characters(
    codec=None,
    categories=["L", "N"],
    include_characters="-._~()'!*:@,;=+&$%<> []{}|^/#?\\",
)
partner_names = st.one_of(
    st.sampled_from(sorted(PROFILES)),
    st.sampled_from(["acme", "DLOCAL", "dlocal ", " netcore", "net%63ore", "..", "paykun.", "dlocal;x"]),
    st.sampled_from(sorted(MARKERS.values())),
    st.text(ROUTE_CHARS, min_size=1, max_size=30),
)

ROUTES = (
    ("POST", re.compile(r"/v1/encrypt/([^/]+)/*"), "encrypt"),
    ("POST", re.compile(r"/v1/decrypt/([^/]+)/*"), "decrypt"),
    ("POST", re.compile(r"/v1/sign/([^/]+)/*"), "sign"),
    ("POST", re.compile(r"/v1/webhooks/([^/]+)/*"), "webhook"),
    ("POST", re.compile(r"/v1/forward/([^/]+)/*"), "enqueue"),
    ("GET", re.compile(r"/v1/forward/([^/]+)/*"), "status"),
)


def route_of(sent: Mapping[str, Any]) -> tuple[str, str] | None:
    """(route, path variable) of an event, if its method and path name one (trailing slashes and a lowercase method
    allowed, as the Powertools REST resolver allows them)."""
    for method, pattern, name in ROUTES:
        match = pattern.fullmatch(str(sent.get("path")))
        if match and str(sent.get("httpMethod")).upper() == method:
            return name, match[1]
    return None


def derived_fields(profile: Profile) -> set[str]:
    """The secret fields whose values the sign route returns (derived headers such as X-Login or x-asset), found
    by signing with a secret of distinct probe values: the scheme says, no name is branched on."""
    probe = {name: f"probe-{index}-{uuid.uuid4().hex}" for index, name in enumerate(profile.secret_fields)}
    derived = json.dumps(profile.request_headers(probe, b"{}", idempotency_key=None).derived)
    return {name for name, value in probe.items() if value in derived}


def credential_headers(profile: Profile) -> list[str]:
    """The names of the stored-credential headers the gateway attaches itself (never returned by default)."""
    probe = {name: f"probe-{uuid.uuid4().hex}" for name in profile.secret_fields}
    return sorted(profile.request_headers(probe, b"{}", idempotency_key=None).credentials)


# --- invoking and checking ----------------------------------------------------------------------------------------


def emitted(printed: str, name: str, *, partner: str | None = None) -> float:
    """Sum of metric ``name`` in the EMF lines of ``printed``: the service-wide series, or with ``partner`` the
    partner-dimensioned one."""
    total = 0.0
    for line in printed.splitlines():
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            continue
        if not isinstance(record, dict) or record.get("partner") != partner:
            continue
        for directive in record.get("_aws", {}).get("CloudWatchMetrics", []):
            if any(metric["Name"] == name for metric in directive.get("Metrics", [])):
                value = record[name]
                total += sum(value) if isinstance(value, list) else float(value)
    return total


def _no_constant(name: str) -> Any:
    raise AssertionError(f"{name} in an answer is not JSON")


def sent_json(sent: Mapping[str, Any]) -> Any:
    """The JSON value of an event's body, as the function read it (for a 2xx answer it was valid)."""
    text = sent.get("body") or ""
    data = base64.b64decode(text) if sent.get("isBase64Encoded") else text.encode("utf-8", "surrogatepass")
    return json.loads(data)


def protected_residue(profile: Profile, sent: Any, got: Any) -> Any:
    """What of a protected payload ``got`` (made of ``sent``) must hold no marker: the tokens. The parts the
    layout leaves alone are checked equal to what was sent and may hold anything."""
    protection = profile.protection
    options: Any = protection.layout_options
    layout = protection.layout.name
    if layout == "enc-params":  # the listed fields -> enc_<field> tokens
        protected = [name for name in options.fields if name in sent]
        tokens = {f"enc_{name}" for name in protected}
        assert {k: v for k, v in got.items() if k not in tokens} == {
            k: v for k, v in sent.items() if k not in protected
        }
        return [got[token] for token in sorted(tokens)]
    if layout == "card":  # the card's number and cvv -> encrypted_data
        card_field = options.card_field
        card = dict(got[card_field])
        encrypted = card.pop("encrypted_data")
        assert {k: v for k, v in got.items() if k != card_field} == {
            k: v for k, v in sent.items() if k != card_field
        }
        assert card == {k: v for k, v in sent[card_field].items() if k not in ("number", "cvv")}
        return encrypted
    assert layout == "wrap", layout  # the whole body -> one token
    assert list(got) == [options.wrap_field]
    return got


def encrypt_residue(partner: str, sent: Any, answer: Mapping[str, Any]) -> Any:
    """What of an encrypt answer must hold no marker: the protected fields (and Infosimples' receipts, MD5s of
    the values)."""
    profile = PROFILES[partner]
    assert set(answer) <= {"partner", "scheme", "payload", "receipts"}
    assert (answer["partner"], answer["scheme"]) == (partner, profile.protection.scheme)
    residue = protected_residue(profile, sent, answer["payload"])
    options: Any = profile.protection.layout_options
    if profile.protection.layout.name == "enc-params":
        assert set(answer.get("receipts", {})) == {name for name in options.fields if name in sent}
    else:
        assert "receipts" not in answer
    return residue, answer.get("receipts")


PROTECTED_FORM = frozenset(
    {"v", "id", "partner", "operation", "idempotency_key", "protected", "key_version", "fields"}
)


def check_protected_message(
    text: str,
    partner: str,
    plain: Mapping[str, Any],
    stack: StackResources,
    *,
    outcome_id: str | None = None,
) -> dict[str, Any]:
    """A queued message made of a plain request for ``partner`` (``plain``: ``operation``, ``payload``,
    ``idempotency_key``?): the protected form, whose protected fields hold no marker, and no key anywhere. Its
    id is ``outcome_id`` (a producer's own), by default the one of its partner and idempotency key."""
    message = json.loads(text)
    assert set(message) == PROTECTED_FORM, sorted(message)
    assert (message["v"], message["partner"]) == (1, partner)
    assert message["operation"] == plain["operation"]
    if plain.get("idempotency_key") is not None:  # null: the record's message id stands in
        assert message["idempotency_key"] == plain["idempotency_key"]
    assert message["id"] == (outcome_id or forward_id(partner, message["idempotency_key"]))
    assert isinstance(message["key_version"], str)
    assert isinstance(message["fields"], list)
    assert all(isinstance(name, str) for name in message["fields"])
    residue = protected_residue(PROFILES[partner], plain["payload"], message["protected"])
    assert leaks(json.dumps(residue, ensure_ascii=False), MARKERS) == []
    assert leaks(text, secret_values(stack)) == []
    return message


def drain(stack: StackResources, queue: str) -> list[dict[str, Any]]:
    """Every message in ``queue``, received and deleted."""
    assert stack.clients is not None
    got = []
    while True:
        messages = receive(stack, queue)
        if not messages:
            return got
        got.extend(messages)
        for message in messages:
            stack.clients.sqs.delete_message(
                QueueUrl=stack.queue_url(queue), ReceiptHandle=message["ReceiptHandle"]
            )


class Harness:
    """Invokes the functions and checks every answer and everything printed against the standard."""

    def __init__(self, stack: StackResources, output: Output, cold_start: Callable[..., Function]) -> None:
        self.stack = stack
        self.output = output
        self.cold_start = cold_start
        self.functions: dict[str, Function] = {}

    def __repr__(self) -> str:
        return f"Harness(functions={sorted(self.functions)})"

    def start(self, function: str, **environment: str) -> Function:
        """The function, cold-started on first use (later examples reuse it, as a warm Lambda would)."""
        if function not in self.functions:
            self.functions[function] = self.cold_start(function, **environment)
        return self.functions[function]

    def invoke(self, function: str, sent: Mapping[str, Any]) -> tuple[Answer, str]:
        """The answer to ``sent``, and what the function printed meanwhile."""
        self.output.read()
        out, err = len(self.output.out), len(self.output.err)
        reply = self.functions[function].call(sent)
        self.output.read()
        return reply, self.output.out[out:] + self.output.err[err:]

    def call(self, function: str, sent: Mapping[str, Any]) -> Answer:
        reply, printed = self.invoke(function, sent)
        self.check(sent, reply, printed)
        return reply

    def check(self, sent: Mapping[str, Any], reply: Answer, printed: str) -> None:
        if currently_in_test_context():  # for --hypothesis-show-statistics: what the examples reached
            note(f"{(route_of(sent) or ('no route',))[0]}: {reply.status} {reply.code or ''}")
        assert reply.status < 500, reply.text
        assert reply.headers.get("Content-Type") == "application/json"
        reply.text.encode(
            "utf-8"
        )  # the Python 3.12+ runtime encodes it: a lone surrogate fails the invocation
        body = json.loads(reply.text, parse_constant=_no_constant)
        secrets = secret_values(self.stack)
        shown: Any = reply.text
        if reply.status >= 300:
            assert isinstance(body, dict), reply.text
            assert set(body) == {"code", "message"}, reply.text
            assert isinstance(body["message"], str)
            assert REFUSALS.get(body["code"]) == reply.status, reply.text
        else:
            route, variable = route_of(sent) or ("", "")
            assert route, f"a {reply.status} from a route that is not one: {sent.get('path')}"
            if route == "encrypt":
                shown = encrypt_residue(variable, sent_json(sent)["payload"], body)
            elif route == "decrypt":  # the plaintext is the answer, by design
                shown = {k: v for k, v in body.items() if k != "payload"}
            elif route in ("enqueue", "status"):  # the caller's idempotency key comes back
                key = sent_json(sent).get("idempotency_key") if route == "enqueue" else None
                if isinstance(key, str):
                    assert body["idempotency_key"] == key
                shown = {k: v for k, v in body.items() if k != "idempotency_key"}
            elif route == "sign":  # the derived headers (and the caller's idempotency key) are the answer
                profile = PROFILES[variable]
                assert set(body) == {"partner", "headers", "attached_by_gateway"}, reply.text
                assert body["partner"] == variable
                credentials = credential_headers(profile)
                assert body["attached_by_gateway"] == credentials  # named, never returned
                headers = dict(body["headers"])
                assert not profile.release_stored_credentials  # none of the shipped profiles opts in
                assert not {name.lower() for name in headers} & {name.lower() for name in credentials}
                key = sent_json(sent).get("idempotency_key")
                assert headers.pop(profile.idempotency_header, None) == key
                shown = {**body, "headers": headers}
                fields = {f"current:{variable}:{name}" for name in derived_fields(profile)}
                secrets = {k: v for k, v in secrets.items() if k not in fields}
        shown_text = shown if isinstance(shown, str) else json.dumps(shown, ensure_ascii=False)
        assert leaks(shown_text, MARKERS) == [], reply.text
        assert leaks(reply.text, secrets) == []
        self.check_printed(
            printed, status=reply.status, code=body.get("code") if reply.status >= 300 else None
        )

    def check_printed(self, printed: str, *, status: int | None = None, code: str | None = None) -> None:
        assert leaks(printed, MARKERS) == []
        assert leaks(printed, secret_values(self.stack)) == []
        for banned in ("Traceback", "unexpected error", "internal_error"):
            assert banned not in printed
        partners = set(PROFILES) | {None}
        for line in printed.splitlines():
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                continue
            audit = record.get("audit") if isinstance(record, dict) else None
            if audit is None:
                continue
            assert audit["partner"] in partners
            requeued = (audit["action"], audit["outcome"], audit["reason"]) == (
                "forward.deliver",
                "queued",
                "protected",
            )  # a producer's plain message, protected and queued again
            assert audit["reason"] == "ok" or audit["reason"] in REFUSALS or requeued, audit
            if code is not None and audit["action"] != "forward.deliver":
                assert (audit["reason"], audit.get("status")) == (code, status)


@pytest.fixture
def harness(stack: StackResources, output: Output, cold_start: Callable[..., Function]) -> Harness:
    return Harness(stack, output, cold_start)


def api_event(name: str, partner: str, body: tuple[str | None, bool], **headers: str) -> dict[str, Any]:
    sent = event(name, partner=partner, headers=headers or None)
    sent["body"], sent["isBase64Encoded"] = body
    return sent


# --- encrypt function ---------------------------------------------------------------------------------------------

ENCRYPT_DOCUMENTS = {p: seeded(f"encrypt-{p}") for p in ("infosimples", "netcore", "paykun", "dlocal")}


@fuzz(150)
@given(data=st.data())
def test_encrypt_route(data: st.DataObject, harness: Harness) -> None:
    harness.start("encrypt")
    document = ENCRYPT_DOCUMENTS[data.draw(st.sampled_from(sorted(ENCRYPT_DOCUMENTS)), label="document")]
    partner = data.draw(mostly(st.sampled_from(sorted(ENCRYPT_DOCUMENTS)), partner_names), label="partner")
    body = data.draw(transported(json_bodies(document)), label="body")

    harness.call("encrypt", api_event("encrypt-paykun", partner, body))


@dataclass(frozen=True)
class Tokens:
    """Protected payloads the encrypt route made of the seeded documents (their plaintext holds markers)."""

    by_partner: dict[str, dict[str, Any]]


@pytest.fixture
def tokens(harness: Harness) -> Tokens:
    harness.start("encrypt")
    made = {}
    for partner in ("infosimples", "netcore", "paykun"):
        reply = harness.functions["encrypt"].call(
            event(f"encrypt-{partner}", body=ENCRYPT_DOCUMENTS[partner])
        )
        assert reply.status == 200, reply.text
        made[partner] = reply.body["payload"]
    return Tokens(made)


@st.composite
def altered_token(draw: st.DrawFn, token: str) -> Any:
    """A token: intact, one character changed, cut, extended, re-encoded; a PayKun envelope with its JSON
    mutated; or not a string at all."""
    how = draw(st.sampled_from(["same", "char", "cut", "extend", "case", "rebase", "envelope", "json"]))
    if how == "char":
        index = draw(st.integers(0, len(token) - 1))
        return token[:index] + draw(st.sampled_from("A/+-_=.%é\u0000")) + token[index + 1 :]
    if how == "cut":
        return token[: draw(st.integers(0, len(token)))]
    if how == "extend":
        return token + draw(st.sampled_from(["=", "==", "A", "AAAA", "\n", " ", "."]))
    if how == "case":
        return token.swapcase()
    if how == "rebase":
        return base64.b64encode(token.encode()).decode()
    if how == "envelope":
        try:
            envelope = json.loads(base64.b64decode(token))
        except ValueError:
            return token
        return base64.b64encode(dump(draw(mutated(envelope))).encode("utf-8", "surrogatepass")).decode()
    if how == "json":
        return Raw(draw(raw_json))
    return token


@fuzz(100)
@given(data=st.data())
def test_decrypt_route(data: st.DataObject, harness: Harness, tokens: Tokens) -> None:
    partner = data.draw(st.sampled_from(sorted(tokens.by_partner)), label="tokens of")
    protected = {
        name: data.draw(altered_token(token), label=name)
        for name, token in tokens.by_partner[partner].items()
    }
    document = {"payload": protected}
    target = data.draw(mostly(st.just(partner), st.one_of(st.just("dlocal"), partner_names)), label="partner")
    body = data.draw(transported(json_bodies(document)), label="body")

    harness.call("encrypt", api_event("decrypt-paykun", target, body))


# --- sign function ------------------------------------------------------------------------------------------------

SIGN_DOCUMENTS = {p: seeded(f"sign-{p}") for p in sorted(SIGNED)}
idempotency_keys = st.one_of(
    st.uuids().map(str),
    st.text(st.characters(codec=None, exclude_categories=()), max_size=140),
    st.sampled_from(["", " ", "a b", "x" * 128, "x" * 129, "é", "\u0000", "\ud800"]),
)


@fuzz(80)
@given(data=st.data())
def test_sign_route(data: st.DataObject, harness: Harness) -> None:
    harness.start("sign")
    document = dict(SIGN_DOCUMENTS[data.draw(st.sampled_from(sorted(SIGN_DOCUMENTS)), label="document")])
    document["idempotency_key"] = data.draw(idempotency_keys, label="idempotency key")
    partner = data.draw(mostly(st.sampled_from(sorted(SIGNED)), partner_names), label="partner")
    body = data.draw(transported(json_bodies(document)), label="body")

    harness.call("sign", api_event("sign-dlocal", partner, body))


def x_date(when: datetime) -> str:
    return when.strftime("%Y-%m-%dT%H:%M:%S.") + f"{when.microsecond // 1000:03d}Z"


@st.composite
def notifications(draw: st.DrawFn, stack: StackResources) -> dict[str, Any]:
    """A dLocal notification: any body (text or base64), an X-Date fresh, stale, malformed or missing, and an
    Authorization that is right, wrong, malformed or missing; header names in any case."""
    secret = stack.secrets["dlocal"].value
    text, is_base64 = draw(
        transported(
            st.one_of(
                json_bodies(json.loads(event("webhook-dlocal")["body"])),
                st.just('{"card":{"number":"' + CARD + '","cvv":"' + CVV + '"},"document":"' + CPF + '"}'),
                st.just('{"status":"PAID","note":"' + "é" * 100_000 + '"}'),  # fits the body limit, not SQS's
            )
        )
    )
    try:
        raw = http_api.raw_body(text, is_base64, 256 * 1024)
    except errors.SealgateError:
        raw = b""
    now = datetime.now(UTC)
    date = draw(
        st.one_of(
            st.just(x_date(now)),
            st.integers(-3600, 3600).map(lambda s: x_date(now + timedelta(seconds=s))),
            st.sampled_from(
                ["", " ", "2025-13-45T99:99:99Z", "9999-12-31T23:59:59.999999999+99:99", "\ud800"]
            ),
            ANY_TEXT,
        )
    )
    login = draw(st.sampled_from([secret["x_login"], "sak223k2wdksdl2", ""]))
    try:
        right = oracles.dlocal_v2(secret["secret_key"], secret["x_login"], date, raw)
    except UnicodeEncodeError:
        right = "0" * 64
    authorization = draw(
        st.one_of(
            st.just(f"V2-HMAC-SHA256, Signature: {right}"),
            st.just(f"V2-HMAC-SHA256,Signature:{right.upper()}"),
            st.just(right),
            st.just(f"V1-HMAC-SHA256, Signature: {right}"),
            st.text("0123456789abcdefABCDEF", min_size=63, max_size=65).map(
                lambda h: f"V2-HMAC-SHA256, Signature: {h}"
            ),
            ANY_TEXT,
        )
    )
    headers = {"X-Date": date, "X-Login": login, "Authorization": authorization}
    for name in draw(st.sets(st.sampled_from(sorted(headers)))):
        del headers[name]
    if draw(st.booleans()):
        headers = {draw(st.sampled_from([k.lower(), k.upper(), k])): v for k, v in headers.items()}
    partner = draw(mostly(st.just("dlocal"), st.one_of(st.just("netcore"), partner_names)))
    sent = event("webhook-dlocal", partner=partner)
    for name in ("X-Date", "X-Login", "Authorization"):
        del sent["headers"][name]
    sent["headers"].update(headers)
    sent["body"], sent["isBase64Encoded"] = text, is_base64
    return sent


@fuzz(100)
@given(data=st.data())
def test_webhook_route(data: st.DataObject, harness: Harness, stack: StackResources) -> None:
    harness.start("sign")
    sent = data.draw(notifications(stack), label="notification")

    reply, printed = harness.invoke("sign", sent)

    harness.check(sent, reply, printed)
    if reply.status == 200:
        assert reply.body["status"] == "accepted"
    _, partner = route_of(sent) or ("", "")
    # Every refused authentication is a 401, and counted for the alarm (with the partner's dimension).
    failed = emitted(printed, metric_names.SIGNATURE_CHECK_FAILED, partner=partner)
    if reply.status == 401:
        assert reply.code in {"missing_signature", "signature_mismatch", "stale_notification"}
        assert failed == 1
    else:
        assert failed == 0
    try:
        http_api.raw_body(sent["body"], sent["isBase64Encoded"], 256 * 1024)
    except errors.SealgateError:
        return  # refused before the signature is looked at
    if partner == "dlocal":
        headers = {name.lower(): value for name, value in sent["headers"].items()}
        if not all(headers.get(name) for name in ("x-date", "x-login", "authorization")):
            assert (reply.status, reply.code) == (401, "missing_signature")
        elif headers["x-login"] != stack.secrets["dlocal"].value["x_login"]:  # signed for another merchant
            assert (reply.status, reply.code) == (401, "signature_mismatch")


# --- forward function: API side ------------------------------------------------------------------------------------

ENQUEUE_DOCUMENTS = {
    p: seeded(f"forward-enqueue-{p}") for p in ("infosimples", "netcore", "paykun", "dlocal")
}


@fuzz(100)
@given(data=st.data())
def test_enqueue_route(data: st.DataObject, harness: Harness, stack: StackResources) -> None:
    harness.start("forward")
    seed = data.draw(st.sampled_from(sorted(ENQUEUE_DOCUMENTS)), label="document")
    document = dict(ENQUEUE_DOCUMENTS[seed])
    # Mostly a request that can be queued (its partner, a fresh key), so that what is queued gets checked.
    document["idempotency_key"] = data.draw(
        mostly(st.uuids().map(str), idempotency_keys), label="idempotency key"
    )
    partner = data.draw(
        mostly(st.just(seed), st.one_of(st.sampled_from(sorted(ENQUEUE_DOCUMENTS)), partner_names)),
        label="partner",
    )
    body = data.draw(
        transported(
            st.one_of(
                json_bodies(document),
                # Under the body limit, but not under SQS's once JSON escapes every character.
                st.just('{"operation":"activity","payload":"' + "é" * 100_000 + '"}'),
            )
        ),
        label="body",
    )

    sent = api_event("forward-enqueue-paykun", partner, body)

    reply = harness.call("forward", sent)

    if reply.status < 300:  # the scheme took the payload: one it refuses is a 4xx at once, never queued
        assert refusal_of_plain({**sent_json(sent), "partner": partner}, stack) is None
    queued = drain(stack, "OutboundQueue")
    if reply.status != 202:  # refused, or the duplicate of an earlier request: nothing more is queued
        assert queued == []
        return
    (message,) = queued
    check_protected_message(message["Body"], partner, sent_json(sent), stack)
    assert json.loads(message["Body"])["id"] == reply.body["id"]


@fuzz(60)
@given(data=st.data())
def test_status_route(data: st.DataObject, harness: Harness) -> None:
    forward = harness.start("forward")
    queued = forward.call(event("forward-enqueue-paykun", body=ENQUEUE_DOCUMENTS["paykun"]))
    assert queued.status in (200, 202), queued.text
    target = data.draw(
        st.one_of(
            st.just(queued.body["id"]),
            st.just(queued.body["id"].upper()),
            st.builds(forward_id, st.sampled_from(sorted(PROFILES)), st.uuids().map(str)),
            st.sampled_from(["0" * 32, "a" * 64, "a" * 65, "٣" * 10]),
            partner_names,
        ),
        label="target",
    )
    sent = event("forward-status", partner=target)
    sent["body"], sent["isBase64Encoded"] = data.draw(
        transported(st.one_of(st.none(), raw_json)), label="body"
    )

    reply = harness.call("forward", sent)

    if reply.status == 200:
        assert reply.body["id"] == target


# --- every event, mutated around the body -------------------------------------------------------------------------

API_EVENTS = sorted(p.stem for p in EVENTS.glob("*.json") if p.stem != "sqs-forward-batch")
FUNCTION_OF = {
    "encrypt": "encrypt",
    "decrypt": "encrypt",
    "sign": "sign",
    "webhook": "sign",
    "forward": "forward",
}


@st.composite
def odd_events(draw: st.DrawFn) -> tuple[str, dict[str, Any]]:
    """An event file's event with its method, path, headers, query, identity or encoding made odd."""
    name = draw(st.sampled_from(API_EVENTS))
    sent = event(name)
    if sent["body"] is not None:
        sent["body"] = dump(seeded(name))
    changes = draw(
        st.sets(
            st.sampled_from(
                ["method", "path", "headers", "no headers", "query", "identity", "base64", "body"]
            ),
            min_size=1,
        )
    )
    if "method" in changes:
        sent["httpMethod"] = draw(
            st.sampled_from(["GET", "PUT", "DELETE", "PATCH", "OPTIONS", "HEAD", "post", ""])
        )
    if "path" in changes:
        path = sent["path"]
        sent["path"] = draw(
            st.sampled_from(
                [
                    path + "/",
                    path + "/extra",
                    path.upper(),
                    path.replace("/v1/", "/v2/"),
                    path.replace("/v1/", "//v1/"),
                    path.rsplit("/", 1)[0] + "/",
                    path.rsplit("/", 1)[0] + "/" + CARD,
                    "/",
                    "",
                ]
            )
        )
    if "headers" in changes:
        extra = draw(st.dictionaries(st.text(ROUTE_CHARS, min_size=1, max_size=20), ANY_TEXT, max_size=4))
        headers = {draw(st.sampled_from([k, k.lower(), k.upper()])): v for k, v in sent["headers"].items()}
        sent["headers"] = {**headers, **extra}
        sent["multiValueHeaders"] = {k: [v] for k, v in extra.items()}
    if "no headers" in changes:
        sent["headers"] = draw(st.sampled_from([None, {}]))
        sent["multiValueHeaders"] = draw(st.sampled_from([None, {}]))
    if "query" in changes:
        query = draw(st.dictionaries(ANY_TEXT, ANY_TEXT, min_size=1, max_size=3))
        sent["queryStringParameters"] = query
        sent["multiValueQueryStringParameters"] = {k: [v] for k, v in query.items()}
    if "identity" in changes:
        identity = sent["requestContext"]["identity"]
        for key in draw(st.sets(st.sampled_from(["userArn", "caller", "sourceIp", "accessKey", "user"]))):
            identity[key] = None
        sent["requestContext"]["requestId"] = draw(st.sampled_from([None, "", str(uuid.uuid4())]))
    if "base64" in changes:
        sent["body"], sent["isBase64Encoded"] = draw(transported(st.just(sent["body"])))
    if "body" in changes:
        sent["body"], sent["isBase64Encoded"] = draw(transported(st.one_of(raw_json, ANY_TEXT, st.none())))
    return FUNCTION_OF[name.split("-", 1)[0]], sent


@fuzz(120)
@given(data=st.data())
def test_every_event_with_odd_method_path_headers_and_encoding(data: st.DataObject, harness: Harness) -> None:
    function, sent = data.draw(odd_events(), label="event")
    harness.start(function)

    harness.call(function, sent)


# --- forward function: SQS batches ----------------------------------------------------------------------------------


PARTNER_OF_PATH = {"/" + op.path: name for name, p in PROFILES.items() for op in p.operations.values()}


@pytest.fixture
def partner_server() -> Iterator[HttpsServer]:
    """Every partner's API: answers 200 to anything."""
    with HttpsServer() as server:
        yield server


@pytest.fixture
def forwarder(harness: Harness, partner_server: HttpsServer) -> Function:
    """The forward function, every partner's base URL pointing at ``partner_server``."""
    assert partner_server.ca_bundle is not None
    urls = {f"SEALGATE_BASE_URL_{p.upper()}": partner_server.url for p in PROFILES}
    return harness.start("forward", SEALGATE_CA_BUNDLE=partner_server.ca_bundle, **urls)


def _sqs_text(text: str) -> str:
    """``text`` with the characters SQS refuses in a message body replaced (such a record cannot exist)."""

    def allowed(c: str) -> bool:
        n = ord(c)
        return n in (0x9, 0xA, 0xD) or 0x20 <= n <= 0xD7FF or 0xE000 <= n <= 0xFFFD or n >= 0x10000

    return "".join(c if allowed(c) else "?" for c in text)


def _plain_messages() -> list[dict[str, Any]]:
    """A producer's plain messages (``events/sqs-forward-batch.json``), with the markers where each partner's
    scheme protects them: dLocal's card number and CVV, Infosimples' CPF, and extra fields of the bodies
    Netcore and PayKun get whole."""
    records = json.loads((EVENTS / "sqs-forward-batch.json").read_text(encoding="utf-8"))["Records"]
    found = []
    for record in records:
        message = json.loads(record["body"])
        payload, protection = message["payload"], PROFILES[message["partner"]].protection
        options: Any = protection.layout_options
        if protection.layout.name == "card":
            payload[options.card_field].update(number=CARD, cvv=CVV)
        elif protection.layout.name == "enc-params":
            payload["cpf"] = CPF
        elif isinstance(payload, list):
            payload.append({"card": CARD, "cvv": CVV, "cpf": CPF})
        else:
            payload.update(card_number=CARD, cvv=CVV, document=CPF)
        message.pop("idempotency_key", None)  # the message id stands in: unique per record
        found.append(message)
    assert sorted(m["partner"] for m in found) == sorted(PROFILES)
    return found


PLAIN_MESSAGES = _plain_messages()


@pytest.fixture
def protected_messages(harness: Harness, forwarder: Function, stack: StackResources) -> list[dict[str, Any]]:
    """The plain messages as ``POST /v1/forward`` queues them: the protected form, taken off the queue."""
    for plain in PLAIN_MESSAGES:
        document = {"operation": plain["operation"], "payload": plain["payload"]}
        reply = harness.call("forward", event(f"forward-enqueue-{plain['partner']}", body=document))
        assert reply.status == 202, reply.text
    found = []
    for queued in drain(stack, "OutboundQueue"):
        message = json.loads(queued["Body"])
        (plain,) = (p for p in PLAIN_MESSAGES if p["partner"] == message["partner"])
        check_protected_message(queued["Body"], plain["partner"], plain, stack)
        assert leaks(queued["Body"], MARKERS) == []  # the markers sit only where the scheme protects
        del message["id"], message["idempotency_key"]  # the message id stands in: unique per record
        found.append(message)
    assert len(found) == len(PLAIN_MESSAGES)
    return found


@st.composite
def record_bodies(draw: st.DrawFn, protected: list[dict[str, Any]]) -> str:
    """An outbound message: a producer's plain one or a protected one, mutated (most); any JSON-ish text, junk,
    deep nesting. A protected message is mutated without markers: whatever it holds is what the layer made of a
    payload (a dead letter may return it as it is)."""
    is_plain = draw(st.booleans())
    message = dict(draw(st.sampled_from(PLAIN_MESSAGES if is_plain else protected)))
    if draw(st.booleans()):
        message["idempotency_key"] = draw(idempotency_keys)
    if draw(st.booleans()):
        message["id"] = draw(st.sampled_from(["a" * 3000, "٣" * 20, "", "0" * 32, "x-y"]))
    message["partner"] = draw(mostly(st.just(message["partner"]), partner_names))
    if not is_plain:  # none: sent as it is; another's or one never made: the key rotated beyond recovery
        versions = st.sampled_from(sorted({m["key_version"] for m in protected}))
        message["key_version"] = draw(
            mostly(st.just(message["key_version"]), st.one_of(st.none(), versions, st.uuids().map(str)))
        )
    text = draw(
        mostly(
            mutated(message, markers=is_plain).map(dump),
            st.one_of(raw_json if is_plain else raw_json_without_markers, ANY_TEXT, deep()),
        )
    )
    return _sqs_text(text) or " "


def strict_message(body: str) -> tuple[str, dict[str, Any] | None]:
    """(form, message): ``("protected" | "plain", message)`` if ``body`` is strict JSON (written back unchanged)
    and has what that form needs, else ``("malformed", None)``."""
    malformed: tuple[str, None] = ("malformed", None)
    try:
        data = json.loads(body, parse_constant=_no_constant, object_pairs_hook=_no_repeated_names)
        json.dumps(data, allow_nan=False, ensure_ascii=False).encode("utf-8")
    except (ValueError, RecursionError, UnicodeEncodeError, AssertionError):
        return malformed
    if not isinstance(data, dict):
        return malformed
    if not isinstance(data.get("partner"), str) or not isinstance(data.get("operation"), str):
        return malformed
    key = data.get("idempotency_key")
    if key is not None and not (
        isinstance(key, str)
        and 0 < len(key) <= 128
        and key.isascii()
        and key.isprintable()
        and " " not in key
    ):
        return malformed
    if "protected" in data:
        version, fields = data.get("key_version"), data.get("fields") or []
        # a secret's VersionId: 32 to 64 letters, digits and dashes
        well_formed = isinstance(version, str) and re.fullmatch(r"[A-Za-z0-9-]{32,64}", version, re.ASCII)
        if not (version is None or well_formed) or not isinstance(fields, list):
            return malformed
        return "protected", data
    if "payload" in data:
        return "plain", data
    return malformed


def _no_repeated_names(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """Strict JSON refuses an object that names a member twice, at any depth."""
    names = [name for name, _ in pairs]
    if len(names) != len(set(names)):
        raise ValueError("repeated member name")
    return dict(pairs)


def refusal_of_plain(message: Mapping[str, Any], stack: StackResources) -> str | None:
    """The code the forward function must dead-letter a served partner's plain message with (its scheme
    refuses the payload), or None: it is protected and queued again."""
    partner = message["partner"]
    try:
        PROFILES[partner].protection.protect(message["payload"], stack.secrets[partner].value)
    except errors.SealgateError as error:
        return error.code
    return None


def producers_id(message: Mapping[str, Any]) -> str | None:
    """The outcome id a producer gave its message, if it can be one (alphanumeric, at most 64 characters)."""
    given = message.get("id")
    if isinstance(given, str) and 0 < len(given) <= 64 and given.isascii() and given.isalnum():
        return given
    return None


@pytest.fixture
def seen() -> set[tuple[str, str]]:
    """(partner, idempotency key) of every message delivered so far: a repeat is a duplicate. A refused one is
    not: only a delivery keeps its idempotency record, so a later copy (a redrive) is tried again."""
    return set()


@dataclass
class BatchRun:
    """What one SQS batch did: requests each partner received by (partner, idempotency key), dead letters by the
    record's message id (reason, body), the messages queued again."""

    delivered: dict[tuple[str, str | None], int]
    dead: dict[str, tuple[str, str]]
    requeued: list[dict[str, Any]]


def run_batch(
    harness: Harness, stack: StackResources, partner_server: HttpsServer, messages: list[dict[str, Any]]
) -> BatchRun:
    """Invoke the forward function with ``messages`` as one SQS batch; no record may be left failed."""
    before = len(partner_server.requests)
    harness.output.read()
    out, err = len(harness.output.out), len(harness.output.err)
    result = harness.functions["forward"].invoke(sqs_event(stack, messages))
    harness.output.read()
    printed = harness.output.out[out:] + harness.output.err[err:]

    assert result == {"batchItemFailures": []}, result
    harness.check_printed(printed)
    delivered: dict[tuple[str, str | None], int] = {}
    for request in partner_server.requests[before:]:
        partner = PARTNER_OF_PATH[request.path]
        pair = (partner, request.header(PROFILES[partner].idempotency_header))
        delivered[pair] = delivered.get(pair, 0) + 1
    dead = {}
    for letter in drain(stack, "OutboundDeadLetterQueue"):
        attributes = letter["MessageAttributes"]
        record_id = attributes["original_message_id"]["StringValue"]
        assert record_id not in dead  # dead-lettered once
        dead[record_id] = (attributes["reason"]["StringValue"], letter["Body"])
    return BatchRun(delivered, dead, drain(stack, "OutboundQueue"))


def check_dead_letter(body: str, record: str) -> None:
    """A dead letter is the protected record exactly as it was, or metadata only: never a plaintext payload."""
    letter = json.loads(body)
    assert isinstance(letter, dict)
    if "protected" in letter:
        assert body == record
        assert strict_message(record)[0] == "protected"
    else:
        assert set(letter) == {"partner", "operation", "idempotency_key", "payload"}, body
        assert letter["payload"].startswith("dropped: "), body
        assert letter["partner"] is None or letter["partner"] in PROFILES
        if letter["operation"] is not None:  # named only as one of the named partner's operations
            assert letter["partner"] in PROFILES
            assert letter["operation"] in PROFILES[letter["partner"]].operations
        if letter["idempotency_key"] is not None:  # the record's own, the one value it keeps
            assert json.loads(record)["idempotency_key"] == letter["idempotency_key"]
    kept = {k: v for k, v in letter.items() if k != "idempotency_key"}
    assert leaks(json.dumps(kept, ensure_ascii=False), MARKERS) == [], body


@fuzz(40)
@given(data=st.data())
def test_sqs_batches_of_arbitrary_records(
    data: st.DataObject,
    harness: Harness,
    stack: StackResources,
    forwarder: Function,
    partner_server: HttpsServer,
    protected_messages: list[dict[str, Any]],
    seen: set[tuple[str, str]],
) -> None:
    assert stack.clients is not None
    bodies = data.draw(st.lists(record_bodies(protected_messages), min_size=1, max_size=10), label="records")
    queue = stack.queue_url("OutboundQueue")
    for body in bodies:
        stack.clients.sqs.send_message(QueueUrl=queue, MessageBody=body)
    records = drain(stack, "OutboundQueue")
    assert len(records) == len(bodies)

    first = run_batch(harness, stack, partner_server, records)

    delivered, dead = dict(first.delivered), first.dead
    requeued = {}
    for message in first.requeued:
        body = json.loads(message["Body"])
        requeued.setdefault((body["partner"], body["idempotency_key"]), []).append(message)
    for record in records:
        record_id, body = record["MessageId"], record["Body"]
        form, parsed = strict_message(body)
        note(f"{form} record: {dead[record_id][0] if record_id in dead else 'not dead-lettered'}")
        if record_id in dead:
            check_dead_letter(dead[record_id][1], body)
        reason = dead.get(record_id, (None, ""))[0]
        if parsed is None:
            assert reason == "bad_input", body
            continue
        partner, key = parsed["partner"], parsed.get("idempotency_key") or record_id
        if partner not in PROFILES:
            assert reason == "unknown_partner", body
            continue
        if parsed["operation"] not in PROFILES[partner].operations:
            assert reason == "bad_input", body
            continue
        if form == "plain":  # protected and queued again, or dead-lettered as metadata
            refusal = refusal_of_plain(parsed, stack)
            assert reason == refusal, body
            if refusal is None:
                assert requeued.get((partner, key)), body
                again = requeued[(partner, key)].pop(0)
                check_protected_message(
                    again["Body"], partner, parsed, stack, outcome_id=producers_id(parsed)
                )
                note("plain record: requeued")
            continue
        reached = delivered.pop((partner, key), 0)
        if (partner, key) in seen:  # delivered before: Powertools idempotency answers with that delivery
            assert (reached, reason) == (0, None), body
            continue
        if reason is not None:
            assert reached == 0
            assert reason in REFUSALS, reason
        else:
            seen.add((partner, key))
            assert reached == 1, body
            note("protected record: delivered")
    assert delivered == {}
    assert [m for messages in requeued.values() for m in messages] == []

    # What was queued again is delivered as any protected message is (the duplicate of an earlier one aside).
    if not first.requeued:
        return
    second = run_batch(harness, stack, partner_server, first.requeued)

    assert (second.dead, second.requeued) == ({}, [])
    delivered = dict(second.delivered)
    for message in first.requeued:
        body = json.loads(message["Body"])
        pair = (body["partner"], body["idempotency_key"])
        reached = delivered.pop(pair, 0)
        assert reached == (0 if pair in seen else 1), body
        seen.add(pair)
    assert delivered == {}


# --- regressions the fuzz found --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "body",
    [
        pytest.param('{"payload":"\\ud800"}', id="lone surrogate, whole-body scheme"),
        pytest.param('{"payload":{"order_id":"x\\udfff"}}', id="lone surrogate in a field"),
        pytest.param('{"payload":' + "1" * 5000 + "}", id="integer past the digit limit"),
        pytest.param('{"payload":{"amount":NaN}}', id="NaN"),
        pytest.param('{"payload":{"amount":1e999}}', id="number past float range"),
        pytest.param('{"payload":' + "[" * 65 + "]" * 65 + "}", id="nested too deeply"),
    ],
)
@pytest.mark.parametrize(
    "route", ["encrypt-paykun", "encrypt-netcore", "encrypt-infosimples", "decrypt-paykun"]
)
def test_json_that_python_reads_but_is_not_strict_json_is_bad_json(
    route: str, body: str, harness: Harness
) -> None:
    """Before: 500 (UnicodeEncodeError, ValueError), an answer with NaN or a lone surrogate in it, or (nesting)
    accepted up to the recursion limit, where writing it back one level deeper fails on Python 3.11."""
    harness.start("encrypt")

    reply = harness.call("encrypt", event(route, body=body))

    assert (reply.status, reply.code) == (400, "bad_json")


def test_sign_body_with_a_lone_surrogate_is_bad_json(harness: Harness) -> None:
    """Before: 500 (UnicodeEncodeError encoding the body to sign)."""
    harness.start("sign")

    reply = harness.call("sign", event("sign-netcore", body='{"body":"\\ud800"}'))

    assert (reply.status, reply.code) == (400, "bad_json")


def test_webhook_x_date_with_a_lone_surrogate_is_an_authentication_refusal(
    harness: Harness, stack: StackResources
) -> None:
    """Before: 500 (UnicodeEncodeError encoding X-Date to check a well-formed signature); then 400. An X-Date
    that is not text signed nothing: a 401 like every refused authentication."""
    harness.start("sign")
    headers = {
        "X-Date": "2025-11-22T08:41:11.482Z\ud800",
        "X-Login": stack.secrets["dlocal"].value["x_login"],  # ours: the signature is computed
        "Authorization": "V2-HMAC-SHA256, Signature: " + "0" * 64,
    }

    reply = harness.call("sign", event("webhook-dlocal", headers=headers))

    assert (reply.status, reply.code) == (401, "signature_mismatch")
    assert receive(stack, "InboundQueue") == []


def signed_by_dlocal(stack: StackResources, raw: str) -> dict[str, str]:
    """The headers dLocal sends with the notification ``raw``, signed now with the stack's secret."""
    secret = stack.secrets["dlocal"].value
    date = x_date(datetime.now(UTC))
    return {
        "X-Date": date,
        "X-Login": secret["x_login"],
        "Authorization": oracles.dlocal_authorization(
            secret["secret_key"], secret["x_login"], date, raw.encode()
        ),
    }


def test_enqueue_of_a_body_sqs_cannot_take_is_413_and_a_retry_is_not_a_duplicate(
    harness: Harness, stack: StackResources
) -> None:
    """Before: SQS (256 KiB by default; moto does not enforce it) refused the message, escaped to 600 KB, of a
    200 KB body: 503 ``unavailable`` for a request that can never succeed."""
    harness.start("forward")
    key = str(uuid.uuid4())
    body = {"operation": "payment", "payload": {"note": "é" * 100_000}, "idempotency_key": key}
    text = json.dumps(body, ensure_ascii=False)
    assert len(text.encode()) < 256 * 1024 < 3 * len(text)

    reply = harness.call("forward", event("forward-enqueue-paykun", body=text))

    assert (reply.status, reply.code) == (413, "payload_too_large")
    assert receive(stack) == []
    status = harness.call("forward", event("forward-status", partner=forward_id("paykun", key)))
    assert (status.status, status.code) == (404, "not_found")  # no outcome left "queued" forever
    body["payload"] = {"note": "e" * 1000}
    assert harness.call("forward", event("forward-enqueue-paykun", body=body)).status == 202


def test_signed_notification_sqs_cannot_take_is_413_and_not_claimed(
    harness: Harness, stack: StackResources
) -> None:
    """Before: 503, and the notification's de-duplication claim stayed: dLocal's retry got 409."""
    harness.start("sign")
    raw = '{"id":"D-4-big","note":"' + "é" * 100_000 + '"}'
    headers = signed_by_dlocal(stack, raw)

    first = harness.call("sign", event("webhook-dlocal", body=raw, headers=headers))
    again = harness.call("sign", event("webhook-dlocal", body=raw, headers=headers))

    assert [(r.status, r.code) for r in (first, again)] == [(413, "payload_too_large")] * 2
    assert receive(stack, "InboundQueue") == []


def test_notification_not_queued_because_the_queue_is_down_is_accepted_on_retry(
    harness: Harness, stack: StackResources, cold_start: Callable[..., Function]
) -> None:
    """Before: the claim made before sending stayed after the 503, so dLocal's retry got 409 and the
    notification was never queued."""
    raw = '{"id":"D-4-retry","status":"PAID"}'
    headers = signed_by_dlocal(stack, raw)
    harness.functions["sign"] = cold_start(
        "sign", INBOUND_QUEUE_URL=stack.queue_url("InboundQueue") + "-missing"
    )
    down, _ = harness.invoke("sign", event("webhook-dlocal", body=raw, headers=headers))
    harness.functions["sign"] = cold_start("sign")

    retried = harness.call("sign", event("webhook-dlocal", body=raw, headers=headers))

    assert (down.status, down.code) == (503, "unavailable")
    assert (retried.status, retried.body) == (200, {"status": "accepted", "id": retried.body["id"]})
    assert len(receive(stack, "InboundQueue")) == 1


@pytest.mark.parametrize("path_partner", [CARD, "acme"])
def test_an_unknown_partner_from_the_path_is_not_logged(path_partner: str, harness: Harness) -> None:
    """Before: the audit record carried the path's text as the partner: a card number sent by mistake (or any
    text, on the public webhook route) reached the log."""
    harness.start("sign")

    reply, printed = harness.invoke("sign", event("webhook-dlocal", partner=path_partner))

    assert (reply.status, reply.code) == (404, "unknown_partner")
    assert path_partner not in printed
    harness.check({}, reply, printed)


@pytest.mark.parametrize("form", ["plain", "protected"])
def test_sqs_record_with_an_id_too_long_for_dynamodb_is_dead_lettered_once(
    form: str, harness: Harness, stack: StackResources
) -> None:
    """Before: the message's ``id`` (any alphanumeric text) keyed the outcome; past DynamoDB's 2048 bytes every
    write failed, so the record was dead-lettered, then failed, and was dead-lettered again on each receive.

    A plain message for a partner nobody serves is refused before any outcome; a protected one whose key
    version Secrets Manager does not have is rejected, and its outcome is kept under the stable id."""
    assert stack.clients is not None
    harness.start("forward")
    if form == "plain":
        message: dict[str, Any] = {"partner": "acme", "operation": "x", "payload": {}}
        partner, reason = "acme", "unknown_partner"
    else:
        message = {
            "v": 1,
            "partner": "paykun",
            "operation": "payment",
            "protected": {"encrypted_request": "eyJpdiI6IiJ9"},
            "key_version": str(uuid.uuid4()),  # a version the secret never had
            "fields": ["<body>"],
        }
        partner, reason = "paykun", "key_rotated"
    body = json.dumps({**message, "id": "a" * 3000})
    stack.clients.sqs.send_message(QueueUrl=stack.queue_url("OutboundQueue"), MessageBody=body)
    messages = receive(stack)

    result = harness.functions["forward"].invoke(sqs_event(stack, messages))

    assert result == {"batchItemFailures": []}
    (dead,) = receive(stack, "OutboundDeadLetterQueue")
    assert dead["MessageAttributes"]["reason"]["StringValue"] == reason
    check_dead_letter(dead["Body"], body)
    harness.check_printed(harness.output.text)
    if form == "protected":
        key = messages[0]["MessageId"]
        status = harness.call("forward", event("forward-status", partner=forward_id(partner, key)))
        assert status.body["status"] == "rejected"


@pytest.mark.parametrize(
    "body",
    [
        pytest.param('{"partner":"netcore","operation":"activity","payload":"\\ud800"}', id="lone surrogate"),
        pytest.param('{"partner":"netcore","operation":"activity","payload":[NaN]}', id="NaN"),
        pytest.param(
            '{"partner":"netcore","operation":"activity","payload":' + "1" * 5000 + "}", id="digits"
        ),
        pytest.param(
            '{"partner":"netcore","operation":"activity","payload":' + "[" * 940 + "]" * 940 + "}",
            id="nested",
        ),
    ],
)
def test_sqs_record_that_is_not_strict_json_is_dead_lettered_as_bad_input(
    body: str, harness: Harness, stack: StackResources, cold_start: Callable[..., Function]
) -> None:
    """Before: a failed item retried until SQS moved it to the dead-letter queue without a reason (surrogate,
    digits; nesting on Python 3.11, where the message parsed at the batch's stack depth but not again, deeper, at
    the delivery's), or a body with NaN sent to the partner as if it were JSON."""
    assert stack.clients is not None
    harness.functions["forward"] = cold_start("forward", SEALGATE_BASE_URL_NETCORE="https://127.0.0.1:9/")
    stack.clients.sqs.send_message(QueueUrl=stack.queue_url("OutboundQueue"), MessageBody=body)

    result = harness.functions["forward"].invoke(sqs_event(stack, receive(stack)))

    assert result == {"batchItemFailures": []}
    (dead,) = receive(stack, "OutboundDeadLetterQueue")
    assert dead["MessageAttributes"]["reason"]["StringValue"] == "bad_input"
    assert json.loads(dead["Body"]) == {  # nothing read from a body that is not strict JSON
        "partner": None,
        "operation": None,
        "idempotency_key": None,
        "payload": json.loads(dead["Body"])["payload"],
    }
    check_dead_letter(dead["Body"], body)
    harness.check_printed(harness.output.text)


# --- layer bugs the fuzz found (fixed; kept as regression tests) ------------------------------------------------


@pytest.mark.parametrize("version", ["", "x", "a" * 31])
def test_protected_record_with_a_malformed_key_version_is_dead_lettered_at_once(
    version: str, harness: Harness, stack: StackResources
) -> None:
    """A protected message whose ``key_version`` cannot be a Secrets Manager VersionId can never be delivered: it
    is a permanent failure (``key_rotated``: a version Secrets Manager does not have, or ``bad_input``),
    dead-lettered at once in its protected form, like a well-formed version Secrets Manager does not have."""
    assert stack.clients is not None
    harness.start("forward")
    body = json.dumps(
        {
            "v": 1,
            "partner": "paykun",
            "operation": "payment",
            "idempotency_key": str(uuid.uuid4()),
            "protected": {"encrypted_request": "eyJpdiI6IiJ9"},
            "key_version": version,
            "fields": ["<body>"],
        }
    )
    stack.clients.sqs.send_message(QueueUrl=stack.queue_url("OutboundQueue"), MessageBody=body)

    result = harness.functions["forward"].invoke(sqs_event(stack, receive(stack)))

    assert result == {"batchItemFailures": []}
    (dead,) = receive(stack, "OutboundDeadLetterQueue")
    assert dead["MessageAttributes"]["reason"]["StringValue"] in ("key_rotated", "bad_input")
    check_dead_letter(dead["Body"], body)
    harness.check_printed(harness.output.text)


def test_signed_notification_nested_past_the_recursion_limit_is_not_a_500(
    harness: Harness, stack: StackResources
) -> None:
    """dLocal's signature over a body does not make it a JSON object: one nested past the decoder's limit is
    identified by its bytes (or refused), never a 500 that dLocal would retry for days."""
    harness.start("sign")
    raw = "[" * 20_000 + "]" * 20_000

    reply = harness.call("sign", event("webhook-dlocal", body=raw, headers=signed_by_dlocal(stack, raw)))

    assert reply.status in (200, 400)
