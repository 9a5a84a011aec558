"""A pytest plugin: every test's captured output, and what the AWS stacks hold, searched for keys and plaintexts.

Loaded by ``tests/conftest.py``, so it runs wherever the tests run (``make test``, CI). When a test ends, it
searches:

- what the test captured: stdout, stderr and log records of setup, call and teardown (the sections pytest
  keeps for the report), and everything the test read itself through ``capsys``/``capfd`` (the ``output``
  fixture of the integration tests reads the functions' logs and EMF metrics that way);
- what moto holds in this process (``mock_aws`` and the local stack's moto server alike): every SQS message,
  dead letters and in-flight ones included (but not those a test handed to a function that processed them:
  Lambda's event source would have deleted them, see :func:`consumed`), every DynamoDB item, every metric
  datum sent to CloudWatch;
- for a test holding a local stack: every line its functions printed, and every API answer a ``Demo`` kept
  (except ``/v1/encrypt`` and ``/v1/decrypt``, which answer payloads by design, and the account identifiers a
  ``/v1/sign`` answer shows by design).

It looks for:

- every secret value in moto's Secrets Manager and every throwaway key a ``stack`` or local stack fixture made
  (both versions, and the partner's side: a PEM by its lines), values under 8 characters skipped;
- the plaintexts the partner profiles' examples protect (their card number, CPF, birthdate), those that no
  example sends in the clear elsewhere; values a test registers with the ``sensitive`` fixture;
- by pattern: a Luhn-valid card number (16 digits on a Visa/Mastercard prefix, 15 on Amex) standing alone in
  captured output, function logs and answers, and as a card-number field's value anywhere (a queued
  notification may hold a partner's own long numbers); a CVV only in context (the value of a ``cvv``/``cvc``/``security_code`` field: a bare ``123`` is everywhere),
  and ``PLAINTEXT-MARKER-<hex>`` markers.

A find fails the test (an error at teardown) naming the kind and where, never the value. A test that prints a
plaintext on purpose (the CLI's decrypt output) says so with ``@pytest.mark.reveals_plaintext(reason=...)``: its
captured output is then not searched for plaintexts (keys still are, and so is what the stacks hold). The run
ends with one summary line: tests, items and bytes searched, values searched for, leaks found.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import sys
from collections import Counter
from collections.abc import Callable, Generator, Iterable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import pytest

MIN_LENGTH = 8  # shorter values (a CVV, a 3-letter currency) occur by chance: matched in context only
MARK = "reveals_plaintext"
REPORT_VARIABLE = "SEALGATE_LEAK_REPORT"  # where the summary's figures go as JSON, if set
PLAINTEXT_KINDS = frozenset({"card number", "cvv", "plaintext", "plaintext marker"})

# Card numbers standing alone: not inside a longer run of digits, letters (hex digests) or a decimal.
_CARD = re.compile(r"(?<![0-9A-Za-z.])(?:4\d{15}|5[1-5]\d{14}|2[2-7]\d{14}|3[47]\d{13})(?![0-9A-Za-z])")
# A card number as the value of a card-number field: "number": "4111...", card_number=4111..., "pan": ...
_CARD_FIELD = re.compile(
    r"""(?i)\b(?:number|card_?number|pan)\\?["']?\s*[:=]\s*\\?["']?(\d{13,19})(?![\d])"""
)
# A CVV as the value of a field named like one: "cvv": "123", 'cvc': 1234, security_code=123, \"cvv\":\"123\".
_CVV = re.compile(
    r"""(?i)\b(?:cvv2?|cvc2?|security_?code|card_?cvv)\\?["']?\s*[:=]\s*\\?["']?(\d{3,4})(?![\d])"""
)
_MARKER = re.compile(r"PLAINTEXT-MARKER-[0-9a-fA-F]{6,}")


def luhn(digits: str) -> bool:
    total = 0
    for index, char in enumerate(reversed(digits)):
        value = int(char) * (2 if index % 2 else 1)
        total += value - 9 if value > 9 else value
    return total % 10 == 0


@dataclass(frozen=True)
class Leak:
    kind: str
    where: str

    def __str__(self) -> str:
        return f"{self.kind} in {self.where}"


@dataclass
class Needles:
    """Values to find (value -> kind), matched as substrings in one pass."""

    values: dict[str, str] = field(default_factory=dict)
    _pattern: re.Pattern[str] | None = field(default=None, repr=False)

    def add(self, value: str, kind: str) -> None:
        if len(value) >= MIN_LENGTH and value not in self.values:
            self.values[value] = kind
            escaped = json.dumps(value)[1:-1]  # as it reads inside a JSON string
            if escaped != value:
                self.values[escaped] = kind
            self._pattern = None

    def add_secret(self, value: str, kind: str = "key") -> None:
        """A secret's value: a PEM (or any multi-line value) by its long lines, a JSON object by its values."""
        try:
            parsed = json.loads(value) if value[:1] == "{" else None
        except ValueError:
            parsed = None
        if isinstance(parsed, dict):
            for item in parsed.values():
                if isinstance(item, str):
                    self.add_secret(item, kind)
            return
        lines = [
            line.strip() for line in value.splitlines() if len(line.strip()) >= 16 and "-----" not in line
        ]
        for text in lines if len(lines) > 1 or "-----" in value else [value]:
            self.add(text, kind)

    @property
    def fingerprint(self) -> str:
        return hashlib.sha256("\0".join(sorted(self.values)).encode()).hexdigest()

    def find(self, text: str, *, bare_cards: bool = True) -> set[str]:
        """Kinds of the values found in ``text``, and of the patterns. Without ``bare_cards`` a card number
        counts only as a card-number field's value: a queued notification or a table item holds the partner's
        and producers' own numbers (a fuzzed amount may pass Luhn), while no log line or answer may hold one."""
        if self.values and self._pattern is None:
            ordered = sorted(self.values, key=len, reverse=True)
            self._pattern = re.compile("|".join(map(re.escape, ordered)))
        found = {self.values[m.group(0)] for m in self._pattern.finditer(text)} if self._pattern else set()
        cards = _CARD.finditer(text) if bare_cards else _CARD_FIELD.finditer(text)
        if any(luhn(m.group(m.lastindex or 0)) for m in cards):
            found.add("card number")
        if _CVV.search(text):
            found.add("cvv")
        if _MARKER.search(text):
            found.add("plaintext marker")
        return found


# --- what the profiles' examples protect -----------------------------------------------------------------------


def example_plaintexts() -> dict[str, str]:
    """The values the profiles' examples put in protected fields (recorded while a layout protects them), minus
    any value an example sends in the clear (dLocal's payer document is Infosimples' protected CPF)."""
    from sealgate.layouts.wrap import BODY_FIELD
    from sealgate.partners import load_profiles
    from sealgate_local.generate import Example, profile_documents

    profiles = load_profiles()
    documents = profile_documents(profiles)
    sealed: set[str] = set()
    clear: set[str] = set()
    for name, profile in profiles.items():
        protection = profile.protection
        plaintexts: list[bytes] = []

        def record(plaintext: bytes, kept: list[bytes] = plaintexts) -> str:
            kept.append(plaintext)
            return ""

        payload = Example.of(profile, documents[name]).payload
        protected = protection.layout.protect(payload, record, protection.layout_options)
        if protected.fields == (BODY_FIELD,):
            continue  # a whole body sealed at once: its values are not field values
        for plaintext in plaintexts:
            sealed |= set(_leaves(plaintext.decode("utf-8", "replace")))
        clear |= set(_leaves(json.dumps(protected.payload)))
    return {value: "plaintext" for value in sealed - clear}


def _leaves(text: str) -> Iterator[str]:
    try:
        value = json.loads(text)
    except ValueError:
        yield text
        return
    pending = [value]
    while pending:
        item = pending.pop()
        if isinstance(item, dict):
            pending += item.values()
        elif isinstance(item, list):
            pending += item
        elif isinstance(item, str):
            yield item
        elif item is not None and not isinstance(item, bool):
            yield str(item)


# --- what moto and the local stacks hold ---------------------------------------------------------------------


def _snapshot(read: Callable[[], list[tuple[str, str]]]) -> list[tuple[str, str]]:
    """``read()`` again if a stack's thread changed a store while it was read."""
    for _ in range(5):
        try:
            return read()
        except RuntimeError:  # dictionary or list changed size during iteration
            continue
    return read()


def _backends(module: str, name: str) -> list[Any]:
    """Every region's backend moto created in this process for a service (none if moto is not loaded)."""
    if "moto" not in sys.modules:
        return []
    try:
        backends = getattr(__import__(module, fromlist=[name]), name)
    except (ImportError, AttributeError):
        return []
    return [backend for account in list(dict.values(backends)) for backend in list(dict.values(account))]


#: Ids of SQS messages a test handed to a function that processed them: Lambda's event source deletes those,
#: so they are not at rest (a producer's plain message the test left in flight is not the gateway's leak).
CONSUMED: set[str] = set()


def consumed(message_ids: Iterable[str]) -> None:
    """Record messages a function processed without reporting them as failed (see :data:`CONSUMED`)."""
    CONSUMED.update(message_ids)


def moto_held() -> list[tuple[str, str]]:
    """(where, text) for every SQS message, DynamoDB item and CloudWatch metric datum moto holds."""

    def read() -> list[tuple[str, str]]:
        held: list[tuple[str, str]] = []
        for backend in _backends("moto.sqs.models", "sqs_backends"):
            for name, queue in list(backend.queues.items()):
                for message in list(queue._messages):
                    if message.id in CONSUMED:
                        continue
                    text = json.dumps(
                        {"body": message.body, "attributes": message.message_attributes}, default=str
                    )
                    held.append((f"queue {name}", text))
        for backend in _backends("moto.dynamodb.models", "dynamodb_backends"):
            for name, table in list(backend.tables.items()):
                for item in table.all_items():
                    held.append((f"table {name}", json.dumps(item.to_json(), default=str)))
        for backend in _backends("moto.cloudwatch.models", "cloudwatch_backends"):
            for datum in list(backend.metric_data):
                held.append(("CloudWatch metric", json.dumps(vars(datum), default=str)))
        return held

    return _snapshot(read)


def moto_secrets() -> list[str]:
    """Every secret string in moto's Secrets Manager, every version."""

    def read() -> list[tuple[str, str]]:
        found: list[tuple[str, str]] = []
        for backend in _backends("moto.secretsmanager.models", "secretsmanager_backends"):
            for secret in list(dict.values(backend.secrets)):
                for version in list(getattr(secret, "versions", {}).values()):
                    if isinstance(version.get("secret_string"), str):
                        found.append(("", version["secret_string"]))
        return found

    return [text for _, text in _snapshot(read)]


def _stack_resources(value: Any) -> Any:
    """The ``StackResources`` of a fixture value (a moto ``stack`` or a ``LocalStack``), else None."""
    stack_module = sys.modules.get("sealgate_local.aws_stack")
    if stack_module is None:
        return None
    if isinstance(value, stack_module.StackResources):
        return value
    resources = getattr(value, "aws", None)
    return resources if isinstance(resources, stack_module.StackResources) else None


def fixture_values(funcargs: dict[str, Any], needles: Needles) -> list[tuple[str, str]]:
    """Throwaway keys of the test's stacks into ``needles``; (where, text) of the local stacks' function logs
    and kept API answers."""
    held: list[tuple[str, str]] = []
    identifiers: set[str] = set()
    for value in funcargs.values():
        resources = _stack_resources(value)
        if resources is not None:
            for secret in [*resources.secrets.values(), *resources.previous_secrets.values()]:
                for text in [*secret.value.values(), *secret.partner_side.values()]:
                    needles.add_secret(text)
            identifiers |= _account_identifiers(resources)
        logs = getattr(value, "logs", None)
        if resources is not None and logs is not None:
            held += [(f"log of {function}", line) for function, line in list(logs.lines)]
    for value in funcargs.values():
        answers = getattr(value, "answers", None)
        if isinstance(answers, list) and hasattr(value, "stack"):
            for answer in list(answers):
                route = str(getattr(answer, "path", "")).split("/")[2:3]
                if route in (["encrypt"], ["decrypt"]):
                    continue
                raw = str(getattr(answer, "raw", ""))
                if route == ["sign"]:
                    for identifier in identifiers:
                        raw = raw.replace(identifier, "<account identifier>")
                held.append(
                    (f"API answer {getattr(answer, 'method', '')} /v1/{route[0] if route else ''}", raw)
                )
    return held


def _account_identifiers(resources: Any) -> set[str]:
    """Secret values a signer derives into headers by design (dLocal's X-Login, Netcore's asset id): ``/v1/sign``
    answers them; they identify an account and authenticate nothing on their own."""
    shown: set[str] = set()
    for name, profile in resources.profiles.items():
        if profile.signing is not None and name in resources.secrets:
            secret = resources.secrets[name].value
            derived = profile.request_headers(secret, b"", idempotency_key=None).derived.values()
            shown |= set(secret.values()) & set(derived)
    return shown


# --- the plugin ---------------------------------------------------------------------------------------------


@dataclass
class Totals:
    tests: int = 0
    items: int = 0
    bytes: int = 0
    unchanged: int = 0
    values: int = 0
    revealing: int = 0
    leaks: int = 0
    leaking: int = 0
    by_source: Counter[str] = field(default_factory=Counter)

    def add(self, scan: dict[str, Any]) -> None:
        self.tests += 1
        self.items += int(scan["items"])
        self.bytes += int(scan["bytes"])
        self.unchanged += int(scan["unchanged"])
        self.values = max(self.values, int(scan["values"]))
        self.revealing += int(scan["revealing"])
        self.leaks += int(scan["leaks"])
        self.leaking += int(scan["leaks"] > 0)
        self.by_source.update(scan["by_source"])

    def line(self) -> str:
        sources = ", ".join(f"{source} {n}" for source, n in sorted(self.by_source.items()))
        return (
            f"leak detector: {self.tests} tests, {self.items} items scanned ({_size(self.bytes)}; "
            f"{sources or 'nothing'}), {self.unchanged} unchanged stack items skipped, up to {self.values} "
            f"sensitive values and 3 patterns per test, {self.revealing} tests marked {MARK}; "
            f"leaks found: {self.leaks} in {self.leaking} tests"
        )


def _size(count: int) -> str:
    return f"{count / 1e6:.1f} MB" if count >= 1e6 else f"{count / 1e3:.1f} kB"


@dataclass
class _TestState:
    read: list[str] = field(default_factory=list)  # what the test read through capsys/capfd
    registered: dict[str, str] = field(default_factory=dict)
    held: list[tuple[str, str]] = field(default_factory=list)
    needles: Needles = field(default_factory=Needles)


class LeakDetector:
    def __init__(self) -> None:
        self.totals = Totals()
        self.current: _TestState | None = None
        self.examples: dict[str, str] | None = None
        self._scanned: set[tuple[str, str]] = set()  # (text digest, needles fingerprint) of stack items

    def static_needles(self) -> dict[str, str]:
        if self.examples is None:
            self.examples = example_plaintexts()
        return self.examples

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_protocol(self, item: pytest.Item) -> Iterator[None]:
        self.current = _TestState()
        try:
            return (yield)
        finally:
            self.current = None

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_teardown(self, item: pytest.Item) -> Iterator[None]:
        # Before the fixtures go: the stacks still hold their state and secrets.
        state = self.current
        if state is not None:
            for value, kind in {**self.static_needles(), **state.registered}.items():
                state.needles.add(value, kind)
            for text in moto_secrets():
                state.needles.add_secret(text)
            funcargs = getattr(item, "funcargs", {})
            state.held = moto_held() + fixture_values(funcargs, state.needles)
        return (yield)

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_makereport(
        self, item: pytest.Item, call: pytest.CallInfo[None]
    ) -> Generator[None, pytest.TestReport, pytest.TestReport]:
        report: pytest.TestReport = yield
        state = self.current
        if call.when != "teardown" or state is None:
            return report
        marker = item.get_closest_marker(MARK)
        captured = [(key, f"captured {when} {key}", text) for when, key, text in item._report_sections]
        captured += [("capsys", "output read through capsys", text) for text in state.read]
        leaks: set[Leak] = set()
        scan: dict[str, Any] = {
            "items": 0,
            "bytes": 0,
            "unchanged": 0,
            "leaks": 0,
            "revealing": int(marker is not None),
        }
        sources: Counter[str] = Counter()
        needles = state.needles
        fingerprint = needles.fingerprint
        for source, where, text in captured:
            sources[source] += 1
            scan["items"] += 1
            scan["bytes"] += len(text)
            kinds = needles.find(text)
            if marker is not None:
                kinds -= PLAINTEXT_KINDS
            leaks |= {Leak(kind, where) for kind in kinds}
        for where, text in state.held:
            digest = (hashlib.sha256(f"{where}\0{text}".encode()).hexdigest(), fingerprint)
            if digest in self._scanned:
                scan["unchanged"] += 1
                continue
            sources[_source(where)] += 1
            scan["items"] += 1
            scan["bytes"] += len(text)
            found = needles.find(text, bare_cards=_source(where) in ("function logs", "API answers"))
            leaks |= {Leak(kind, where) for kind in found}
            if not found:
                self._scanned.add(digest)
        scan["leaks"] = len(leaks)
        scan["values"] = len(needles.values)
        scan["by_source"] = dict(sources)
        report.leak_scan = scan  # type: ignore[attr-defined]  # travels to the xdist controller with the report
        if leaks:
            report.outcome = "failed"
            report.longrepr = "leak detector: " + "; ".join(sorted(map(str, leaks)))
        return report

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        scan = getattr(report, "leak_scan", None)
        if isinstance(scan, dict):
            self.totals.add(scan)

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        if self.totals.tests:
            terminalreporter.write_sep("-", "leak detector")
            terminalreporter.write_line(self.totals.line())
        report = os.environ.get(REPORT_VARIABLE)
        if report and self.totals.tests:  # `make test` keeps the figures for `make verify`
            figures = {**asdict(self.totals), "by_source": dict(self.totals.by_source)}
            Path(report).parent.mkdir(parents=True, exist_ok=True)
            Path(report).write_text(json.dumps(figures, indent=2) + "\n", encoding="utf-8")


def _source(where: str) -> str:
    """The summary's name for where a stack item came from."""
    for prefix, source in (
        ("queue ", "queue messages"),
        ("table ", "table items"),
        ("log of ", "function logs"),
    ):
        if where.startswith(prefix):
            return source
    return "API answers" if where.startswith("API answer") else "metric data"


_DETECTOR_KEY = pytest.StashKey[LeakDetector]()


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        f"{MARK}(reason): the test's captured output holds a plaintext on purpose (CLI decrypt output): not "
        "searched for plaintexts, card numbers or CVVs by the leak detector; keys still are",
    )
    detector = LeakDetector()
    config.stash[_DETECTOR_KEY] = detector
    config.pluginmanager.register(detector, "leak-detector")
    _tee_capture_reads(detector)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        marker = item.get_closest_marker(MARK)
        if marker is not None and not str(marker.kwargs.get("reason") or "").strip():
            raise pytest.UsageError(f"{item.nodeid}: @pytest.mark.{MARK} needs a reason=")


def _tee_capture_reads(detector: LeakDetector) -> None:
    """What a test reads through ``capsys``/``capfd`` is gone from the report sections: keep a copy."""
    from _pytest.capture import CaptureFixture

    original = CaptureFixture.readouterr
    if getattr(original, "_leak_detector", False):
        return

    def readouterr(self: CaptureFixture[Any]) -> Any:
        result = original(self)
        state = detector.current
        if state is not None:
            for text in (result.out, result.err):
                if text:
                    state.read.append(text if isinstance(text, str) else text.decode("utf-8", "replace"))
        return result

    readouterr._leak_detector = True  # type: ignore[attr-defined]
    CaptureFixture.readouterr = readouterr  # type: ignore[method-assign]


@pytest.fixture
def sensitive(request: pytest.FixtureRequest) -> Callable[[str, str], None]:
    """``sensitive(value, kind)``: a value this test makes (a planted CPF) that nothing may show."""
    detector = request.config.stash[_DETECTOR_KEY]

    def register(value: str, kind: str = "plaintext") -> None:
        if detector.current is not None:
            detector.current.registered[value] = kind

    return register
