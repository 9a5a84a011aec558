"""The local stack end to end: moto, template resources, partner sandboxes, worker processes, API, SQS poller.

The flows are checked by the partner sandboxes (independent implementations of each partner's side), not by
Sealgate's own decoders. Failure tests put a sandbox in a failure mode and follow the message: reported as a
batch item failure, outcome ``retrying``, still on the queue (nothing lost), or moved to the dead-letter
queue by the queue's redrive policy after its last receive.
"""

from __future__ import annotations

import hashlib
import math
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import pytest

from sealgate_local.aws_stack import load_template
from sealgate_local.demo import CARD_NUMBER, CPF, CVV, SAMPLE_VALUES, Demo, summary, table
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
    # A short partner timeout keeps the hang test quick; everything else is the template's.
    with LocalStack(parameters={"ForwardTimeoutSeconds": "2"}) as running:
        yield running


@pytest.fixture
def demo(stack: LocalStack) -> Demo:
    return Demo(stack)


def secret_texts(stack: LocalStack) -> list[str]:
    """Every throwaway secret value (each line of a PEM), and what is derived from the sample values."""
    texts: list[str] = []
    for secret in stack.resources.secrets.values():
        for value in [*secret.value.values(), *secret.partner_side.values()]:
            lines = [line for line in value.splitlines() if len(line) >= 16 and "-----" not in line]
            texts += lines or [value]
    texts += [hashlib.md5(CPF.encode(), usedforsecurity=False).hexdigest(), *SAMPLE_VALUES]
    return texts


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
    sandbox = stack.sandboxes[partner]
    return sum(
        1 for r in sandbox.requests if key in (r.header("Idempotency-Key"), r.header("X-Idempotency-Key"))
    )


# --- the demo flows -------------------------------------------------------------------------------------------


def test_every_demo_flow_is_verified_by_its_partner_sandbox(stack: LocalStack, demo: Demo) -> None:
    results = demo.run()

    assert {r.partner for r in results} == {"infosimples", "netcore", "paykun", "dlocal"}
    assert [r for r in results if not (r.delivered and r.verified)] == []
    printed = table(results) + "\n" + summary(stack)
    for heading in ("partner", "scheme", "route", "delivered", "verified", "latency ms"):
        assert heading in printed
    assert "forward.deliver ok 4" in printed
    assert "signature failures  dlocal 1" in printed  # the forged notification the demo sends
    for text in secret_texts(stack):
        assert text not in printed
    # What the functions printed (logs, audit, EMF) holds no key, value, receipt, card number or CVV either.
    logged = "\n".join(line for _, line in stack.logs.lines)
    for text in [*secret_texts(stack), f'"{CVV}"']:
        assert text not in logged


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


def test_make_demo_command_prints_the_table_and_exits_0() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "sealgate_local", "demo"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "partner" in done.stdout
    assert "latency ms" in done.stdout
    assert "All flows verified" in done.stdout
    for partner in ("infosimples", "netcore", "paykun", "dlocal"):
        assert partner in done.stdout
    for text in (*SAMPLE_VALUES, CARD_NUMBER, "PRIVATE KEY", "throwaway-", "base64:"):
        assert text not in done.stdout + done.stderr


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
def test_partner_failure_is_a_batch_item_failure_and_the_message_stays_queued(
    stack: LocalStack, demo: Demo, mode: SandboxMode, reason: str
) -> None:
    sandbox = stack.sandboxes["paykun"]
    poller = stack.pollers[0]
    failures_before = poller.stats.item_failures
    _, in_flight_before = stack.queue_depth("OutboundQueue")
    key = str(uuid.uuid4())
    sandbox.mode = mode
    try:
        outcome_id = enqueue(demo, "paykun", "payment", {"order_id": "ORD-F", "amount": "1.00"}, key)
        outcome = wait_outcome(demo, "paykun", outcome_id, {"retrying", *FINAL})
    finally:
        sandbox.mode = "ok"

    assert outcome["status"] == "retrying"
    assert outcome["last_reason"] == reason
    assert requests_with_key(stack, "paykun", key) == 1  # it was attempted
    deadline = time.monotonic() + 5
    while poller.stats.item_failures == failures_before and time.monotonic() < deadline:
        time.sleep(0.05)
    assert poller.stats.item_failures == failures_before + 1
    assert stack.queue_depth("OutboundQueue")[1] == in_flight_before + 1  # not deleted: SQS redelivers it
    assert stack.queue_depth("OutboundDeadLetterQueue") == (0, 0)
    assert any(a["outcome"] == "retry" and a["reason"] == reason for a in stack.logs.audits(partner="paykun"))


def test_throttled_request_is_redelivered_after_retry_after_and_delivered_once(
    stack: LocalStack, demo: Demo
) -> None:
    sandbox = stack.sandboxes["netcore"]
    key = str(uuid.uuid4())
    sandbox.retry_after = "1"
    sandbox.mode = "throttle429"
    try:
        outcome_id = enqueue(demo, "netcore", "activity", [{"activity_name": "throttled"}], key)
        assert wait_outcome(demo, "netcore", outcome_id, {"retrying", *FINAL})["status"] == "retrying"
    finally:
        sandbox.mode = "ok"
    outcome = wait_outcome(demo, "netcore", outcome_id, FINAL)

    assert outcome["status"] == "delivered"
    assert outcome["attempts"] >= 2
    accepted = [v for v in sandbox.verifications if v.idempotency_key == key]
    assert [v.ok for v in accepted] == [True]  # delivered exactly once


def test_poison_message_ends_in_the_dead_letter_queue_by_redrive(stack: LocalStack, demo: Demo) -> None:
    sandbox = stack.sandboxes["dlocal"]
    key = str(uuid.uuid4())
    dead_before, _ = stack.queue_depth("OutboundDeadLetterQueue")
    sandbox.retry_after = "0"  # redelivered at once: the five receives take a second, not 15 minutes
    sandbox.mode = "throttle429"
    try:
        payment = {"amount": 1.0, "currency": "BRL", "card": {"number": CARD_NUMBER, "cvv": CVV}}
        outcome_id = enqueue(demo, "dlocal", "payments", payment, key)
        outcome = wait_outcome(demo, "dlocal", outcome_id, FINAL, timeout=30)
        deadline = time.monotonic() + 15
        while stack.queue_depth("OutboundDeadLetterQueue")[0] == dead_before and time.monotonic() < deadline:
            time.sleep(0.1)
    finally:
        sandbox.mode = "ok"
        sandbox.retry_after = "1"

    assert outcome["status"] == "dead_lettered"
    assert outcome["last_reason"] == "partner_http_429"
    assert requests_with_key(stack, "dlocal", key) == 5  # the queue's maxReceiveCount
    assert stack.queue_depth("OutboundDeadLetterQueue")[0] == dead_before + 1
    assert any(a.firing for a in stack.alarms() if a.logical_id == "OutboundDeadLetterAlarm")
