"""The forward function on moto: ``POST /v1/forward/{partner}`` (enqueue), ``GET /v1/forward/{id}`` (outcome) and
the outbound queue's batches, delivered to a real HTTPS partner API on 127.0.0.1 (a throwaway CA).

The partner API checks every request with the partner's own implementation (aes_bridge, PHP, joserfc, Python
``hmac``). Messages are enqueued through the API, received from the queue moto keeps, and handed to the
function as Lambda's SQS event source would. Every key is a throwaway key from :mod:`sealgate_local.aws_stack`.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

import pytest

from sealgate import metric_names
from sealgate.outbound import forward_id
from sealgate.partners import load_profiles
from sealgate_local.aws_stack import StackResources
from sealgate_local.https_server import HttpsServer, Request, Response
from tests.integration import oracles
from tests.integration.conftest import (
    EVENTS,
    Function,
    Output,
    SecretsOutage,
    event,
    leaks,
    receive,
    secret_values,
    sqs_event,
)

PARTNERS = ("infosimples", "netcore", "paykun", "dlocal")
PLAINTEXT = {"cpf": "52998224725", "card number": "4111111111111111", "payer": "Thiago Gabriel"}


def enqueue_body(partner: str) -> dict[str, Any]:
    body: dict[str, Any] = json.loads(event(f"forward-enqueue-{partner}")["body"])
    return body


# A request that emits no metric is normal; Powertools warns about it on every such invocation.
pytestmark = pytest.mark.filterwarnings("ignore:No application metrics to publish:UserWarning")

# --- the partner API -----------------------------------------------------------------------------------------


@dataclass
class PartnerApi:
    """One HTTPS server standing in for every partner: the first path segment after the profile's base path
    tells the partner (each partner's base URL is overridden to this server)."""

    server: HttpsServer
    answers: dict[str, Response] = field(default_factory=dict)
    bodies: dict[str, list[bytes]] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    @staticmethod
    def partner_of(path: str) -> str:
        for name, profile in load_profiles().items():
            if any(path == "/" + operation.path for operation in profile.operations.values()):
                return name
        raise AssertionError("a request to a path no partner has")

    def handle(self, request: Request) -> Response:
        partner = self.partner_of(request.path)
        answer = self.answers.get(partner)
        if answer is None:
            body = json.dumps({"status": "ok", "partner": partner, "at": time.time()}).encode()
            answer = Response(200, {"Content-Type": "application/json"}, body)
        with self.lock:
            self.bodies.setdefault(partner, []).append(answer.body)
        return answer

    def received(self, partner: str) -> list[Request]:
        return [r for r in self.server.requests if self.partner_of(r.path) == partner]

    def environment(self) -> dict[str, str]:
        """The forward function's local overrides: the throwaway CA and every partner's base URL."""
        assert self.server.ca_bundle is not None
        overrides = {f"SEALGATE_BASE_URL_{p.upper()}": self.server.url for p in PARTNERS}
        return {"SEALGATE_CA_BUNDLE": self.server.ca_bundle, **overrides}


@pytest.fixture
def partner_api() -> Iterator[PartnerApi]:
    api = PartnerApi(HttpsServer())
    api.server.handler = api.handle
    with api.server:
        yield api
    assert api.server.errors == []


@pytest.fixture
def forward_fn(cold_start: Callable[..., Function], partner_api: PartnerApi) -> Function:
    return cold_start("forward", **partner_api.environment())


def enqueue_all(function: Function) -> dict[str, str]:
    """Enqueue the event of every partner through the API; partner -> outcome id."""
    ids = {}
    for partner in PARTNERS:
        reply = function.call(event(f"forward-enqueue-{partner}"))
        assert reply.status == 202, reply.text
        ids[partner] = reply.body["id"]
    return ids


def outcome(function: Function, outcome_id: str) -> dict[str, Any]:
    reply = function.call(event("forward-status", partner=outcome_id))
    assert reply.status == 200, reply.text
    body: dict[str, Any] = reply.body
    return body


def strings_in(value: Any) -> list[str]:
    """Every string (and number, as text) in a JSON value, keys included."""
    if isinstance(value, dict):
        return [s for k, v in value.items() for s in (k, *strings_in(v))]
    if isinstance(value, list):
        return [s for v in value for s in strings_in(v)]
    return [] if value is None or isinstance(value, bool) else [str(value)]


def sensitive_values(payload: Any, fields: list[str]) -> set[str]:
    """The values the partner's scheme protects (the message's ``fields``: ``<body>`` for the whole body,
    ``cpf``, ``card.number``...), those long enough to be recognised."""
    found: set[str] = set()
    for name in fields:
        if name == "<body>":
            found.update(strings_in(payload))
            continue
        value = payload
        for part in name.split("."):
            value = value.get(part) if isinstance(value, dict) else None
        found.update(strings_in(value))
    return {value for value in found if len(value) >= 3}


def partner_of_record(record: dict[str, Any]) -> str:
    return str(json.loads(record["body"])["partner"])


def assert_nothing_secret(stack: StackResources, output: Output, *answers: str) -> None:
    printed = output.text
    for text in (*answers, printed):
        assert leaks(text, secret_values(stack)) == []
        assert "Traceback" not in text
    assert leaks(printed, PLAINTEXT) == []


# --- enqueue and status --------------------------------------------------------------------------------------


def test_enqueue_queues_each_request_once_and_reports_it_queued(
    forward_fn: Function, stack: StackResources, output: Output
) -> None:
    ids = enqueue_all(forward_fn)

    again = [forward_fn.call(event(f"forward-enqueue-{partner}")) for partner in PARTNERS]

    assert [(r.status, r.body["duplicate"], r.body["id"]) for r in again] == [
        (200, True, ids[p]) for p in PARTNERS
    ]
    messages = receive(stack)
    assert len(messages) == len(PARTNERS)
    for message in messages:
        body = json.loads(message["Body"])
        sent = enqueue_body(body["partner"])
        # The queue holds the protected form only: nothing of the payload in the clear.
        assert set(body) == {
            "v",
            "id",
            "partner",
            "operation",
            "idempotency_key",
            "protected",
            "key_version",
            "fields",
        }
        assert (body["id"], body["operation"], body["idempotency_key"]) == (
            ids[body["partner"]],
            sent["operation"],
            sent["idempotency_key"],
        )
        assert body["id"] == forward_id(body["partner"], sent["idempotency_key"])
        assert body["fields"]
        protected_values = sensitive_values(sent["payload"], body["fields"])
        assert protected_values
        assert [v for v in protected_values if v in message["Body"]] == []
    for partner in PARTNERS:
        item = outcome(forward_fn, ids[partner])
        assert (item["status"], item["partner"], item["attempts"]) == ("queued", partner, 0)
        assert "payload" not in item
    assert [r["outcome"] for r in output.audits("forward.enqueue")] == ["queued"] * 4 + ["duplicate"] * 4
    assert_nothing_secret(stack, output)


def test_enqueue_without_idempotency_key_gets_one(forward_fn: Function, stack: StackResources) -> None:
    body = enqueue_body("paykun")
    del body["idempotency_key"]

    first = forward_fn.call(event("forward-enqueue-paykun", body=body))
    second = forward_fn.call(event("forward-enqueue-paykun", body=body))

    assert (first.status, second.status) == (202, 202)
    assert first.body["idempotency_key"] != second.body["idempotency_key"]
    assert len(receive(stack)) == 2


ENQUEUE_REFUSALS: dict[str, tuple[str, Any, int, str]] = {
    # name: (partner, body (... = the event's), status, code)
    "unknown partner": ("acme", ..., 404, "unknown_partner"),
    "unknown operation": ("paykun", {"operation": "refunds", "payload": {}}, 400, "bad_input"),
    "operation missing": ("paykun", {"payload": {}}, 400, "bad_input"),
    "payload missing": ("paykun", {"operation": "payment"}, 400, "bad_input"),
    "bad idempotency key": (
        "paykun",
        {"operation": "payment", "payload": {}, "idempotency_key": ""},
        400,
        "bad_input",
    ),
    "body is not JSON": ("paykun", "operation=payment", 400, "bad_json"),
    # Protection happens before queueing: what the scheme refuses never gets a 202.
    "card number not a string": (
        "dlocal",
        {
            "operation": "payments",
            "payload": {"amount": 1, "card": {"number": 4111111111111111, "cvv": "123"}},
        },
        400,
        "bad_input",
    ),
    "card without a number": (
        "dlocal",
        {"operation": "payments", "payload": {"amount": 1, "card": {"cvv": "123", "holder_name": "T"}}},
        400,
        "bad_input",
    ),
    "no card at all": ("dlocal", {"operation": "payments", "payload": {"amount": 1}}, 400, "bad_input"),
    "infosimples parameters not an object": (
        "infosimples",
        {"operation": "receita-federal/cpf", "payload": ["52998224725"]},
        400,
        "bad_input",
    ),
    "oversize body": (
        "paykun",
        {"operation": "payment", "payload": "x" * (300 * 1024)},
        413,
        "payload_too_large",
    ),
}


@pytest.mark.parametrize("case", sorted(ENQUEUE_REFUSALS))
def test_enqueue_refusals(case: str, forward_fn: Function, stack: StackResources, output: Output) -> None:
    partner, body, status, code = ENQUEUE_REFUSALS[case]

    reply = forward_fn.call(event("forward-enqueue-paykun", partner=partner, body=body))

    assert (reply.status, reply.code) == (status, code)
    assert receive(stack) == []
    assert receive(stack, "OutboundDeadLetterQueue") == []
    (record,) = output.audits("forward.enqueue")
    assert (record["outcome"], record["reason"]) == ("refused", code)
    assert_nothing_secret(stack, output, reply.text)


def test_enqueue_when_the_queue_refuses_is_503_and_leaves_no_outcome(
    cold_start: Callable[..., Function], stack: StackResources, partner_api: PartnerApi, output: Output
) -> None:
    missing = stack.queue_url("OutboundQueue") + "-missing"
    function = cold_start("forward", OUTBOUND_QUEUE_URL=missing, **partner_api.environment())

    reply = function.call(event("forward-enqueue-paykun"))

    assert (reply.status, reply.code) == (503, "unavailable")
    status = function.call(
        event("forward-status", partner=forward_id("paykun", enqueue_body("paykun")["idempotency_key"]))
    )
    assert (status.status, status.code) == (404, "not_found")  # a retry with the same key will queue it
    (record,) = output.audits("forward.enqueue")
    assert (record["outcome"], record["reason"]) == ("failed", "unavailable")


@pytest.mark.parametrize("outcome_id", ["0" * 32, "8d53cc77-a660-535c-aa20-1354fb6d0b4b", "a" * 65])
def test_status_of_an_unknown_id_is_404(outcome_id: str, forward_fn: Function, output: Output) -> None:
    reply = forward_fn.call(event("forward-status", partner=outcome_id))

    assert (reply.status, reply.code) == (404, "not_found")
    (record,) = output.audits("forward.status")
    assert (record["outcome"], record["reason"]) == ("refused", "not_found")


# --- delivery ----------------------------------------------------------------------------------------------------


def check_wire_formats(
    api: PartnerApi, stack: StackResources, aes_bridge: Any, php: oracles.Php, joserfc: Any
) -> None:
    """Each partner received its request once, protected and signed its way, with the idempotency key."""
    for partner in PARTNERS:
        (request,) = api.received(partner)
        sent = enqueue_body(partner)
        secret = stack.secrets[partner].value
        profile = load_profiles()[partner]
        assert request.header(profile.idempotency_header) == sent["idempotency_key"]
        if partner == "infosimples":
            assert request.header("Content-Type") == "application/x-www-form-urlencoded"
            form = dict(parse_qsl(request.body.decode()))
            read = {
                name.removeprefix("enc_"): oracles.infosimples_decrypt(
                    aes_bridge, token, secret["encryption_key"]
                )
                for name, token in form.items()
            }
            assert read == {name: value.encode() for name, value in sent["payload"].items()}
        elif partner == "netcore":
            token = json.loads(request.body)["encryptedRequest"]
            assert json.loads(php.netcore_decrypt(token, secret["key"], secret["iv"])) == sent["payload"]
            assert request.header("x-eCode") == "11256"
            assert request.header("x-asset") == secret["asset_id"]
            assert request.header("Authorization") == f"Bearer {secret['api_key']}"
        elif partner == "paykun":
            token = json.loads(request.body)["encrypted_request"]
            assert json.loads(php.paykun_decrypt(token, secret["encryption_key"])) == sent["payload"]
            assert request.header("MerchantId") == secret["merchant_id"]
            assert request.header("AccessToken") == secret["access_token"]
        else:
            date = request.header("X-Date")
            assert date is not None
            assert request.header("X-Login") == secret["x_login"]
            assert request.header("X-Trans-Key") == secret["x_trans_key"]
            assert request.header("Authorization") == oracles.dlocal_authorization(
                secret["secret_key"], secret["x_login"], date, request.body
            )
            body = json.loads(request.body)
            card = body.pop("card")
            private_pem = stack.secrets["dlocal"].partner_side["jwe_private_key"]
            opened = json.loads(oracles.jwe_decrypt(joserfc, card.pop("encrypted_data"), private_pem))
            assert {**card, **opened} == sent["payload"]["card"]
            assert body == {k: v for k, v in sent["payload"].items() if k != "card"}


@pytest.mark.interop
def test_batch_is_delivered_once_in_each_partner_wire_format(
    forward_fn: Function,
    stack: StackResources,
    partner_api: PartnerApi,
    aes_bridge: Any,
    php_oracle: oracles.Php,
    joserfc: Any,
    output: Output,
) -> None:
    ids = enqueue_all(forward_fn)
    batch = sqs_event(stack, receive(stack))

    first = forward_fn.invoke(batch)
    redelivered = forward_fn.invoke(batch)  # SQS delivers at least once: the same messages again

    assert first == {"batchItemFailures": []}
    assert redelivered == {"batchItemFailures": []}
    check_wire_formats(partner_api, stack, aes_bridge, php_oracle, joserfc)
    for partner in PARTNERS:
        item = outcome(forward_fn, ids[partner])
        assert (item["status"], item["partner_status"], item["attempts"]) == ("delivered", 200, 1)
        (answered,) = partner_api.bodies[partner]
        assert item["response_md5"] == oracles.md5(answered)
    deliveries = output.audits("forward.deliver")
    assert [d["outcome"] for d in deliveries] == ["ok"] * 4
    assert output.metric_total(metric_names.FORWARD_DELIVERED) == 4
    assert_nothing_secret(stack, output)


@pytest.mark.interop
def test_delivered_outcome_records_the_partner_status_and_the_md5_of_its_answer(
    forward_fn: Function, stack: StackResources, partner_api: PartnerApi
) -> None:
    answer = b'{"id":"D-4-be5e1d04","status":"PAID"}'
    partner_api.answers["dlocal"] = Response(201, {"Content-Type": "application/json"}, answer)
    reply = forward_fn.call(event("forward-enqueue-dlocal"))

    assert forward_fn.invoke(sqs_event(stack, receive(stack))) == {"batchItemFailures": []}

    item = outcome(forward_fn, reply.body["id"])
    assert (item["status"], item["partner_status"]) == ("delivered", 201)
    assert item["response_md5"] == oracles.md5(answer)
    assert "response_body" not in item


def test_the_batch_event_file_is_protected_requeued_then_delivered(
    forward_fn: Function, stack: StackResources, partner_api: PartnerApi
) -> None:
    sample = json.loads((EVENTS / "sqs-forward-batch.json").read_text(encoding="utf-8"))

    # The sample is what a producer writing to the queue directly sends: plain payloads. They are protected
    # and queued again in protected form, and only that form is ever delivered.
    assert forward_fn.invoke(sample) == {"batchItemFailures": []}
    assert partner_api.server.requests == []
    requeued = receive(stack)
    assert sorted(json.loads(m["Body"])["partner"] for m in requeued) == sorted(
        partner_of_record(record) for record in sample["Records"]
    )
    plain = {partner_of_record(record): json.loads(record["body"])["payload"] for record in sample["Records"]}
    for message in requeued:
        body = json.loads(message["Body"])
        assert "payload" not in body
        protected_values = sensitive_values(plain[body["partner"]], body["fields"])
        assert protected_values
        assert [v for v in protected_values if v in message["Body"]] == []

    assert forward_fn.invoke(sqs_event(stack, requeued)) == {"batchItemFailures": []}
    assert sorted(PartnerApi.partner_of(r.path) for r in partner_api.server.requests) == sorted(
        partner_of_record(record) for record in sample["Records"]
    )


def test_a_duplicate_message_in_one_batch_reaches_the_partner_once(
    forward_fn: Function, stack: StackResources, partner_api: PartnerApi
) -> None:
    assert stack.clients is not None
    body = json.dumps({"partner": "netcore", **enqueue_body("netcore")})
    for _ in range(2):  # e.g. a client that bypassed the API's de-duplication
        stack.clients.sqs.send_message(QueueUrl=stack.queue_url("OutboundQueue"), MessageBody=body)

    assert forward_fn.invoke(sqs_event(stack, receive(stack))) == {
        "batchItemFailures": []
    }  # protected, requeued
    answer = forward_fn.invoke(sqs_event(stack, receive(stack)))

    assert answer == {"batchItemFailures": []}
    assert len(partner_api.received("netcore")) == 1


@pytest.mark.interop
def test_mixed_batch_retries_throttles_and_dead_letters(
    cold_start: Callable[..., Function], stack: StackResources, partner_api: PartnerApi, output: Output
) -> None:
    assert stack.clients is not None
    # Retries after a 1 s backoff (the first of 1, 2, 4... s); the template's is 5 s.
    forward_fn = cold_start("forward", OUTBOUND_BACKOFF_BASE_SECONDS="1", **partner_api.environment())
    partner_api.answers["netcore"] = Response(500, {"Content-Type": "text/plain"}, b"partner failure")
    partner_api.answers["paykun"] = Response(429, {"Retry-After": "1"}, b"slow down")
    partner_api.answers["dlocal"] = Response(422, {"Content-Type": "application/json"}, b'{"code":5001}')
    ids = enqueue_all(forward_fn)
    queue = stack.queue_url("OutboundQueue")
    stack.clients.sqs.send_message(QueueUrl=queue, MessageBody='{"partner": "netcore", "operation"')
    stack.clients.sqs.send_message(
        QueueUrl=queue, MessageBody=json.dumps({"partner": "acme", "operation": "x", "payload": {}})
    )
    messages = receive(stack)
    by_partner = {}
    for message in messages:
        try:
            by_partner[json.loads(message["Body"])["partner"]] = message["MessageId"]
        except json.JSONDecodeError:
            by_partner["malformed"] = message["MessageId"]

    answer = forward_fn.invoke(sqs_event(stack, messages))

    # Every record succeeds: the retried ones were put back (sent again, delayed) by the function itself.
    assert answer == {"batchItemFailures": []}
    for partner in PARTNERS:
        assert len(partner_api.received(partner)) == 1
    statuses = {p: outcome(forward_fn, ids[p]) for p in PARTNERS}
    assert {p: (s["status"], s.get("partner_status")) for p, s in statuses.items()} == {
        "infosimples": ("delivered", 200),
        "netcore": ("retrying", 500),
        "paykun": ("retrying", 429),
        "dlocal": ("rejected", 422),
    }
    dead = receive(stack, "OutboundDeadLetterQueue")
    reasons = {
        m["MessageAttributes"]["original_message_id"]["StringValue"]: m["MessageAttributes"]["reason"][
            "StringValue"
        ]
        for m in dead
    }
    assert reasons == {
        by_partner["malformed"]: "bad_input",
        by_partner["acme"]: "unknown_partner",
        by_partner["dlocal"]: "partner_http_422",
    }
    assert output.metric_total(metric_names.FORWARD_FAILED) == 5
    assert output.metric_total(metric_names.FORWARD_DELIVERED) == 1

    for partner in ("netcore", "paykun"):
        assert statuses[partner]["attempts"] == 1
        assert statuses[partner]["next_attempt_at"] > statuses[partner]["updated_at"]

    time.sleep(1.3)  # the backoff (1 s) and the 429's Retry-After (1 s); the originals stay in flight
    visible = receive(stack)
    assert sorted(json.loads(m["Body"])["partner"] for m in visible) == ["netcore", "paykun"]
    originals = {m["Body"]: m for m in messages}
    for copy in visible:
        assert copy["MessageId"] not in by_partner.values()
        assert copy["Body"] == originals[copy["Body"]]["Body"]
        assert copy["MessageAttributes"]["sealgate-attempts"]["StringValue"] == "1"
        assert copy["MessageAttributes"]["sealgate-waits"]["StringValue"] == "0"

    partner_api.answers.clear()
    assert forward_fn.invoke(sqs_event(stack, visible)) == {"batchItemFailures": []}
    for partner in ("netcore", "paykun"):
        item = outcome(forward_fn, ids[partner])
        assert (item["status"], item["attempts"], item["last_reason"]) == ("delivered", 2, "ok")
        assert "next_attempt_at" not in item
        sent = partner_api.received(partner)
        assert len(sent) == 2
        assert sent[0].header("Idempotency-Key") == sent[1].header("Idempotency-Key")
    assert_nothing_secret(stack, output)


# --- outage and rotation -----------------------------------------------------------------------------------------


def test_keys_unavailable_at_cold_start_fails_every_item_then_recovers(
    monkeypatch: pytest.MonkeyPatch,
    secrets_outage: SecretsOutage,
    cold_start: Callable[..., Function],
    stack: StackResources,
    partner_api: PartnerApi,
    output: Output,
) -> None:
    monkeypatch.delenv("AWS_ENDPOINT_URL_SECRETS_MANAGER")  # the outage starts after the first cold start
    healthy = cold_start("forward", **partner_api.environment())
    enqueue_all(healthy)  # queued (protected) before the outage
    batch = sqs_event(stack, receive(stack))
    secrets_outage.begin()
    function = cold_start("forward", OUTBOUND_BACKOFF_BASE_SECONDS="1", **partner_api.environment())

    refused = function.call(
        event("forward-enqueue-netcore", body={**enqueue_body("netcore"), "idempotency_key": "k-2"})
    )
    assert (refused.status, refused.code) == (
        503,
        "keys_unavailable",
    )  # protection needs the key: nothing queued
    assert receive(stack) == []
    down = function.invoke(batch)

    # Put back untried: no attempt spent, the outcome says why the message waits.
    assert down == {"batchItemFailures": []}
    assert partner_api.server.requests == []
    assert output.metric_total(metric_names.KEY_LOAD_FAILED) >= 1
    for record in batch["Records"]:
        item = outcome(healthy, json.loads(record["body"])["id"])
        assert (item["status"], item["last_reason"], item["attempts"], item["waits"]) == (
            "waiting",
            "keys_unavailable",
            0,
            1,
        )

    secrets_outage.end()
    time.sleep(1.2)  # the first wait's backoff: 1 s
    waiting = receive(stack)
    assert len(waiting) == len(PARTNERS)
    assert {m["MessageAttributes"]["sealgate-attempts"]["StringValue"] for m in waiting} == {"0"}
    back = function.invoke(sqs_event(stack, waiting))

    assert back == {"batchItemFailures": []}
    assert sorted(PartnerApi.partner_of(r.path) for r in partner_api.server.requests) == sorted(PARTNERS)
    for record in batch["Records"]:
        item = outcome(healthy, json.loads(record["body"])["id"])
        assert (item["status"], item["attempts"]) == ("delivered", 1)


@pytest.mark.interop
def test_after_rotation_outbound_requests_use_the_new_keys(
    cold_start: Callable[..., Function],
    stack: StackResources,
    partner_api: PartnerApi,
    php_oracle: oracles.Php,
    joserfc: Any,
) -> None:
    old = {p: stack.secrets[p] for p in ("dlocal", "paykun")}
    for partner in old:
        stack.rotate(partner)
    function = cold_start("forward", **partner_api.environment())
    for partner in old:
        assert function.call(event(f"forward-enqueue-{partner}")).status == 202

    assert function.invoke(sqs_event(stack, receive(stack))) == {"batchItemFailures": []}

    (dlocal,) = partner_api.received("dlocal")
    new, previous = stack.secrets["dlocal"].value, old["dlocal"].value
    date = dlocal.header("X-Date")
    assert date is not None
    assert dlocal.header("Authorization") == oracles.dlocal_authorization(
        new["secret_key"], new["x_login"], date, dlocal.body
    )
    assert dlocal.header("Authorization") != oracles.dlocal_authorization(
        previous["secret_key"], previous["x_login"], date, dlocal.body
    )
    sealed = json.loads(dlocal.body)["card"]["encrypted_data"]
    oracles.jwe_decrypt(joserfc, sealed, stack.secrets["dlocal"].partner_side["jwe_private_key"])
    (paykun,) = partner_api.received("paykun")
    token = json.loads(paykun.body)["encrypted_request"]
    php_oracle.paykun_decrypt(token, stack.secrets["paykun"].value["encryption_key"])
    with pytest.raises(AssertionError, match="MAC is invalid"):
        php_oracle.paykun_decrypt(token, old["paykun"].value["encryption_key"])


# --- what producers put on the queue directly -------------------------------------------------------------------


def test_a_plain_message_that_cannot_be_protected_is_dead_lettered_as_metadata_only(
    forward_fn: Function, stack: StackResources, partner_api: PartnerApi, output: Output
) -> None:
    assert stack.clients is not None
    bad_card = {"holder_name": "Thiago Gabriel", "number": 4111111111111111, "cvv": "123"}
    stack.clients.sqs.send_message(
        QueueUrl=stack.queue_url("OutboundQueue"),
        MessageBody=json.dumps(
            {
                "partner": "dlocal",
                "operation": "payments",
                "payload": {"card": bad_card},
                "idempotency_key": "p-1",
            }
        ),
    )

    assert forward_fn.invoke(sqs_event(stack, receive(stack))) == {"batchItemFailures": []}

    (dead,) = receive(stack, "OutboundDeadLetterQueue")
    assert dead["MessageAttributes"]["reason"]["StringValue"] == "bad_input"
    assert json.loads(dead["Body"]) == {
        "partner": "dlocal",
        "operation": "payments",
        "idempotency_key": "p-1",
        "payload": "dropped: the message was not in protected form",
    }
    assert "4111111111111111" not in dead["Body"]
    assert "123" not in dead["Body"]
    assert partner_api.server.requests == []
    assert receive(stack) == []
    assert "4111111111111111" not in output.text


# --- a key rotated while a message waits ------------------------------------------------------------------------


def queued_then_rotated(
    partner: str,
    stack: StackResources,
    cold_start: Callable[..., Function],
    partner_api: PartnerApi,
    **keep: Any,
) -> Function:
    """Enqueue ``partner``'s event, rotate its secret, and cold-start a function that sees the new keys."""
    before = cold_start("forward", **partner_api.environment())
    assert before.call(event(f"forward-enqueue-{partner}")).status == 202
    stack.rotate(partner, **keep)
    return cold_start("forward", **partner_api.environment())


@pytest.mark.interop
def test_a_message_protected_before_a_symmetric_key_rotation_is_reprotected_with_the_new_key(
    stack: StackResources,
    cold_start: Callable[..., Function],
    partner_api: PartnerApi,
    php_oracle: oracles.Php,
    output: Output,
) -> None:
    after = queued_then_rotated("paykun", stack, cold_start, partner_api)

    assert after.invoke(sqs_event(stack, receive(stack))) == {"batchItemFailures": []}

    (paykun,) = partner_api.received("paykun")
    token = json.loads(paykun.body)["encrypted_request"]
    assert (
        json.loads(php_oracle.paykun_decrypt(token, stack.secrets["paykun"].value["encryption_key"]))
        == (enqueue_body("paykun")["payload"])
    )
    with pytest.raises(AssertionError, match="MAC is invalid"):
        php_oracle.paykun_decrypt(token, stack.previous_secrets["paykun"].value["encryption_key"])
    assert_nothing_secret(stack, output)


@pytest.mark.interop
def test_a_message_is_sent_as_it_is_when_only_the_signing_secret_rotated(
    stack: StackResources, cold_start: Callable[..., Function], partner_api: PartnerApi, joserfc: Any
) -> None:
    keep = {"x_login", "jwe_public_key"}  # dLocal rotated its signing secret and trans key, not its JWE key
    after = queued_then_rotated("dlocal", stack, cold_start, partner_api, keep=keep)

    assert after.invoke(sqs_event(stack, receive(stack))) == {"batchItemFailures": []}

    (dlocal,) = partner_api.received("dlocal")
    secret = stack.secrets["dlocal"].value
    date = dlocal.header("X-Date")
    assert date is not None
    assert dlocal.header("Authorization") == oracles.dlocal_authorization(
        secret["secret_key"], secret["x_login"], date, dlocal.body
    )
    assert dlocal.header("X-Trans-Key") == secret["x_trans_key"]
    sealed = json.loads(dlocal.body)["card"]["encrypted_data"]
    private = stack.previous_secrets["dlocal"].partner_side["jwe_private_key"]
    assert json.loads(oracles.jwe_decrypt(joserfc, sealed, private))["number"] == "4111111111111111"


def test_a_message_sealed_to_a_replaced_public_key_is_dead_lettered_as_key_rotated(
    stack: StackResources, cold_start: Callable[..., Function], partner_api: PartnerApi, output: Output
) -> None:
    after = queued_then_rotated("dlocal", stack, cold_start, partner_api)  # a new JWE key pair
    messages = receive(stack)

    assert after.invoke(sqs_event(stack, messages)) == {"batchItemFailures": []}

    assert partner_api.server.requests == []
    (dead,) = receive(stack, "OutboundDeadLetterQueue")
    assert dead["MessageAttributes"]["reason"]["StringValue"] == "key_rotated"
    assert dead["Body"] == messages[0]["Body"]  # the protected form, as queued: card data only as JWE
    assert "4111111111111111" not in dead["Body"]
    item = outcome(after, json.loads(dead["Body"])["id"])
    assert (item["status"], item["last_reason"]) == ("rejected", "key_rotated")


# --- recording fails after the partner accepted ------------------------------------------------------------------


def test_a_delivery_whose_outcome_cannot_be_recorded_is_still_sent_once(
    forward_fn: Function,
    stack: StackResources,
    partner_api: PartnerApi,
    output: Output,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from sealgate.errors import Unavailable
    from sealgate.outcomes import OutcomeStore

    reply = forward_fn.call(event("forward-enqueue-netcore"))
    assert reply.status == 202
    messages = receive(stack)
    recorded = OutcomeStore.update

    def outage_after_the_partner_answers(
        self: OutcomeStore, outcome_id: str, values: Any, **kwargs: Any
    ) -> None:
        if values.get("status") == "delivered":
            raise Unavailable("outcome store is unavailable")
        recorded(self, outcome_id, values, **kwargs)

    monkeypatch.setattr(OutcomeStore, "update", outage_after_the_partner_answers)

    assert forward_fn.invoke(sqs_event(stack, messages)) == {"batchItemFailures": []}
    # SQS delivers the same message again (say the function timed out before deleting it): no second request.
    assert forward_fn.invoke(sqs_event(stack, messages)) == {"batchItemFailures": []}

    assert len(partner_api.received("netcore")) == 1
    records = output.audits("forward.deliver")
    assert [(r["outcome"], r["reason"]) for r in records] == [("ok", "outcome_unrecorded")]
    assert output.metric_total(metric_names.FORWARD_DELIVERED) == 1
    assert receive(stack, "OutboundDeadLetterQueue") == []
