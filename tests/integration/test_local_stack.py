"""The local stack end to end: moto, template resources, partner sandboxes, worker processes, API, SQS poller.

The flows are checked by the partner sandboxes (independent implementations of each partner's side), not by
Sealgate's own decoders. Failure tests put a sandbox in a failure mode and follow the message: put back on the
queue by the forward function (outcome ``retrying``, nothing lost, no receive spent) and delivered once the
partner recovers, or dead-lettered by the function after its last attempt. The last test runs the demo and every failure
flow with card numbers, CVVs, CPFs and markers in protected fields, then searches every queue, table, log
line and API answer of the stack for them and for every throwaway key.
"""

from __future__ import annotations

import json
import math
import random
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import pytest

from sealgate.layouts.wrap import BODY_FIELD
from sealgate.outbound import forward_id
from sealgate_local.aws_stack import load_template
from sealgate_local.curl_examples import curl_examples
from sealgate_local.demo import Demo, PartnerExample, summary, table
from sealgate_local.sandboxes import SandboxMode
from sealgate_local.stack import ROOT, LocalStack

if TYPE_CHECKING:
    from mypy_boto3_cloudwatch.type_defs import (
        DimensionTypeDef,
        MetricDataQueryTypeDef,
        MetricStatTypeDef,
        MetricTypeDef,
    )

pytestmark = pytest.mark.slow

FINAL = {"delivered", "rejected", "dead_lettered"}


@pytest.fixture(scope="module")
def stack() -> Iterator[LocalStack]:
    # A short partner timeout and short backoffs (1 s, doubling, capped at 2 s) keep the failure tests quick;
    # everything else is the template's.
    parameters = {
        "ForwardTimeoutSeconds": "2",
        "DeliveryBackoffBaseSeconds": "1",
        "DeliveryBackoffCapSeconds": "2",
    }
    with LocalStack(parameters=parameters) as running:
        yield running


@pytest.fixture
def demo(stack: LocalStack) -> Demo:
    return Demo(stack)


# --- what must never be found ---------------------------------------------------------------------------------


def sealed_values(partner: PartnerExample, payload: Any) -> set[str]:
    """What the partner's layout seals field by field in ``payload`` (a card's number and CVV, Infosimples'
    parameters) and their MD5 receipts, found by protecting it with a seal that records its plaintexts. A
    layout that seals the whole body gives nothing here: markers in the body stand in for it."""
    protection = partner.profile.protection
    plaintexts: list[bytes] = []

    def record(plaintext: bytes) -> str:
        plaintexts.append(plaintext)
        return ""

    protected = protection.layout.protect(payload, record, protection.layout_options)
    if protected.fields == (BODY_FIELD,):
        return set()
    values = {leaf for p in plaintexts for leaf in leaves(p.decode("utf-8"), keys=False)}
    return values | set(protected.receipts.values())


def example_values(demo: Demo) -> set[str]:
    """The sealed values of every profile's example (what the demo sends)."""
    return set().union(*(sealed_values(p, p.example.payload) for p in demo.examples))


def secret_texts(stack: LocalStack) -> set[str]:
    """Every throwaway secret value, both versions, and the partners' side (a PEM by its lines)."""
    resources = stack.resources
    texts: set[str] = set()
    for secret in [*resources.secrets.values(), *resources.previous_secrets.values()]:
        for value in [*secret.value.values(), *secret.partner_side.values()]:
            lines = [line for line in value.splitlines() if len(line) >= 16 and "-----" not in line]
            texts |= set(lines or [value])
    return texts


def account_identifiers(stack: LocalStack) -> set[str]:
    """The secret values that signing derives into headers by design (dLocal's X-Login, Netcore's asset id):
    ``/v1/sign`` answers them; they identify an account and authenticate nothing on their own."""
    resources = stack.resources
    shown: set[str] = set()
    for name, profile in resources.profiles.items():
        if profile.signing is not None:
            secret = resources.secrets[name].value
            derived = profile.request_headers(secret, b"", idempotency_key=None).derived.values()
            shown |= set(secret.values()) & set(derived)
    return shown


@dataclass
class Planted:
    """Values put in protected fields by the failure flows: card numbers, CVVs, CPF-shaped values, birthdates
    and plaintext markers. Each is fresh, so a find is this run's."""

    values: set[str] = field(default_factory=set)
    rng: random.Random = field(default_factory=lambda: random.Random(uuid.uuid4().int))

    def _keep(self, value: str) -> str:
        self.values.add(value)
        return value

    def marker(self) -> str:
        return self._keep(f"PLAINTEXT-MARKER-{uuid.uuid4().hex}")

    def card(self) -> dict[str, str]:
        """A Luhn-valid 16-digit number on a test BIN and a 4-digit CVV."""
        digits = [4, 0, 0, 0, *(self.rng.randrange(10) for _ in range(11))]
        total = sum(d if i % 2 else sum(divmod(d * 2, 10)) for i, d in enumerate(digits))
        number = "".join(map(str, digits)) + str(-total % 10)
        return {"number": self._keep(number), "cvv": self._keep(str(self.rng.randrange(1000, 10000)))}

    def cpf_params(self) -> dict[str, str]:
        cpf = "".join(str(self.rng.randrange(10)) for _ in range(11))
        birthdate = f"19{self.rng.randrange(40, 99)}-0{self.rng.randrange(1, 10)}-1{self.rng.randrange(10)}"
        return {"cpf": self._keep(cpf), "birthdate": self._keep(birthdate)}


# --- flows shared by the failure tests and the leak scan ----------------------------------------------------


def enqueue(demo: Demo, partner: str, operation: str, payload: Any, key: str) -> str:
    answer = demo.call(
        "POST", f"/v1/forward/{partner}", {"operation": operation, "payload": payload, "idempotency_key": key}
    )
    assert answer.status == 202, answer.body
    return str(answer.body["id"])


def wait_outcome(
    demo: Demo, partner: str, outcome_id: str, wanted: set[str], timeout: float = 20.0
) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    body: dict[str, Any] = {}
    while time.monotonic() < deadline:
        answer = demo.call("GET", demo.status_path(partner, outcome_id))
        body = answer.body
        if answer.status == 200 and body.get("status") in wanted:
            return body
        time.sleep(0.05)
    pytest.fail(f"outcome never reached {sorted(wanted)}; last: {body.get('status')}")


def requests_with_key(stack: LocalStack, partner: str, key: str) -> int:
    header = stack.resources.profiles[partner].idempotency_header
    return sum(1 for r in stack.sandboxes[partner].requests if r.header(header) == key)


def wait_for(condition: Any, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not condition() and time.monotonic() < deadline:
        time.sleep(0.05)


def partner_failure(
    stack: LocalStack,
    demo: Demo,
    partner: str,
    payload: Any,
    mode: SandboxMode,
    reason: str,
    *,
    recover: bool = True,
) -> None:
    """The partner fails: the message is put back (sent again, delayed) by the function, outcome ``retrying``
    with one attempt, no record failed and no receive spent; delivered once the partner recovers (with
    ``recover=False`` the partner keeps failing, and the message keeps waiting on the queue)."""
    operation = next(iter(stack.resources.profiles[partner].operations))
    sandbox = stack.sandboxes[partner]
    poller = stack.pollers[0]
    failures_before, redelivered_before = poller.stats.item_failures, poller.stats.redelivered
    dead_before = stack.queue_depth("OutboundDeadLetterQueue")
    key = str(uuid.uuid4())
    sandbox.mode = mode
    try:
        outcome_id = enqueue(demo, partner, operation, payload, key)
        outcome = wait_outcome(demo, partner, outcome_id, {"retrying", *FINAL})
        tried = requests_with_key(stack, partner, key)
        waiting = [m for m in queue_messages(stack)["OutboundQueue"] if key in m]
    finally:
        if recover:
            sandbox.mode = "ok"

    assert outcome["status"] == "retrying"
    assert outcome["last_reason"] == reason
    assert outcome["attempts"] == 1
    assert outcome["next_attempt_at"] > outcome["updated_at"]
    assert tried == 1  # it was attempted, once so far
    assert len(waiting) == 1  # put back: nothing lost
    assert json.loads(waiting[0])["attributes"]["sealgate-attempts"]["StringValue"] == "1"
    assert poller.stats.item_failures == failures_before  # no record failed: SQS's receives are not spent
    assert poller.stats.redelivered == redelivered_before
    assert stack.queue_depth("OutboundDeadLetterQueue") == dead_before
    audits = stack.logs.audits(partner=partner)
    assert any(a["outcome"] == "retry" and a["reason"] == reason for a in audits)
    if recover:
        delivered = wait_outcome(demo, partner, outcome_id, FINAL)
        assert delivered["status"] == "delivered"
        assert delivered["attempts"] == requests_with_key(stack, partner, key) == 2


def throttled_then_delivered(stack: LocalStack, demo: Demo, payload: Any) -> None:
    """Netcore throttles once (429, Retry-After 1): redelivered after it, delivered exactly once."""
    sandbox = stack.sandboxes["netcore"]
    key = str(uuid.uuid4())
    sandbox.retry_after = "1"
    sandbox.mode = "throttle429"
    try:
        outcome_id = enqueue(demo, "netcore", "activity", payload, key)
        assert wait_outcome(demo, "netcore", outcome_id, {"retrying", *FINAL})["status"] == "retrying"
    finally:
        sandbox.mode = "ok"
    outcome = wait_outcome(demo, "netcore", outcome_id, FINAL)

    assert outcome["status"] == "delivered"
    assert outcome["attempts"] >= 2
    accepted = [v for v in sandbox.verifications if v.idempotency_key == key]
    assert [v.ok for v in accepted] == [True]  # delivered exactly once


def poison_to_dead_letters(stack: LocalStack, demo: Demo, card: dict[str, str]) -> None:
    """dLocal answers 429 to every attempt: the function dead-letters the message after its last attempt."""
    sandbox = stack.sandboxes["dlocal"]
    key = str(uuid.uuid4())
    dead_before, _ = stack.queue_depth("OutboundDeadLetterQueue")
    sandbox.retry_after = "0"  # retried after the backoff alone: 1 s, then 2 s
    sandbox.mode = "throttle429"
    try:
        payment = {"amount": 1.0, "currency": "BRL", "card": card}
        outcome_id = enqueue(demo, "dlocal", "payments", payment, key)
        outcome = wait_outcome(demo, "dlocal", outcome_id, FINAL, timeout=30)
        wait_for(lambda: stack.queue_depth("OutboundDeadLetterQueue")[0] > dead_before, 15)
    finally:
        sandbox.mode = "ok"
        sandbox.retry_after = "1"

    assert outcome["status"] == "dead_lettered"
    assert outcome["last_reason"] == "partner_http_429"
    assert requests_with_key(stack, "dlocal", key) == outcome["attempts"] == 5  # DeliveryMaxAttempts
    assert stack.queue_depth("OutboundDeadLetterQueue")[0] == dead_before + 1
    assert any(a.firing for a in stack.alarms() if a.logical_id == "OutboundDeadLetterAlarm")


def malformed_card_refused(stack: LocalStack, demo: Demo, card: dict[str, str]) -> None:
    """A card number that is not a string: 400 at once, nothing queued, no outcome."""
    key = str(uuid.uuid4())
    payment = {"amount": 1.0, "currency": "BRL", "card": {**card, "number": int(card["number"])}}
    answer = demo.call(
        "POST", "/v1/forward/dlocal", {"operation": "payments", "payload": payment, "idempotency_key": key}
    )

    assert answer.status == 400, answer.body
    assert answer.body["code"] == "bad_input"
    assert demo.call("GET", demo.status_path("dlocal", forward_id("dlocal", key))).status == 404
    assert not [m for messages in queue_messages(stack).values() for m in messages if key in m]


def plain_message_protected_and_delivered(stack: LocalStack, demo: Demo, card: dict[str, str]) -> None:
    """A producer puts a plain dLocal payment on the outbound queue: protected on its first receive, then
    delivered (the sandbox opens the card JWE)."""
    assert stack.clients is not None
    key = str(uuid.uuid4())
    message = {
        "partner": "dlocal",
        "operation": "payments",
        "payload": {"amount": 2.0, "currency": "BRL", "country": "BR", "card": card},
        "idempotency_key": key,
    }
    stack.clients.sqs.send_message(
        QueueUrl=stack.resources.queue_url("OutboundQueue"), MessageBody=json.dumps(message)
    )
    outcome = wait_outcome(demo, "dlocal", forward_id("dlocal", key), FINAL)

    assert outcome["status"] == "delivered"
    opened = [v for v in stack.sandboxes["dlocal"].verifications if v.idempotency_key == key]
    assert [(v.ok, set(v.fields)) for v in opened] == [(True, {"card.number", "card.cvv"})]


def plain_message_dead_lettered_without_payload(stack: LocalStack, card: dict[str, str]) -> None:
    """A plain message for an operation dLocal has not: dead-lettered as metadata, its payload dropped."""
    assert stack.clients is not None
    key = str(uuid.uuid4())
    message = {"partner": "dlocal", "operation": "no-such-operation", "payload": {"card": card}}
    dead_before, _ = stack.queue_depth("OutboundDeadLetterQueue")
    stack.clients.sqs.send_message(
        QueueUrl=stack.resources.queue_url("OutboundQueue"),
        MessageBody=json.dumps({**message, "idempotency_key": key}),
    )
    wait_for(lambda: stack.queue_depth("OutboundDeadLetterQueue")[0] > dead_before, 15)

    dead = [m for m in queue_messages(stack)["OutboundDeadLetterQueue"] if key in m]
    assert len(dead) == 1
    assert json.loads(json.loads(dead[0])["body"])["payload"].startswith("dropped")


# --- reading everything the stack holds -----------------------------------------------------------------------


def queue_messages(stack: LocalStack) -> dict[str, list[str]]:
    """Every message of every queue of the stack, in flight and delayed ones included, as JSON text (body and
    attributes), without receiving any (a receive would count towards the redrive policy).

    No SQS call shows a message in flight, and a retried message is in flight for the queue's visibility
    timeout: so this reads moto's own store (its server runs in this process), and checks the count against
    what SQS reports, so that a change in moto fails here instead of scanning nothing."""
    from moto.sqs.models import sqs_backends

    backend = sqs_backends[stack.account_id][stack.resources.region]
    found: dict[str, list[str]] = {}
    for logical_id, queue in stack.resources.queues.items():
        messages = list(backend.queues[queue.name]._messages)
        found[logical_id] = [
            json.dumps({"body": m.body, "attributes": m.message_attributes}, default=str) for m in messages
        ]
        visible, in_flight = stack.queue_depth(logical_id)
        assert len(messages) >= visible + in_flight, logical_id
    return found


def table_items(stack: LocalStack) -> dict[str, list[str]]:
    """Every item of every DynamoDB table of the stack (a full scan), as JSON text."""
    assert stack.clients is not None
    dynamodb = stack.clients.dynamodb
    found: dict[str, list[str]] = {}
    for logical_id, name in stack.resources.tables.items():
        items: list[str] = []
        arguments: dict[str, Any] = {"TableName": name}
        while True:
            page = dynamodb.scan(**arguments)
            items += [json.dumps(item, default=str) for item in page.get("Items", [])]
            if "LastEvaluatedKey" not in page:
                break
            arguments["ExclusiveStartKey"] = page["LastEvaluatedKey"]
        found[logical_id] = items
    return found


def leaves(text: str, *, keys: bool = True) -> Iterator[str]:
    """The scalar values of ``text`` read as JSON (and its objects' keys), strings holding JSON read again (a
    queued message holds the notification's raw body); ``text`` itself if it is not a JSON object or array."""
    try:
        value = json.loads(text) if text[:1] in ("{", "[") else text
    except ValueError:
        value = text
    pending = [value]
    while pending:
        item = pending.pop()
        if isinstance(item, dict):
            pending += [*(item.keys() if keys else ()), *item.values()]
        elif isinstance(item, list):
            pending += item
        elif isinstance(item, str) and item[:1] in ("{", "[") and item is not text:
            yield from leaves(item, keys=keys)
        elif item is not None:
            yield str(item)


def found_in(text: str, value: str) -> bool:
    """Whether ``value`` is in ``text``. A short value (a CVV) only counts as a whole JSON value or quoted:
    as a substring it would be found in any long token."""
    if len(value) >= 8:
        return value in text or any(value in leaf for leaf in leaves(text))
    quoted = (f'"{value}"', f"'{value}'", f'\\"{value}\\"')
    return any(q in text for q in quoted) or any(leaf == value for leaf in leaves(text))


# --- the demo flows -------------------------------------------------------------------------------------------


def test_every_demo_flow_is_verified_and_labelled_from_the_profiles(stack: LocalStack, demo: Demo) -> None:
    results = demo.run()

    profiles = stack.resources.profiles
    assert {r.partner for r in results} == set(profiles)
    assert [r for r in results if not r.verified or r.delivered is False] == []
    forwards = {r.partner: r for r in results if "/v1/forward/" in r.route}
    assert set(forwards) == set(profiles)  # one forward per profile, from its example
    for name, profile in profiles.items():
        protection = profile.protection
        label = f"{protection.scheme} ({protection.layout.name})"
        assert forwards[name].scheme.startswith(label)
        if profile.signing is not None:
            assert forwards[name].scheme.endswith(f" + {profile.signing.signer.name}")
    assert "MD5 receipts match" in forwards["infosimples"].note
    assert "card.number, card.cvv" in forwards["dlocal"].note
    [sign] = [r for r in results if "/v1/sign/" in r.route]
    assert (sign.partner, sign.delivered) == ("dlocal", None)
    assert "X-Trans-Key attached by the gateway" in sign.note
    printed = table(results) + "\n" + summary(stack)
    for heading in ("partner", "scheme", "route", "delivered", "verified", "latency ms"):
        assert heading in printed
    assert f"forward.deliver ok {len(profiles)}" in printed
    assert "signature failures  dlocal 1" in printed  # the forged notification the demo sends
    for text in secret_texts(stack) | example_values(demo):
        assert not found_in(printed, text)


def test_sign_answer_holds_derived_headers_only_and_names_the_trans_key(
    stack: LocalStack, demo: Demo
) -> None:
    secret = stack.resources.secrets["dlocal"].value

    answer = demo.call("POST", "/v1/sign/dlocal", {"body": '{"amount":1}', "idempotency_key": "k-1"})

    assert answer.status == 200
    assert answer.body["attached_by_gateway"] == ["X-Trans-Key"]
    assert set(answer.body["headers"]) == {
        "X-Date",
        "X-Login",
        "X-Version",
        "Authorization",
        "X-Idempotency-Key",
    }
    for name in ("x_trans_key", "secret_key", "jwe_public_key"):
        assert not found_in(answer.raw, secret[name]), name
    assert stack.logs.audits(action="sign", partner="dlocal")[-1].get("credentials_released") is None


def test_audit_marks_the_local_iam_caller_and_leaves_the_webhook_public(
    stack: LocalStack, demo: Demo
) -> None:
    answer = demo.call("POST", "/v1/encrypt/netcore", {"payload": {"event": "audit-check"}})
    assert answer.status == 200
    assert stack.logs.audits(action="encrypt", partner="netcore")[-1]["caller"] == stack.caller_arn

    refused = demo.call("POST", "/v1/webhooks/dlocal", {"id": "unsigned"})
    assert refused.status == 401
    assert refused.body["code"] == "missing_signature"
    webhook = stack.logs.audits(action="webhook", outcome="refused")[-1]
    assert webhook["caller"] == "127.0.0.1"  # no IAM principal on the public route: its source IP


def test_unknown_route_is_not_found(demo: Demo) -> None:
    answer = demo.call("GET", "/v1/nowhere")
    assert answer.status == 404
    assert answer.body["code"] == "not_found"


def test_make_demo_command_prints_the_table_and_exits_0(demo: Demo) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "sealgate_local", "demo"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "latency ms" in done.stdout
    assert "All flows verified." in done.stdout
    for partner in demo.examples:
        assert partner.name in done.stdout
        assert partner.label in done.stdout
    for text in (*example_values(demo), "PRIVATE KEY", "throwaway-", "base64:"):
        assert not found_in(done.stdout + done.stderr, text), text


def test_every_curl_example_of_make_run_is_answered_2xx(stack: LocalStack, demo: Demo) -> None:
    examples = [line for line in curl_examples(stack) if line.startswith("curl")]
    forwarded = demo.call(
        "POST",
        f"/v1/forward/{demo.examples[0].name}",
        {"operation": demo.examples[0].example.operation, "payload": demo.examples[0].example.payload},
    )

    assert len(examples) == len(stack.routes)
    for example in examples:
        command = example.replace("<id>", str(forwarded.body["id"]))
        done = subprocess.run(
            ["bash", "-c", command + " -o /dev/null -w '%{http_code}'"],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
        assert done.stdout.startswith("2"), command.splitlines()[0:2]


# --- CloudWatch on moto's server ---------------------------------------------------------------------------


def test_the_templates_alarms_are_in_moto_with_its_thresholds(stack: LocalStack) -> None:
    assert stack.clients is not None
    template = load_template()
    declared = {
        name: resource["Properties"]
        for name, resource in template["Resources"].items()
        if resource["Type"] == "AWS::CloudWatch::Alarm"
    }
    names = stack.resources.alarms

    described = stack.clients.cloudwatch.describe_alarms(AlarmNames=list(names.values()))["MetricAlarms"]

    held = {alarm.get("AlarmName"): alarm for alarm in described}
    assert set(held) == set(names.values())
    assert set(names) == set(declared)
    for logical_id, properties in declared.items():
        threshold = properties["Threshold"]
        if isinstance(threshold, dict):
            threshold = template["Parameters"][threshold["Ref"]]["Default"]
        alarm = held[names[logical_id]]
        assert alarm.get("Threshold") == float(threshold), logical_id
        assert alarm.get("ComparisonOperator") == properties["ComparisonOperator"], logical_id


def test_a_forged_webhook_is_a_signature_failure_in_moto_cloudwatch(stack: LocalStack) -> None:
    assert stack.clients is not None
    cloudwatch = stack.clients.cloudwatch
    stage: list[DimensionTypeDef] = [
        {"Name": "service", "Value": "sealgate"},
        {"Name": "stage", "Value": "dev"},
    ]
    series: dict[str, list[DimensionTypeDef]] = {
        "stage": stage,
        "partner": [*stage, {"Name": "partner", "Value": "dlocal"}],
    }

    def sums() -> dict[str, float]:
        """SignatureCheckFailed since the stack started, straight from moto's GetMetricData."""
        end = datetime.now(UTC) + timedelta(seconds=1)
        period = math.ceil((end - stack.started_at).total_seconds() / 60 + 1) * 60
        queries: list[MetricDataQueryTypeDef] = []
        for query_id, dims in series.items():
            metric: MetricTypeDef = {
                "Namespace": "Sealgate",
                "MetricName": "SignatureCheckFailed",
                "Dimensions": dims,
            }
            stat: MetricStatTypeDef = {"Metric": metric, "Period": period, "Stat": "Sum"}
            queries.append({"Id": query_id, "MetricStat": stat})
        answer = cloudwatch.get_metric_data(
            MetricDataQueries=queries, StartTime=stack.started_at, EndTime=end
        )
        return {r.get("Id", ""): sum(r.get("Values", [])) for r in answer["MetricDataResults"]}

    before = sums()
    payload = {"id": f"D-4-{uuid.uuid4()}", "amount": 1.0, "status": "PAID", "currency": "BRL"}
    status, _ = stack.sandboxes.dlocal.notify(
        stack.base_url + "/v1/webhooks/dlocal", payload, secret="forged-" + uuid.uuid4().hex
    )
    after = sums()

    assert status == 401
    assert after["stage"] - before["stage"] == 1.0
    assert after["partner"] - before["partner"] == 1.0


# --- failures: retried, never lost -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("mode", "reason"), [("error500", "partner_http_500"), ("hang", "partner_unreachable")]
)
def test_partner_failure_is_put_back_and_delivered_once_the_partner_recovers(
    stack: LocalStack, demo: Demo, mode: SandboxMode, reason: str
) -> None:
    partner_failure(stack, demo, "paykun", {"order_id": "ORD-F", "amount": "1.00"}, mode, reason)


def test_throttled_request_is_redelivered_after_retry_after_and_delivered_once(
    stack: LocalStack, demo: Demo
) -> None:
    throttled_then_delivered(stack, demo, [{"activity_name": "throttled"}])


def test_poison_message_ends_in_the_dead_letter_queue_by_redrive(stack: LocalStack, demo: Demo) -> None:
    poison_to_dead_letters(stack, demo, Planted().card())


def test_malformed_card_forward_is_refused_at_once_and_nothing_is_queued(
    stack: LocalStack, demo: Demo
) -> None:
    malformed_card_refused(stack, demo, Planted().card())


def test_plain_message_on_the_outbound_queue_is_protected_then_delivered(
    stack: LocalStack, demo: Demo
) -> None:
    plain_message_protected_and_delivered(stack, demo, Planted().card())


def test_plain_message_that_cannot_be_protected_is_dead_lettered_without_its_payload(
    stack: LocalStack,
) -> None:
    plain_message_dead_lettered_without_payload(stack, Planted().card())


# --- nothing in the clear at rest ------------------------------------------------------------------------------


def test_no_card_number_cvv_cpf_marker_or_key_in_any_queue_table_log_or_answer(
    stack: LocalStack, demo: Demo
) -> None:
    """The issue's leak scan. Self-contained (it runs the demo and every failure flow itself, with fresh
    values), and last in this module: it also scans whatever the tests before it left on the shared stack."""
    planted = Planted()
    results = demo.run()
    assert [r for r in results if not r.verified] == []
    throttled_then_delivered(stack, demo, [{"activity_name": "leak-scan", "identity": planted.marker()}])
    poison_to_dead_letters(stack, demo, planted.card())
    malformed_card_refused(stack, demo, planted.card())
    plain_message_protected_and_delivered(stack, demo, planted.card())
    plain_message_dead_lettered_without_payload(stack, planted.card())
    # Last, and left failing until the scan is done: their messages wait on the queue while it reads it.
    try:
        partner_failure(
            stack, demo, "infosimples", planted.cpf_params(), "error500", "partner_http_500", recover=False
        )
        partner_failure(
            stack,
            demo,
            "paykun",
            {"order_id": "ORD-L", "note": planted.marker()},
            "hang",
            "partner_unreachable",
            recover=False,
        )
        scan_everything(stack, demo, planted)
    finally:
        stack.sandboxes["infosimples"].mode = "ok"
        stack.sandboxes["paykun"].mode = "ok"


def scan_everything(stack: LocalStack, demo: Demo, planted: Planted) -> None:
    """Search every queue, table, log line and API answer of the stack for the planted values and keys."""
    queues = queue_messages(stack)
    tables = table_items(stack)
    logged = [line for _, line in stack.logs.lines]
    # /v1/encrypt and /v1/decrypt answer protected and plain payloads by design: every other answer is searched.
    answers = [a for a in demo.answers if a.path.split("/")[2] not in ("encrypt", "decrypt")]
    haystack = [
        *((f"queue {q}", m) for q, messages in queues.items() for m in messages),
        *((f"table {t}", item) for t, items in tables.items() for item in items),
        *(("log", line) for line in logged),
        *((f"answer {a.method} {a.path.split('/')[2]}", a.raw) for a in answers),
    ]
    identifiers = account_identifiers(stack)
    needles = {
        "planted value": planted.values,
        "example value": example_values(demo),
        "throwaway key": secret_texts(stack) - identifiers,
        "account identifier": identifiers,
    }
    found = [
        (where, kind)
        for where, text in haystack
        for kind, values in needles.items()
        if not (kind == "account identifier" and where == "answer POST sign")
        for value in values
        if found_in(text, value)
    ]

    print(
        f"leak scan: {sum(map(len, queues.values()))} messages in {len(queues)} queues "
        f"({', '.join(f'{q} {len(m)}' for q, m in queues.items())}), "
        f"{sum(map(len, tables.values()))} items in {len(tables)} tables, {len(logged)} log lines, "
        f"{len(answers)} API answers; {sum(map(len, needles.values()))} values searched "
        f"({', '.join(f'{len(v)} {k}s' for k, v in needles.items())}); found {len(found)}"
    )
    assert found == []
    # The scan saw what the flows left behind: retried messages waiting, dead letters, the notification.
    assert len(queues["OutboundQueue"]) >= 2
    assert len(queues["OutboundDeadLetterQueue"]) >= 2
    assert len(queues["InboundQueue"]) >= 1
    assert all(tables.values())


def test_the_functions_read_their_keys_through_the_secrets_extension(stack: LocalStack) -> None:
    from sealgate.partners import served_by

    profiles = stack.resources.profiles
    each_worker_once = sum(len(served_by(name, profiles)) for name in ("encrypt", "sign", "forward"))

    assert stack.secrets_extension.requests >= each_worker_once
    assert stack.secrets_extension.refused == 0, "every worker presented its session token"
