"""The three functions run as Lambda would run them, on moto: the stack from template.yaml, a fresh cold start per
test, events from ``events/``, and every line they print captured.

Fixtures here are requested explicitly (none is autouse): the other integration tests in this folder don't need
AWS. Every key is a throwaway test key made by :mod:`sealgate_local.aws_stack`; credentials are dummies.
"""

from __future__ import annotations

import copy
import importlib.util
import json
import logging
import socket
import sys
import time
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from moto import mock_aws

from sealgate_local.aws_stack import AwsClients, StackResources, build_stack
from tests import leak_detector
from tests.integration.oracles import Php
from tests.interop.aesbridge_oracle import load_oracle

ROOT = Path(__file__).resolve().parents[2]
EVENTS = ROOT / "events"
REGION = "us-east-1"
# Variables of the developer's shell that would point boto3 elsewhere than moto.
AWS_LEAKS = (
    "AWS_PROFILE",
    "AWS_SESSION_TOKEN",
    "AWS_ENDPOINT_URL",
    "AWS_ENDPOINT_URL_SECRETS_MANAGER",
    "AWS_ENDPOINT_URL_SQS",
    "AWS_ENDPOINT_URL_DYNAMODB",
    "POWERTOOLS_IDEMPOTENCY_DISABLED",
)


# --- events and invocations ---------------------------------------------------------------------------------


def event(
    name: str, *, body: Any = ..., partner: str | None = None, headers: Mapping[str, str] | None = None
) -> dict[str, Any]:
    """``events/<name>.json``, with its body replaced (``str`` as is, anything else as compact JSON), the value
    of its path variable (``{partner}``, or ``{target}``: a partner or an outcome id) swapped in the path and
    the request context, and headers added or replaced."""
    loaded: dict[str, Any] = json.loads((EVENTS / f"{name}.json").read_text(encoding="utf-8"))
    data = copy.deepcopy(loaded)
    if body is not ...:
        data["body"] = (
            body if isinstance(body, str) or body is None else json.dumps(body, separators=(",", ":"))
        )
    if partner is not None:
        parameters = data["pathParameters"]
        key = "partner" if "partner" in parameters else next(iter(parameters))
        old = parameters[key]
        parameters[key] = partner
        data["path"] = data["path"].replace(f"/{old}", f"/{partner}")
        data["requestContext"]["path"] = data["requestContext"]["path"].replace(f"/{old}", f"/{partner}")
    if headers:
        data["headers"] = {**data["headers"], **headers}
    data["requestContext"]["requestId"] = str(uuid.uuid4())
    return data


@dataclass
class FakeContext:
    """The parts of a Lambda context the handlers and Powertools read."""

    function_name: str = "sealgate-dev-function"
    memory_limit_in_mb: int = 512
    invoked_function_arn: str = "arn:aws:lambda:us-east-1:123456789012:function:sealgate-dev-function"
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    timeout_ms: int = 30_000

    def get_remaining_time_in_millis(self) -> int:
        return self.timeout_ms


@dataclass
class Answer:
    """An API Gateway proxy response, parsed."""

    status: int
    body: Any
    text: str
    headers: dict[str, str]

    @property
    def code(self) -> str | None:
        return self.body.get("code") if isinstance(self.body, dict) else None


def _report_consumed(event_: Mapping[str, Any], result: Any) -> None:
    """Tell the leak detector which SQS records the function processed: Lambda's event source would delete
    them (those not in ``batchItemFailures``), so what they held is not at rest, even if the test leaves the
    messages in flight."""
    records = event_.get("Records")
    failures = result.get("batchItemFailures") if isinstance(result, dict) else None
    if not isinstance(records, list) or not isinstance(failures, list):
        return
    failed = {item.get("itemIdentifier") for item in failures if isinstance(item, dict)}
    leak_detector.consumed(
        str(record["messageId"])
        for record in records
        if isinstance(record, dict) and record.get("eventSource") == "aws:sqs" and "messageId" in record
        if record["messageId"] not in failed
    )


def answer(response: Mapping[str, Any]) -> Answer:
    text = str(response.get("body") or "")
    try:
        parsed = json.loads(text) if text else None
    except json.JSONDecodeError:
        parsed = None
    headers = {name: ", ".join(values) for name, values in (response.get("multiValueHeaders") or {}).items()}
    headers.update(response.get("headers") or {})
    return Answer(int(response["statusCode"]), parsed, text, headers)


@dataclass
class Function:
    """One function's module, cold-started by :func:`cold_start`."""

    name: str
    module: ModuleType

    def invoke(self, event_: Mapping[str, Any]) -> dict[str, Any]:
        context = FakeContext(function_name=f"sealgate-dev-{self.name}")
        result: dict[str, Any] = self.module.lambda_handler(copy.deepcopy(dict(event_)), context)
        _report_consumed(event_, result)
        return result

    def call(self, event_: Mapping[str, Any]) -> Answer:
        """Invoke with an API Gateway event; the parsed response."""
        return answer(self.invoke(event_))


# --- AWS on moto ----------------------------------------------------------------------------------------------


def _reset_process_caches() -> None:
    """Drop what a previous test's cold start left in the process: cached boto3 clients."""
    from sealgate import aws_clients

    aws_clients.client.cache_clear()


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    """moto for every AWS call in this process; dummy credentials and region, nothing from the shell."""
    for name in AWS_LEAKS:
        monkeypatch.delenv(name, raising=False)
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": REGION,
        "AWS_REGION": REGION,
        "AWS_CONFIG_FILE": str(tmp_path / "no-aws-config"),
        "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "no-aws-credentials"),
    }.items():
        monkeypatch.setenv(name, value)
    _reset_process_caches()
    with mock_aws():
        yield
    _reset_process_caches()


@pytest.fixture
def stack(aws: None) -> StackResources:
    """Queues, tables and throwaway partner secrets as template.yaml declares them."""
    return build_stack(AwsClients.create(region=REGION))


@pytest.fixture
def cold_start(stack: StackResources, monkeypatch: pytest.MonkeyPatch) -> Callable[..., Function]:
    """``cold_start("encrypt", **extra_env)``: the function's environment from the template (and only that),
    then its ``app.py`` imported afresh under a unique module name: its module-level code runs inside moto."""
    every_name = {name for function in stack.functions.values() for name in function.environment}

    def start(name: str, **extra: str) -> Function:
        for variable in every_name:
            monkeypatch.delenv(variable, raising=False)
        for variable, value in {**stack.environment(name), **extra}.items():
            monkeypatch.setenv(variable, value)
        _reset_process_caches()
        path = stack.functions[name].code_dir / "app.py"
        module_name = f"sealgate_function_{name}_{uuid.uuid4().hex}"
        spec = importlib.util.spec_from_file_location(module_name, path)
        assert spec is not None
        assert spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        monkeypatch.setitem(sys.modules, module_name, module)  # removed again when the test ends
        spec.loader.exec_module(module)
        return Function(name, module)

    return start


def sqs_event(
    stack: StackResources, messages: Sequence[Mapping[str, Any]], queue: str = "OutboundQueue"
) -> dict[str, Any]:
    """The Lambda SQS event for messages received from ``queue``, as the local stack's poller makes it."""
    from sealgate_local.sqs_poller import lambda_record

    arn = stack.queues[queue].arn
    return {"Records": [lambda_record(message, queue_arn=arn, region=stack.region) for message in messages]}


def receive(stack: StackResources, queue: str = "OutboundQueue", *, wanted: int = 10) -> list[dict[str, Any]]:
    """Every message now visible in ``queue`` (up to ``wanted``), with attributes."""
    assert stack.clients is not None
    got: list[Any] = []
    for _ in range(5):
        answer_ = stack.clients.sqs.receive_message(
            QueueUrl=stack.queue_url(queue),
            MaxNumberOfMessages=min(10, wanted - len(got)),
            AttributeNames=["All"],
            MessageAttributeNames=["All"],
        )
        got.extend(answer_.get("Messages", []))
        if len(got) >= wanted or not answer_.get("Messages"):
            break
    return [dict(message) for message in got]


# --- oracles --------------------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def aes_bridge(oracle_module: Callable[[str, str], object]) -> Any:
    """The reference ``aes_bridge`` package (Infosimples)."""
    return load_oracle(oracle_module)


@pytest.fixture(scope="session")
def joserfc(oracle_module: Callable[[str, str], object]) -> Any:
    """``joserfc.jwe`` (dLocal card data)."""
    return oracle_module("joserfc.jwe", "pip install joserfc (a dev dependency)")


@pytest.fixture(scope="session")
def php_oracle(php: str) -> Php:
    """The partners' PHP (Netcore, PayKun)."""
    return Php(php)


# --- output ---------------------------------------------------------------------------------------------------


@dataclass
class Output:
    """Everything printed to stdout/stderr since the test began (logs, audit records, EMF metrics)."""

    capsys: pytest.CaptureFixture[str]
    out: str = ""
    err: str = ""

    def read(self) -> Output:
        captured = self.capsys.readouterr()
        self.out += captured.out
        self.err += captured.err
        return self

    @property
    def text(self) -> str:
        self.read()
        return self.out + self.err

    def records(self) -> list[dict[str, Any]]:
        self.read()
        found = []
        for line in self.out.splitlines():
            try:
                value = json.loads(line)
            except json.JSONDecodeError:
                continue
            if isinstance(value, dict):
                found.append(value)
        return found

    def audits(self, action: str | None = None) -> list[dict[str, Any]]:
        entries = [r["audit"] for r in self.records() if r.get("message") == "audit" and "audit" in r]
        return [e for e in entries if action is None or e["action"] == action]

    def metrics(self) -> list[tuple[str, dict[str, Any]]]:
        """(metric name, the EMF line) for every metric emitted."""
        found: list[tuple[str, dict[str, Any]]] = []
        for record in self.records():
            for directive in record.get("_aws", {}).get("CloudWatchMetrics", []):
                found.extend((metric["Name"], record) for metric in directive.get("Metrics", []))
        return found

    def metric_total(self, name: str, *, partner: str | None = None) -> float:
        """Sum of metric ``name``: the service-wide series, or with ``partner`` the partner-dimensioned one."""
        total = 0.0
        for metric, record in self.metrics():
            if metric == name and record.get("partner") == partner:
                value = record[name]
                total += sum(value) if isinstance(value, list) else float(value)
        return total


class _CurrentStdout:
    """Writes to whatever ``sys.stdout`` is at the time (pytest swaps it between a test's phases)."""

    def write(self, text: str) -> int:
        return sys.stdout.write(text)

    def flush(self) -> None:
        sys.stdout.flush()


@pytest.fixture
def output(capsys: pytest.CaptureFixture[str]) -> Iterator[Output]:
    """Captured stdout/stderr. The Powertools logger keeps the stream it was created with (Lambda's stdout), so
    for the test it writes to the current ``sys.stdout`` instead."""
    from sealgate.telemetry import logger

    handler = logger.registered_handler
    assert isinstance(handler, logging.StreamHandler)
    previous = handler.setStream(_CurrentStdout())
    yield Output(capsys)
    handler.setStream(previous)


def leaks(text: str, values: Mapping[str, str]) -> list[str]:
    """Names of the ``values`` (name -> secret) that occur in ``text``."""
    return sorted(name for name, value in values.items() if value and value in text)


def secret_values(stack: StackResources) -> dict[str, str]:
    """Every throwaway key of every partner (current and previous), by a name that does not reveal it."""
    found: dict[str, str] = {}
    for version, secrets in (("current", stack.secrets), ("previous", stack.previous_secrets)):
        for partner, secret in secrets.items():
            for name, value in {**secret.value, **secret.partner_side}.items():
                found[f"{version}:{partner}:{name}"] = value
    return found


# --- Secrets Manager that is down, then back ------------------------------------------------------------------


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class SecretsOutage:
    """A Secrets Manager endpoint on 127.0.0.1 that refuses connections until :meth:`end` starts moto's server
    there (it serves the same in-process state as ``mock_aws``)."""

    url: str
    servers: list[Any] = field(default_factory=list)
    monkeypatch: pytest.MonkeyPatch | None = None

    def begin(self) -> None:
        """Start the outage now (for a function cold-started after this)."""
        assert self.monkeypatch is not None
        self.monkeypatch.setenv("AWS_ENDPOINT_URL_SECRETS_MANAGER", self.url)

    def end(self) -> None:
        from moto.server import ThreadedMotoServer

        server = ThreadedMotoServer(
            ip_address="127.0.0.1", port=int(self.url.rsplit(":", 1)[1]), verbose=False
        )
        server.start()
        self.servers.append(server)
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            with socket.socket() as probe:
                if probe.connect_ex(("127.0.0.1", int(self.url.rsplit(":", 1)[1]))) == 0:
                    return
            time.sleep(0.02)


@pytest.fixture
def secrets_outage(stack: StackResources, monkeypatch: pytest.MonkeyPatch) -> Iterator[SecretsOutage]:
    """Points Secrets Manager (only) at a closed port; boto3's standard per-service endpoint variable."""
    outage = SecretsOutage(f"http://127.0.0.1:{closed_port()}", monkeypatch=monkeypatch)
    outage.begin()
    yield outage
    for server in outage.servers:
        server.stop()
