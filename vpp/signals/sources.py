"""Signal sources: what a control box's contacts and registers mean, and whether it is alive.

:func:`decode_box` turns one :class:`~adapters.controlbox.BoxReading` into signals, or
refuses it with a :class:`~vpp.signals.model.SignalError` saying why:

- the §9 feed-in stage is the one closed contact of 100 / 60 / 30 / 0 %; several closed at
  once, or none while the 100 % contact is wired, is a bad payload (without a 100 % contact,
  none closed means 100 %);
- a configured feed-in register must read 0..100; with the relays, the stricter one counts;
- the §14a contact closed dims the box's consumers to their floor.

A bad payload changes nothing: the source's last good signals stay in force.

:class:`SourceTracker` keeps one source's state between reads. The source is alive while it
answers with valid payloads and its heartbeat counter moves; when it has not been alive for
``heartbeat_timeout_s`` (no answer, only bad payloads, or a frozen heartbeat), it is *silent*
and its devices go to its failsafe limits (``failsafe_feed_in_pct``,
``failsafe_consumption_w``) until it is alive again. A source that has not been read yet
counts as alive from the tracker's start: the timeout is also the grace period at start-up.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from vpp.core.site import ControlBoxSource, OpenAdrSource
from vpp.signals.model import Signal, SignalError, SignalKind

#: The configuration of a signal source that falls back to failsafe limits when silent.
SourceConfig = ControlBoxSource | OpenAdrSource
#: Relay contact by feed-in stage [%].
STAGES = {100: "feed_in_100", 60: "feed_in_60", 30: "feed_in_30", 0: "feed_in_0"}
PCT_MAX = 100


@dataclass(frozen=True, slots=True)
class Spec:
    """What a signal asks, without its times: two equal specs are the same signal."""

    kind: SignalKind
    feed_in_pct: float | None = None
    limit_w: float | None = None
    reason: str = ""


def decode_box(config: ControlBoxSource, reading: Any) -> tuple[Spec, ...]:
    """The signals a control box's reading asks for (module doc); SignalError if it is bad."""
    where = f"control box {config.id}"
    contacts: dict[str, bool] = reading.contacts
    wired = {pct: name for pct, name in STAGES.items() if name in contacts}
    closed = sorted((pct for pct, name in wired.items() if contacts[name]), reverse=True)
    pct: int | None = None
    reason = ""
    if len(closed) > 1:
        stages = " and ".join(f"{p} %" for p in closed)
        raise SignalError(f"{where}: relays {stages} are closed at once (one stage at a time)")
    if closed:
        pct, reason = closed[0], f"relay {closed[0]} %"
    elif 100 in wired:
        raise SignalError(f"{where}: no feed-in relay is closed (the 100 % contact is wired)")
    elif wired:
        pct, reason = 100, "no relay closed"
    raw = reading.feed_in_pct_raw
    if raw is not None:
        if not 0 <= raw <= PCT_MAX:
            raise SignalError(
                f"{where}: feed-in register {config.feed_in_pct_register} reads {raw}, "
                "not a percentage 0..100"
            )
        if pct is None or raw < pct:
            pct, reason = raw, f"register {raw} %"
    specs = []
    if pct is not None and pct < PCT_MAX:
        specs.append(Spec(SignalKind.FEED_IN, feed_in_pct=float(pct), reason=reason))
    if contacts.get("dim_14a"):
        specs.append(Spec(SignalKind.CONSUMPTION, reason="§14a contact closed"))
    return tuple(specs)


def failsafe_specs(config: SourceConfig) -> tuple[Spec, ...]:
    """The limits a silent source's devices go to."""
    why = "failsafe: source silent"
    return (
        Spec(SignalKind.FEED_IN, feed_in_pct=config.failsafe_feed_in_pct, reason=why),
        Spec(SignalKind.CONSUMPTION, limit_w=config.failsafe_consumption_w, reason=why),
    )


@dataclass(frozen=True, slots=True)
class Note:
    """Something an operator should hear about: an event's level, kind and message."""

    level: str
    kind: str
    message: str


def check_silence(
    source_id: str,
    config: SourceConfig,
    seen: datetime,
    was_silent: bool,
    now: datetime,
    lost: str,
) -> tuple[bool, list[Note]]:
    """Whether a source last alive at ``seen`` is silent at ``now`` (quiet for longer than
    its ``heartbeat_timeout_s``), and the notes when that turns on (``lost`` says how it
    fell silent) or off. The failsafe bookkeeping of every kind of source."""
    quiet_s = (now - seen).total_seconds()
    silent = quiet_s > config.heartbeat_timeout_s
    notes: list[Note] = []
    if silent and not was_silent:
        notes.append(
            Note(
                "error",
                "signal_failsafe_on",
                f"{source_id} {lost} for {quiet_s:.0f} s: failsafe feed-in "
                f"{config.failsafe_feed_in_pct:g} %, consumption "
                f"{config.failsafe_consumption_w:.0f} W for its devices",
            )
        )
    elif was_silent and not silent:
        notes.append(Note("info", "signal_failsafe_off", f"{source_id} is back: failsafe ended"))
    return silent, notes


def source_signals(
    source_id: str,
    config: SourceConfig,
    specs: tuple[Spec, ...],
    since: dict[Spec, datetime],
) -> tuple[Signal, ...]:
    """Signals of ``specs`` on a source's devices (all of the site when it lists none), each
    in force from ``since``; §14a dims under an energy-management system (``ems``) are
    resolved over all its controllable devices."""
    devices = frozenset(config.devices) or None
    ems = config.enwg_14a_control == "ems"
    return tuple(
        Signal(
            source=source_id,
            kind=s.kind,
            start=since[s],
            devices=devices,
            feed_in_pct=s.feed_in_pct,
            limit_w=s.limit_w,
            ems=ems and s.kind == SignalKind.CONSUMPTION,
            reason=s.reason,
        )
        for s in specs
    )


@dataclass
class SourceTracker:
    """One source between reads: its last good signals, its heartbeat, silent or not."""

    config: ControlBoxSource
    read: Callable[[], Awaitable[Any]]
    started_at: datetime
    alive_at: datetime | None = None
    heartbeat: int | None = None
    silent: bool = False
    last_error: str | None = None
    specs: tuple[Spec, ...] = ()
    signals: tuple[Signal, ...] = ()
    _since: dict[Spec, datetime] = field(default_factory=dict)

    @property
    def id(self) -> str:
        return self.config.id

    async def poll(self, now: datetime) -> list[Note]:
        """Read the source once; the notes on what changed."""
        notes: list[Note] = []
        try:
            reading = await self.read()
        except Exception as exc:  # a source that fails is silent after its timeout
            reading = None
            error = f"{self.id}: no reading: {exc}"
            if error != self.last_error:
                notes.append(Note("warning", "signal_source_failed", error))
            self.last_error = error
        if reading is not None:
            notes += self._take(reading, now)
        notes += self._check_silence(now)
        return notes

    def _take(self, reading: Any, now: datetime) -> list[Note]:
        notes: list[Note] = []
        try:
            specs = decode_box(self.config, reading)
        except SignalError as exc:
            message = f"{exc}: ignored, the last valid signals stay in force"
            if message != self.last_error:
                notes.append(Note("error", "signal_bad_payload", message))
            self.last_error = message
            return notes
        self.last_error = None
        moved = (
            self.config.heartbeat_register is None
            or self.heartbeat is None
            or reading.heartbeat != self.heartbeat
        )
        self.heartbeat = reading.heartbeat
        if moved:
            self.alive_at = now
        if specs != self.specs:
            before = ", ".join(_text(s) for s in self.specs) or "no limit"
            after = ", ".join(_text(s) for s in specs) or "no limit"
            notes.append(Note("info", "signal_changed", f"{self.id}: {before} -> {after}"))
            self.specs = specs
        return notes

    def _check_silence(self, now: datetime) -> list[Note]:
        self.silent, notes = check_silence(
            self.id,
            self.config,
            self.alive_at or self.started_at,
            self.silent,
            now,
            "silent (heartbeat lost or no valid reading)",
        )
        specs = failsafe_specs(self.config) if self.silent else self.specs
        self._since = {s: self._since.get(s, now) for s in specs}
        self.signals = source_signals(self.id, self.config, specs, self._since)
        return notes


def _text(spec: Spec) -> str:
    if spec.kind == SignalKind.FEED_IN:
        return f"feed-in {spec.feed_in_pct:g} % ({spec.reason})"
    if spec.kind == SignalKind.CONSUMPTION:
        limit = "" if spec.limit_w is None else f" to {spec.limit_w:.0f} W"
        return f"§14a dim{limit} ({spec.reason})"
    return f"{spec.kind.value} {spec.limit_w:.0f} W"
