"""OpenADR 2.0b events as signals, and the tracker of one VTN between polls.

:func:`decode_event` turns one event (as openleadr parses it) into signals, one per interval
of each event signal, or refuses it with a :class:`~vpp.signals.model.SignalError` naming
the event and the field. What each OpenADR signal means here:

======================  ========================  ============  ==============================
signal_name             signal_type               payload       becomes
======================  ========================  ============  ==============================
SIMPLE                  level                     0, 1, 2, 3    feed-in 100 (none) / 60 / 30 /
                                                                0 % (the §9 EEG stages)
LOAD_CONTROL            x-loadControlCapacity     0..1          feed-in at most that share of
                                                                each inverter's rating
LOAD_CONTROL            x-loadControlSetpoint     W >= 0        §14a consumption limit (never
                                                                below the floor)
LOAD_DISPATCH           setpoint                  W             > 0: import cap; < 0: export
                                                                cap of its size; 0: both 0
======================  ========================  ============  ==============================

Scope: an event's ``resource_id`` targets name devices, ``group_id`` targets name feeders
(every device on them); with neither, the event acts on the source's devices (the whole site
when it lists none). A cancelled event has no signals. An interval's duration of 0 lasts
until the event is cancelled.

:class:`OpenAdrTracker` polls the VTN through a ``read`` coroutine (the VEN,
:class:`adapters.openadr.OpenAdrVen`), keeps the decoded signals and, like a control box's
tracker, puts the source's devices into its failsafe limits when the VTN has not answered
for ``heartbeat_timeout_s``. A bad event is answered optOut by the VEN, reported once as an
error and changes nothing.
"""

from __future__ import annotations

import math
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from vpp.core.site import OpenAdrSource, Site
from vpp.signals.model import Signal, SignalError, SignalKind
from vpp.signals.sources import Note, check_silence, failsafe_specs, source_signals

#: SIMPLE levels as feed-in stages [%] (level 0: no limit).
STAGE_BY_LEVEL = {1: 60.0, 2: 30.0, 3: 0.0}


@dataclass(frozen=True, slots=True)
class _Asked:
    kind: SignalKind
    feed_in_pct: float | None = None
    limit_w: float | None = None


def _simple(payload: float, where: str) -> list[_Asked]:
    if payload not in (0, 1, 2, 3):
        raise SignalError(f"{where}: SIMPLE level must be 0, 1, 2 or 3, got {payload:g}")
    stage = STAGE_BY_LEVEL.get(int(payload))
    return [] if stage is None else [_Asked(SignalKind.FEED_IN, feed_in_pct=stage)]


def _capacity(payload: float, where: str) -> list[_Asked]:
    if not 0.0 <= payload <= 1.0:
        raise SignalError(f"{where}: x-loadControlCapacity must be 0..1, got {payload:g}")
    return [_Asked(SignalKind.FEED_IN, feed_in_pct=round(100.0 * payload, 6))]


def _consumption(payload: float, where: str) -> list[_Asked]:
    if payload < 0:
        raise SignalError(f"{where}: x-loadControlSetpoint must be >= 0 W, got {payload:g}")
    return [_Asked(SignalKind.CONSUMPTION, limit_w=payload)]


def _dispatch(payload: float, where: str) -> list[_Asked]:
    if payload > 0:
        return [_Asked(SignalKind.IMPORT_CAP, limit_w=payload)]
    if payload < 0:
        return [_Asked(SignalKind.EXPORT_CAP, limit_w=-payload)]
    return [_Asked(SignalKind.IMPORT_CAP, limit_w=0.0), _Asked(SignalKind.EXPORT_CAP, limit_w=0.0)]


MEANINGS: dict[tuple[str, str], Callable[[float, str], list[_Asked]]] = {
    ("SIMPLE", "level"): _simple,
    ("simple", "level"): _simple,
    ("LOAD_CONTROL", "x-loadControlCapacity"): _capacity,
    ("LOAD_CONTROL", "x-loadControlSetpoint"): _consumption,
    ("LOAD_DISPATCH", "setpoint"): _dispatch,
}


def event_key(event: Any) -> tuple[str, int]:
    """(event id, modification number) of an event; SignalError if it has none."""
    try:
        desc = event["event_descriptor"]
        return str(desc["event_id"]), int(desc.get("modification_number", 0))
    except (KeyError, TypeError, ValueError) as exc:
        raise SignalError(f"OpenADR event without event_descriptor.event_id: {exc}") from None


def decode_event(site: Site, config: OpenAdrSource, event: Any) -> tuple[Signal, ...]:
    """The signals an OpenADR event asks for (module doc); SignalError if it is bad."""
    event_id, _ = event_key(event)
    where = f"{config.id} event {event_id}"
    if event["event_descriptor"].get("event_status") == "cancelled":
        return ()
    devices = _scope(site, config, event.get("targets") or [], where)
    listed = event.get("event_signals")
    if isinstance(listed, dict):
        listed = listed.get("event_signals")
    if not isinstance(listed, list) or not listed:
        raise SignalError(f"{where}: event_signals is missing or empty")
    out: list[Signal] = []
    for n, sig in enumerate(listed):
        name, typ = sig.get("signal_name"), sig.get("signal_type")
        meaning = MEANINGS.get((str(name), str(typ)))
        here = f"{where} event_signals[{n}]"
        if meaning is None:
            known = ", ".join(f"{a}/{b}" for a, b in MEANINGS)
            raise SignalError(
                f"{here}: {name}/{typ} is not a signal this controller follows ({known})"
            )
        intervals = sig.get("intervals")
        if not isinstance(intervals, list) or not intervals:
            raise SignalError(f"{here}.intervals is missing or empty")
        for i, interval in enumerate(intervals):
            start, end, payload = _interval(interval, f"{here}.intervals[{i}]")
            for asked in meaning(payload, f"{here}.intervals[{i}].signal_payload"):
                out.append(
                    Signal(
                        source=f"{config.id}:{event_id}",
                        kind=asked.kind,
                        start=start,
                        end=end,
                        devices=devices,
                        feed_in_pct=asked.feed_in_pct,
                        limit_w=asked.limit_w,
                        ems=config.enwg_14a_control == "ems"
                        and asked.kind == SignalKind.CONSUMPTION,
                        reason=f"OpenADR {name} {payload:g}",
                    )
                )
    return tuple(out)


def _interval(interval: Any, where: str) -> tuple[datetime, datetime | None, float]:
    start, duration = interval.get("dtstart"), interval.get("duration")
    payload = interval.get("signal_payload")
    if not isinstance(start, datetime) or start.tzinfo is None:
        raise SignalError(f"{where}.dtstart must be a time with a time zone, got {start!r}")
    if not isinstance(duration, timedelta) or duration < timedelta(0):
        raise SignalError(f"{where}.duration must be a duration >= 0, got {duration!r}")
    if isinstance(payload, bool) or not isinstance(payload, int | float):
        raise SignalError(f"{where}.signal_payload must be a number, got {payload!r}")
    if not math.isfinite(payload):
        raise SignalError(f"{where}.signal_payload must be finite, got {payload!r}")
    end = None if duration == timedelta(0) else start + duration
    return start, end, float(payload)


def _scope(
    site: Site, config: OpenAdrSource, targets: Sequence[Any], where: str
) -> frozenset[str] | None:
    allowed = set(config.devices) or {d.id for d in site.devices}
    chosen: set[str] = set()
    named = False
    for target in targets:
        if not isinstance(target, dict):
            raise SignalError(f"{where}: a target must be a mapping, got {target!r}")
        resource = target.get("resource_id")
        group = target.get("group_id")
        if resource is not None:
            named = True
            if resource not in allowed:
                raise SignalError(
                    f"{where}: target resource_id {resource!r} is no device of {config.id}"
                )
            chosen.add(str(resource))
        if group is not None:
            named = True
            members = {d.id for d in site.devices if d.feeder == group and d.id in allowed}
            if not members:
                raise SignalError(f"{where}: target group_id {group!r} is no feeder of {config.id}")
            chosen |= members
    if named:
        return frozenset(chosen)
    return frozenset(config.devices) or None


@dataclass
class OpenAdrTracker:
    """One VTN between polls: the signals of its events, alive or silent (failsafe)."""

    config: OpenAdrSource
    site: Site
    read: Callable[[], Awaitable[Sequence[Any]]]
    started_at: datetime
    alive_at: datetime | None = None
    silent: bool = False
    last_error: str | None = None
    signals: tuple[Signal, ...] = ()
    _events: tuple[Signal, ...] = ()
    _reported: set[tuple[str, int]] = field(default_factory=set)
    _good: dict[str, tuple[Signal, ...]] = field(default_factory=dict)
    _failsafe_since: datetime | None = None
    _read_at: datetime | None = None

    @property
    def id(self) -> str:
        return self.config.id

    def check(self, event: Any) -> str | None:
        """Why ``event`` cannot be used (the VEN answers optOut), or None."""
        try:
            decode_event(self.site, self.config, event)
        except SignalError as exc:
            return str(exc)
        return None

    async def poll(self, now: datetime) -> list[Note]:
        notes: list[Note] = []
        due = self._read_at is None or (now - self._read_at).total_seconds() >= (
            self.config.poll_interval_s - 1e-6
        )
        if not due:  # the VTN is polled at its own interval; the silence check goes on
            return self._check_silence(now)
        self._read_at = now
        try:
            events = await self.read()
        except Exception as exc:  # a VTN that fails is silent after its timeout
            error = f"{self.id}: no answer: {exc}"
            if error != self.last_error:
                notes.append(Note("warning", "signal_source_failed", error))
            self.last_error = error
        else:
            self.alive_at, self.last_error = now, None
            notes += self._take(events)
        notes += self._check_silence(now)
        return notes

    def _take(self, events: Sequence[Any]) -> list[Note]:
        """Decode the VEN's events; a bad one keeps its last good signals (or none)."""
        notes: list[Note] = []
        good: dict[str, tuple[Signal, ...]] = {}
        for event in events:
            problem = None
            try:
                key = event_key(event)
            except SignalError as exc:
                key, problem = ("?", 0), str(exc)
            else:
                try:
                    good[key[0]] = decode_event(self.site, self.config, event)
                except SignalError as exc:
                    problem = str(exc)
                    good[key[0]] = self._good.get(key[0], ())
            if problem is not None and key not in self._reported:
                self._reported.add(key)
                notes.append(
                    Note(
                        "error",
                        "signal_bad_payload",
                        f"{problem}: answered optOut, nothing changed",
                    )
                )
        self._good = good
        new = tuple(s for found in good.values() for s in found)
        if set(new) != set(self._events):
            before = ", ".join(s.describe() for s in self._events) or "no limit"
            after = ", ".join(s.describe() for s in new) or "no limit"
            notes.append(Note("info", "signal_changed", f"{self.id}: {before} -> {after}"))
        self._events = new
        return notes

    def _check_silence(self, now: datetime) -> list[Note]:
        was = self.silent
        self.silent, notes = check_silence(
            self.id, self.config, self.alive_at or self.started_at, was, now, "unreachable"
        )
        if self.silent and not was:
            self._failsafe_since = now
        if not self.silent:
            self.signals = self._events
            return notes
        specs = failsafe_specs(self.config)
        since = self._failsafe_since or self.started_at
        self.signals = source_signals(self.id, self.config, specs, dict.fromkeys(specs, since))
        return notes
