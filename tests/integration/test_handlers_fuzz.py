"""Malformed and adversarial input at every route of the three functions, on moto: API Gateway proxy events
from ``events/`` mutated by hypothesis, and SQS batches of arbitrary records for the forward function.

What must hold, whatever the input (the project's standard):

- an API answer is below 500 and strict UTF-8 JSON (no ``NaN``, no lone surrogate); a refusal is exactly
  ``{"code", "message"}``, its code one the layer defines (``errors.py``, ``http_api``), with that code's status;
- nothing the functions print (logs, audit records, EMF metrics) holds a traceback, a throwaway key of the stack
  or a marker of the payloads (a fake card number, CVV, CPF); neither does an answer, except what a route returns
  of the caller's own data by design: the decrypt route's plaintext, the encrypt route's fields that are not
  protected (checked equal to what was sent), the idempotency key an enqueue or a signature echoes, and the
  credential headers of the sign route (only the signing fields of that partner's current secret);
- an SQS batch never raises; with every dependency up, each record is delivered, or dead-lettered with a stable
  ``reason``, or is the duplicate of an earlier one (Powertools idempotency), and none is left failed.

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

from sealgate import errors, http_api
from sealgate.gateway import forward_id
from sealgate.profiles import Profile, load_profiles
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

scalars = st.one_of(
    st.none().map(json.dumps),
    st.booleans().map(json.dumps),
    st.integers().map(str),
    st.floats(allow_nan=False, allow_infinity=False).map(json.dumps),
    st.tuples(ANY_TEXT, st.booleans()).map(lambda t: json.dumps(t[0], ensure_ascii=t[1])),
    st.sampled_from(sorted(MARKERS.values())).map(json.dumps),
    st.sampled_from(ODD_TEXT + ODD_NUMBERS),
    TOO_MANY_DIGITS,
)
keys = st.one_of(
    st.sampled_from(FIELD_NAMES).map(json.dumps), ANY_TEXT.map(json.dumps), st.sampled_from(ODD_TEXT)
)
raw_json = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4).map(lambda items: "[" + ",".join(items) + "]"),
        st.lists(st.tuples(keys, inner), max_size=4).map(
            lambda pairs: "{" + ",".join(f"{k}:{v}" for k, v in pairs) + "}"
        ),
    ),
    max_leaves=12,
)


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


@st.composite
def mutated(draw: st.DrawFn, document: Any) -> Any:
    """``document`` with 0-3 changes: a value of another type (any JSON-ish text), a marker, a key removed or
    added, a value wrapped in a list."""
    value = copy.deepcopy(document)
    for _ in range(draw(st.integers(0, 3))):
        path = draw(st.sampled_from(list(_paths(value))))
        change = draw(st.sampled_from(["retype", "retype", "marker", "drop", "add", "wrap"]))
        if change == "add":
            target = _at(value, path)
            if isinstance(target, dict):
                target[draw(st.sampled_from(FIELD_NAMES))] = Raw(draw(raw_json))
            elif isinstance(target, list):
                target.append(Raw(draw(raw_json)))
            continue
        if change == "drop" and path:
            parent = _at(value, path[:-1])
            del parent[path[-1]]
            continue
        old = _at(value, path)
        new: Any = {
            "retype": Raw(draw(raw_json)),
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


def signing_fields(profile: Profile) -> set[str]:
    """The secret fields the sign route returns as they are (credentials for the caller to send)."""
    spec = profile.signing or {}
    scheme = spec.get("scheme")
    if scheme == "dlocal-v2":
        return {spec["login"], spec["trans_key"]}
    if scheme == "netcore-bearer":
        return {spec["token"], spec["asset"]}
    if scheme == "static-headers":
        return set(spec["headers"].values())
    return set()


# --- invoking and checking ----------------------------------------------------------------------------------------


def _no_constant(name: str) -> Any:
    raise AssertionError(f"{name} in an answer is not JSON")


def sent_json(sent: Mapping[str, Any]) -> Any:
    """The JSON value of an event's body, as the function read it (for a 2xx answer it was valid)."""
    text = sent.get("body") or ""
    data = base64.b64decode(text) if sent.get("isBase64Encoded") else text.encode("utf-8", "surrogatepass")
    return json.loads(data)


def encrypt_residue(partner: str, sent: Any, answer: Mapping[str, Any]) -> Any:
    """What of an encrypt answer must hold no marker: the protected fields. The fields the scheme leaves alone
    come back as sent (checked here) and may hold anything."""
    profile = PROFILES[partner]
    options = profile.protection
    got = answer["payload"]
    assert set(answer) <= {"partner", "scheme", "payload", "receipts"}
    if profile.scheme == "infosimples-params":
        protected = [name for name in options["fields"] if name in sent]
        tokens = {f"enc_{name}" for name in protected}
        assert {k: v for k, v in got.items() if k not in tokens} == {
            k: v for k, v in sent.items() if k not in protected
        }
        assert set(answer.get("receipts", {})) == set(protected)
        return [got[token] for token in sorted(tokens)], answer.get("receipts"), answer["scheme"]
    if profile.scheme == "jwe-card":
        card_field = str(options.get("card_field", "card"))
        card = dict(got[card_field])
        encrypted = card.pop("encrypted_data")
        assert {k: v for k, v in got.items() if k != card_field} == {
            k: v for k, v in sent.items() if k != card_field
        }
        assert card == {k: v for k, v in sent[card_field].items() if k not in ("number", "cvv")}
        return encrypted, answer["scheme"]
    assert list(got) == [options["wrap_field"]]
    return got, answer["scheme"]


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
            elif route == "sign":  # the credential headers (and the caller's idempotency key) are the answer
                profile = PROFILES[variable]
                headers = dict(body["headers"])
                key = sent_json(sent).get("idempotency_key")
                assert headers.pop(profile.idempotency_header, None) == key
                shown = {**body, "headers": headers}
                fields = {f"current:{variable}:{name}" for name in signing_fields(profile)}
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
            assert audit["reason"] == "ok" or audit["reason"] in REFUSALS, audit
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

SIGN_DOCUMENTS = {p: seeded(f"sign-{p}") for p in ("dlocal", "netcore")}
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
    partner = data.draw(mostly(st.sampled_from(["dlocal", "netcore"]), partner_names), label="partner")
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
        right = oracles.dlocal_signature(secret["secret_key"], secret["x_login"], date, raw)
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

    reply = harness.call("sign", sent)

    if reply.status == 200:
        assert reply.body["status"] == "accepted"


# --- forward function: API side ------------------------------------------------------------------------------------

ENQUEUE_DOCUMENTS = {
    p: seeded(f"forward-enqueue-{p}") for p in ("infosimples", "netcore", "paykun", "dlocal")
}


@fuzz(100)
@given(data=st.data())
def test_enqueue_route(data: st.DataObject, harness: Harness) -> None:
    harness.start("forward")
    document = dict(
        ENQUEUE_DOCUMENTS[data.draw(st.sampled_from(sorted(ENQUEUE_DOCUMENTS)), label="document")]
    )
    document["idempotency_key"] = data.draw(idempotency_keys, label="idempotency key")
    partner = data.draw(mostly(st.sampled_from(sorted(ENQUEUE_DOCUMENTS)), partner_names), label="partner")
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

    harness.call("forward", api_event("forward-enqueue-paykun", partner, body))


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


def _sqs_text(text: str) -> str:
    """``text`` with the characters SQS refuses in a message body replaced (such a record cannot exist)."""

    def allowed(c: str) -> bool:
        n = ord(c)
        return n in (0x9, 0xA, 0xD) or 0x20 <= n <= 0xD7FF or 0xE000 <= n <= 0xFFFD or n >= 0x10000

    return "".join(c if allowed(c) else "?" for c in text)


def _seeded_messages() -> list[dict[str, Any]]:
    records = json.loads((EVENTS / "sqs-forward-batch.json").read_text(encoding="utf-8"))["Records"]
    found = []
    for record in records:
        text = record["body"].replace("4111111111111111", CARD).replace('"cvv":"123"', f'"cvv":"{CVV}"')
        message = json.loads(text.replace("52998224725", CPF))
        message.pop("idempotency_key", None)  # the message id stands in: unique per record
        found.append(message)
    return found


SEEDED_MESSAGES = _seeded_messages()


@st.composite
def record_bodies(draw: st.DrawFn) -> str:
    """An outbound message: a valid one mutated (most), any JSON-ish text, junk, deep nesting."""
    message = dict(draw(st.sampled_from(SEEDED_MESSAGES)))
    if draw(st.booleans()):
        message["idempotency_key"] = draw(idempotency_keys)
    if draw(st.booleans()):
        message["id"] = draw(st.sampled_from(["a" * 3000, "٣" * 20, "", "0" * 32, "x-y"]))
    message["partner"] = draw(mostly(st.just(message["partner"]), partner_names))
    text = draw(mostly(mutated(message).map(dump), st.one_of(raw_json, ANY_TEXT, deep())))
    return _sqs_text(text) or " "


def strict_message(body: str) -> dict[str, Any] | None:
    """The message if it is strict JSON (written back unchanged) and has what a message needs, else None."""
    try:
        data = json.loads(body, parse_constant=_no_constant)
        json.dumps(data, allow_nan=False, ensure_ascii=False).encode("utf-8")
    except (ValueError, RecursionError, UnicodeEncodeError, AssertionError):
        return None
    if not isinstance(data, dict) or "payload" not in data:
        return None
    if not isinstance(data.get("partner"), str) or not isinstance(data.get("operation"), str):
        return None
    key = data.get("idempotency_key")
    if key is not None and not (
        isinstance(key, str)
        and 0 < len(key) <= 128
        and key.isascii()
        and key.isprintable()
        and " " not in key
    ):
        return None
    return data


@pytest.fixture
def seen() -> set[tuple[str, str]]:
    """(partner, idempotency key) of every well-formed record so far: a repeat is a duplicate."""
    return set()


def drain(stack: StackResources, queue: str) -> list[dict[str, Any]]:
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


@fuzz(40)
@given(bodies=st.lists(record_bodies(), min_size=1, max_size=10))
def test_sqs_batches_of_arbitrary_records(
    bodies: list[str],
    harness: Harness,
    stack: StackResources,
    partner_server: HttpsServer,
    seen: set[tuple[str, str]],
) -> None:
    assert stack.clients is not None
    assert partner_server.ca_bundle is not None
    urls = {f"SEALGATE_BASE_URL_{p.upper()}": partner_server.url for p in PROFILES}
    harness.start("forward", SEALGATE_CA_BUNDLE=partner_server.ca_bundle, **urls)
    queue = stack.queue_url("OutboundQueue")
    for body in bodies:
        stack.clients.sqs.send_message(QueueUrl=queue, MessageBody=body)
    messages = drain(stack, "OutboundQueue")
    assert len(messages) == len(bodies)
    before = len(partner_server.requests)

    harness.output.read()
    out, err = len(harness.output.out), len(harness.output.err)
    result = harness.functions["forward"].invoke(sqs_event(stack, messages))
    harness.output.read()
    printed = harness.output.out[out:] + harness.output.err[err:]

    assert result == {"batchItemFailures": []}, result
    harness.check_printed(printed)
    dead = {
        m["MessageAttributes"]["original_message_id"]["StringValue"]: m["MessageAttributes"]["reason"][
            "StringValue"
        ]
        for m in drain(stack, "OutboundDeadLetterQueue")
    }
    delivered: dict[tuple[str, str | None], int] = {}
    for request in partner_server.requests[before:]:
        partner = PARTNER_OF_PATH[request.path]
        pair = (partner, request.header(PROFILES[partner].idempotency_header))
        delivered[pair] = delivered.get(pair, 0) + 1
    for message in messages:
        record_id, body = message["MessageId"], message["Body"]
        parsed = strict_message(body)
        note(f"record: {'dead-lettered ' + dead[record_id] if record_id in dead else 'not dead-lettered'}")
        if parsed is None:
            assert dead.get(record_id) == "bad_input", body
            continue
        pair = (parsed["partner"], parsed.get("idempotency_key") or record_id)
        reached = delivered.pop(pair, 0)
        if pair in seen:  # Powertools idempotency answers with the first outcome
            assert (reached, dead.get(record_id)) == (0, None), body
            continue
        seen.add(pair)
        if record_id in dead:
            assert reached == 0
            assert dead[record_id] in REFUSALS, dead[record_id]
            if parsed["partner"] not in PROFILES:
                assert dead[record_id] == "unknown_partner"
            elif parsed["operation"] not in PROFILES[parsed["partner"]].operations:
                assert dead[record_id] == "bad_input"
        else:
            assert reached == 1, body
            note("record: delivered")
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


def test_webhook_x_date_with_a_lone_surrogate_is_bad_input(harness: Harness, stack: StackResources) -> None:
    """Before: 500 (UnicodeEncodeError encoding X-Date to check a well-formed signature)."""
    harness.start("sign")
    headers = {
        "X-Date": "2025-11-22T08:41:11.482Z\ud800",
        "Authorization": "V2-HMAC-SHA256, Signature: " + "0" * 64,
    }

    reply = harness.call("sign", event("webhook-dlocal", headers=headers))

    assert (reply.status, reply.code) == (400, "bad_input")
    assert receive(stack, "InboundQueue") == []


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
    secret = stack.secrets["dlocal"].value
    date = x_date(datetime.now(UTC))
    raw = '{"id":"D-4-big","note":"' + "é" * 100_000 + '"}'
    headers = {
        "X-Date": date,
        "Authorization": oracles.dlocal_authorization(
            secret["secret_key"], secret["x_login"], date, raw.encode()
        ),
    }

    first = harness.call("sign", event("webhook-dlocal", body=raw, headers=headers))
    again = harness.call("sign", event("webhook-dlocal", body=raw, headers=headers))

    assert [(r.status, r.code) for r in (first, again)] == [(413, "payload_too_large")] * 2
    assert receive(stack, "InboundQueue") == []


def test_notification_not_queued_because_the_queue_is_down_is_accepted_on_retry(
    harness: Harness, stack: StackResources, cold_start: Callable[..., Function]
) -> None:
    """Before: the claim made before sending stayed after the 503, so dLocal's retry got 409 and the
    notification was never queued."""
    secret = stack.secrets["dlocal"].value
    date = x_date(datetime.now(UTC))
    raw = '{"id":"D-4-retry","status":"PAID"}'
    headers = {
        "X-Date": date,
        "Authorization": oracles.dlocal_authorization(
            secret["secret_key"], secret["x_login"], date, raw.encode()
        ),
    }
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


def test_sqs_record_with_an_id_too_long_for_dynamodb_is_dead_lettered_once(
    harness: Harness, stack: StackResources
) -> None:
    """Before: the message's ``id`` (any alphanumeric text) keyed the outcome; past DynamoDB's 2048 bytes every
    write failed, so the record was dead-lettered, then failed, and was dead-lettered again on each receive."""
    assert stack.clients is not None
    harness.start("forward")
    body = json.dumps({"partner": "acme", "operation": "x", "payload": {}, "id": "a" * 3000})
    stack.clients.sqs.send_message(QueueUrl=stack.queue_url("OutboundQueue"), MessageBody=body)
    messages = receive(stack)

    result = harness.functions["forward"].invoke(sqs_event(stack, messages))

    assert result == {"batchItemFailures": []}
    (dead,) = receive(stack, "OutboundDeadLetterQueue")
    assert dead["MessageAttributes"]["reason"]["StringValue"] == "unknown_partner"
    harness.check_printed(harness.output.text)
    key = messages[0]["MessageId"]
    status = harness.call("forward", event("forward-status", partner=forward_id("acme", key)))
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
    harness.check_printed(harness.output.text)
