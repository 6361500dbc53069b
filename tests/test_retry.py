"""The retry policy (``_retry``) on its own: no I/O, no threads; the worker applies it after each attempt.

Delays are checked against their bounds with real jitter, and exactly with the ``no_jitter`` fixture
(every draw takes its ceiling).
"""

from __future__ import annotations

import time
from email.utils import formatdate
from typing import Any

import pytest
from botocore.exceptions import ClientError

from loguru_cloudwatch._retry import BUDGET_SHARE, FINAL_ATTEMPTS, Deadline, Pacing, Timings, retry_after_hint


def pacing(retry_delay: float = 0.1, max_retries: int = 3, flush_interval: float = 2.0, cap: float = 30.0) -> Pacing:
    return Pacing(retry_delay, max_retries, flush_interval, Timings(max_backoff=cap))


def test_full_jitter_stays_under_the_exponential_ceiling_in_a_round() -> None:
    policy = pacing(retry_delay=0.1, max_retries=50, cap=3.0)
    for failures in range(40):
        delay, round_attempts = policy.failed(throttled=False, retry_after=None, deadline=None)
        assert round_attempts == 0
        assert delay is not None and 0.0 <= delay <= min(3.0, 0.1 * 2**failures), (failures, delay)
        assert policy.retrying


def test_a_round_is_max_retries_retries_then_a_longer_wait_after_each_failed_round(no_jitter: None) -> None:
    policy = pacing(retry_delay=0.1, max_retries=2)
    assert policy.failed(False, None, None) == (0.1, 0)  # retry 1 of the round
    assert policy.failed(False, None, None) == (0.2, 0)  # retry 2
    delay, attempts = policy.failed(False, None, None)  # the round's third attempt failed too
    assert (attempts, delay) == (3, pytest.approx(0.1 * 2 ** (2 + 1)))
    assert not policy.retrying  # the events wait for the next flush after that pause
    assert policy.failed(False, None, None) == (0.1, 0)  # the next round starts over...
    policy.failed(False, None, None)
    delay, attempts = policy.failed(False, None, None)
    assert (attempts, delay) == (3, pytest.approx(0.1 * 2 ** (2 + 2)))  # ...and ends with a longer pause
    policy.delivered(0.01)
    assert policy.failed(False, None, None) == (0.1, 0)  # a delivery resets everything
    assert policy.next_attempt == pytest.approx(time.monotonic() + 0.1, abs=0.05)


def test_under_a_deadline_the_ceiling_is_a_quarter_of_the_budget_and_rounds_do_not_end_it() -> None:
    policy = pacing(retry_delay=1.0, max_retries=0, cap=30.0)
    deadline = Deadline.within(40.0)
    for _ in range(8):  # far beyond max_retries=0, and beyond 2**3 * retry_delay > 10 s
        delay, round_attempts = policy.failed(throttled=True, retry_after=None, deadline=deadline)
        assert round_attempts == 0
        assert delay is not None and delay <= BUDGET_SHARE * 40.0, delay
        assert policy.next_attempt < deadline.at


def test_once_the_ceiling_outgrows_the_time_left_the_final_attempts_are_spread_over_it() -> None:
    policy = pacing(retry_delay=100.0)  # every ceiling is far beyond the time left
    deadline = Deadline.within(3.0)
    started = time.monotonic()
    delays = [policy.failed(True, None, deadline)[0] for _ in range(FINAL_ATTEMPTS + 2)]
    made = [started + delay for delay in delays[:FINAL_ATTEMPTS] if delay is not None]
    assert len(made) == FINAL_ATTEMPTS, delays
    # One in each third of the time left (3 s minus a 0.1 s reserve): the last close to the deadline.
    span = (deadline.at - 0.1 - started) / FINAL_ATTEMPTS
    for index, at in enumerate(made):
        assert started + index * span - 0.01 <= at <= started + (index + 1) * span + 0.01, (index, at - started)
    assert delays[FINAL_ATTEMPTS:] == [None, None]  # then no more: no storm just before the deadline
    assert policy.no_attempt_fits(deadline)
    # A new deadline (another force_flush, the final drain) gets its own final attempts.
    assert policy.failed(True, None, Deadline.within(2.0))[0] is not None


def test_no_attempt_is_planned_when_the_time_left_cannot_hold_a_call() -> None:
    policy = pacing()
    policy.delivered(call_seconds=0.5)  # calls take 0.5 s: one second is kept in hand
    deadline = Deadline.within(0.8)
    assert policy.failed(True, None, deadline) == (None, 0)
    assert policy.no_attempt_fits(deadline)


def test_the_servers_retry_after_is_a_floor_capped_like_every_delay() -> None:
    policy = pacing(retry_delay=0.01, max_retries=10, cap=5.0)
    delay, _ = policy.failed(True, retry_after=0.4, deadline=None)
    assert delay == pytest.approx(0.4)  # well above the 10 ms ceiling of a first retry
    policy = pacing(retry_delay=10.0, max_retries=10, cap=5.0)
    delay, _ = policy.failed(True, retry_after=60.0, deadline=None)
    assert delay == pytest.approx(5.0)  # never beyond max_backoff
    policy = pacing(retry_delay=0.01, max_retries=10)
    deadline = Deadline.within(1.0)
    delay, _ = policy.failed(True, retry_after=60.0, deadline=deadline)
    assert delay is not None and delay < 1.0  # nor past a deadline


def test_the_flush_interval_stretches_after_throttled_calls_and_comes_back_when_calls_go_through() -> None:
    policy = pacing(flush_interval=0.5, cap=3.0, max_retries=100)
    for _ in range(3):
        policy.failed(throttled=True, retry_after=None, deadline=None)
    assert policy.interval == 0.5  # refused calls alone do not stretch it (their backoff spaces them)
    policy.delivered(0.01)  # a call delivered after being throttled
    assert policy.interval == 1.0
    for expected in (2.0, 3.0, 3.0):  # up to max_backoff
        policy.failed(throttled=True, retry_after=None, deadline=None)
        policy.delivered(0.01)
        assert policy.interval == expected
    policy.failed(throttled=False, retry_after=None, deadline=None)  # a 503 is no sign of a quota
    policy.delivered(0.01)
    assert policy.interval == 1.5
    for expected in (0.75, 0.5, 0.5):
        policy.delivered(0.01)
        assert policy.interval == expected


def test_a_flush_redraws_a_backoff_that_would_outlast_its_budget(no_jitter: None) -> None:
    policy = pacing(retry_delay=1.0, max_retries=0)
    for _ in range(4):
        policy.failed(True, None, None)  # failed rounds: the pause has grown to 2**(0 + 4) = 16 s
    assert policy.next_attempt > time.monotonic() + 15
    deadline = Deadline.within(3.0)
    policy.fit_into(deadline)
    assert policy.next_attempt < deadline.at  # drawn again within the 3 s
    before = policy.next_attempt
    policy.fit_into(deadline)
    assert policy.next_attempt == before  # once per deadline


def test_a_flush_redraws_a_backoff_longer_than_its_budgets_share(no_jitter: None) -> None:
    policy = pacing(retry_delay=1.0, max_retries=0)
    policy.failed(True, None, None)  # a failed round: the next attempt in 2**(0 + 1) = 2 s
    deadline = Deadline.within(4.0)  # the budget's ceiling is a quarter of it: 1 s
    policy.fit_into(deadline)
    assert policy.next_attempt <= time.monotonic() + 1.0


def test_a_backoff_planned_for_a_later_deadline_is_fitted_to_an_earlier_one() -> None:
    policy = pacing(retry_delay=1.0)
    long_flush = Deadline.within(60.0)
    for _ in range(5):
        policy.failed(True, None, long_flush)  # backoffs of up to 15 s, a quarter of 60 s
    stop = Deadline.within(10.0)
    policy.fit_into(stop, final=True)
    assert policy.next_attempt <= time.monotonic() + 2.5  # within stop()'s own ceiling
    assert not policy.no_attempt_fits(stop)


def test_a_wait_the_shipper_asked_for_stands_except_at_the_final_drain() -> None:
    policy = pacing()
    policy.told_to_wait(60.0, deadline=None)  # credentials refused: try again in a minute
    assert not policy.retryable
    waiting_until = policy.next_attempt
    policy.fit_into(Deadline.within(5.0))
    assert policy.next_attempt == waiting_until  # a force_flush does not make it ask sooner
    policy.fit_into(Deadline.within(5.0), final=True)
    assert policy.next_attempt <= time.monotonic()  # at exit it tries once more, at once


def _error(headers: dict[str, str]) -> ClientError:
    response: Any = {"Error": {"Code": "ThrottlingException"}, "ResponseMetadata": {"HTTPHeaders": headers}}
    return ClientError(response, "PutLogEvents")


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({"x-amz-retry-after": "1500"}, 1.5),  # milliseconds, as botocore reads it
        ({"retry-after": "3"}, 3.0),  # seconds (RFC 9110)
        ({}, None),
        ({"x-amz-retry-after": "soon"}, None),
        ({"retry-after": "0"}, None),
        ({"x-amz-retry-after": "-5"}, None),
    ],
)
def test_retry_after_hints_are_read_from_the_error_answer(headers: dict[str, str], expected: float | None) -> None:
    assert retry_after_hint(_error(headers)) == expected


def test_a_retry_after_date_is_read_as_the_seconds_until_then() -> None:
    hint = retry_after_hint(_error({"retry-after": formatdate(time.time() + 30, usegmt=True)}))
    assert hint is not None and 28 <= hint <= 31


def test_an_error_without_an_answer_has_no_hint() -> None:
    assert retry_after_hint(OSError("connection refused")) is None
