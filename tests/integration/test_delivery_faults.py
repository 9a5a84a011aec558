"""Delivery under faults, on the local stack (moto, HTTPS partner sandboxes, worker processes, the SQS poller):
a partner that rejects, then a redrive after the fix; a hanging partner beside an answering one; Secrets
Manager down for longer than the attempts would last. (The forward function's own limits, on moto in process,
are in :mod:`tests.integration.test_delivery_limits`: moto's state is per process, and a local stack running
beside ``mock_aws`` would share it.)

What each test checks comes from outside the gateway: the sandboxes' records of what they received, the
queues' depths, the poller's count of messages received more than once, and the outcome items the API serves.
Backoffs are short here (1 s, doubling, capped at 2 s): the template's are 5 s and 900 s.
"""

from __future__ import annotations

import contextlib
import json
import socket
import struct
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from sealgate_local.demo import Demo
from sealgate_local.redrive import redrive
from sealgate_local.stack import LocalStack

FINAL = {"delivered", "rejected", "dead_lettered"}
MAX_ATTEMPTS = 5  # the template's DeliveryMaxAttempts
STAGE = "faults"


class Switch:
    """A TCP relay on 127.0.0.1 to another local port, which can be switched off: then every open connection is
    cut and every new one reset at once (an endpoint that is down). The target port is looked up per
    connection, so the relay can exist before what it relays to."""

    def __init__(self, target: Callable[[], int]) -> None:
        self.target = target
        self.on = True
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self._listener.getsockname()[1]}"
        self._open: set[socket.socket] = set()
        self._lock = threading.Lock()
        self._closed = False
        threading.Thread(target=self._accept, name="switch", daemon=True).start()

    def down(self) -> None:
        self.on = False
        with self._lock:
            for sock in self._open:
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)

    def up(self) -> None:
        self.on = True

    def close(self) -> None:
        self._closed = True
        self.down()
        self._listener.close()

    def _accept(self) -> None:
        while not self._closed:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            if not self.on:
                client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))  # RST
                client.close()
                continue
            try:
                upstream = socket.create_connection(("127.0.0.1", self.target()), timeout=5)
            except OSError:
                client.close()
                continue
            upstream.settimeout(None)
            with self._lock:
                self._open |= {client, upstream}
            for source, sink in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(source, sink), daemon=True).start()

    def _pump(self, source: socket.socket, sink: socket.socket) -> None:
        try:
            while chunk := source.recv(65536):
                sink.sendall(chunk)
        except OSError:
            pass
        finally:
            for sock in (source, sink):
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
            with self._lock:
                self._open -= {source, sink}


@dataclass
class SecretsSwitch:
    """Secrets Manager as the forward function reaches it, switchable: through the Parameters and Secrets
    Lambda Extension's endpoint where the local stack serves one, else through boto3's endpoint (moto)."""

    sdk: Switch
    extension: Switch

    def environment(self) -> dict[str, str]:
        port = self.extension.url.rsplit(":", 1)[1]
        return {
            "AWS_ENDPOINT_URL_SECRETS_MANAGER": self.sdk.url,
            "PARAMETERS_SECRETS_EXTENSION_HTTP_PORT": port,
        }

    def down(self) -> None:
        self.sdk.down()
        self.extension.down()

    def up(self) -> None:
        self.sdk.up()
        self.extension.up()


@pytest.fixture(scope="module")
def secrets_switch() -> Iterator[SecretsSwitch]:
    holder: dict[str, LocalStack] = {}

    def moto_port() -> int:
        clients = holder["stack"].clients
        assert clients is not None
        return int(clients.sqs.meta.endpoint_url.rsplit(":", 1)[1])

    def extension_port() -> int:
        return int(holder["stack"].secrets_extension.port)

    switch = SecretsSwitch(Switch(moto_port), Switch(extension_port))
    switch.holder = holder  # type: ignore[attr-defined]  # filled by the local_stack fixture
    yield switch
    switch.sdk.close()
    switch.extension.close()


@pytest.fixture(scope="module")
def local_stack(secrets_switch: SecretsSwitch) -> Iterator[LocalStack]:
    # The forward function reaches Secrets Manager through the switch, and reads it on every use (no cache):
    # an outage is felt at once. A stage of its own: moto keeps its state per process, so another module's
    # local stack that ran in this process before left its queues (and their messages) behind under "dev".
    local = LocalStack(
        stage=STAGE,
        parameters={
            "ForwardTimeoutSeconds": "2",
            "DeliveryBackoffBaseSeconds": "1",
            "DeliveryBackoffCapSeconds": "2",
        },
        environment={"forward": {**secrets_switch.environment(), "SEALGATE_SECRETS_MAX_AGE": "0"}},
    )
    secrets_switch.holder["stack"] = local  # type: ignore[attr-defined]
    with local as running:
        yield running


@pytest.fixture(scope="module")
def demo(local_stack: LocalStack) -> Demo:
    return Demo(local_stack)


# --- helpers --------------------------------------------------------------------------------------------------


def enqueue(demo: Demo, partner: str, payload: Any) -> tuple[str, str]:
    """Forward one request through the API; (idempotency key, outcome id)."""
    operation = next(iter(demo.stack.resources.profiles[partner].operations))
    key = f"faults-{uuid.uuid4().hex}"
    answer = demo.call(
        "POST", f"/v1/forward/{partner}", {"operation": operation, "payload": payload, "idempotency_key": key}
    )
    assert answer.status == 202, answer.body
    return key, str(answer.body["id"])


def example(demo: Demo, partner: str) -> Any:
    return next(e for e in demo.examples if e.name == partner).example.payload


def outcome(demo: Demo, partner: str, outcome_id: str) -> dict[str, Any]:
    answer = demo.call("GET", demo.status_path(partner, outcome_id))
    assert answer.status == 200, answer.body
    body: dict[str, Any] = answer.body
    return body


def wait_until(what: str, condition: Callable[[], Any], timeout: float = 30.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.1)
    pytest.fail(f"timed out waiting for {what}")


def wait_outcome(
    demo: Demo, partner: str, outcome_id: str, wanted: Callable[[dict[str, Any]], bool], timeout: float = 30.0
) -> dict[str, Any]:
    last: dict[str, Any] = {}

    def reached() -> dict[str, Any] | None:
        nonlocal last
        last = outcome(demo, partner, outcome_id)
        return last if wanted(last) else None

    try:
        result: dict[str, Any] = wait_until(f"the outcome of {partner}", reached, timeout)
    except pytest.fail.Exception:
        pytest.fail(f"outcome of {partner} never reached the state wanted; last: {last}")
    return result


def requests_with_key(stack: LocalStack, partner: str, key: str) -> int:
    header = stack.resources.profiles[partner].idempotency_header
    return sum(1 for r in stack.sandboxes[partner].requests if r.header(header) == key)


def dead_letters(stack: LocalStack) -> int:
    visible, in_flight = stack.queue_depth("OutboundDeadLetterQueue")
    return visible + in_flight


@contextlib.contextmanager
def poller_paused(stack: LocalStack) -> Iterator[None]:
    """Nothing is received while inside: what is queued then arrives in one batch when the poller resumes."""
    poller = stack.pollers[0]
    poller.stop()
    try:
        yield
    finally:
        poller.start()


def redrive_dead_letters(stack: LocalStack) -> int:
    assert stack.clients is not None
    resources = stack.resources
    moved = redrive(
        stack.clients.sqs,
        source_url=resources.queue_url("OutboundDeadLetterQueue"),
        destination_url=resources.queue_url("OutboundQueue"),
    )
    return moved.count


def outbound_settled(stack: LocalStack) -> bool:
    return stack.queue_depth("OutboundQueue") == (0, 0)


# --- a rejected message, redriven after the fix -----------------------------------------------------------------


@pytest.mark.slow
def test_a_rejected_message_is_redriven_after_the_fix_and_delivered_once(
    local_stack: LocalStack, demo: Demo
) -> None:
    """dLocal refuses the signature (its signing secret was mixed up in Secrets Manager): dead-lettered with
    the reason at once. The operator puts the right secret back and redrives: delivered. A copy of the
    delivered message redriven later (even once its idempotency record is gone) is not sent again."""
    stack = local_stack
    assert stack.clients is not None
    secrets = stack.clients.secretsmanager
    right = stack.resources.secrets["dlocal"]
    mixed_up = {**right.value, "secret_key": "mixed-up-" + uuid.uuid4().hex}
    secrets.put_secret_value(SecretId=right.name, SecretString=json.dumps(mixed_up))
    dead_before = dead_letters(stack)
    try:
        key, outcome_id = enqueue(demo, "dlocal", example(demo, "dlocal"))
        rejected = wait_outcome(demo, "dlocal", outcome_id, lambda o: o.get("status") in FINAL)
        wait_until("the dead letter", lambda: dead_letters(stack) == dead_before + 1, 10)
    finally:
        secrets.put_secret_value(SecretId=right.name, SecretString=json.dumps(right.value))  # the fix

    assert (rejected["status"], rejected["last_reason"], rejected["attempts"]) == (
        "rejected",
        "partner_http_401",
        1,
    )
    verdicts = [v.ok for v in stack.sandboxes["dlocal"].verifications if v.idempotency_key == key]
    assert verdicts == [False]
    (body,) = [b for b in queue_bodies(stack, "OutboundDeadLetterQueue") if key in b]  # the protected form

    # The documented command, as an operator runs it against the stack `make run` started.
    assert stack.clients is not None
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "sealgate_local",
            "redrive",
            "--endpoint-url",
            stack.clients.sqs.meta.endpoint_url,
            "--stage",
            STAGE,
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert f"Moved {dead_before + 1} message(s)" in done.stdout
    assert "partner_http_401 1" in done.stdout
    delivered = wait_outcome(demo, "dlocal", outcome_id, lambda o: o.get("status") == "delivered")

    assert (delivered["attempts"], delivered["last_reason"]) == (2, "ok")
    assert requests_with_key(stack, "dlocal", key) == delivered["attempts"]
    verdicts = [v.ok for v in stack.sandboxes["dlocal"].verifications if v.idempotency_key == key]
    assert verdicts == [False, True]
    assert dead_letters(stack) == 0

    # A copy of the delivered message is dead-lettered again (an operator's slip) and redriven: not sent.
    assert [b for b in queue_bodies(stack, "OutboundQueue") if key in b] == []
    poller = stack.pollers[0]
    for forget_the_idempotency_record in (False, True):
        if forget_the_idempotency_record:  # as after its expiry: the outcome item still says delivered
            forget_idempotency_records(stack)
        received = poller.stats.received
        stack.clients.sqs.send_message(
            QueueUrl=stack.resources.queue_url("OutboundDeadLetterQueue"),
            MessageBody=body,
            MessageAttributes={"reason": {"DataType": "String", "StringValue": "partner_http_401"}},
        )
        assert redrive_dead_letters(stack) == 1
        wait_until("the copy to be received", lambda seen=received: poller.stats.received > seen)
        wait_until("the outbound queue to be empty", lambda: outbound_settled(stack), 10)

        assert requests_with_key(stack, "dlocal", key) == 2
        again = outcome(demo, "dlocal", outcome_id)
        assert (again["status"], again["attempts"]) == ("delivered", 2)
        assert dead_letters(stack) == 0


def queue_bodies(stack: LocalStack, logical_id: str) -> list[str]:
    """Every message body in a queue, in flight and delayed ones included, without receiving any (moto's own
    store: its server runs in this process)."""
    from moto.sqs.models import sqs_backends

    backend = sqs_backends[stack.account_id][stack.resources.region]
    queue = backend.queues[stack.resources.queues[logical_id].name]
    return [m.body for m in list(queue._messages)]


def forget_idempotency_records(stack: LocalStack) -> None:
    assert stack.clients is not None
    dynamodb = stack.clients.dynamodb
    table = stack.resources.tables["IdempotencyTable"]
    items = [i for i in dynamodb.scan(TableName=table).get("Items", []) if "deliver_forward" in i["id"]["S"]]
    assert items  # the delivery's record, completed
    for item in items:
        dynamodb.delete_item(TableName=table, Key={"id": item["id"]})


# --- a hanging partner ------------------------------------------------------------------------------------------


@pytest.mark.slow
def test_a_hanging_partner_starves_no_one_and_spends_only_real_attempts(
    local_stack: LocalStack, demo: Demo
) -> None:
    """One batch: three messages for PayKun, which hangs, and four for Netcore. Netcore's are delivered on
    their first receive; PayKun's are put back (re-sent, delayed) with only their real attempts counted, and
    delivered once PayKun answers again."""
    stack = local_stack
    poller = stack.pollers[0]
    paykun = stack.sandboxes["paykun"]
    redelivered, failures = poller.stats.redelivered, poller.stats.item_failures
    dead_before = dead_letters(stack)
    with poller_paused(stack):
        hanging = [enqueue(demo, "paykun", {"order_id": f"ORD-H{i}", "amount": "1.00"}) for i in range(3)]
        answering = [enqueue(demo, "netcore", [{"activity_name": f"starve-{i}"}]) for i in range(4)]
        paykun.mode = "hang"
    try:
        # Until every Netcore message is settled and every PayKun one has failed an attempt (polled together:
        # PayKun's keep hanging meanwhile, each try spending an attempt).
        def settled() -> dict[str, dict[str, Any]] | None:
            items = {outcome_id: outcome(demo, "netcore", outcome_id) for _, outcome_id in answering}
            items |= {outcome_id: outcome(demo, "paykun", outcome_id) for _, outcome_id in hanging}
            done = all(items[i].get("status") in FINAL for _, i in answering) and all(
                items[i].get("status") != "queued" for _, i in hanging
            )
            return items if done else None

        items = wait_until("Netcore delivered and PayKun tried", settled, 30)
    finally:
        paykun.mode = "ok"

    for key, outcome_id in answering:
        item = items[outcome_id]
        assert (item["status"], item["attempts"], item.get("waits", 0)) == ("delivered", 1, 0)
        assert requests_with_key(stack, "netcore", key) == 1
    for _, outcome_id in hanging:
        item = items[outcome_id]
        assert (item["status"], item["last_reason"]) == ("retrying", "partner_unreachable")

    for key, outcome_id in hanging:
        item = wait_outcome(demo, "paykun", outcome_id, lambda o: o.get("status") in FINAL)
        assert item["status"] == "delivered"
        assert item["attempts"] >= 2
        # Every attempt counted was a request PayKun received, and nothing else was counted.
        assert requests_with_key(stack, "paykun", key) == item["attempts"]
        assert [v.ok for v in paykun.verifications if v.idempotency_key == key] == [True]
    # Nothing waited on SQS's receive count: every message was received once, no record failed.
    assert poller.stats.redelivered == redelivered
    assert poller.stats.item_failures == failures
    assert dead_letters(stack) == dead_before


# --- Secrets Manager down ---------------------------------------------------------------------------------------


@pytest.mark.slow
def test_a_secrets_manager_outage_longer_than_the_attempts_would_last_dead_letters_nothing(
    local_stack: LocalStack, demo: Demo, secrets_switch: SecretsSwitch
) -> None:
    """Secrets Manager is down while a message per partner waits: each is put back untried, again and again
    (more often than it could be attempted), without spending an attempt or a receive; delivered once it is
    back."""
    stack = local_stack
    poller = stack.pollers[0]
    redelivered, failures = poller.stats.redelivered, poller.stats.item_failures
    dead_before = dead_letters(stack)
    partners = sorted(stack.resources.profiles)
    with poller_paused(stack):
        queued = {partner: enqueue(demo, partner, example(demo, partner)) for partner in partners}
        secrets_switch.down()
    try:
        for partner, (_, outcome_id) in queued.items():
            item = wait_outcome(
                demo, partner, outcome_id, lambda o: o.get("waits", 0) > MAX_ATTEMPTS, timeout=40
            )
            assert (item["status"], item["last_reason"], item["attempts"]) == (
                "waiting",
                "keys_unavailable",
                0,
            )
            assert item["next_attempt_at"] > item["updated_at"]
        assert dead_letters(stack) == dead_before
    finally:
        secrets_switch.up()

    for partner, (key, outcome_id) in queued.items():
        item = wait_outcome(demo, partner, outcome_id, lambda o: o.get("status") in FINAL)
        assert (item["status"], item["attempts"]) == ("delivered", 1)
        assert requests_with_key(stack, partner, key) == 1
    assert dead_letters(stack) == dead_before
    assert poller.stats.redelivered == redelivered
    assert poller.stats.item_failures == failures
