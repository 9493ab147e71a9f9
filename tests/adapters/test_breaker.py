"""The circuit breaker on its own, with a hand-moved monotonic clock."""

from __future__ import annotations

import pytest

from adapters.breaker import BreakerOpenError, CircuitBreaker
from adapters.snapshot import BreakerState


def state(br: CircuitBreaker) -> BreakerState:
    return br.state  # a call: each check reads the state afresh (no narrowing)


class Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def test_opens_after_consecutive_failures_only() -> None:
    br = CircuitBreaker("pv-1", failures=3, reset_s=30, clock=Clock())
    br.record_failure("a")
    br.record_failure("b")
    br.record_success()  # a success breaks the streak
    br.record_failure("c")
    br.record_failure("d")
    assert state(br) is BreakerState.CLOSED and br.allow()
    br.record_failure("e")
    assert state(br) is BreakerState.OPEN
    assert br.consecutive_failures == 3
    assert not br.allow()


def test_half_open_lets_exactly_one_trial_through_then_closes_on_success() -> None:
    clock = Clock()
    br = CircuitBreaker("bat-1", failures=1, reset_s=30, clock=clock)
    br.record_failure("timeout")
    clock.t += 29.9
    assert not br.allow()
    assert br.retry_in_s() == pytest.approx(0.1)
    clock.t += 0.2
    assert br.allow()  # the trial
    assert state(br) is BreakerState.HALF_OPEN
    assert not br.allow()  # a second caller waits for the trial's verdict
    br.record_success()
    assert state(br) is BreakerState.CLOSED and br.consecutive_failures == 0
    assert br.allow() and br.allow()


def test_failed_trial_reopens_for_a_full_reset_period() -> None:
    clock = Clock()
    br = CircuitBreaker("m", failures=2, reset_s=10, clock=clock)
    br.record_failure("x")
    br.record_failure("x")
    clock.t += 10
    assert br.allow()
    br.record_failure("still dead")
    assert state(br) is BreakerState.OPEN
    clock.t += 9.9
    assert not br.allow()
    clock.t += 0.1
    assert br.allow()


def test_released_trial_can_be_retried() -> None:
    clock = Clock()
    br = CircuitBreaker("m", failures=1, reset_s=5, clock=clock)
    br.record_failure("x")
    clock.t += 5
    assert br.allow()
    br.release()  # cancelled: no verdict
    assert state(br) is BreakerState.HALF_OPEN
    assert br.allow()


def test_check_raises_with_device_time_and_last_error() -> None:
    br = CircuitBreaker("pv-7", failures=1, reset_s=30, clock=Clock())
    br.record_failure("pv-7: no answer within 1 s")
    with pytest.raises(BreakerOpenError, match=r"pv-7: circuit breaker open, next trial in 30.0 s"):
        br.check()
    with pytest.raises(BreakerOpenError, match="no answer within 1 s"):
        br.check()


@pytest.mark.parametrize(("failures", "reset_s"), [(0, 1.0), (1, 0.0)])
def test_bad_settings_are_refused(failures: int, reset_s: float) -> None:
    with pytest.raises(ValueError):
        CircuitBreaker("x", failures=failures, reset_s=reset_s)
