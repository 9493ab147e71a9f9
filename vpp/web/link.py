"""Operator actions cross from the HTTP server's thread to the control loop, with a deadline.

The server answers on its own thread and event loop; what an action changes (caps, the pause
flag, a re-plan task, events) belongs to the control loop, where the jobs read it. So an action
is handed to the control loop with :func:`asyncio.run_coroutine_threadsafe` and runs there
between two steps of the jobs. If the control loop does not take it within the deadline (it is
blocked, or stopping), the action is called off and :class:`ControlBusy` raised: the caller
answers 503, and the action never happens later behind the operator's back. An action that
has started is always waited for (actions do not wait for anything themselves).
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from typing import ParamSpec, TypeVar

P = ParamSpec("P")
T = TypeVar("T")

#: Wall seconds the control loop has to take an operator action.
ACTION_TIMEOUT_S = 5.0


class ControlBusy(Exception):
    """The control loop did not take an action in time; nothing was changed."""


class _Claim:
    """Who got there first: the control loop starting the action, or the caller giving up."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._state = "pending"

    def start(self) -> bool:
        with self._lock:
            if self._state == "pending":
                self._state = "started"
            return self._state == "started"

    def abandon(self) -> bool:
        with self._lock:
            if self._state == "pending":
                self._state = "abandoned"
            return self._state == "abandoned"


class ControlLink:
    """Runs functions on the control loop for callers on other threads (see module docstring).

    ``loop`` is the control loop; until :meth:`bind` is called, or when the caller already runs
    on that loop, functions are called directly.
    """

    def __init__(self, timeout_s: float = ACTION_TIMEOUT_S) -> None:
        if timeout_s <= 0:
            raise ValueError(f"timeout_s must be > 0, got {timeout_s}")
        self.timeout_s = timeout_s
        self.loop: asyncio.AbstractEventLoop | None = None

    def bind(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop

    async def call(self, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        """``fn(*args, **kwargs)`` on the control loop; its result or its exception.

        Raises :class:`ControlBusy` if the control loop does not start it within
        ``timeout_s`` (then it never runs).
        """
        loop = self.loop
        if loop is None or loop is asyncio.get_running_loop():
            return fn(*args, **kwargs)
        claim = _Claim()

        async def on_control_loop() -> T:
            if not claim.start():
                raise ControlBusy("called off")
            return fn(*args, **kwargs)

        coro = on_control_loop()
        try:
            future = asyncio.run_coroutine_threadsafe(coro, loop)
        except RuntimeError as exc:  # the control loop is closed
            coro.close()
            raise ControlBusy("the control loop is not running") from exc
        waiting = asyncio.wrap_future(future)
        try:
            return await asyncio.wait_for(asyncio.shield(waiting), self.timeout_s)
        except TimeoutError:
            if claim.abandon():
                waiting.cancel()  # and with it the control loop's task
                raise ControlBusy(
                    f"the control loop did not take the action within {self.timeout_s:g} s "
                    f"(it is busy or stopping); nothing was changed, try again"
                ) from None
            return await waiting  # it started just now: actions finish without waiting
        except asyncio.CancelledError:
            if claim.abandon():  # the server is stopping: the action must not follow later
                waiting.cancel()
            raise
