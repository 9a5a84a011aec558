"""Hostile input against the local stack: every route of ``openapi.json`` fuzzed by schemathesis, then hand-written
hostile requests, all through the local API (real sockets, the functions in their worker processes, moto).

    .venv/bin/python scripts/fuzz.py [--seconds 120] [--examples 200] [--json PATH] [--seed N]

Figures, and their targets (the script exits 1 when one is missed):

- ``requests``: requests tried (schemathesis and hand-written);
- ``server_errors``: answers with a 5xx status (target 0);
- ``contract_violations``: non-2xx answers that are not exactly ``{"code": str, "message": str}`` JSON (target 0);
- ``tampered_accepted``: a tampered token or notification signature answered 2xx (target 0);
- ``url_picked``: connections that reached the listener a payload named as its own target URL (target 0);
- ``headers_injected``: answers carrying a header that the request smuggled in a value (target 0);
- ``expectations_missed``: hand-written cases that must get one refusal (413 for a body too large, or for tokens
  that would cost too many key derivations) and got another answer (target 0);

and, for information, what schemathesis' own conformance checks found (``status_code_conformance``,
``content_type_conformance``, ``response_schema_conformance``, ``negative_data_rejection``): where the answers
differ from what the document promises.

Schemathesis reads the document the local API serves (``GET /dev/openapi.json``), with the path parameters
narrowed to the partners each route serves for positive cases (the negative ones go outside them): the document
itself describes any partner. Hand-written cases: malformed and duplicate-key JSON, wrong types, huge and deep
bodies, invalid UTF-8, tampered tokens of every scheme a profile uses (and tampered dLocal notifications), path
tricks, header injection (CR/LF), payloads that try to pick their own URL, and decrypt requests whose tokens would
cost 1000 key derivations. A partner no shipped profile has (raw-key AES-GCM, :data:`EXTRA_PROFILES`) joins the
stack for the run. Nothing printed holds a key or a value of a request: only case names and counts.
"""

from __future__ import annotations

import argparse
import base64
import copy
import http.client
import importlib
import json
import re
import socket
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter, deque
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parent.parent
# This checkout's code, whatever the venv's editable install points at.
for _folder in (ROOT / "local", ROOT / "layers" / "crypto"):
    if str(_folder) in sys.path:
        sys.path.remove(str(_folder))
    sys.path.insert(0, str(_folder))

from sealgate.codec import b64decode, b64encode  # noqa: E402
from sealgate.partners import Profile, load_profiles, served_by  # noqa: E402
from sealgate.schemes import dlocal_v2  # noqa: E402

CODE = re.compile(r"^[a-z][a-z0-9_]*$")
INJECTED = "x-sealgate-injected"
TIMEOUT = 30.0
CONFORMANCE_CHECKS = (
    "status_code_conformance",
    "content_type_conformance",
    "response_schema_conformance",
    "negative_data_rejection",
)


# --- what is counted ------------------------------------------------------------------------------------------


@dataclass
class Answer:
    status: int
    headers: list[tuple[str, str]]
    body: bytes

    def json(self) -> Any:
        try:
            return json.loads(self.body)
        except ValueError:
            return None


def _strict_object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    keys = [key for key, _ in pairs]
    if len(keys) != len(set(keys)):
        raise ValueError("duplicate key")
    return dict(pairs)


def contract_problem(answer: Answer, method: str = "POST") -> str | None:
    """Why a non-2xx answer is outside ``{"code", "message"}``, or None (an answer to HEAD has no body)."""
    content_type = next((v for k, v in answer.headers if k.lower() == "content-type"), "")
    if not content_type.lower().startswith("application/json"):
        return f"content type {content_type or 'missing'}"
    if method == "HEAD":
        return None
    try:
        body = json.loads(answer.body.decode("utf-8"), object_pairs_hook=_strict_object)
    except (UnicodeDecodeError, ValueError):
        return "body is not strict UTF-8 JSON"
    if not isinstance(body, dict) or set(body) != {"code", "message"}:
        return "body is not exactly {code, message}"
    if (
        not isinstance(body["code"], str)
        or not CODE.match(body["code"])
        or not isinstance(body["message"], str)
    ):
        return "code or message is not a string of the contract"
    return None


@dataclass
class Tally:
    """Every answer seen, and what missed a target (case names only: never a value of a request)."""

    requests: int = 0
    statuses: Counter[int] = field(default_factory=Counter)
    by_source: Counter[str] = field(default_factory=Counter)
    server_errors: list[str] = field(default_factory=list)
    contract_violations: list[str] = field(default_factory=list)
    tampered_accepted: list[str] = field(default_factory=list)
    headers_injected: list[str] = field(default_factory=list)
    url_picked: int = 0
    forward_outcomes: Counter[str] = field(default_factory=Counter)
    expectations_missed: list[str] = field(default_factory=list)
    refused_work_ms: list[float] = field(default_factory=list)
    conformance: Counter[str] = field(default_factory=Counter)
    conformance_examples: dict[str, str] = field(default_factory=dict)
    categories: Counter[str] = field(default_factory=Counter)
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def see(self, source: str, name: str, answer: Answer, *, method: str = "POST") -> None:
        with self.lock:
            self.requests += 1
            self.by_source[source] += 1
            self.statuses[answer.status] += 1
            if answer.status >= 500:
                self.server_errors.append(f"{name}: {answer.status}")
            if not 200 <= answer.status < 300:
                problem = contract_problem(answer, method)
                if problem is not None:
                    self.contract_violations.append(f"{name}: {answer.status} {problem}")
            if any(k.lower() == INJECTED for k, _ in answer.headers):
                self.headers_injected.append(name)

    def missed(self) -> list[str]:
        found = []
        for figure in (
            "server_errors",
            "contract_violations",
            "tampered_accepted",
            "headers_injected",
            "expectations_missed",
        ):
            if getattr(self, figure):
                found.append(figure)
        if self.url_picked:
            found.append("url_picked")
        return found

    def figures(self) -> dict[str, Any]:
        return {
            "requests": self.requests,
            "requests_by_source": dict(sorted(self.by_source.items())),
            "hostile_cases_by_category": dict(sorted(self.categories.items())),
            "statuses": {str(k): v for k, v in sorted(self.statuses.items())},
            "server_errors": len(self.server_errors),
            "contract_violations": len(self.contract_violations),
            "tampered_accepted": len(self.tampered_accepted),
            "url_picked": self.url_picked,
            "forwards_with_chosen_urls": dict(sorted(self.forward_outcomes.items())),
            "headers_injected": len(self.headers_injected),
            "expectations_missed": len(self.expectations_missed),
            "bounded_work_refused_in_ms_max": round(max(self.refused_work_ms), 1)
            if self.refused_work_ms
            else None,
            "schemathesis_conformance": dict(sorted(self.conformance.items())),
            "examples": {
                "server_errors": self.server_errors[:10],
                "contract_violations": self.contract_violations[:10],
                "tampered_accepted": self.tampered_accepted[:10],
                "headers_injected": self.headers_injected[:10],
                "expectations_missed": self.expectations_missed[:10],
                "conformance": self.conformance_examples,
            },
            "targets_missed": self.missed(),
        }


# --- raw HTTP: bytes exactly as written (CR/LF in values, invalid UTF-8, odd lengths) --------------------------


class Client:
    """Requests to the local API on raw sockets: one connection per request, nothing normalised."""

    def __init__(self, base_url: str) -> None:
        parts = urlsplit(base_url)
        self.host = parts.hostname or "127.0.0.1"
        self.port = parts.port or 80
        self.stage = parts.path.rstrip("/")  # "/dev"

    def send(
        self,
        method: str,
        path: str,
        body: bytes = b"",
        headers: Sequence[tuple[str | bytes, str | bytes]] = (),
        *,
        stage: bool = True,
        content_length: bytes | None = None,
        content_type: bool = True,
    ) -> Answer:
        target = (self.stage + path) if stage else path
        lines = [f"{method} {target} HTTP/1.1".encode("latin-1"), f"Host: {self.host}:{self.port}".encode()]
        if content_type:
            lines.append(b"Content-Type: application/json")
        lines.append(
            b"Content-Length: " + (content_length if content_length is not None else str(len(body)).encode())
        )
        lines.append(b"Connection: close")
        for name, value in headers:
            raw_name = name if isinstance(name, bytes) else name.encode("latin-1")
            raw_value = value if isinstance(value, bytes) else value.encode("utf-8")
            lines.append(raw_name + b": " + raw_value)
        request = b"\r\n".join(lines) + b"\r\n\r\n" + body
        with socket.create_connection((self.host, self.port), timeout=TIMEOUT) as connection:
            connection.sendall(request)
            response = http.client.HTTPResponse(connection, method=method)
            response.begin()
            data = response.read() if method != "HEAD" else b""
            return Answer(response.status, list(response.getheaders()), data)

    def json(self, method: str, path: str, value: Any, **kwargs: Any) -> Answer:
        return self.send(method, path, json.dumps(value, separators=(",", ":")).encode(), **kwargs)


# --- the hostile cases ---------------------------------------------------------------------------------------------


@dataclass
class Case:
    category: str
    name: str
    method: str
    path: str
    body: bytes = b""
    headers: tuple[tuple[str | bytes, str | bytes], ...] = ()
    stage: bool = True
    content_length: bytes | None = None
    tampered: bool = False  # a 2xx answer is a forgery accepted
    expect: str | None = None  # the refusal code this case must get
    forward: bool = False  # a 202 answer queued a message: its delivery is awaited


def _dump(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def _deep(depth: int, opening: str = "[", closing: str = "]") -> bytes:
    return ('{"payload":' + opening * depth + closing * depth + "}").encode()


def _deep_objects(depth: int) -> bytes:
    return ('{"payload":' + '{"a":' * depth + "1" + "}" * depth + "}").encode()


MALFORMED = [
    b"{",
    b'{"payload":',
    b'{"payload":1,}',
    b"[1,2",
    b"nul",
    b"",
    b"   ",
    b'\xef\xbb\xbf{"payload":1}',  # UTF-8 BOM
    b'{"payload":NaN}',
    b'{"payload":Infinity}',
    b'{"payload":-Infinity}',
    b"{'payload':1}",
    b'{"payload":1}/*comment*/',
    b'{"payload":1} {"payload":2}',
    b'{"payload":01}',
    b'{"payload":1e999999}',
    b'{"payload":"\\ud800"}',
    b'{"payload":"\\x41"}',
    b'{"payload":"a\x00b"}',
    b'{"payload":"tab\there"}',
    b"{payload:1}",
    b"1",
    b'"payload"',
    b"null",
    b"[]",
    b"true",
    b'{"payload":' + b"9" * 5000 + b"}",  # past int max str digits
]

DUPLICATES = [
    b'{"payload":{"cpf":"1"},"payload":{"cpf":"2"}}',
    b'{"payload":{"cpf":"1","cpf":"2"}}',
    b'{"payload":[{"a":1,"a":2}]}',
    b'{"body":"x","body":"y"}',
    b'{"operation":"payments","operation":"refunds","payload":{}}',
    b'{"payload":{"enc_cpf":"x","enc_cpf":"y"}}',
    b'{"payload":{"card":{"number":"4111111111111111","number":"4000056655665556"}}}',
    b'{"idempotency_key":"a","idempotency_key":"b","body":""}',
]

INVALID_UTF8 = [
    b'{"payload":"\xff"}',
    b'{"payload":"\xc0\xaf"}',  # overlong "/"
    b'{"payload":"\xed\xa0\x80"}',  # an encoded surrogate
    b'{"payload":"\xe2\x82"}',  # truncated sequence
    b'{"payload":"\xf8\x88\x80\x80\x80"}',  # five-byte form
    b'{"body":"\xfe\xff"}',
    b'{"payload\xff":1}',
    b"\xff\xfe{\x00}\x00",  # UTF-16 with a BOM
]

WRONG_TYPES: list[Any] = [
    {"payload": None},
    {"payload": "a string"},
    {"payload": 12345},
    {"payload": 1.5},
    {"payload": True},
    {"payload": []},
    {"payload": [1, "two", None]},
    {"payload": {"cpf": 52998224725}},
    {"payload": {"cpf": None, "cnpj": [1], "birthdate": {"a": 1}}},
    {"payload": {"card": "not an object"}},
    {"payload": {"card": {"number": 4111111111111111, "cvv": 123}}},
    {"payload": {"card": {"number": ["4111"], "cvv": {"a": 1}}}},
    {"payload": {"enc_cpf": 1}},
    {"payload": {"enc_cpf": None}},
    {"payload": {"encryptedRequest": ["x"]}},
    {"payload": {"encData": {"iv": 1}}},
    {"body": 1},
    {"body": None},
    {"body": ["x"]},
    {"body": "", "idempotency_key": 5},
    {"body": "", "idempotency_key": ""},
    {"body": "", "idempotency_key": "x" * 129},
    {"body": "", "idempotency_key": "has space"},
    {"body": "", "idempotency_key": "ключ"},
    {"operation": None, "payload": {}},
    {"operation": ["payments"], "payload": {}},
    {"operation": "payments"},
    {"operation": "nope", "payload": {}},
    {"operation": "payments", "payload": {}, "idempotency_key": {"a": 1}},
    {},
]

PATH_TRICKS = [
    "/v1/encrypt/../sign/dlocal",
    "/v1/encrypt/%2e%2e/sign/dlocal",
    "/v1/encrypt/infosimples%2F..%2Fnetcore",
    "/v1/encrypt/infosimples%2fnetcore",
    "/v1/encrypt/%252e%252e%252fsign",
    "/v1/encrypt/infosimples/extra",
    "/v1/encrypt/",
    "/v1/encrypt",
    "//v1/encrypt/infosimples",
    "/v1//encrypt/infosimples",
    "/v1/encrypt/INFOSIMPLES",
    "/v1/encrypt/acme",
    "/v1/encrypt/infosimples%00",
    "/v1/encrypt/infosimples;netcore",
    "/v1/encrypt/infosimples?partner=netcore",
    "/v1/encrypt/%E2%80%AEinfosimples",
    "/v1/encrypt/" + "a" * 4000,
    "/v1/encrypt/..",
    "/v1/encrypt/.",
    "/v1/decrypt/dlocal",
    "/v1/sign/infosimples",
    "/v1/webhooks/netcore",
    "/v1/webhooks/../encrypt/infosimples",
    "/v1/forward/..%2F..%2Fetc%2Fpasswd",
    "/v1/forward/../../etc/passwd",
    "/v1/forward/%2e%2e%2f%2e%2e%2fsecret",
    "/v1/forward/" + "f" * 33,
    "/v1/forward/0123456789abcdef0123456789abcdeg",
    "/v1/forward/",
    "/openapi.json/../v1/encrypt/infosimples",
    "/v1/Encrypt/infosimples",
    "/v2/encrypt/infosimples",
]


def token_variants(token: str) -> Iterator[tuple[str, Any]]:
    """A token altered every way that matters: bits flipped across it, truncated, extended, re-encoded."""
    try:
        raw = b64decode(token)
    except Exception:  # a token of another alphabet (hex): tampered as text only
        raw = None
    if raw is not None:
        urlsafe = "-" in token or "_" in token or not token.endswith("=")
        for position in sorted(
            {0, 1, 15, 16, 17, 27, 28, len(raw) // 2, len(raw) - 17, len(raw) - 2, len(raw) - 1}
        ):
            if 0 <= position < len(raw):
                flipped = bytearray(raw)
                flipped[position] ^= 0x01
                yield f"bit flipped at byte {position}", b64encode(bytes(flipped), urlsafe=urlsafe)
        yield "last block dropped", b64encode(raw[:-16], urlsafe=urlsafe)
        yield "a block appended", b64encode(raw + bytes(16), urlsafe=urlsafe)
        yield "salt zeroed", b64encode(bytes(16) + raw[16:], urlsafe=urlsafe)
        yield "other alphabet", b64encode(raw, urlsafe=not urlsafe)
    yield "one character cut", token[:-1]
    yield "four characters cut", token[:-4]
    yield "half", token[: len(token) // 2]
    yield "characters swapped", token[1] + token[0] + token[2:] if len(token) > 2 else token + "A"
    yield "upper-cased", token.upper()
    yield "padded with spaces", f"  {token}  "
    yield "not base64", "!!!!" + token[4:]
    yield "empty", ""
    yield "a number", 12345
    yield "null", None
    yield "an object", {"token": token}


def laravel_variants(token: str) -> Iterator[tuple[str, Any]]:
    """A Laravel envelope (PayKun's), altered inside: MAC, IV and value, key types and duplicates. Known by its
    shape, base64 of a JSON object with ``iv``, ``value`` and ``mac``; any other token yields nothing."""
    try:
        envelope = json.loads(b64decode(token))
    except Exception:  # not an envelope: nothing more to alter
        return
    if not isinstance(envelope, dict) or not {"iv", "value", "mac"} <= envelope.keys():
        return

    def wrap(value: Any) -> str:
        return base64.b64encode(_dump(value)).decode()

    yield "envelope mac zeroed", wrap({**envelope, "mac": "0" * 64})
    yield "envelope mac removed", wrap({k: v for k, v in envelope.items() if k != "mac"})
    yield "envelope mac a number", wrap({**envelope, "mac": 0})
    yield "envelope iv short", wrap({**envelope, "iv": base64.b64encode(bytes(8)).decode()})
    yield "envelope iv not base64", wrap({**envelope, "iv": "!!"})
    value = str(envelope.get("value", ""))
    yield "envelope value other", wrap({**envelope, "value": base64.b64encode(bytes(32)).decode()})
    yield "envelope value cut", wrap({**envelope, "value": value[:-4]})
    yield "envelope tag added", wrap({**envelope, "tag": "x"})
    yield "envelope a list", wrap([envelope])
    text = _dump(envelope).decode()
    yield (
        "envelope duplicate mac",
        base64.b64encode((text[:-1] + ',"mac":"' + "0" * 64 + '"}').encode()).decode(),
    )


def _string_paths(node: Any, at: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    """The path of every string leaf of ``node`` (keys and indexes)."""
    if isinstance(node, dict):
        for key, item in node.items():
            yield from _string_paths(item, (*at, key))
    elif isinstance(node, list):
        for index, item in enumerate(node):
            yield from _string_paths(item, (*at, index))
    elif isinstance(node, str) and at:
        yield at


class Attacker:
    """A listener a payload names as its own target: any connection it accepts is a request sent where the caller
    chose (TLS or not, it is counted before a byte is read)."""

    def __init__(self) -> None:
        self._socket = socket.socket()
        self._socket.bind(("127.0.0.1", 0))
        self._socket.listen(16)
        self._socket.settimeout(0.2)
        self.port = self._socket.getsockname()[1]
        self.connections = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._accept, name="fuzz-attacker", daemon=True)
        self._thread.start()

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                connection, _ = self._socket.accept()
            except OSError:
                continue
            self.connections += 1
            connection.close()

    def close(self) -> None:
        self._stop.set()
        self._thread.join()
        self._socket.close()


class Hostile:
    """The hand-written cases, built against a running stack (real tokens to tamper, the dLocal secret to sign
    notifications with)."""

    def __init__(
        self,
        client: Client,
        profiles: Mapping[str, Profile],
        secrets: Mapping[str, Mapping[str, str]],
        extra_dirs: Sequence[Path] = (),
    ):
        from sealgate_local.generate import profile_documents

        self.client = client
        self.profiles = profiles
        self.secrets = secrets
        self.documents = profile_documents(profiles, extra_dirs)
        self.encrypting = sorted(served_by("encrypt", profiles))
        self.signing = sorted(
            name for name, p in served_by("sign", profiles).items() if p.signing is not None
        )
        self.notifying = sorted(name for name, p in profiles.items() if p.webhook is not None)
        self.forwarding = sorted(served_by("forward", profiles))

    # --- building blocks

    def example(self, partner: str) -> Any:
        return copy.deepcopy(self.documents[partner]["example"]["payload"])

    def protected(self, partner: str, tally: Tally) -> Any:
        answer = self.client.json("POST", f"/v1/encrypt/{partner}", {"payload": self.example(partner)})
        tally.see("hostile", f"encrypt {partner} (baseline)", answer)
        body = answer.json()
        return body.get("payload") if answer.status == 200 and isinstance(body, dict) else None

    def notification(
        self,
        partner: str,
        body: bytes,
        *,
        date: str | None = None,
        secret: str | None = None,
        login: str | None = None,
    ) -> list[tuple[str, str]]:
        profile = self.profiles[partner]
        assert profile.webhook is not None
        options = profile.webhook.options
        stored = self.secrets[partner]
        when = date or datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
        used_login = login if login is not None else stored[options.login]
        signature = dlocal_v2.authorization(secret or stored[options.secret], used_login, when, body)
        return [("X-Date", when), ("X-Login", used_login), ("Authorization", signature)]

    # --- the cases

    def cases(self, tally: Tally, attacker: Attacker) -> Iterator[Case]:
        routes = [("POST", f"/v1/encrypt/{p}") for p in self.encrypting[:2]]
        routes += [
            ("POST", f"/v1/decrypt/{p}") for p in self.encrypting if self.profiles[p].protection.symmetric
        ][:2]
        routes += [("POST", f"/v1/sign/{p}") for p in self.signing[:1]]
        routes += [("POST", f"/v1/forward/{p}") for p in self.forwarding[:1]]
        routes += [("POST", f"/v1/webhooks/{p}") for p in self.notifying[:1]]
        for method, path in routes:
            for index, body in enumerate(MALFORMED):
                yield Case("malformed JSON", f"{path} malformed #{index}", method, path, body)
            for index, body in enumerate(DUPLICATES):
                yield Case("duplicate keys", f"{path} duplicate keys #{index}", method, path, body)
            for index, body in enumerate(INVALID_UTF8):
                yield Case("invalid UTF-8", f"{path} invalid UTF-8 #{index}", method, path, body)
            for index, value in enumerate(WRONG_TYPES):
                yield Case("wrong types", f"{path} wrong types #{index}", method, path, _dump(value))
            for depth in (64, 1000, 10_000, 100_000):
                yield Case("deep bodies", f"{path} {depth} nested arrays", method, path, _deep(depth))
            yield Case("deep bodies", f"{path} 10000 nested objects", method, path, _deep_objects(10_000))
            yield Case(
                "huge bodies",
                f"{path} just over 256 KiB",
                method,
                path,
                _dump({"payload": "x" * 262_144}),
                expect="payload_too_large",
            )
        big = ("POST", f"/v1/encrypt/{self.encrypting[0]}")
        nine_mib = _dump({"payload": "x" * (9 * 1024 * 1024)})
        yield Case("huge bodies", "9 MiB string", *big, nine_mib, expect="payload_too_large")
        many = _dump({"payload": {f"k{i}": i for i in range(20_000)}})
        yield Case("huge bodies", "20 000 keys", *big, many, expect="payload_too_large")
        yield Case("huge bodies", "Content-Length not a number", *big, b"{}", content_length=b"12a")
        yield Case("huge bodies", "Content-Length negative", *big, b"{}", content_length=b"-5")
        yield Case(
            "huge bodies",
            "Content-Length over 10 MiB",
            *big,
            b"",
            content_length=b"99999999999",
            expect="payload_too_large",
        )
        yield from self.path_cases()
        yield from self.header_cases()
        yield from self.tampered_cases(tally)
        yield from self.notification_cases()
        yield from self.url_cases(attacker)
        yield from self.work_cases()

    def work_cases(self) -> Iterator[Case]:
        """Requests whose tokens would cost many key derivations: refused at once (413), before any."""
        from sealgate.layouts import enc_params
        from sealgate.schemes.aesbridge_kdf import EncryptionKeys

        for partner in self.encrypting:
            protection = self.profiles[partner].protection
            options = protection.layout_options
            if not isinstance(options, enc_params.Options):
                continue
            path = f"/v1/decrypt/{partner}"
            hostile = {
                f"enc_f{i}": base64.urlsafe_b64encode(i.to_bytes(16, "big") + bytes(64)).decode().rstrip("=")
                for i in range(1000)
            }
            yield Case(
                "bounded work",
                f"{partner}: 1000 enc_ fields, distinct salts",
                "POST",
                path,
                _dump({"payload": hostile}),
                expect="too_many_fields",
            )
            if protection.cipher.name.startswith("aesbridge-") and protection.cipher.can_encrypt:
                module = importlib.import_module(
                    f"sealgate.schemes.{protection.cipher.name.replace('-', '_')}"
                )
                passphrase = self.secrets[partner][protection.key_fields["key"]]
                fresh = EncryptionKeys(max_uses=1)  # the reference's way: a new salt for every value
                sealed = {
                    f"enc_f{i}": module.encrypt(f"value {i}", passphrase, urlsafe=True, keys=fresh)
                    for i in range(options.max_derivations + 1)
                }
                yield Case(
                    "bounded work",
                    f"{partner}: {len(sealed)} valid tokens, distinct salts",
                    "POST",
                    path,
                    _dump({"payload": sealed}),
                    expect="too_much_work",
                )

    def path_cases(self) -> Iterator[Case]:
        body = _dump({"payload": {"cpf": "52998224725"}})
        for path in PATH_TRICKS:
            for method in ("POST", "GET"):
                yield Case(
                    "path tricks", f"{method} {path[:60]}", method, path, body if method == "POST" else b""
                )
        for method in ("PUT", "DELETE", "PATCH", "OPTIONS", "HEAD", "TRACE", "PROPFIND"):
            yield Case(
                "path tricks", f"{method} on a route", method, f"/v1/encrypt/{self.encrypting[0]}", body
            )
        yield Case("path tricks", "no stage", "POST", "/v1/encrypt/infosimples", body, stage=False)
        yield Case("path tricks", "other stage", "POST", "/prod/v1/encrypt/infosimples", body, stage=False)
        yield Case(
            "path tricks",
            "absolute-form target",
            "POST",
            "http://evil.example/dev/v1/encrypt/infosimples",
            body,
            stage=False,
        )
        yield Case("path tricks", "asterisk target", "OPTIONS", "*", b"", stage=False)

    def header_cases(self) -> Iterator[Case]:
        sign = f"/v1/sign/{self.signing[0]}"
        for index, key in enumerate(
            (
                "k\r\nX-Sealgate-Injected: 1",
                "k\nX-Sealgate-Injected: 1",
                "k\rX-Sealgate-Injected: 1",
                "k\r\n\r\n<html>",
                "k\u2028X-Sealgate-Injected: 1",
                "k\x00",
            )
        ):
            yield Case(
                "header injection",
                f"idempotency key with a line break #{index}",
                "POST",
                sign,
                _dump({"body": "{}", "idempotency_key": key}),
            )
        forward = f"/v1/forward/{self.forwarding[0]}"
        operation = next(iter(self.profiles[self.forwarding[0]].operations))
        yield Case(
            "header injection",
            "forward idempotency key with CRLF",
            "POST",
            forward,
            _dump(
                {
                    "operation": operation,
                    "payload": self.example(self.forwarding[0]),
                    "idempotency_key": "k\r\nX-Sealgate-Injected: 1",
                }
            ),
        )
        encrypt = f"/v1/encrypt/{self.encrypting[0]}"
        raw_headers: list[tuple[str, tuple[tuple[bytes, bytes], ...]]] = [
            ("bare CR in a value", ((b"X-Test", b"a\rX-Sealgate-Injected: 1"),)),
            ("bare LF in a value", ((b"X-Test", b"a\nX-Sealgate-Injected: 1"),)),
            ("obs-fold continuation", ((b"X-Test", b"a\r\n X-Sealgate-Injected: 1"),)),
            ("NUL in a value", ((b"X-Test", b"a\x00b"),)),
            ("invalid UTF-8 in a value", ((b"X-Test", b"\xff\xfe"),)),
            ("space before the colon", ((b"X-Test ", b"a"),)),
            ("no colon", ((b"X-Test-No-Colon", b""),)),
            ("64 KiB value", ((b"X-Test", b"a" * 65_536),)),
            ("200 headers", tuple((f"X-Test-{i}".encode(), b"a") for i in range(200))),
            (
                "Host elsewhere",
                ((b"X-Forwarded-Host", b"evil.example"), (b"X-Original-URL", b"/v1/sign/dlocal")),
            ),
            ("two Content-Type", ((b"Content-Type", b"text/plain"),)),
            ("Transfer-Encoding chunked too", ((b"Transfer-Encoding", b"chunked"),)),
        ]
        body = _dump({"payload": {"cpf": "52998224725"}})
        for name, headers in raw_headers:
            yield Case("header injection", name, "POST", encrypt, body, headers)
        if self.notifying:
            partner = self.notifying[0]
            raw = _dump(self.example_notification(partner))
            signed = self.notification(partner, raw)
            for name, index in (("X-Date", 0), ("X-Login", 1), ("Authorization", 2)):
                headers = list(signed)
                headers[index] = (name, headers[index][1] + "\r\nX-Sealgate-Injected: 1")
                yield Case(
                    "header injection",
                    f"webhook {name} with CRLF",  # on the wire: the header, then one more (intact)
                    "POST",
                    f"/v1/webhooks/{partner}",
                    raw,
                    tuple(headers),
                )

    def example_notification(self, partner: str) -> dict[str, Any]:
        body = copy.deepcopy(self.documents[partner]["example"]["webhook"]["body"])
        body["id"] = f"FUZZ-{uuid.uuid4()}"
        return dict(body)

    def tampered_cases(self, tally: Tally) -> Iterator[Case]:
        for partner in self.encrypting:
            protected = self.protected(partner, tally)
            if protected is None:
                continue
            decrypt = f"/v1/decrypt/{partner}"
            scheme = self.profiles[partner].scheme
            example = self.example(partner)
            for path in _string_paths(protected):
                token = protected
                for key in path:
                    token = token[key]
                if not isinstance(token, str) or _at(example, path) == token:
                    continue  # a value the layout passes through, not a token
                variants = [*token_variants(token), *laravel_variants(token)]
                for what, variant in variants:
                    altered = copy.deepcopy(protected)
                    node = altered
                    for key in path[:-1]:
                        node = node[key]
                    node[path[-1]] = variant
                    where = ".".join(str(p) for p in path)
                    same = _same_bytes(token, variant)  # another spelling of the same token: may open
                    yield Case(
                        "tampered tokens",
                        f"{scheme} {where}: {what}{' (same bytes)' if same else ''}",
                        "POST",
                        decrypt,
                        _dump({"payload": altered}),
                        tampered=not same,
                    )
            if isinstance(protected, dict):
                yield Case(
                    "tampered tokens",
                    f"{scheme}: token renamed",
                    "POST",
                    decrypt,
                    _dump({"payload": {f"x{k}": v for k, v in protected.items()}}),
                )
                yield Case(
                    "tampered tokens",
                    f"{scheme}: token twice",
                    "POST",
                    decrypt,
                    _dump({"payload": {**protected, **{f"enc_{k}": v for k, v in protected.items()}}}),
                )

    def notification_cases(self) -> Iterator[Case]:
        for partner in self.notifying:
            path = f"/v1/webhooks/{partner}"
            body = _dump(self.example_notification(partner))
            good = self.notification(partner, body)
            yield Case("tampered notifications", "valid (baseline)", "POST", path, body, tuple(good))
            yield Case("tampered notifications", "replayed", "POST", path, body, tuple(good), tampered=True)
            fresh = _dump(self.example_notification(partner))
            signed = self.notification(partner, fresh)
            date, login, authorization = (value for _, value in signed)
            signature = authorization.rsplit(" ", 1)[-1]
            flipped = signature[:-1] + ("0" if signature[-1] != "0" else "1")
            variants: list[tuple[str, bytes, list[tuple[str, str]]]] = [
                (
                    "signature flipped",
                    fresh,
                    [
                        ("X-Date", date),
                        ("X-Login", login),
                        ("Authorization", authorization.replace(signature, flipped)),
                    ],
                ),
                (
                    "signature upper-case (the same MAC)",
                    fresh,
                    [
                        ("X-Date", date),
                        ("X-Login", login),
                        ("Authorization", authorization.replace(signature, signature.upper())),
                    ],
                ),
                (
                    "signature cut",
                    fresh,
                    [("X-Date", date), ("X-Login", login), ("Authorization", authorization[:-2])],
                ),
                (
                    "signature empty",
                    fresh,
                    [("X-Date", date), ("X-Login", login), ("Authorization", "V2-HMAC-SHA256, Signature: ")],
                ),
                ("no Authorization", fresh, [("X-Date", date), ("X-Login", login)]),
                ("no X-Date", fresh, [("X-Login", login), ("Authorization", authorization)]),
                ("no X-Login", fresh, [("X-Date", date), ("Authorization", authorization)]),
                ("other login", fresh, self.notification(partner, fresh, login="someone-else")),
                (
                    "other secret",
                    fresh,
                    self.notification(partner, fresh, secret="forged-" + uuid.uuid4().hex),
                ),
                ("body changed after signing", fresh + b" ", signed),
                ("body re-serialised", json.dumps(json.loads(fresh), indent=1).encode(), signed),
                (
                    "an hour old",
                    fresh,
                    self.notification(partner, fresh, date=_iso(datetime.now(UTC) - timedelta(hours=1))),
                ),
                (
                    "an hour ahead",
                    fresh,
                    self.notification(partner, fresh, date=_iso(datetime.now(UTC) + timedelta(hours=1))),
                ),
                ("date not ISO", fresh, self.notification(partner, fresh, date="yesterday")),
                (
                    "date with a lone surrogate",
                    fresh,
                    [
                        ("X-Date", "2025-01-01T00:00:00.000Z\udc80"),
                        ("X-Login", login),
                        ("Authorization", authorization),
                    ],
                ),
                (
                    "two Authorization headers",
                    fresh,
                    [*signed, ("Authorization", authorization.replace(signature, flipped))],
                ),
            ]
            for name, sent, headers in variants:
                encoded = tuple((k, v.encode("utf-8", "surrogateescape")) for k, v in headers)
                same = "the same MAC" in name  # hex is not case-sensitive: not a forgery
                yield Case("tampered notifications", name, "POST", path, sent, encoded, tampered=not same)
            for name, raw in (
                (
                    "signed duplicate keys",
                    b'{"id":"FUZZ-' + uuid.uuid4().hex.encode() + b'","status":"PAID","status":"REJECTED"}',
                ),
                ("signed invalid UTF-8", b'{"id":"FUZZ-' + uuid.uuid4().hex.encode() + b'","status":"\xff"}'),
                ("signed not JSON", b"id=FUZZ&status=PAID"),
                ("signed deep", b'{"id":"FUZZ-deep","x":' + b"[" * 100_000 + b"]" * 100_000 + b"}"),
            ):
                yield Case(
                    "tampered notifications", name, "POST", path, raw, tuple(self.notification(partner, raw))
                )

    def url_cases(self, attacker: Attacker) -> Iterator[Case]:
        here = f"127.0.0.1:{attacker.port}"
        urls = [
            f"https://{here}/steal",
            f"http://{here}/steal",
            f"//{here}/steal",
            f"https://{here}@evil.example/",
        ]
        fields = (
            "base_url",
            "url",
            "host",
            "endpoint",
            "target",
            "callback_url",
            "notification_url",
            "path",
            "uri",
        )
        for partner in self.forwarding:
            profile = self.profiles[partner]
            operation = next(iter(profile.operations))
            payload = self.example(partner)
            path = f"/v1/forward/{partner}"
            for url in urls[:2]:
                chosen = {name: url for name in fields}
                yield Case(
                    "URL picking",
                    f"{partner}: URL fields beside the payload",
                    "POST",
                    path,
                    _dump({"operation": operation, "payload": payload, **chosen}),
                    forward=True,
                )
                if isinstance(payload, dict):
                    yield Case(
                        "URL picking",
                        f"{partner}: URL fields inside the payload",
                        "POST",
                        path,
                        _dump({"operation": operation, "payload": {**payload, **chosen}}),
                        forward=True,
                    )
            for url in urls:
                yield Case(
                    "URL picking",
                    f"{partner}: operation is a URL",
                    "POST",
                    path,
                    _dump({"operation": url, "payload": payload}),
                )
            for bad in (
                "../../steal",
                f"{operation}/../../steal",
                f"{operation}?next=https://{here}/",
                f"{operation}#x",
            ):
                yield Case(
                    "URL picking",
                    f"{partner}: operation with a path trick",
                    "POST",
                    path,
                    _dump({"operation": bad, "payload": payload}),
                )
            headers = (
                (b"X-Forwarded-Host", here.encode()),
                (b"Forwarded", f"host={here}".encode()),
                (b"X-Original-URL", f"https://{here}/".encode()),
                (b"X-Rewrite-URL", f"https://{here}/".encode()),
                (b"X-Sealgate-Base-Url", f"https://{here}/".encode()),
            )
            yield Case(
                "URL picking",
                f"{partner}: headers naming another host",
                "POST",
                path,
                _dump({"operation": operation, "payload": payload}),
                headers,
                forward=True,
            )
        yield Case(
            "URL picking",
            "sign with a URL in the body",
            "POST",
            f"/v1/sign/{self.signing[0]}",
            _dump({"body": "{}", "url": urls[0], "base_url": urls[0]}),
        )


def _same_bytes(token: str, variant: Any) -> bool:
    """Whether ``variant`` is the same token written otherwise (other base64 alphabet, padding, spaces)."""
    if not isinstance(variant, str):
        return False
    try:
        return b64decode(variant) == b64decode(token)
    except Exception:  # not base64: not the same token
        return False


def _at(value: Any, path: Sequence[Any]) -> Any:
    """``value`` at ``path``, or None where it has nothing there."""
    for key in path:
        try:
            value = value[key]
        except (KeyError, IndexError, TypeError):
            return None
    return value


def _iso(when: datetime) -> str:
    return when.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def interleaved(cases: Iterable[Case]) -> list[Case]:
    """One case of each category in turn, each category in its own order: a run its deadline cuts short has
    still tried every category."""
    queues: dict[str, deque[Case]] = {}
    for case in cases:
        queues.setdefault(case.category, deque()).append(case)
    ordered: list[Case] = []
    while queues:
        for category in list(queues):
            ordered.append(queues[category].popleft())
            if not queues[category]:
                del queues[category]
    return ordered


def run_hostile(hostile: Hostile, tally: Tally, attacker: Attacker, deadline: float) -> list[str]:
    """Send every hostile case (until ``deadline``); the outcome ids of the forwards that were queued."""
    queued: list[str] = []
    for case in interleaved(hostile.cases(tally, attacker)):
        if time.monotonic() > deadline:
            break
        tally.categories[case.category] += 1
        sent = time.perf_counter()
        try:
            answer = hostile.client.send(
                case.method,
                case.path,
                case.body,
                case.headers,
                stage=case.stage,
                content_length=case.content_length,
            )
        except (OSError, http.client.HTTPException) as error:
            # The local API closed the connection without an answer: as bad as a 5xx for a client.
            tally.server_errors.append(f"{case.category}: {case.name}: no answer ({type(error).__name__})")
            tally.requests += 1
            continue
        tally.see("hostile", f"{case.category}: {case.name}", answer, method=case.method)
        if case.expect is not None:
            body = answer.json()
            if not isinstance(body, dict) or body.get("code") != case.expect:
                tally.expectations_missed.append(f"{case.category}: {case.name}: {answer.status}")
            elif case.category == "bounded work":
                tally.refused_work_ms.append((time.perf_counter() - sent) * 1000)
        if case.tampered and 200 <= answer.status < 300:
            tally.tampered_accepted.append(f"{case.category}: {case.name}")
        if case.forward and answer.status == 202:
            body = answer.json()
            if isinstance(body, dict) and isinstance(body.get("id"), str):
                queued.append(body["id"])
    return queued


def await_deliveries(client: Client, queued: Sequence[str], tally: Tally, seconds: float) -> None:
    """Wait (bounded) until every queued forward has left ``queued``: their requests have then been made."""
    deadline = time.monotonic() + seconds
    pending = list(queued)
    settled: dict[str, str] = {}
    while pending and time.monotonic() < deadline:
        still = []
        for outcome in pending:
            answer = client.send("GET", f"/v1/forward/{outcome}")
            tally.see("hostile", "forward outcome", answer, method="GET")
            body = answer.json()
            status = body.get("status") if isinstance(body, dict) else None
            if status in (None, "queued", "retrying"):
                still.append(outcome)
            else:
                settled[outcome] = str(status)
        pending = still
        if pending:
            time.sleep(0.5)
    tally.forward_outcomes.update(settled.values())
    tally.forward_outcomes["still queued"] += len(pending)


# --- schemathesis, from the document the local API serves ---------------------------------------------------------


def narrowed(document: dict[str, Any], profiles: Mapping[str, Profile]) -> dict[str, Any]:
    """The document with each partner path parameter limited to the partners its function serves, and the
    forward route's ``operation`` to the profiles' operation names: positive cases reach past the partner lookup,
    negative ones still go outside it. Without SigV4: the local API stands in for it."""
    narrowed_document = copy.deepcopy(document)
    # The local API stands in for SigV4 (unless started with it): a request without Authorization is not a
    # schema violation there.
    narrowed_document.pop("security", None)
    operations = sorted({name for profile in profiles.values() for name in profile.operations})
    for path, methods in narrowed_document["paths"].items():
        for method, operation in methods.items():
            operation.pop("security", None)
            function = operation.get("x-sealgate-function")
            served = sorted(served_by(function, profiles)) if function else []
            if path.startswith("/v1/webhooks/"):
                served = sorted(name for name in served if profiles[name].webhook is not None)
            if path.startswith("/v1/sign/"):
                served = sorted(name for name in served if profiles[name].signing is not None)
            for parameter in operation.get("parameters") or []:
                is_partner = parameter["name"] == "partner" or (
                    parameter["name"] == "target" and method == "post"
                )
                if parameter.get("in") == "path" and is_partner and served:
                    parameter["schema"] = {"type": "string", "enum": served}
                if parameter.get("in") == "path" and parameter["name"] == "target" and method == "get":
                    parameter["schema"] = {"type": "string", "pattern": "^[0-9a-f]{32}$"}
            body = ((operation.get("requestBody") or {}).get("content") or {}).get("application/json")
            if body and path.startswith("/v1/forward/"):
                schema = body["schema"]
                schema.setdefault("properties", {})["operation"] = {"type": "string", "enum": operations}
    return narrowed_document


def run_schemathesis(
    base_url: str, document: dict[str, Any], tally: Tally, *, examples: int, deadline: float, seed: int
) -> None:
    """``examples`` positive and negative cases per operation (until ``deadline``), each answer counted and
    checked by schemathesis' conformance checks."""
    import hypothesis
    import schemathesis
    from hypothesis import HealthCheck, Phase, given, settings
    from schemathesis.checks import not_a_server_error
    from schemathesis.specs.openapi import checks as openapi_checks

    checks = [not_a_server_error, *(getattr(openapi_checks, name) for name in CONFORMANCE_CHECKS)]
    schema = schemathesis.openapi.from_dict(document)
    for result in schema.get_all_operations():
        operation = result.ok()
        for mode in (schemathesis.GenerationMode.POSITIVE, schemathesis.GenerationMode.NEGATIVE):
            label = f"{operation.method.upper()} {operation.path} ({mode.value})"
            probe = given(case=operation.as_strategy(generation_mode=mode))(
                _prober(base_url=base_url, label=label, tally=tally, deadline=deadline, checks=checks)
            )
            probe = hypothesis.seed(seed)(probe)
            probe = settings(
                max_examples=examples,
                deadline=None,
                database=None,
                phases=[Phase.generate],
                suppress_health_check=list(HealthCheck),
            )(probe)
            try:
                probe()
            except Exception as error:  # generation gave up (unsatisfiable): counted, not raised
                with tally.lock:
                    tally.conformance[f"generation error ({type(error).__name__})"] += 1


def _prober(**context: Any) -> Callable[[Any], None]:
    def probe(case: Any) -> None:
        _probe(case, **context)

    return probe


def _probe(case: Any, *, base_url: str, label: str, tally: Tally, deadline: float, checks: list[Any]) -> None:
    """One schemathesis case: sent, counted, and checked against the document."""
    if time.monotonic() > deadline:
        return
    try:
        response = case.call(base_url=base_url, timeout=TIMEOUT)
    except Exception as error:  # a transport error is counted, never raised
        with tally.lock:
            tally.server_errors.append(f"schemathesis {label}: no answer ({type(error).__name__})")
            tally.requests += 1
        return
    headers = [(name, value) for name, values in response.headers.items() for value in values]
    answer = Answer(response.status_code, headers, response.content)
    tally.see("schemathesis", f"schemathesis {label}", answer, method=case.method)
    try:
        case.validate_response(response, checks=checks)
    except (Exception, BaseExceptionGroup) as failures:  # schemathesis reports failures as a group
        for failure in getattr(failures, "exceptions", (failures,)):
            title = str(getattr(failure, "title", type(failure).__name__))
            with tally.lock:
                tally.conformance[title] += 1
                tally.conformance_examples.setdefault(title, f"{label}: {answer.status}")


# --- the run ---------------------------------------------------------------------------------------------------

#: a partner no shipped profile has, so that its cipher (raw-key AES-GCM) is fuzzed through the API too (the
#: sandboxes need an oracle for a cipher: AesBridge CBC has none, its limits are unit-tested through a profile)
EXTRA_PROFILES: dict[str, dict[str, Any]] = {
    "fuzzgcm": {
        "name": "fuzzgcm",
        "description": "fuzzing only: AES-256-GCM with a raw key, around the whole body",
        "base_url": "https://fuzz-gcm.invalid/",
        "secret_fields": ["key"],
        "protection": {"scheme": "aes-gcm", "layout": "wrap", "key": "key", "wrap_field": "data"},
        "body_format": "json",
        "operations": {"send": {"method": "POST", "path": "v1/send"}},
        "example": {"payload": {"amount": 1, "note": "fuzz"}},
    },
}


def write_extra_profiles(folder: Path) -> Path:
    """:data:`EXTRA_PROFILES` as profile files in ``folder`` (start the stack with ``profiles_dir=folder``)."""
    for name, document in EXTRA_PROFILES.items():
        (folder / f"{name}.json").write_text(json.dumps(document, indent=2), encoding="utf-8")
    return folder


def fuzz(
    base_url: str,
    secrets: Mapping[str, Mapping[str, str]],
    *,
    seconds: float,
    examples: int,
    seed: int,
    profiles_dir: Path | None = None,
) -> Tally:
    """Everything against the local API at ``base_url``, within about ``seconds``; ``profiles_dir``: the extra
    profiles the stack was started with (:func:`write_extra_profiles`)."""
    started = time.monotonic()
    tally = Tally()
    client = Client(base_url)
    extra_dirs = (profiles_dir,) if profiles_dir is not None else ()
    profiles = load_profiles(extra_dirs)
    served = client.send("GET", "/openapi.json")
    tally.see("hostile", "GET /openapi.json", served)
    if served.status != 200:
        raise SystemExit(f"fuzz: the local API does not serve openapi.json ({served.status})")
    document = narrowed(json.loads(served.body), profiles)
    attacker = Attacker()
    try:
        hostile = Hostile(client, profiles, secrets, extra_dirs)
        queued = run_hostile(hostile, tally, attacker, started + seconds * 0.6)
        run_schemathesis(
            base_url, document, tally, examples=examples, deadline=started + seconds * 0.9, seed=seed
        )
        await_deliveries(client, queued, tally, max(5.0, started + seconds - time.monotonic()))
        time.sleep(0.5)
    finally:
        attacker.close()
    tally.url_picked = attacker.connections
    return tally


def report(tally: Tally, elapsed: float) -> str:
    figures = tally.figures()
    lines = [
        f"requests tried            {figures['requests']} ({elapsed:.0f} s; "
        + ", ".join(f"{k} {v}" for k, v in figures["requests_by_source"].items())
        + ")",
        f"5xx answers               {figures['server_errors']} (target 0)",
        f"outside {{code, message}}   {figures['contract_violations']} (target 0)",
        f"tampered accepted         {figures['tampered_accepted']} (target 0)",
        f"URL picked by a payload   {figures['url_picked']} (target 0; those forwards: "
        + (", ".join(f"{k} {v}" for k, v in figures["forwards_with_chosen_urls"].items()) or "none")
        + ")",
        f"headers injected          {figures['headers_injected']} (target 0)",
        f"expected refusal missing  {figures['expectations_missed']} (target 0; bounded work refused within "
        f"{figures['bounded_work_refused_in_ms_max']} ms)",
        "statuses                  " + ", ".join(f"{k}: {v}" for k, v in figures["statuses"].items()),
        "hostile cases             "
        + ", ".join(f"{k} {v}" for k, v in figures["hostile_cases_by_category"].items()),
        "schemathesis conformance  "
        + (", ".join(f"{k}: {v}" for k, v in figures["schemathesis_conformance"].items()) or "no failure"),
    ]
    for figure in (
        "server_errors",
        "contract_violations",
        "tampered_accepted",
        "headers_injected",
        "expectations_missed",
    ):
        for example in figures["examples"][figure]:
            lines.append(f"  {figure}: {example}")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--seconds", type=float, default=120.0, help="time budget of the requests (the stack's start aside)"
    )
    parser.add_argument("--examples", type=int, default=200, help="schemathesis examples per route and mode")
    parser.add_argument("--seed", type=int, default=0, help="recorded with the figures")
    parser.add_argument("--json", type=Path, help="write the figures here as JSON")
    args = parser.parse_args(argv)

    from sealgate_local.stack import LocalStack

    print("fuzz: starting the local stack...", file=sys.stderr, flush=True)
    with tempfile.TemporaryDirectory(prefix="sealgate-fuzz-") as folder:
        profiles_dir = write_extra_profiles(Path(folder))
        with LocalStack(pool_size=2, profiles_dir=profiles_dir) as stack:
            assert stack.aws is not None
            secrets = {name: dict(secret.value) for name, secret in stack.aws.secrets.items()}
            started = time.monotonic()
            tally = fuzz(
                stack.base_url,
                secrets,
                seconds=args.seconds,
                examples=args.examples,
                seed=args.seed,
                profiles_dir=profiles_dir,
            )
            elapsed = time.monotonic() - started
    print(report(tally, elapsed))
    if args.json is not None:
        figures = {
            **tally.figures(),
            "seconds": round(elapsed, 1),
            "examples_per_route_and_mode": args.examples,
        }
        args.json.write_text(json.dumps(figures, indent=2) + "\n", encoding="utf-8")
    missed = tally.missed()
    if missed:
        print(f"fuzz: targets missed: {', '.join(missed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
