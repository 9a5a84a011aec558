"""The forward function's own delivery limits, on moto in process, with the HTTPS partner API of
:mod:`tests.integration.test_forward_function`: only a delivery keeps its idempotency record (a redrive is
tried again, a delivered message never sent twice), the last attempt dead-letters with the partner's reason,
an untried message waits until it has waited too long, Retry-After is honoured up to SQS's longest delay, and
a message that cannot be put back is left for SQS to redeliver.

Messages come back as they would after earlier tries: their counts set in the message attributes.
"""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Callable
from datetime import datetime
from typing import Any

import pytest

from sealgate.actions.deliver import ATTEMPTS, QUEUED_AT, WAITS
from sealgate_local.aws_stack import StackResources
from sealgate_local.https_server import Response
from tests.integration.conftest import Function, SecretsOutage, event, receive, sqs_event
from tests.integration.test_forward_function import PartnerApi, partner_api  # noqa: F401 (a fixture)
from tests.integration.test_forward_function import outcome as moto_outcome

# A request that emits no metric is normal; Powertools warns about it on every such invocation.
pytestmark = pytest.mark.filterwarnings("ignore:No application metrics to publish:UserWarning")


def queued_message(function: Function, stack_: StackResources, partner: str) -> dict[str, Any]:
    """Forward ``partner``'s sample request through the API; the message it queued, as received."""
    reply = function.call(event(f"forward-enqueue-{partner}"))
    assert reply.status == 202, reply.text
    (message,) = receive(stack_)
    return message


def with_counts(message: dict[str, Any], **counts: str) -> dict[str, Any]:
    """``message`` as it would come back after earlier tries: its counts in the message attributes."""
    names = {"attempts": ATTEMPTS, "waits": WAITS, "queued_at": QUEUED_AT}
    attributes = {names[k]: {"DataType": "String", "StringValue": v} for k, v in counts.items()}
    return {**message, "MessageAttributes": attributes}


def reason_of(message: dict[str, Any]) -> tuple[str, str]:
    attributes = message["MessageAttributes"]
    return attributes["reason"]["StringValue"], attributes["attempts"]["StringValue"]


def deliver_records(stack_: StackResources) -> list[str]:
    """The statuses of the idempotency records of deliveries (Powertools' items in the idempotency table)."""
    assert stack_.clients is not None
    items = stack_.clients.dynamodb.scan(TableName=stack_.tables["IdempotencyTable"]).get("Items", [])
    return [item["status"]["S"] for item in items if "deliver_forward" in item["id"]["S"]]


def seconds_until_next_attempt(item: dict[str, Any]) -> float:
    def parse(text: str) -> datetime:
        return datetime.fromisoformat(text.replace("Z", "+00:00"))

    return (parse(item["next_attempt_at"]) - parse(item["updated_at"])).total_seconds()


def test_only_a_delivery_keeps_its_idempotency_record_so_a_redrive_is_tried_again(
    cold_start: Callable[..., Function],
    stack: StackResources,
    partner_api: PartnerApi,  # noqa: F811
) -> None:
    partner_api.answers["dlocal"] = Response(422, {"Content-Type": "application/json"}, b'{"code":5001}')
    function = cold_start("forward", **partner_api.environment())
    message = queued_message(function, stack, "dlocal")
    outcome_id = json.loads(message["Body"])["id"]

    assert function.invoke(sqs_event(stack, [message])) == {"batchItemFailures": []}
    (dead,) = receive(stack, "OutboundDeadLetterQueue")
    assert reason_of(dead) == ("partner_http_422", "1")
    assert deliver_records(stack) == []  # the rejected attempt left nothing to swallow a redrive

    partner_api.answers.clear()  # the operator's fix; then the dead letter is moved back and received
    assert function.invoke(sqs_event(stack, [dead])) == {"batchItemFailures": []}

    assert deliver_records(stack) == ["COMPLETED"]
    item = moto_outcome(function, outcome_id)
    assert (item["status"], item["attempts"]) == ("delivered", 2)
    assert len(partner_api.received("dlocal")) == 2
    # Copies of the delivered message, received again: one answered from the idempotency record, one after
    # the record is gone (its expiry) stopped by the outcome item. Neither is sent.
    assert function.invoke(sqs_event(stack, [dead])) == {"batchItemFailures": []}
    assert stack.clients is not None
    for key in stack.clients.dynamodb.scan(TableName=stack.tables["IdempotencyTable"])["Items"]:
        stack.clients.dynamodb.delete_item(TableName=stack.tables["IdempotencyTable"], Key={"id": key["id"]})
    assert function.invoke(sqs_event(stack, [message])) == {"batchItemFailures": []}
    assert len(partner_api.received("dlocal")) == 2
    assert (moto_outcome(function, outcome_id)["attempts"]) == 2
    assert receive(stack) == []
    assert receive(stack, "OutboundDeadLetterQueue") == []


def test_the_last_attempt_dead_letters_the_message_with_the_partners_reason(
    cold_start: Callable[..., Function],
    stack: StackResources,
    partner_api: PartnerApi,  # noqa: F811
) -> None:
    partner_api.answers["netcore"] = Response(503, {"Content-Type": "text/plain"}, b"partner failure")
    function = cold_start("forward", **partner_api.environment())
    message = queued_message(function, stack, "netcore")
    fourth_time = with_counts(message, attempts="4", waits="2", queued_at=f"{time.time() - 60:.3f}")

    assert function.invoke(sqs_event(stack, [fourth_time])) == {"batchItemFailures": []}

    (dead,) = receive(stack, "OutboundDeadLetterQueue")
    assert reason_of(dead) == ("partner_http_503", "5")
    assert dead["Body"] == message["Body"]
    assert receive(stack) == []
    item = moto_outcome(function, json.loads(message["Body"])["id"])
    # The outcome counts the requests this gateway sent (the earlier four are only in the message here).
    assert (item["status"], item["last_reason"], item["attempts"]) == ("dead_lettered", "partner_http_503", 1)
    assert len(partner_api.received("netcore")) == 1


def test_an_untried_message_is_dead_lettered_only_once_it_waited_too_long(
    monkeypatch: pytest.MonkeyPatch,
    secrets_outage: SecretsOutage,
    cold_start: Callable[..., Function],
    stack: StackResources,
    partner_api: PartnerApi,  # noqa: F811
) -> None:
    monkeypatch.delenv("AWS_ENDPOINT_URL_SECRETS_MANAGER")  # the outage starts after the enqueue
    healthy = cold_start("forward", **partner_api.environment())
    message = queued_message(healthy, stack, "paykun")
    outcome_id = json.loads(message["Body"])["id"]
    secrets_outage.begin()
    function = cold_start("forward", OUTBOUND_MAX_WAIT_SECONDS="3600", **partner_api.environment())

    young = with_counts(message, waits="40", queued_at=f"{time.time() - 3500:.3f}")
    assert function.invoke(sqs_event(stack, [young])) == {"batchItemFailures": []}
    item = moto_outcome(healthy, outcome_id)
    assert (item["status"], item["last_reason"], item["attempts"], item["waits"]) == (
        "waiting",
        "keys_unavailable",
        0,
        41,
    )
    assert 0 < seconds_until_next_attempt(item) <= 900
    assert receive(stack, "OutboundDeadLetterQueue") == []

    old = with_counts(message, waits="41", queued_at=f"{time.time() - 3601:.3f}")
    assert function.invoke(sqs_event(stack, [old])) == {"batchItemFailures": []}
    (dead,) = receive(stack, "OutboundDeadLetterQueue")
    assert reason_of(dead) == ("waited_too_long", "0")
    item = moto_outcome(healthy, outcome_id)
    assert (item["status"], item["last_reason"], item["attempts"]) == ("dead_lettered", "waited_too_long", 0)
    assert "next_attempt_at" not in item
    assert partner_api.server.requests == []


def test_retry_after_is_honoured_up_to_the_longest_delay_sqs_allows(
    cold_start: Callable[..., Function],
    stack: StackResources,
    partner_api: PartnerApi,  # noqa: F811
) -> None:
    partner_api.answers["paykun"] = Response(429, {"Retry-After": "30"}, b"slow down")
    partner_api.answers["netcore"] = Response(429, {"Retry-After": "86400"}, b"come back tomorrow")
    function = cold_start("forward", OUTBOUND_BACKOFF_BASE_SECONDS="1", **partner_api.environment())
    messages = [queued_message(function, stack, "paykun"), queued_message(function, stack, "netcore")]

    assert function.invoke(sqs_event(stack, messages)) == {"batchItemFailures": []}

    waits = {
        json.loads(m["Body"])["partner"]: seconds_until_next_attempt(
            moto_outcome(function, json.loads(m["Body"])["id"])
        )
        for m in messages
    }
    assert 29 <= waits["paykun"] <= 31
    assert 899 <= waits["netcore"] <= 901
    assert receive(stack) == []  # both wait, delayed on the queue


def test_a_message_that_cannot_be_put_back_is_left_for_sqs_to_redeliver(
    cold_start: Callable[..., Function],
    stack: StackResources,
    partner_api: PartnerApi,  # noqa: F811
) -> None:
    healthy = cold_start("forward", **partner_api.environment())
    message = queued_message(healthy, stack, "netcore")
    partner_api.answers["netcore"] = Response(500, {"Content-Type": "text/plain"}, b"partner failure")
    missing = stack.queue_url("OutboundQueue") + "-missing"
    broken = cold_start("forward", OUTBOUND_QUEUE_URL=missing, **partner_api.environment())

    answer = broken.invoke(sqs_event(stack, [message]))

    assert answer == {"batchItemFailures": [{"itemIdentifier": message["MessageId"]}]}
    item = moto_outcome(healthy, json.loads(message["Body"])["id"])
    assert (item["status"], item["last_reason"], item["attempts"]) == ("retrying", "partner_http_500", 1)
    assert "next_attempt_at" not in item
    assert len(partner_api.received("netcore")) == 1
    assert receive(stack, "OutboundDeadLetterQueue") == []


def test_a_partner_refusing_connections_costs_no_attempt(
    cold_start: Callable[..., Function],
    stack: StackResources,
    partner_api: PartnerApi,  # noqa: F811
) -> None:
    """Nothing reached the partner: the message waits untried (a partner that is down for hours does not use
    up its attempts)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed = probe.getsockname()[1]
    environment = {**partner_api.environment(), "SEALGATE_BASE_URL_NETCORE": f"https://127.0.0.1:{closed}/"}
    function = cold_start("forward", **environment)
    message = queued_message(function, stack, "netcore")

    assert function.invoke(sqs_event(stack, [message])) == {"batchItemFailures": []}

    item = moto_outcome(function, json.loads(message["Body"])["id"])
    assert (item["status"], item["last_reason"], item["attempts"], item["waits"]) == (
        "waiting",
        "partner_refused",
        0,
        1,
    )
    assert partner_api.server.requests == []
    assert receive(stack, "OutboundDeadLetterQueue") == []


def test_a_redriven_metadata_dead_letter_is_never_sent(
    cold_start: Callable[..., Function],
    stack: StackResources,
    partner_api: PartnerApi,  # noqa: F811
) -> None:
    """A plain message that could not be protected was dead-lettered without its payload: redriven, it must
    not reach the partner with the placeholder for a payload."""
    assert stack.clients is not None
    function = cold_start("forward", **partner_api.environment())
    plain = {"partner": "paykun", "operation": "no-such-operation", "payload": {"order_id": "ORD-1"}}
    stack.clients.sqs.send_message(
        QueueUrl=stack.queue_url("OutboundQueue"), MessageBody=json.dumps({**plain, "idempotency_key": "p-9"})
    )
    assert function.invoke(sqs_event(stack, receive(stack))) == {"batchItemFailures": []}
    (dead,) = receive(stack, "OutboundDeadLetterQueue")
    assert json.loads(dead["Body"])["operation"] is None  # an operation PayKun has not
    # Had the operation been right, the placeholder would be a payload the scheme protects: send it so.
    placeholder = {**json.loads(dead["Body"]), "operation": "payment"}

    redriven = {**dead, "Body": json.dumps(placeholder)}
    assert function.invoke(sqs_event(stack, [redriven])) == {"batchItemFailures": []}

    (again,) = receive(stack, "OutboundDeadLetterQueue")
    assert reason_of(again) == ("payload_dropped", "0")
    assert partner_api.server.requests == []
    assert receive(stack) == []
