"""The forward function delivering a batch's records concurrently, on moto, to the HTTPS partner API of
:mod:`tests.integration.test_forward_function` (a throwaway CA on 127.0.0.1), here made slow or hanging per
partner.

A batch takes about as long as its slowest record, a hanging partner holds up nobody else's records, and
what the batch reports (failed items, Retry-After, outcomes, metrics, one request per idempotency key) is
exactly what delivering the records one after another reported.
"""

from __future__ import annotations

import copy
import json
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

from sealgate import metric_names
from sealgate.actions.deliver import DEADLINE_MARGIN
from sealgate_local.aws_stack import StackResources
from sealgate_local.https_server import Request, Response
from tests.integration.conftest import FakeContext, Function, Output, event, receive, sqs_event
from tests.integration.test_forward_function import (
    PartnerApi,
    enqueue_body,
    forward_fn,  # noqa: F401 (a fixture)
    outcome,
    partner_api,  # noqa: F401 (a fixture)
)

# A request that emits no metric is normal; Powertools warns about it on every such invocation.
pytestmark = pytest.mark.filterwarnings("ignore:No application metrics to publish:UserWarning")

SLOW = 0.2  # seconds a slow partner takes to answer
FORWARD_TIMEOUT = 1  # seconds the forward function gives a partner (FORWARD_TIMEOUT_SECONDS)
HANG_LIMIT = 10.0  # seconds a hanging partner holds a request at most (released when the test ends)


@dataclass
class Pace:
    """How long each partner of the partner API takes: ``slow`` ones answer after a delay, ``hanging`` ones
    not before the test ends."""

    slow: dict[str, float] = field(default_factory=dict)
    hanging: set[str] = field(default_factory=set)
    released: threading.Event = field(default_factory=threading.Event)


@pytest.fixture
def pace(partner_api: PartnerApi) -> Iterator[Pace]:  # noqa: F811
    chosen = Pace()

    def handle(request: Request) -> Response:
        partner = PartnerApi.partner_of(request.path)
        if partner in chosen.hanging:
            chosen.released.wait(HANG_LIMIT)
        time.sleep(chosen.slow.get(partner, 0.0))
        return partner_api.handle(request)

    partner_api.server.handler = handle
    yield chosen
    chosen.released.set()  # before the server stops: no handler is left waiting


@dataclass
class Ticking(FakeContext):
    """A Lambda context whose remaining time runs down from the moment it is made, as Lambda's does."""

    started: float = field(default_factory=time.monotonic)

    def get_remaining_time_in_millis(self) -> int:
        return int(self.timeout_ms - (time.monotonic() - self.started) * 1000)


def enqueue(function: Function, partner: str, count: int) -> dict[str, str]:
    """``count`` messages for ``partner`` through the API, each with its own idempotency key; key -> id."""
    ids = {}
    for _ in range(count):
        key = f"concurrency-{uuid.uuid4().hex}"
        reply = function.call(
            event(f"forward-enqueue-{partner}", body={**enqueue_body(partner), "idempotency_key": key})
        )
        assert reply.status == 202, reply.text
        ids[key] = reply.body["id"]
    return ids


def received_all(stack: StackResources, wanted: int) -> list[dict[str, Any]]:
    messages = receive(stack, wanted=wanted)
    assert len(messages) == wanted
    return messages


def message_ids(messages: list[dict[str, Any]], partner: str) -> set[str]:
    return {m["MessageId"] for m in messages if json.loads(m["Body"])["partner"] == partner}


def failed_items(answer: dict[str, Any]) -> list[str]:
    return sorted(item["itemIdentifier"] for item in answer["batchItemFailures"])


def keys_seen(partner_api: PartnerApi, partner: str) -> list[str]:  # noqa: F811
    return sorted(str(r.header("Idempotency-Key")) for r in partner_api.received(partner))


def timed(function: Function, batch: dict[str, Any]) -> tuple[dict[str, Any], float]:
    started = time.perf_counter()
    answer = function.invoke(batch)
    return answer, time.perf_counter() - started


def test_ten_records_to_a_slow_partner_take_about_as_long_as_one(
    forward_fn: Function,  # noqa: F811
    stack: StackResources,
    partner_api: PartnerApi,  # noqa: F811
    pace: Pace,
    output: Output,
) -> None:
    pace.slow["netcore"] = SLOW
    ids = enqueue(forward_fn, "netcore", 10)

    answer, elapsed = timed(forward_fn, sqs_event(stack, received_all(stack, 10)))

    assert answer == {"batchItemFailures": []}
    assert elapsed < 1.5, f"ten records took {elapsed:.2f} s; one after another would take {10 * SLOW:.1f} s"
    assert keys_seen(partner_api, "netcore") == sorted(ids)
    for outcome_id in ids.values():
        item = outcome(forward_fn, outcome_id)
        assert (item["status"], item["partner_status"], item["attempts"]) == ("delivered", 200, 1)
    assert output.metric_total(metric_names.FORWARD_DELIVERED) == 10
    assert output.metric_total(metric_names.FORWARD_FAILED) == 0


def test_a_hanging_partner_does_not_hold_up_another_partners_records(
    cold_start: Callable[..., Function],
    stack: StackResources,
    partner_api: PartnerApi,  # noqa: F811
    pace: Pace,
) -> None:
    forward = cold_start("forward", FORWARD_TIMEOUT_SECONDS=str(FORWARD_TIMEOUT), **partner_api.environment())
    pace.hanging.add("paykun")
    hanging = enqueue(forward, "paykun", 3)
    answering = enqueue(forward, "netcore", 4)
    messages = received_all(stack, 7)
    messages.sort(key=lambda m: json.loads(m["Body"])["partner"] != "paykun")  # the hanging ones first
    # Time for two forward timeouts: one after another, the third hanging record and all of the other
    # partner's would be returned untried (the deadline guard).
    context = Ticking(timeout_ms=int((2 * FORWARD_TIMEOUT + DEADLINE_MARGIN + 0.5) * 1000))

    started = time.perf_counter()
    answer = forward.module.lambda_handler(copy.deepcopy(sqs_event(stack, messages)), context)
    elapsed = time.perf_counter() - started

    # Only the hanging partner's messages go back (put back by the function: no record fails), and they
    # waited at once, not one after another.
    assert failed_items(answer) == []
    assert elapsed < 2 * FORWARD_TIMEOUT
    assert keys_seen(partner_api, "netcore") == sorted(answering)
    for outcome_id in answering.values():
        assert outcome(forward, outcome_id)["status"] == "delivered"
    for outcome_id in hanging.values():
        item = outcome(forward, outcome_id)
        assert (item["status"], item["attempts"], item["last_reason"]) == (
            "retrying",
            1,
            "partner_unreachable",
        )


def test_copies_of_one_message_in_a_concurrent_batch_reach_the_partner_once(
    forward_fn: Function,  # noqa: F811
    stack: StackResources,
    partner_api: PartnerApi,  # noqa: F811
    pace: Pace,
    output: Output,
) -> None:
    assert stack.clients is not None
    pace.slow["infosimples"] = SLOW  # the first copy is still being sent when the batch's others start
    others = enqueue(forward_fn, "netcore", 4)
    (key, outcome_id), *_ = enqueue(forward_fn, "infosimples", 1).items()
    first = received_all(stack, 5)
    body = next(m["Body"] for m in first if json.loads(m["Body"])["partner"] == "infosimples")
    for _ in range(2):  # e.g. a producer that wrote it to the queue again
        stack.clients.sqs.send_message(QueueUrl=stack.queue_url("OutboundQueue"), MessageBody=body)
    messages = [*first, *received_all(stack, 2)]

    answer = forward_fn.invoke(sqs_event(stack, messages))

    assert answer == {"batchItemFailures": []}
    assert keys_seen(partner_api, "infosimples") == [key]
    assert keys_seen(partner_api, "netcore") == sorted(others)
    item = outcome(forward_fn, outcome_id)
    assert (item["status"], item["attempts"]) == ("delivered", 1)
    assert output.metric_total(metric_names.FORWARD_DELIVERED) == 5  # the copies found it delivered


def test_partial_failures_are_exactly_the_failed_records(
    cold_start: Callable[..., Function],
    stack: StackResources,
    partner_api: PartnerApi,  # noqa: F811
    output: Output,
) -> None:
    assert stack.clients is not None
    forward = cold_start("forward", OUTBOUND_BACKOFF_BASE_SECONDS="1", **partner_api.environment())
    partner_api.answers["netcore"] = Response(500, {"Content-Type": "text/plain"}, b"partner failure")
    partner_api.answers["paykun"] = Response(429, {"Retry-After": "1"}, b"slow down")
    delivered = enqueue(forward, "infosimples", 3)
    failing = enqueue(forward, "netcore", 2)
    throttled = enqueue(forward, "paykun", 2)
    for _ in range(2):
        stack.clients.sqs.send_message(
            QueueUrl=stack.queue_url("OutboundQueue"), MessageBody='{"partner": "netcore", "operation"'
        )
    messages = received_all(stack, 9)
    malformed = set()
    for message in messages:
        try:
            json.loads(message["Body"])
        except json.JSONDecodeError:
            malformed.add(message["MessageId"])

    answer = forward.invoke(sqs_event(stack, messages))

    retried = message_ids([m for m in messages if m["MessageId"] not in malformed], "netcore")
    throttled_ids = message_ids([m for m in messages if m["MessageId"] not in malformed], "paykun")
    assert failed_items(answer) == []  # the failed ones were put back by the function
    for ids, status in ((delivered, "delivered"), (failing, "retrying"), (throttled, "retrying")):
        for outcome_id in ids.values():
            assert outcome(forward, outcome_id)["status"] == status
    dead = receive(stack, "OutboundDeadLetterQueue")
    assert {m["MessageAttributes"]["original_message_id"]["StringValue"] for m in dead} == malformed
    assert {m["MessageAttributes"]["reason"]["StringValue"] for m in dead} == {"bad_input"}
    assert output.metric_total(metric_names.FORWARD_DELIVERED) == 3
    assert output.metric_total(metric_names.FORWARD_FAILED) == 6

    time.sleep(1.3)  # the backoff and the 429's Retry-After: 1 s; the originals stay in flight
    again = receive(stack)
    assert {m["MessageId"] for m in again}.isdisjoint(retried | throttled_ids)
    retried_bodies = sorted(m["Body"] for m in messages if m["MessageId"] in retried | throttled_ids)
    assert sorted(m["Body"] for m in again) == retried_bodies
    assert {m["MessageAttributes"]["sealgate-attempts"]["StringValue"] for m in again} == {"1"}


def test_metric_counts_are_exact_after_concurrent_batches(
    cold_start: Callable[..., Function],
    stack: StackResources,
    partner_api: PartnerApi,  # noqa: F811
    output: Output,
) -> None:
    # The failed records' copies wait out of the way (a 5 minute backoff) while the rounds run.
    forward = cold_start("forward", OUTBOUND_BACKOFF_BASE_SECONDS="600", **partner_api.environment())
    partner_api.answers["netcore"] = Response(503, {"Content-Type": "text/plain"}, b"partner failure")
    rounds = 3  # each invocation starts a fresh metric set: ten threads adding its first values at once

    for _ in range(rounds):
        for partner, count in (("infosimples", 3), ("paykun", 3), ("netcore", 4)):
            enqueue(forward, partner, count)
        answer = forward.invoke(sqs_event(stack, received_all(stack, 10)))
        assert answer == {"batchItemFailures": []}  # the four 503s were put back

    assert output.metric_total(metric_names.FORWARD_DELIVERED) == 6 * rounds
    assert output.metric_total(metric_names.FORWARD_FAILED) == 4 * rounds
