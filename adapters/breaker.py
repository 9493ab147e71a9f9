"""Circuit breaker per device: a dead or misbehaving device is skipped instead of waited for.

States (``adapters.snapshot.BreakerState``):

* closed: every attempt goes through; ``failures`` consecutive failures open the breaker;
* open: attempts are refused at once, without any I/O, for ``reset_s`` seconds;
* half_open: after ``reset_s`` exactly one trial attempt goes through; success closes the
  breaker, failure opens it again for another ``reset_s``.

The breaker counts whole device operations (one poll, one control write), not single Modbus
requests: a device that answers every request with garbage must be quarantined too, and only
the caller knows that the answer was garbage.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from adapters.snapshot import BreakerState

MonotonicClock = Callable[[], float]


class BreakerOpenError(Exception):
    """An attempt refused by an open (or busy half-open) breaker; no I/O was done."""

    def __init__(self, device_id: str, retry_in_s: float, last_error: str | None) -> None:
        self.device_id = device_id
        self.retry_in_s = retry_in_s
        cause = f"; last error: {last_error}" if last_error else ""
        super().__init__(
            f"{device_id}: circuit breaker open, next trial in {max(retry_in_s, 0.0):.1f} s{cause}"
        )


class CircuitBreaker:
    """Consecutive-failure breaker for one device.

    ``failures``: consecutive failures that open the breaker (>= 1).
    ``reset_s``: seconds an open breaker waits before letting one trial through.
    ``clock``: monotonic seconds; injected so tests need not sleep.
    """

    __slots__ = (
        "_clock",
        "_opened_at",
        "_trial_in_flight",
        "consecutive_failures",
        "device_id",
        "failures",
        "last_error",
        "reset_s",
        "state",
    )

    def __init__(
        self,
        device_id: str,
        failures: int = 3,
        reset_s: float = 30.0,
        clock: MonotonicClock = time.monotonic,
    ) -> None:
        if failures < 1:
            raise ValueError(f"breaker failures must be >= 1, got {failures}")
        if reset_s <= 0:
            raise ValueError(f"breaker reset_s must be > 0, got {reset_s}")
        self.device_id = device_id
        self.failures = failures
        self.reset_s = reset_s
        self._clock = clock
        self.state = BreakerState.CLOSED
        self.consecutive_failures = 0
        self.last_error: str | None = None
        self._opened_at = 0.0
        self._trial_in_flight = False

    def retry_in_s(self) -> float:
        """Seconds until an open breaker lets its next trial through (0 when not open)."""
        if self.state is not BreakerState.OPEN:
            return 0.0
        return max(self._opened_at + self.reset_s - self._clock(), 0.0)

    def allow(self) -> bool:
        """True if an attempt may go through now; a True in half_open claims the one trial."""
        if self.state is BreakerState.CLOSED:
            return True
        if self.state is BreakerState.OPEN:
            if self.retry_in_s() > 0:
                return False
            self.state = BreakerState.HALF_OPEN
            self._trial_in_flight = False
        if self._trial_in_flight:
            return False
        self._trial_in_flight = True
        return True

    def check(self) -> None:
        """Like :meth:`allow` but raises :class:`BreakerOpenError` when refused."""
        if not self.allow():
            raise BreakerOpenError(self.device_id, self.retry_in_s(), self.last_error)

    def record_success(self) -> None:
        """The attempt succeeded: close the breaker and forget the failure streak."""
        self.state = BreakerState.CLOSED
        self.consecutive_failures = 0
        self._trial_in_flight = False

    def record_failure(self, error: str) -> None:
        """The attempt failed: count it, and open the breaker at the threshold or on a trial."""
        self.consecutive_failures += 1
        self.last_error = error
        trial = self.state is BreakerState.HALF_OPEN
        if trial or self.consecutive_failures >= self.failures:
            self.state = BreakerState.OPEN
            self._opened_at = self._clock()
        self._trial_in_flight = False

    def release(self) -> None:
        """The attempt was abandoned (cancelled) without a verdict: free the half-open trial."""
        self._trial_in_flight = False
