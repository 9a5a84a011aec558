"""A bounded load test of the local stack: requests per second held, p50/p99 latency and errors per concurrency.

    python scripts/load.py                       # 8 and 32 concurrent clients, 10 s each
    python scripts/load.py --concurrency 8 32 --duration 10 --json load.json

The local stack (:class:`sealgate_local.stack.LocalStack`, SigV4 checked as ``make run`` does) starts on
127.0.0.1 only; nothing leaves the machine (the partners are the local HTTPS sandboxes). Each client is a thread
with one keep-alive connection that sends, one after another, requests from a fixed mix over every partner
profile: ``POST /v1/encrypt/{partner}`` of the profile's example, ``POST /v1/forward/{partner}`` of it (a fresh
idempotency key each time; the poller then delivers it to the sandbox in the background, on the same worker
pools) and, for partners with a signer, ``POST /v1/sign/{partner}`` of the example as protected. Every request
is signed (botocore's SigV4); the latency is from sending to the last byte of the answer, signing left out.

``--routes`` keeps only some of the mix (``--routes encrypt`` measures the encrypt route alone).

A run at one concurrency stops after ``--duration`` seconds or ``--requests`` requests, whichever comes first,
after a short warm-up (each route once per worker) that is not counted; before each run the outbound queue is
left to drain (at most ``--drain-seconds``), so that one run's deliveries do not load the next. An error is an
answer other than the route's success status (200, or 202 for forward) or no answer at all; 5xx answers are
also counted apart. The exit status is 1 if any request failed.
"""

from __future__ import annotations

import argparse
import http.client
import itertools
import json
import math
import os
import platform
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from sealgate_local.demo import partner_examples
from sealgate_local.sigv4 import sign
from sealgate_local.stack import LocalStack

TIMEOUT_SECONDS = 60.0
ROUTES = ("encrypt", "forward", "sign")


@dataclass(frozen=True)
class Call:
    """One kind of request of the mix: ``body()`` makes a fresh body for each request."""

    name: str  # route and partner, e.g. "encrypt dlocal"
    method: str
    path: str  # without the stage
    body: Callable[[], bytes]
    expected: int


@dataclass
class Result:
    """What one run at one concurrency measured."""

    concurrency: int
    requests: int
    seconds: float
    requests_per_second: float
    p50_ms: float
    p99_ms: float
    errors: int
    server_errors: int  # answers with a 5xx status (also counted in errors)
    statuses: dict[str, int] = field(default_factory=dict)
    by_call: dict[str, dict[str, float]] = field(default_factory=dict)  # name -> requests, p50_ms, p99_ms
    by_route: dict[str, dict[str, float]] = field(default_factory=dict)  # encrypt, forward, sign: the same


def _compact(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":")).encode("utf-8")


class Client:
    """One keep-alive connection to the local API that signs every request with the stack's credentials."""

    def __init__(self, stack: LocalStack) -> None:
        self.stack = stack
        url = urlsplit(stack.base_url)
        if url.hostname != "127.0.0.1":
            raise RuntimeError("the load test only runs against the loopback interface")
        self._host, self._port, self._prefix = url.hostname, url.port, url.path
        self._connection: http.client.HTTPConnection | None = None

    def send(self, method: str, path: str, body: bytes) -> tuple[int | None, bytes, float]:
        """(status or None if no answer, body, seconds from sending to the answer's last byte)."""
        headers = sign(
            method,
            self.stack.base_url + path,
            body=body,
            headers={"Content-Type": "application/json"} if body else {},
            credentials=self.stack.credentials,
            region=self.stack.region,
        )
        if self._connection is None:
            self._connection = http.client.HTTPConnection(self._host, self._port, timeout=TIMEOUT_SECONDS)
        started = time.perf_counter()
        try:
            self._connection.request(method, self._prefix + path, body=body or None, headers=headers)
            response = self._connection.getresponse()
            data = response.read()
        except (OSError, http.client.HTTPException):
            self.close()  # the next request opens a new connection
            return None, b"", time.perf_counter() - started
        return response.status, data, time.perf_counter() - started

    def close(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None


def mix(stack: LocalStack) -> list[Call]:
    """encrypt and forward for every partner, sign for each partner with a signer (of its protected example)."""
    calls: list[Call] = []
    client = Client(stack)
    try:
        for partner in partner_examples(stack):
            name, example = partner.name, partner.example
            encrypt_body = _compact({"payload": example.payload})
            calls.append(
                Call(f"encrypt {name}", "POST", f"/v1/encrypt/{name}", lambda b=encrypt_body: b, 200)
            )

            def forward_body(operation: str = example.operation, payload: Any = example.payload) -> bytes:
                return _compact(
                    {"operation": operation, "payload": payload, "idempotency_key": str(uuid.uuid4())}
                )

            if name in stack.sandboxes.urls:  # without a sandbox a forward would reach the real partner
                calls.append(Call(f"forward {name}", "POST", f"/v1/forward/{name}", forward_body, 202))
            if partner.profile.signing is None:
                continue
            status, answer, _ = client.send("POST", f"/v1/encrypt/{name}", encrypt_body)
            if status != 200:
                raise RuntimeError(f"encrypt {name} answered {status} while preparing the sign request")
            protected = json.dumps(json.loads(answer)["payload"], separators=(",", ":"))

            def sign_body(text: str = protected) -> bytes:
                return _compact({"body": text, "idempotency_key": str(uuid.uuid4())})

            calls.append(Call(f"sign {name}", "POST", f"/v1/sign/{name}", sign_body, 200))
    finally:
        client.close()
    return calls


def percentile(sorted_values: Sequence[float], fraction: float) -> float:
    """The nearest-rank percentile of already sorted values (0 if there are none)."""
    if not sorted_values:
        return 0.0
    rank = min(max(1, math.ceil(fraction * len(sorted_values))), len(sorted_values))
    return sorted_values[rank - 1]


def _summary(latencies: Sequence[float]) -> dict[str, float]:
    ordered = sorted(latencies)
    return {
        "requests": len(ordered),
        "p50_ms": round(percentile(ordered, 0.50) * 1000, 2),
        "p99_ms": round(percentile(ordered, 0.99) * 1000, 2),
    }


def run(stack: LocalStack, calls: Sequence[Call], *, concurrency: int, seconds: float, limit: int) -> Result:
    """``concurrency`` clients sending ``calls`` in turn until ``seconds`` pass or ``limit`` requests are sent."""
    lock = threading.Lock()
    sent = itertools.count()
    latencies: list[float] = []
    statuses: Counter[str] = Counter()
    by_call: dict[str, list[float]] = {call.name: [] for call in calls}
    errors = server_errors = 0
    start = threading.Barrier(concurrency + 1)
    deadline = 0.0

    def client(index: int) -> None:
        nonlocal errors, server_errors
        connection = Client(stack)
        order = itertools.cycle(calls[index % len(calls) :] + list(calls[: index % len(calls)]))
        start.wait()
        try:
            while time.perf_counter() < deadline and next(sent) < limit:
                call = next(order)
                status, _, elapsed = connection.send(call.method, call.path, call.body())
                with lock:
                    latencies.append(elapsed)
                    statuses[str(status)] += 1
                    by_call[call.name].append(elapsed)
                    if status != call.expected:
                        errors += 1
                    if status is not None and status >= 500:
                        server_errors += 1
        finally:
            connection.close()

    threads = [threading.Thread(target=client, args=(i,), daemon=True) for i in range(concurrency)]
    for thread in threads:
        thread.start()
    began = time.perf_counter()
    deadline = began + seconds
    start.wait()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - began
    ordered = sorted(latencies)
    return Result(
        concurrency=concurrency,
        requests=len(ordered),
        seconds=round(elapsed, 3),
        requests_per_second=round(len(ordered) / elapsed, 1) if elapsed > 0 else 0.0,
        p50_ms=round(percentile(ordered, 0.50) * 1000, 2),
        p99_ms=round(percentile(ordered, 0.99) * 1000, 2),
        errors=errors,
        server_errors=server_errors,
        statuses=dict(sorted(statuses.items())),
        by_call={name: _summary(values) for name, values in sorted(by_call.items())},
        by_route={
            route: _summary(
                [v for name, values in by_call.items() if name.split()[0] == route for v in values]
            )
            for route in sorted({name.split()[0] for name in by_call})
        },
    )


def warm_up(stack: LocalStack, calls: Sequence[Call]) -> None:
    """Each call once per worker of its function, in parallel, so that no worker's first import is measured."""

    def once(call: Call) -> None:
        client = Client(stack)
        try:
            client.send(call.method, call.path, call.body())
        finally:
            client.close()

    threads = [
        threading.Thread(target=once, args=(call,), daemon=True)
        for call in calls
        for _ in range(stack.pool_size)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


def drain(stack: LocalStack, seconds: float) -> dict[str, float]:
    """Wait (at most ``seconds``) until the outbound queue is empty: how long it took and what was left."""
    started = time.monotonic()
    while True:
        visible, in_flight = stack.queue_depth("OutboundQueue")
        if visible + in_flight == 0 or time.monotonic() - started >= seconds:
            break
        time.sleep(0.2)
    return {"seconds": round(time.monotonic() - started, 2), "left": visible + in_flight}


def machine() -> dict[str, Any]:
    """What the figures came from."""
    model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text(encoding="utf-8").splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "cpu": model or platform.processor() or platform.machine(),
        "cpus": os.cpu_count(),
        "system": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--concurrency", type=int, nargs="+", default=[8, 32], help="clients per run")
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per run (default 10)")
    parser.add_argument("--requests", type=int, default=100_000, help="at most this many requests per run")
    parser.add_argument("--pool-size", type=int, default=3, help="workers per function (default 3)")
    parser.add_argument(
        "--drain-seconds", type=float, default=60.0, help="longest wait for queued forwards before a run"
    )
    parser.add_argument(
        "--routes", nargs="+", choices=ROUTES, default=list(ROUTES), help="only these routes of the mix"
    )
    parser.add_argument("--json", type=Path, help="also write the results as JSON here")
    args = parser.parse_args(argv)
    if min(args.concurrency) < 1 or args.duration <= 0 or args.requests < 1:
        parser.error("--concurrency, --duration and --requests must be positive")

    print(f"Starting the local stack ({args.pool_size} workers per function, SigV4 checked)...", flush=True)
    results: list[Result] = []
    drains: list[dict[str, float]] = []
    with LocalStack(iam_auth=True, pool_size=args.pool_size) as stack:
        calls = [call for call in mix(stack) if call.name.split()[0] in args.routes]
        warm_up(stack, calls)
        for concurrency in args.concurrency:
            drains.append(drain(stack, args.drain_seconds))
            results.append(
                run(stack, calls, concurrency=concurrency, seconds=args.duration, limit=args.requests)
            )
    about = machine()
    print(f"\nMachine: {about['cpu']}, {about['cpus']} CPUs, {about['system']}, Python {about['python']}")
    print(f"Mix: {', '.join(call.name for call in calls)}")
    waits = ", ".join(f"{d['seconds']:g} s ({d['left']:g} left)" for d in drains)
    print(f"Waited for queued forwards before each run: {waits}")
    print("\n| clients | requests | seconds | requests/s | p50 ms | p99 ms | errors | 5xx |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in results:
        print(
            f"| {r.concurrency} | {r.requests} | {r.seconds:.1f} | {r.requests_per_second:.1f} | "
            f"{r.p50_ms:.1f} | {r.p99_ms:.1f} | {r.errors} | {r.server_errors} |"
        )
    print("\nBy route, all partners together: p50 / p99 ms")
    actions = sorted(results[0].by_route) if results else []
    print("| clients | " + " | ".join(actions) + " |")
    print("|---:|" + "---:|" * len(actions))
    for r in results:
        cells = [f"{r.by_route[a]['p50_ms']:.1f} / {r.by_route[a]['p99_ms']:.1f}" for a in actions]
        print(f"| {r.concurrency} | " + " | ".join(cells) + " |")
    if args.json is not None:
        report = {
            "machine": about,
            "pool_size": args.pool_size,
            "duration_seconds": args.duration,
            "request_limit": args.requests,
            "routes": args.routes,
            "mix": [call.name for call in calls],
            "drains_before_runs": drains,
            "runs": [asdict(r) for r in results],
        }
        args.json.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    failed = sum(r.errors for r in results)
    if failed:
        print(f"\n{failed} requests failed", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
