"""The soak, small: forwards through the local stack while the partner sandboxes inject every kind of fault.

First the fault injection itself, against a bare :class:`HttpsServer` with the standard library's client (not
``sealgate.partner_http``, which is what the faults are for): a reset is a TCP reset, a reset after processing
runs the handler first, a picker decides request by request, and an answer written after the client gave up
does not count as received. Then a soak of the whole local stack (:mod:`sealgate_local.soak`): every message
settles, none is sent again after a 2xx reached the gateway, every outcome agrees with what the partner saw
and the dead-letter queue holds exactly the dead-lettered messages.
"""

from __future__ import annotations

import http.client
import ssl
import threading
import time
from collections import Counter
from collections.abc import Iterator

import pytest

from sealgate_local.https_server import HttpsServer, Mode, Request, Response
from sealgate_local.sandboxes import FAULT_KINDS, FaultPlan, Receipt
from sealgate_local.soak import Message, SoakConfig, percentile, run, table, tally
from sealgate_local.tls import Pki, make_throwaway_pki


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_throwaway_pki(tmp_path_factory.mktemp("throwaway-pki"))


@pytest.fixture
def handled() -> list[str]:
    return []


@pytest.fixture
def server(pki: Pki, handled: list[str]) -> Iterator[HttpsServer]:
    def handler(request: Request) -> Response:
        handled.append(request.path)
        return Response(200, {"Content-Type": "text/plain"}, b"done")

    with HttpsServer(handler, pki=pki) as running:
        yield running


def call(server: HttpsServer, path: str = "/", timeout: float = 5.0) -> tuple[int, bytes]:
    host, port = server.url.removeprefix("https://").split(":")
    context = ssl.create_default_context(cafile=server.ca_bundle)
    connection = http.client.HTTPSConnection(host, int(port), timeout=timeout, context=context)
    try:
        connection.request("POST", path, body=b"{}")
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


def settled(server: HttpsServer, count: int) -> None:
    """Wait until ``count`` exchanges are recorded (the server records one after its client has its answer)."""
    deadline = time.monotonic() + 5.0
    while len(server.exchanges) < count and time.monotonic() < deadline:
        time.sleep(0.01)
    assert len(server.exchanges) == count


# --- fault injection ------------------------------------------------------------------------------------------


def test_reset_resets_the_connection_before_the_handler_sees_the_request(
    server: HttpsServer, handled: list[str]
) -> None:
    server.mode = "reset"

    with pytest.raises(ConnectionResetError):
        call(server, "/reset")

    settled(server, 1)
    [exchange] = server.exchanges
    assert (exchange.mode, exchange.handled, exchange.status, exchange.written) == (
        "reset",
        False,
        None,
        False,
    )
    assert handled == []
    assert [r.path for r in server.requests] == ["/reset"]


def test_reset_after_processing_runs_the_handler_then_resets(server: HttpsServer, handled: list[str]) -> None:
    server.mode = "reset_after"

    with pytest.raises(ConnectionResetError):
        call(server, "/processed")

    settled(server, 1)
    [exchange] = server.exchanges
    assert (exchange.mode, exchange.handled, exchange.status, exchange.written) == (
        "reset_after",
        True,
        None,
        False,
    )
    assert handled == ["/processed"]


def test_a_picker_chooses_the_mode_of_each_request_and_every_answer_is_recorded(
    server: HttpsServer, handled: list[str]
) -> None:
    plan: dict[str, Mode] = {"/fail": "error500", "/slow-down": "throttle429"}
    server.fault = lambda request: plan.get(request.path)
    server.retry_after = "7"

    answers = [call(server, path)[0] for path in ("/fail", "/slow-down", "/fine")]

    assert answers == [500, 429, 200]
    settled(server, 3)
    got = [(e.request.path, e.mode, e.handled, e.status, e.written) for e in server.exchanges]
    assert got == [
        ("/fail", "error500", False, 500, True),
        ("/slow-down", "throttle429", False, 429, True),
        ("/fine", "ok", True, 200, True),
    ]
    assert handled == ["/fine"]
    fine = server.exchanges[2]
    assert fine.answered_at is not None
    assert fine.received_at <= fine.answered_at


def test_an_answer_written_after_the_client_gave_up_does_not_count_as_received(pki: Pki) -> None:
    release = threading.Event()

    def slow(request: Request) -> Response:
        release.wait(5.0)
        return Response(200, {}, b"late")

    with HttpsServer(slow, pki=pki) as running:
        with pytest.raises(TimeoutError):
            call(running, timeout=0.3)  # the client closes its connection on the way out
        time.sleep(0.2)
        release.set()
        settled(running, 1)
        [exchange] = running.exchanges

    assert (exchange.status, exchange.written) == (200, False)


def test_a_fault_plan_is_reproducible_and_injects_about_its_rate_of_every_kind() -> None:
    plan = FaultPlan(rate=0.2, seed=11)
    picks = [plan.pick("netcore", f"key-{i}", n) for i in range(2000) for n in range(2)]

    assert picks == [
        FaultPlan(rate=0.2, seed=11).pick("netcore", f"key-{i}", n) for i in range(2000) for n in range(2)
    ]
    assert picks != [
        FaultPlan(rate=0.2, seed=12).pick("netcore", f"key-{i}", n) for i in range(2000) for n in range(2)
    ]
    kinds = Counter(pick for pick in picks if pick is not None)
    assert 0.17 < sum(kinds.values()) / len(picks) < 0.23
    assert set(kinds) == set(FAULT_KINDS)
    assert FaultPlan(rate=0.0).pick("netcore", "key", 0) is None
    with pytest.raises(ValueError, match="fault kinds"):
        FaultPlan(kinds=("ok",))
    with pytest.raises(ValueError, match="rate"):
        FaultPlan(rate=1.5)


def test_percentile_is_nearest_rank() -> None:
    values = [float(v) for v in range(1, 101)]
    assert [percentile(values, q) for q in (50, 90, 99, 100)] == [50.0, 90.0, 99.0, 100.0]
    assert percentile([3.0], 99) == 3.0


# --- the tally: what each check catches ------------------------------------------------------------------------


def receipt(key: str, mode: str, at: float, *, status: int | None = None, written: bool = False) -> Receipt:
    processed = mode in ("ok", "reset_after")
    answered_2xx = written and status is not None and 200 <= status < 300
    return Receipt("paykun", key, mode, processed, status, answered_2xx, at, at + 0.1 if written else None)


def test_the_tally_catches_duplicates_disagreements_and_strays_and_passes_a_clean_run() -> None:
    messages = [Message("paykun", f"k{i}", "api", f"o{i}", enqueued_at=100.0) for i in range(6)]
    outcomes = {
        "o0": {"status": "delivered", "attempts": "2"},  # a 500, then delivered: clean
        "o1": {"status": "delivered", "attempts": "1"},  # but the partner reset after processing
        "o2": {"status": "retrying", "attempts": "1"},  # but the partner's 2xx was written
        "o3": {"status": "delivered", "attempts": "2"},  # and sent again after its 2xx
        "o4": {"status": "dead_lettered", "attempts": "1"},  # but not on the dead-letter queue
        "o5": {"status": "dead_lettered", "attempts": "1"},  # and on it: clean
    }
    receipts = [
        receipt("k0", "error500", 101.0, status=500, written=True),
        receipt("k0", "ok", 106.0, status=200, written=True),
        receipt("k1", "reset_after", 101.0),
        receipt("k2", "ok", 101.0, status=200, written=True),
        receipt("k3", "ok", 101.0, status=200, written=True),
        receipt("k3", "ok", 104.0, status=200, written=True),
        receipt("k4", "hang", 101.0),
        receipt("k5", "reset", 101.0),
    ]
    dead = [("paykun", "k5"), ("netcore", "stray")]

    report = tally(
        SoakConfig(messages=6),
        messages,
        outcomes,
        receipts,
        dead,
        left_on_queue=1,
        send_seconds=1.0,
        settle_seconds=2.0,
        wall_seconds=3.0,
    )

    failed = {c.name for c in report.checks if not c.ok}
    assert failed == {
        "sent = delivered + dead-lettered",
        "no duplicate after a 2xx reached the gateway",
        "outcomes agree with what the partner saw",
        "dead-letter queue agrees with the outcomes",
        "every fault kind injected",  # no throttle429 among these receipts
    }
    assert (report.delivered, report.dead_lettered, report.unsettled) == (3, 2, 1)
    assert report.duplicates_after_2xx == 1
    assert report.disagreements == 2
    assert report.dead_letter_mismatches == 2  # k4 missing, the stray extra
    assert report.attempts_not_requests == 0
    assert report.latency_ms["p50"] == pytest.approx(1100.0)  # k3: enqueued at 100, 2xx written at 101.1

    clean = tally(
        SoakConfig(messages=2, fault_kinds=("error500", "reset")),
        [messages[0], messages[5]],
        outcomes,
        receipts,
        [("paykun", "k5")],
        left_on_queue=0,
        send_seconds=1.0,
        settle_seconds=2.0,
        wall_seconds=3.0,
    )
    assert [c.name for c in clean.checks if not c.ok] == []
    assert clean.ok
    assert (clean.sent, clean.delivered, clean.dead_lettered, clean.partner_requests) == (2, 1, 1, 3)
    assert clean.latency_ms["p50"] == pytest.approx(6100.0)


# --- the soak ---------------------------------------------------------------------------------------------------


@pytest.mark.slow
def test_a_small_soak_loses_duplicates_and_misreports_nothing_under_every_fault() -> None:
    config = SoakConfig(
        messages=100,
        seed=33,  # a seed whose first attempts alone meet every fault kind at least four times
        fault_rate=0.2,
        rate=0,  # as fast as the senders go: the checks, not the latency, are what this test is for
        forward_timeout=2,
        visibility_timeout=2,
        settle_seconds=150,  # typically settled well within a minute; bounded on a slow machine
        # A short retry backoff where the template has one (a template without it ignores it).
        parameters=(("DeliveryBackoffBaseSeconds", "1"),),
    )

    report = run(config)

    printed = table(report)
    assert report.sent == 100, printed
    assert report.sent_via_queue > 0, printed
    assert report.sent_via_api > 0, printed
    assert set(report.by_partner) == {"dlocal", "infosimples", "netcore", "paykun"}, printed
    assert all(report.faults_injected[kind] > 0 for kind in FAULT_KINDS), printed
    assert report.partner_requests > report.sent, printed  # faults were retried
    assert report.unsettled == 0, printed
    assert report.left_on_queue == 0, printed
    assert report.delivered + report.dead_lettered + report.rejected == report.sent, printed
    assert report.duplicates_after_2xx == 0, printed
    assert report.disagreements == 0, printed
    assert report.dead_letter_mismatches == 0, printed
    assert report.delivered > 0, printed
    assert report.latency_ms["p50"] > 0, printed
    assert [c.name for c in report.checks if not c.ok] == [], printed
