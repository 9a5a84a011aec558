"""The delivery's own arithmetic: the jittered backoff between tries, and the counts a message carries."""

from __future__ import annotations

import math

import pytest

from sealgate.actions.deliver import ATTEMPTS, QUEUED_AT, WAITS, Tally, backoff


@pytest.mark.parametrize(("base", "cap"), [(5, 900), (1, 2), (2, 30), (7, 900)])
def test_backoff_doubles_within_equal_jitter_and_never_passes_the_cap_or_sqs_limit(
    base: int, cap: int
) -> None:
    for n in range(1, 16):
        ceiling = max(1, math.ceil(min(cap, base * 2 ** (n - 1), 900)))
        draws = {backoff(n, base, cap) for _ in range(200)}
        assert min(draws) >= math.ceil(ceiling / 2), n
        assert max(draws) <= ceiling <= 900, n


def test_backoff_is_jittered() -> None:
    assert len({backoff(6, 5, 900) for _ in range(200)}) > 10  # 160 s: drawn from 80..160


def test_no_base_means_no_wait() -> None:
    assert {backoff(n, 0, 900) for n in range(1, 10)} == {0}
    assert backoff(0, 5, 900) == 0


def test_a_message_without_counts_starts_afresh_queued_when_sqs_got_it() -> None:
    assert Tally.of({}, sent_at=1000.0, now=1500.0) == Tally(0, 0, 1000.0)


def test_a_redriven_dead_letter_starts_afresh_from_now() -> None:
    # A dead-lettered copy carries the gateway's reason and attempts, never its counts.
    dead = {"reason": "partner_http_401", "attempts": "1", "original_message_id": "m-1"}
    assert Tally.of(dead, sent_at=1000.0, now=90_000.0) == Tally(0, 0, 90_000.0)


def test_counts_round_trip_through_message_attributes() -> None:
    tally = Tally(attempts=3, waits=7, queued_at=1234.5)
    assert Tally.of(tally.attributes(), sent_at=2000.0, now=3000.0) == tally
    assert set(tally.attributes()) == {ATTEMPTS, WAITS, QUEUED_AT}


@pytest.mark.parametrize("bad", ["", "x", "-1", "nan", "inf"])
def test_unreadable_counts_are_zero_and_a_queue_time_in_the_future_is_now(bad: str) -> None:
    assert Tally.of({ATTEMPTS: bad, WAITS: bad}, sent_at=10.0, now=20.0) == Tally(0, 0, 10.0)
    assert Tally.of({QUEUED_AT: "99999"}, sent_at=10.0, now=20.0).queued_at == 20.0
