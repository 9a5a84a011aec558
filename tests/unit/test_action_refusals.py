"""Three refusals at the unit level (each also has an end-to-end integration test): a dLocal notification whose
X-Date is too old or in the future, decrypt for an unknown partner, and a partner's 4xx, which is no delivery.

The actions run on a :class:`~sealgate.runtime.Runtime` started as a function's cold start does, against moto
(``mock_aws``: Secrets Manager with throwaway keys from each profile's own keygen, the queues and tables), with
the real dLocal signer and verifier, and for delivery a real HTTPS server on 127.0.0.1 under a throwaway CA.
"""

from __future__ import annotations

import json
import ssl
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws

from sealgate import aws_clients, metric_names, outbound
from sealgate.actions import deliver, encrypt, webhook
from sealgate.errors import StaleRequest, UnknownPartner
from sealgate.http_api import Request, error_response
from sealgate.partners import Function, load_profiles
from sealgate.runtime import Runtime
from sealgate.schemes import dlocal_v2
from sealgate.settings import Settings
from sealgate.telemetry import metrics
from sealgate_local.aws_stack import throwaway_keys
from sealgate_local.sqs_poller import lambda_record
from sealgate_local.tls import make_throwaway_pki

REGION = "us-east-1"
PREFIX = "sealgate/unit/"
NOW = datetime(2026, 3, 1, 12, 0, 0, tzinfo=UTC)


@dataclass
class World:
    """What moto holds for the actions: each partner's throwaway secret, the queues' URLs and ARNs, tables."""

    secrets: dict[str, dict[str, str]]
    env: dict[str, str]
    queues: dict[str, tuple[str, str]]  # name -> (url, arn)

    def runtime(self, function: Function, **extra: str) -> Runtime:
        aws_clients.client.cache_clear()  # type: ignore[attr-defined]
        return Runtime.start(function, Settings.from_environment({**self.env, **extra}))

    def messages(self, name: str) -> list[dict[str, Any]]:
        sqs = boto3.client("sqs", region_name=REGION)
        answer = sqs.receive_message(
            QueueUrl=self.queues[name][0], MaxNumberOfMessages=10, MessageAttributeNames=["All"]
        )
        return [dict(message) for message in answer.get("Messages", [])]


@pytest.fixture
def world(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[World]:
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_SECRETS_MANAGER"):
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
    with mock_aws():
        sm = boto3.client("secretsmanager", region_name=REGION)
        secrets: dict[str, dict[str, str]] = {}
        for name, profile in load_profiles().items():
            fields, _partner_side = throwaway_keys(profile)
            for secret_field in profile.secret_fields:
                fields.setdefault(secret_field, f"throwaway-{uuid.uuid4().hex}")
            sm.create_secret(Name=PREFIX + name, SecretString=json.dumps(fields))
            secrets[name] = fields
        dynamodb = boto3.client("dynamodb", region_name=REGION)
        for table in ("outcomes", "idempotency"):
            dynamodb.create_table(
                TableName=table,
                KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
                AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
                BillingMode="PAY_PER_REQUEST",
            )
        sqs = boto3.client("sqs", region_name=REGION)
        queues = {}
        for name in ("inbound", "outbound", "outbound-dlq"):
            url = sqs.create_queue(QueueName=name)["QueueUrl"]
            arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"][
                "QueueArn"
            ]
            queues[name] = (url, arn)
        env = {
            "STAGE": "unit",
            "SEALGATE_SECRET_PREFIX": PREFIX,
            "INBOUND_QUEUE_URL": queues["inbound"][0],
            "OUTBOUND_QUEUE_URL": queues["outbound"][0],
            "OUTBOUND_DLQ_URL": queues["outbound-dlq"][0],
            "OUTCOMES_TABLE": "outcomes",
            "IDEMPOTENCY_TABLE": "idempotency",
            "FORWARD_TIMEOUT_SECONDS": "5",
        }
        yield World(secrets, env, queues)
    aws_clients.client.cache_clear()  # type: ignore[attr-defined]


@pytest.fixture(autouse=True)
def fresh_metrics() -> Iterator[None]:
    """The process-wide metrics buffer, empty before and after each test."""
    metrics.clear_metrics()
    yield
    metrics.clear_metrics()


def buffered(name: str) -> float:
    """The service-wide count of metric ``name`` waiting in the buffer (flushed by the handler in Lambda)."""
    entry = metrics.metric_set.get(name)
    return float(sum(entry["Value"])) if entry else 0.0


# --- stale webhooks ---------------------------------------------------------------------------------------------


def dlocal_notification(secret: dict[str, str], signed_at: datetime) -> Request:
    """A dLocal notification signed with dLocal's published V2-HMAC-SHA256 at ``signed_at``."""
    body = json.dumps({"id": f"D-4-{uuid.uuid4()}", "status": "PAID", "amount": 1.0}).encode()
    date = dlocal_v2.format_x_date(signed_at)
    login = secret["x_login"]
    headers = {
        "X-Date": date,
        "X-Login": login,
        "Authorization": dlocal_v2.authorization(secret["secret_key"], login, date, body),
        "Content-Type": "application/json",
    }
    return Request(body=body.decode(), headers=headers, request_id=str(uuid.uuid4()), caller="127.0.0.1")


@pytest.mark.parametrize(
    "skew",
    [timedelta(minutes=-10), timedelta(seconds=-301), timedelta(seconds=301), timedelta(hours=2)],
    ids=["10-min-old", "just-past-the-window", "just-in-the-future", "2-h-in-the-future"],
)
def test_a_notification_dated_outside_the_window_is_stale_and_never_queued(
    world: World, capsys: pytest.CaptureFixture[str], skew: timedelta
) -> None:
    runtime = world.runtime("sign")
    request = dlocal_notification(world.secrets["dlocal"], NOW + skew)

    with pytest.raises(StaleRequest) as refused:
        webhook.accept(runtime, "dlocal", request, now=NOW)

    answer = error_response(refused.value)
    assert answer.status_code == 401
    assert json.loads(str(answer.body))["code"] == "stale_notification"
    assert world.messages("inbound") == []
    assert buffered(metric_names.SIGNATURE_CHECK_FAILED) == 1
    partner_series = [json.loads(line) for line in capsys.readouterr().out.splitlines() if '"_aws"' in line]
    assert [(r.get("partner"), r.get(metric_names.SIGNATURE_CHECK_FAILED)) for r in partner_series] == [
        ("dlocal", [1.0])
    ]


@pytest.mark.parametrize("skew", [timedelta(minutes=-4), timedelta(0), timedelta(minutes=4)])
def test_a_notification_inside_the_window_is_accepted_and_queued(world: World, skew: timedelta) -> None:
    runtime = world.runtime("sign")
    request = dlocal_notification(world.secrets["dlocal"], NOW + skew)

    answer = webhook.accept(runtime, "dlocal", request, now=NOW)

    assert answer["status"] == "accepted"
    [queued] = world.messages("inbound")
    assert json.loads(queued["Body"])["body"] == request.body
    assert buffered(metric_names.SIGNATURE_CHECK_FAILED) == 0


# --- decrypt for an unknown partner ------------------------------------------------------------------------------


@pytest.mark.parametrize("body", ['{"payload": {"x": "enc_y"}}', "not json at all", ""])
def test_decrypt_for_an_unknown_partner_is_unknown_partner_whatever_the_body(
    world: World, capsys: pytest.CaptureFixture[str], body: str
) -> None:
    runtime = world.runtime("encrypt")
    partner = "acme-" + uuid.uuid4().hex[:8]

    with pytest.raises(UnknownPartner) as refused:
        encrypt.decrypt(
            runtime, partner, Request(body=body, request_id="r-1", caller="arn:aws:iam::1:user/u")
        )

    answer = error_response(refused.value)
    assert answer.status_code == 404
    assert json.loads(str(answer.body)) == {"code": "unknown_partner", "message": "unknown partner"}
    assert buffered(metric_names.DECRYPTION_FAILED) == 0  # nothing was tried: no partner, no key
    printed = capsys.readouterr().out
    assert partner not in printed  # a name from the path is the caller's text: not logged


# --- a partner's 4xx ----------------------------------------------------------------------------------------------


@dataclass
class RejectingPartner:
    """dLocal's API as a real HTTPS server on 127.0.0.1 (throwaway CA) answering every request ``422``
    (dLocal's invalid-parameter); it keeps each request's path and body."""

    url: str
    ca_bundle: str
    requests: list[tuple[str, bytes]] = field(default_factory=list)


@pytest.fixture
def rejecting_partner(tmp_path: Path) -> Iterator[RejectingPartner]:
    pki = make_throwaway_pki(tmp_path / "pki")
    received: list[tuple[str, bytes]] = []

    class Refuse(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:
            received.append((self.path, self.rfile.read(int(self.headers.get("Content-Length") or 0))))
            body = b'{"code":5001,"message":"invalid parameter"}'
            self.send_response(422)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            """Quiet."""

    tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    tls.load_cert_chain(pki.server_cert, pki.server_key)
    server = ThreadingHTTPServer(("127.0.0.1", 0), Refuse)
    server.socket = tls.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield RejectingPartner(f"https://127.0.0.1:{server.server_address[1]}", str(pki.ca_cert), received)
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def queued_payment(world: World, runtime: Runtime) -> tuple[str, dict[str, Any]]:
    """A dLocal payment protected with the current key and put on the outbound queue, as ``/v1/forward``
    queues it; (its outcome id, the SQS record Lambda would hand the forward function)."""
    profile = runtime.profile("dlocal")
    secret = runtime.secrets.current("dlocal")
    payment = {"amount": 1.0, "currency": "BRL", "card": {"number": "4111111111111111", "cvv": "123"}}
    protected = profile.protection.protect(payment, secret)
    key = str(uuid.uuid4())
    message = outbound.Protected(
        outcome_id=outbound.forward_id("dlocal", key),
        partner="dlocal",
        operation=next(iter(profile.operations)),
        idempotency_key=key,
        protected=protected.payload,
        key_version=secret.version_id,
        fields=protected.fields,
    )
    url, arn = world.queues["outbound"]
    sqs = boto3.client("sqs", region_name=REGION)
    sqs.send_message(QueueUrl=url, MessageBody=message.body())
    received = sqs.receive_message(QueueUrl=url, AttributeNames=["All"], MessageAttributeNames=["All"])
    [record] = received["Messages"]
    return message.outcome_id, lambda_record(record, queue_arn=arn, region=REGION)


@dataclass
class Context:
    aws_request_id: str = "delivery-1"

    def get_remaining_time_in_millis(self) -> int:
        return 60_000


def test_a_partner_4xx_is_rejected_dead_lettered_and_counted_as_failed(
    world: World, rejecting_partner: RejectingPartner
) -> None:
    runtime = world.runtime(
        "forward",
        SEALGATE_CA_BUNDLE=rejecting_partner.ca_bundle,
        SEALGATE_BASE_URL_DLOCAL=rejecting_partner.url,
    )
    outcome_id, record = queued_payment(world, runtime)

    answer = deliver.process_batch(runtime, {"Records": [record]}, Context())

    assert answer["batchItemFailures"] == []  # settled: not left for SQS to redeliver
    [(path, sent)] = rejecting_partner.requests  # attempted once, not retried
    assert path.endswith("/" + runtime.profile("dlocal").operations["payments"].path.lstrip("/"))
    assert b"4111111111111111" not in sent  # the card went protected
    outcome = runtime.outcomes.get(outcome_id)
    assert (outcome["status"], outcome["partner_status"]) == ("rejected", 422)
    assert outcome["status"] != "delivered"
    [dead] = world.messages("outbound-dlq")
    assert dead["MessageAttributes"]["reason"]["StringValue"] == "partner_http_422"
    assert dead["Body"] == record["body"]  # the protected form only
    assert buffered(metric_names.FORWARD_FAILED) == 1
    assert buffered(metric_names.FORWARD_DELIVERED) == 0
