"""``python -m sealgate_local soak``: many forwards through the local stack while the partners fail, then a tally.

A black box over the local stack: messages go in through ``POST /v1/forward/{partner}`` (and, for a share of
them, as a producer's plain message on the outbound queue); what comes out is read from the partner sandboxes
(what each partner saw), the outcomes table and the dead-letter queue. The delivery code is not consulted.

The sandboxes inject faults into a seeded share of requests (:class:`sealgate_local.sandboxes.FaultPlan`):
500, 429 with ``Retry-After``, a hang past the gateway's timeout, a connection reset before processing and a
reset after processing. The run waits until every message is settled (its outcome ``delivered``,
``dead_lettered`` or ``rejected``, and the outbound queue empty), at most ``settle_seconds``, and then checks:

- **settled**: sent = delivered + dead-lettered (rejected counts as dead-lettered), nothing left on the queue;
- **no duplicates**: once a 2xx answer reached the gateway, the partner receives that message no more;
- **outcomes agree with the partners**: ``delivered`` exactly when a 2xx answer reached the gateway;
- **dead-letter queue agrees with the outcomes**: each dead-lettered message is there once, nothing else is;
- **every fault kind was injected** (when faults are on), so the figures mean what they say.

"A 2xx reached the gateway" is the sandbox's side: the whole answer was written while the gateway was still
connected. Latency runs from just before the message was handed to the API (or the queue) to that write, on
one clock (the sandboxes run in this process). The stack runs with short timeouts so that a run takes minutes:
the partner timeout (``ForwardTimeoutSeconds``) and the outbound queue's visibility timeout (the template's
180 s is six times the function's timeout, for Lambda; here one poller delivers one batch at a time).

Exit status 0 only when every check holds. Keys, payloads and answers are never printed: names and counts.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import random
import sys
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

from sealgate_local.sandboxes import FAULT_KINDS, FaultPlan, Receipt, SandboxMode
from sealgate_local.stack import LocalStack

FINAL = frozenset({"delivered", "dead_lettered", "rejected"})
Via = Literal["api", "queue"]


@dataclass(frozen=True)
class SoakConfig:
    """What a soak run does; the defaults are the issue's 1000 messages with a fifth of requests failing."""

    messages: int = 1000
    fault_rate: float = 0.2
    fault_kinds: tuple[SandboxMode, ...] = FAULT_KINDS
    seed: int = 1
    #: share of messages a producer puts on the outbound queue in plain form (the rest go through the API)
    queue_share: float = 0.1
    #: threads handing messages to the API at once
    senders: int = 4
    #: messages offered per second (0: as fast as the senders go). Below what the stack delivers, latency is
    #: delivery and retries; above it, mostly the backlog.
    rate: float = 5.0
    #: the stack's ``ForwardTimeoutSeconds``: a hang lasts this plus :attr:`hang_margin`
    forward_timeout: int = 2
    hang_margin: float = 1.5
    #: the outbound queue's visibility timeout: when SQS redelivers a message whose delivery failed
    visibility_timeout: int = 5
    retry_after: str = "1"
    #: the longest the run waits for every message to settle, after the last one is sent
    settle_seconds: float = 600.0
    pool_size: int = 3
    #: more of the template's parameters for the run's stack (name -> value), e.g. a shorter retry backoff
    parameters: tuple[tuple[str, str], ...] = ()

    def __post_init__(self) -> None:
        if self.messages < 1:
            raise ValueError("messages must be at least 1")
        if not 0.0 <= self.queue_share <= 1.0:
            raise ValueError("queue_share must be between 0 and 1")
        if self.rate < 0 or not math.isfinite(self.rate):
            raise ValueError("rate must be a finite number >= 0")
        if self.senders < 1 or self.pool_size < 1:
            raise ValueError("senders and pool_size must be at least 1")
        if self.forward_timeout < 1 or self.visibility_timeout < 0 or self.settle_seconds <= 0:
            raise ValueError("forward_timeout >= 1, visibility_timeout >= 0 and settle_seconds > 0")
        self.plan()  # checks the fault rate and kinds

    def plan(self) -> FaultPlan:
        return FaultPlan(
            rate=self.fault_rate,
            seed=self.seed,
            kinds=self.fault_kinds,
            hang_seconds=self.forward_timeout + self.hang_margin,
            retry_after=self.retry_after,
        )


@dataclass
class Message:
    """One message handed to the gateway; ``refused`` says why the API or the queue did not take it."""

    partner: str
    idempotency_key: str
    via: Via
    outcome_id: str = ""
    enqueued_at: float = 0.0
    refused: str | None = None


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str


@dataclass
class PartnerFigures:
    sent: int = 0
    delivered: int = 0
    dead_lettered: int = 0
    requests: int = 0
    faults: int = 0


@dataclass
class SoakReport:
    """Every figure of a run (JSON-ready with :meth:`as_json`)."""

    config: dict[str, Any]
    machine: dict[str, Any]
    sent: int
    sent_via_api: int
    sent_via_queue: int
    refused_at_enqueue: int
    delivered: int
    dead_lettered: int
    rejected: int
    unsettled: int
    left_on_queue: int
    in_dead_letter_queue: int
    partner_requests: int
    requests_per_message: float
    max_requests_per_message: int
    faults_injected: dict[str, int]
    duplicates_after_2xx: int
    processed_more_than_once: int
    disagreements: int
    disagreement_examples: list[str]
    dead_letter_mismatches: int
    attempts_not_requests: int
    attempts_examples: list[str]
    latency_ms: dict[str, float]
    send_seconds: float
    settle_seconds: float
    wall_seconds: float
    by_partner: dict[str, dict[str, int]]
    checks: list[Check] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(check.ok for check in self.checks)

    def as_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["ok"] = self.ok
        return data


# --- the run --------------------------------------------------------------------------------------------------


class Soak:
    """One soak run against a started :class:`LocalStack` (started with ``config.forward_timeout``)."""

    def __init__(
        self, stack: LocalStack, config: SoakConfig, *, progress: Callable[[str], None] | None = None
    ) -> None:
        from sealgate_local.demo import Demo

        self.stack = stack
        self.config = config
        self.progress = progress or (lambda _line: None)
        self.demo = Demo(stack)
        self.examples = {p.name: p.example for p in self.demo.examples if p.name in stack.sandboxes.urls}
        if not self.examples:
            raise ValueError("the stack has no partner with a sandbox")
        self._clients = stack.clients

    def run(self) -> SoakReport:
        config = self.config
        started = time.monotonic()
        sqs = self._sqs()
        sqs.set_queue_attributes(
            QueueUrl=self.stack.resources.queue_url("OutboundQueue"),
            Attributes={"VisibilityTimeout": str(config.visibility_timeout)},
        )
        self.stack.sandboxes.inject(config.plan() if config.fault_rate > 0 else None)
        try:
            messages = self.messages()
            self.progress(f"sending {len(messages)} messages over {', '.join(sorted(self.examples))}")
            begin = time.monotonic()

            def paced(indexed: tuple[int, Message]) -> None:
                index, message = indexed
                if config.rate > 0:
                    time.sleep(max(0.0, begin + index / config.rate - time.monotonic()))
                self.send(message)

            with ThreadPoolExecutor(max_workers=config.senders) as senders:
                list(senders.map(paced, enumerate(messages)))
            sent_at = time.monotonic()
            outcomes, left = self.settle([m for m in messages if m.refused is None])
            settled_at = time.monotonic()
            receipts = self.receipts()
            dead = self.dead_letters()
        finally:
            self.stack.sandboxes.inject(None)
        return tally(
            config,
            messages,
            outcomes,
            receipts,
            dead,
            left_on_queue=left,
            send_seconds=sent_at - started,
            settle_seconds=settled_at - sent_at,
            wall_seconds=time.monotonic() - started,
        )

    def messages(self) -> list[Message]:
        """The run's messages: partners in turn, keys from the seed (so the faults they meet are too)."""
        rng = random.Random(self.config.seed)  # noqa: S311  # picks a path, not a secret
        partners = sorted(self.examples)
        return [
            Message(
                partners[index % len(partners)],
                f"soak-{self.config.seed}-{index:05d}",
                "queue" if rng.random() < self.config.queue_share else "api",
            )
            for index in range(self.config.messages)
        ]

    def send(self, message: Message) -> None:
        """Hand one message to the gateway: the API, or the outbound queue as a producer would (plain)."""
        from sealgate.outbound import forward_id

        example = self.examples[message.partner]
        body = {
            "operation": example.operation,
            "payload": example.payload,
            "idempotency_key": message.idempotency_key,
        }
        message.enqueued_at = time.time()
        if message.via == "queue":
            try:
                self._sqs().send_message(
                    QueueUrl=self.stack.resources.queue_url("OutboundQueue"),
                    MessageBody=json.dumps({"partner": message.partner, **body}),
                )
            except Exception as error:  # counted as refused; the run goes on
                message.refused = f"queue: {type(error).__name__}"
                return
            message.outcome_id = forward_id(message.partner, message.idempotency_key)
            return
        try:
            answer = self.demo.call("POST", f"/v1/forward/{message.partner}", body)
        except OSError as error:
            message.refused = f"api: {type(error).__name__}"
            return
        if answer.status != 202 or not isinstance(answer.body.get("id"), str):
            message.refused = f"api answered {answer.status}"
            return
        message.outcome_id = answer.body["id"]

    def settle(self, messages: Sequence[Message]) -> tuple[dict[str, dict[str, Any]], int]:
        """Wait until every message's outcome is final and the outbound queue is empty (or the time is up);
        the outcomes by id and the messages left on the queue."""
        ids = {m.outcome_id for m in messages}
        deadline = time.monotonic() + self.config.settle_seconds
        reported = 0.0
        while True:
            outcomes = {i: o for i, o in self.outcomes().items() if i in ids}
            final = sum(1 for o in outcomes.values() if o.get("status") in FINAL)
            left = self.queue_total("OutboundQueue")
            if (final == len(ids) and left == 0) or time.monotonic() >= deadline:
                return outcomes, left
            if time.monotonic() - reported >= 10:
                reported = time.monotonic()
                self.progress(f"settling: {final}/{len(ids)} final, {left} on the outbound queue")
            time.sleep(1.0)

    def outcomes(self) -> dict[str, dict[str, Any]]:
        """Every item of the outcomes table: id -> status, attempts, last reason."""
        dynamodb = self._running_clients().dynamodb
        arguments: dict[str, Any] = {
            "TableName": self.stack.resources.tables["OutcomesTable"],
            "ProjectionExpression": "#i, #s, attempts, last_reason",
            "ExpressionAttributeNames": {"#i": "id", "#s": "status"},
        }
        found: dict[str, dict[str, Any]] = {}
        while True:
            page = dynamodb.scan(**arguments)
            for item in page.get("Items", []):
                plain = {name: next(iter(typed.values())) for name, typed in item.items()}
                found[str(plain["id"])] = plain
            if "LastEvaluatedKey" not in page:
                return found
            arguments["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    def queue_total(self, logical_id: str) -> int:
        """Messages on a queue: visible, in flight and delayed."""
        attributes = self._sqs().get_queue_attributes(
            QueueUrl=self.stack.resources.queue_url(logical_id),
            AttributeNames=[
                "ApproximateNumberOfMessages",
                "ApproximateNumberOfMessagesNotVisible",
                "ApproximateNumberOfMessagesDelayed",
            ],
        )["Attributes"]
        return sum(int(value) for value in attributes.values())

    def receipts(self) -> list[Receipt]:
        """What the partners saw, once every request they received is settled (a hang ends after a while)."""
        sandboxes = [self.stack.sandboxes[p] for p in self.stack.sandboxes.urls]
        deadline = time.monotonic() + self.config.forward_timeout + self.config.hang_margin + 5
        while time.monotonic() < deadline and any(len(s.receipts) < len(s.requests) for s in sandboxes):
            time.sleep(0.2)
        return self.stack.sandboxes.receipts()

    def dead_letters(self) -> list[tuple[str | None, str | None]]:
        """(partner, idempotency key) of every message on the dead-letter queue (they are received: the run
        is over), one entry per SQS message."""
        sqs = self._sqs()
        url = self.stack.resources.queue_url("OutboundDeadLetterQueue")
        seen: dict[str, tuple[str | None, str | None]] = {}
        empty_rounds = 0
        while empty_rounds < 2:
            got = sqs.receive_message(
                QueueUrl=url, MaxNumberOfMessages=10, VisibilityTimeout=600, WaitTimeSeconds=0
            ).get("Messages", [])
            empty_rounds = 0 if got else empty_rounds + 1
            for message in got:
                seen[message["MessageId"]] = _identity(message.get("Body", ""))
        return list(seen.values())

    def _sqs(self) -> Any:
        return self._running_clients().sqs

    def _running_clients(self) -> Any:
        if self._clients is None:
            raise RuntimeError("the local stack is not running")
        return self._clients


def _identity(body: str) -> tuple[str | None, str | None]:
    try:
        data = json.loads(body)
    except ValueError:
        return None, None
    if not isinstance(data, dict):
        return None, None
    partner, key = data.get("partner"), data.get("idempotency_key")
    return (partner if isinstance(partner, str) else None), (key if isinstance(key, str) else None)


# --- the tally ------------------------------------------------------------------------------------------------


def tally(
    config: SoakConfig,
    messages: Sequence[Message],
    outcomes: Mapping[str, Mapping[str, Any]],
    receipts: Sequence[Receipt],
    dead: Sequence[tuple[str | None, str | None]],
    *,
    left_on_queue: int,
    send_seconds: float,
    settle_seconds: float,
    wall_seconds: float,
) -> SoakReport:
    """Every figure and check of a run, from what went in (``messages``) and what came out."""
    taken = [m for m in messages if m.refused is None]
    by_key: dict[tuple[str, str], list[Receipt]] = defaultdict(list)
    for receipt in receipts:
        if receipt.idempotency_key is not None:
            by_key[(receipt.partner, receipt.idempotency_key)].append(receipt)
    dead_count = Counter(dead)

    status_of = {m.outcome_id: str(outcomes.get(m.outcome_id, {}).get("status", "missing")) for m in taken}
    delivered = [m for m in taken if status_of[m.outcome_id] == "delivered"]
    dead_lettered = [m for m in taken if status_of[m.outcome_id] == "dead_lettered"]
    rejected = [m for m in taken if status_of[m.outcome_id] == "rejected"]
    unsettled = len(taken) - len(delivered) - len(dead_lettered) - len(rejected)

    figures = _Figures()
    for message in taken:
        identity = (message.partner, message.idempotency_key)
        figures.add(
            message,
            by_key.get(identity, []),
            status_of[message.outcome_id],
            outcomes.get(message.outcome_id, {}).get("attempts"),
            dead_count.get(identity, 0),
        )
    duplicates, processed_twice, attempts_off = (
        figures.duplicates,
        figures.processed_twice,
        figures.attempts_off,
    )
    disagreements, latencies, partners = figures.disagreements, figures.latencies, figures.partners
    dead_mismatch = figures.dead_mismatch
    ours = {(m.partner, m.idempotency_key) for m in taken}
    dead_mismatch += sum(n for identity, n in dead_count.items() if identity not in ours)

    faults = Counter(r.mode for r in receipts if r.mode != "ok")
    requests = sum(len(by_key.get((m.partner, m.idempotency_key), [])) for m in taken)
    counts = [len(by_key.get((m.partner, m.idempotency_key), [])) for m in taken]
    dead_total = len(dead_lettered) + len(rejected)
    checks = [
        Check(
            "sent = delivered + dead-lettered",
            unsettled == 0 and left_on_queue == 0 and len(taken) == len(messages),
            f"{len(taken)} sent = {len(delivered)} delivered + {dead_total} dead-lettered; "
            f"{unsettled} unsettled, {left_on_queue} left on the queue, "
            f"{len(messages) - len(taken)} refused at enqueue",
        ),
        Check(
            "no duplicate after a 2xx reached the gateway",
            duplicates == 0,
            f"{duplicates} requests",
        ),
        Check(
            "outcomes agree with what the partner saw",
            not disagreements,
            f"{len(disagreements)} messages",
        ),
        Check(
            "dead-letter queue agrees with the outcomes",
            dead_mismatch == 0,
            f"{len(dead)} messages on it, {dead_mismatch} mismatched",
        ),
    ]
    if config.fault_rate > 0:
        missing = sorted(set(config.fault_kinds) - set(faults))
        checks.append(
            Check(
                "every fault kind injected",
                not missing,
                ", ".join(f"{kind} {faults[kind]}" for kind in config.fault_kinds)
                + (f"; never: {', '.join(missing)}" if missing else ""),
            )
        )
    return SoakReport(
        config=asdict(config),
        machine=machine(),
        sent=len(taken),
        sent_via_api=sum(1 for m in taken if m.via == "api"),
        sent_via_queue=sum(1 for m in taken if m.via == "queue"),
        refused_at_enqueue=len(messages) - len(taken),
        delivered=len(delivered),
        dead_lettered=len(dead_lettered),
        rejected=len(rejected),
        unsettled=unsettled,
        left_on_queue=left_on_queue,
        in_dead_letter_queue=len(dead),
        partner_requests=requests,
        requests_per_message=round(requests / len(taken), 3) if taken else 0.0,
        max_requests_per_message=max(counts, default=0),
        faults_injected={
            kind: faults[kind] for kind in FAULT_KINDS if kind in faults or kind in config.fault_kinds
        },
        duplicates_after_2xx=duplicates,
        processed_more_than_once=processed_twice,
        disagreements=len(disagreements),
        disagreement_examples=sorted(Counter(disagreements))[:10],
        dead_letter_mismatches=dead_mismatch,
        attempts_not_requests=attempts_off,
        attempts_examples=figures.attempts_examples[:10],
        latency_ms={
            name: round(percentile(latencies, q), 1) for name, q in (("p50", 50), ("p90", 90), ("p99", 99))
        },
        send_seconds=round(send_seconds, 2),
        settle_seconds=round(settle_seconds, 2),
        wall_seconds=round(wall_seconds, 2),
        by_partner={name: asdict(figures) for name, figures in sorted(partners.items())},
        checks=checks,
    )


@dataclass
class _Figures:
    """Per-message figures, summed over a run (see :func:`tally`)."""

    duplicates: int = 0
    processed_twice: int = 0
    attempts_off: int = 0
    dead_mismatch: int = 0
    disagreements: list[str] = field(default_factory=list)
    attempts_examples: list[str] = field(default_factory=list)
    latencies: list[float] = field(default_factory=list)
    partners: dict[str, PartnerFigures] = field(default_factory=lambda: defaultdict(PartnerFigures))

    def add(
        self, message: Message, seen: Sequence[Receipt], status: str, attempts: Any, in_dead: int
    ) -> None:
        """One message: what its partner saw (``seen``), its outcome's status and attempts, and how many
        times it is on the dead-letter queue."""
        figures = self.partners[message.partner]
        figures.sent += 1
        figures.requests += len(seen)
        figures.faults += sum(1 for r in seen if r.mode != "ok")
        figures.delivered += status == "delivered"
        figures.dead_lettered += status in ("dead_lettered", "rejected")
        accepted = [r for r in seen if r.answered_2xx]
        if accepted:
            first = min(accepted, key=lambda r: r.answered_at or math.inf)
            first_at = first.answered_at or math.inf
            # After the first 2xx was written, any request is a duplicate; so is a second 2xx, even one that
            # overlapped the first.
            self.duplicates += sum(
                1 for r in seen if r is not first and (r.received_at > first_at or r.answered_2xx)
            )
            if status == "delivered":
                self.latencies.append((first_at - message.enqueued_at) * 1000)
        self.processed_twice += sum(1 for r in seen if r.processed) > 1
        if status == "delivered" and not accepted:
            self.disagreements.append(f"{message.partner}: outcome delivered, no 2xx reached the gateway")
        elif accepted and status != "delivered":
            self.disagreements.append(f"{message.partner}: a 2xx reached the gateway, outcome {status}")
        if attempts is not None and int(attempts) != len(seen):
            self.attempts_off += 1
            modes = ", ".join(r.mode for r in sorted(seen, key=lambda r: r.received_at))
            self.attempts_examples.append(
                f"{message.partner} {message.idempotency_key}: {int(attempts)} attempts recorded, "
                f"{len(seen)} requests received ({modes}), outcome {status}"
            )
        if in_dead != (1 if status in ("dead_lettered", "rejected") else 0):
            self.dead_mismatch += 1


def percentile(values: Iterable[float], q: float) -> float:
    """Nearest-rank percentile (NaN for no values)."""
    ordered = sorted(values)
    if not ordered:
        return math.nan
    return ordered[max(0, math.ceil(q / 100 * len(ordered)) - 1)]


def machine() -> dict[str, Any]:
    """What the figures were measured on."""
    model = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text(encoding="utf-8").splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "cpu": model,
        "cpus": os.cpu_count(),
        "system": platform.platform(terse=True),
        "python": platform.python_version(),
    }


# --- output ---------------------------------------------------------------------------------------------------


def table(report: SoakReport) -> str:
    """The figures, the per-partner breakdown and the checks, as fixed-width text."""
    latency = report.latency_ms
    rows = [
        ("sent", f"{report.sent} ({report.sent_via_api} via the API, {report.sent_via_queue} via the queue)"),
        ("delivered", str(report.delivered)),
        ("dead-lettered", f"{report.dead_lettered + report.rejected} ({report.rejected} rejected at once)"),
        ("unsettled", f"{report.unsettled} (+{report.left_on_queue} left on the outbound queue)"),
        ("partner requests", str(report.partner_requests)),
        (
            "requests per message",
            f"{report.requests_per_message:.2f} (max {report.max_requests_per_message})",
        ),
        ("faults injected", ", ".join(f"{k} {n}" for k, n in report.faults_injected.items()) or "none"),
        ("duplicates after a 2xx", str(report.duplicates_after_2xx)),
        ("outcome disagreements", str(report.disagreements)),
        ("dead-letter mismatches", str(report.dead_letter_mismatches)),
        ("processed twice", f"{report.processed_more_than_once} (retried after a reset after processing)"),
        ("attempts != requests", str(report.attempts_not_requests)),
        ("latency ms p50/p90/p99", "/".join(_ms(latency[k]) for k in ("p50", "p90", "p99"))),
        (
            "wall time",
            f"{report.wall_seconds:.1f} s (sending {report.send_seconds:.1f} s at "
            f"{_offered(report.config['rate'])}, "
            f"settling {report.settle_seconds:.1f} s)",
        ),
        (
            "machine",
            f"{report.machine['cpu']}, {report.machine['cpus']} CPUs, Python {report.machine['python']}",
        ),
    ]
    width = max(len(name) for name, _ in rows)
    lines = [f"{name.ljust(width)}  {value}" for name, value in rows]
    lines += ["", _partner_table(report.by_partner), ""]
    lines += [f"{'PASS' if c.ok else 'FAIL'}  {c.name}: {c.detail}" for c in report.checks]
    if report.attempts_examples:
        lines += [
            "",
            "attempts recorded != requests received:",
            *(f"  {t}" for t in report.attempts_examples),
        ]
    if report.disagreement_examples:
        lines += ["", "disagreements (by kind):", *(f"  {text}" for text in report.disagreement_examples)]
    return "\n".join(lines)


def _partner_table(by_partner: Mapping[str, Mapping[str, int]]) -> str:
    header = ("partner", "sent", "delivered", "dead-lettered", "requests", "faults")
    rows = [
        (name, *(str(f[k]) for k in ("sent", "delivered", "dead_lettered", "requests", "faults")))
        for name, f in by_partner.items()
    ]
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    return "\n".join(
        "  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row)).rstrip() for row in [header, *rows]
    )


def _offered(rate: float) -> str:
    return f"{rate:g}/s" if rate > 0 else "full speed"


def _ms(value: float) -> str:
    return "-" if math.isnan(value) else f"{value:.0f}"


# --- command line ---------------------------------------------------------------------------------------------


def add_arguments(parser: argparse.ArgumentParser) -> None:
    defaults = SoakConfig()
    parser.add_argument(
        "--messages", type=int, default=defaults.messages, help="messages to send (%(default)s)"
    )
    parser.add_argument(
        "--fault-rate", type=float, default=defaults.fault_rate, help="share of failed requests (%(default)s)"
    )
    parser.add_argument(
        "--rate",
        type=float,
        default=defaults.rate,
        help="messages offered per second, 0: unpaced (%(default)s)",
    )
    parser.add_argument("--seed", type=int, default=defaults.seed, help="picks keys and faults (%(default)s)")
    parser.add_argument(
        "--queue-share",
        type=float,
        default=defaults.queue_share,
        help="share of messages put on the outbound queue by a producer (%(default)s)",
    )
    parser.add_argument(
        "--forward-timeout",
        type=int,
        default=defaults.forward_timeout,
        help="partner timeout, s (%(default)s)",
    )
    parser.add_argument(
        "--visibility-timeout",
        type=int,
        default=defaults.visibility_timeout,
        help="the outbound queue's visibility timeout, s (%(default)s)",
    )
    parser.add_argument(
        "--settle-seconds",
        type=float,
        default=defaults.settle_seconds,
        help="longest wait for every message to settle (%(default)s)",
    )
    parser.add_argument(
        "--parameter",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="a template parameter for the run's stack (repeatable)",
    )
    parser.add_argument("--json", type=Path, help="also write the figures as JSON to this file")
    parser.add_argument("--verbose", action="store_true", help="show what the functions print")


def _parameter(text: str) -> tuple[str, str]:
    name, equals, value = text.partition("=")
    if not equals or not name:
        raise SystemExit(f"--parameter takes NAME=VALUE, got {text!r}")
    return name, value


def run(
    config: SoakConfig,
    *,
    echo: Callable[[str, str], None] | None = None,
    progress: Callable[[str], None] | None = None,
) -> SoakReport:
    """Start a local stack for the run, soak it, stop it."""
    with LocalStack(
        parameters={**dict(config.parameters), "ForwardTimeoutSeconds": str(config.forward_timeout)},
        pool_size=config.pool_size,
        echo=echo,
    ) as stack:
        return Soak(stack, config, progress=progress).run()


def main(args: argparse.Namespace, *, echo: Callable[[str, str], None] | None = None) -> int:
    config = SoakConfig(
        messages=args.messages,
        fault_rate=args.fault_rate,
        rate=args.rate,
        seed=args.seed,
        queue_share=args.queue_share,
        forward_timeout=args.forward_timeout,
        visibility_timeout=args.visibility_timeout,
        settle_seconds=args.settle_seconds,
        parameters=tuple(_parameter(text) for text in args.parameter),
    )

    def progress(line: str) -> None:
        print(line, file=sys.stderr, flush=True)

    print("Starting the local stack...", file=sys.stderr, flush=True)
    report = run(config, echo=echo, progress=progress)
    print(table(report))
    if args.json is not None:
        args.json.write_text(json.dumps(report.as_json(), indent=2, default=str) + "\n", encoding="utf-8")
    print()
    print("All checks hold." if report.ok else "Some checks FAILED.")
    return 0 if report.ok else 1
