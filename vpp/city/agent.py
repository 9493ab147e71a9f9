"""``vpp agent``: one district's controller with a link to the city coordinator.

The controller runs as ``vpp run`` runs it (safety, keep-alive, fallback plan and recorder
stay local); :class:`CityAgent` adds, without changing it:

- up, through the outbox (:mod:`vpp.city.outbox`): the district's aggregates at every poll,
  every device once a minute, its flexibility after every plan it makes;
- down: target schedules (and caps) from the coordinator, checked against the sequence
  number last applied and the expiry, then put onto the plan split over the devices
  (:func:`vpp.city.flex.overlay`); what was done is acknowledged up;
- fallback: a plan made after the targets expired (they expire on a quarter hour) is the
  district's own plan; without a broker the controller goes on alone and the outbox keeps
  everything until the coordinator confirms it.

It hooks into the controller through its two seams: the plant (:class:`TelemetryPlant`
reports each read) and the planner (:class:`TargetPlanner` publishes the flexibility and
applies the targets to each plan).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import aiomqtt
import pandas as pd

from adapters.snapshot import BatteryReading, HeatPumpReading, Snapshot
from optimizer.inputs import State
from optimizer.plan import Plan
from vpp.city import schema as s
from vpp.city.flex import flexibility, overlay
from vpp.city.link import Link, LinkConfig
from vpp.city.outbox import Outbox
from vpp.city.signals import CITY_SOURCE, to_signal
from vpp.control.controller import Controller
from vpp.control.plant import Plant, Written
from vpp.control.safety import Setpoint
from vpp.control.state import OperatorCap
from vpp.core.site import DeviceKind
from vpp.signals.model import Signal
from vpp.signals.watch import SignalWatch

log = logging.getLogger("vpp.city.agent")

#: Reason prefix of the caps the coordinator sets (replaced by each new target).
CITY_CAP = "city"


@dataclass
class AgentStats:
    targets: dict[str, int] = field(default_factory=dict)  # applied, duplicate, refused
    refusals: dict[str, int] = field(default_factory=dict)  # by reason
    fallbacks_total: int = 0
    telemetry_total: int = 0
    #: Wall time (time.monotonic) each target seq was applied (the benchmark reads it).
    held_at: dict[int, float] = field(default_factory=dict)


class TelemetryPlant:
    """The district's plant, reporting every read to the agent."""

    def __init__(self, inner: Plant, agent: CityAgent) -> None:
        self.inner, self.agent = inner, agent

    async def read(self) -> Snapshot:
        snap = await self.inner.read()
        self.agent.on_poll(snap)
        return snap

    async def write(self, setpoints: Sequence[Setpoint]) -> list[Written]:
        return await self.inner.write(setpoints)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


class TargetPlanner:
    """The district's planner: its own plan, published as flexibility, with the targets in
    force put on top. Runs in the controller's planning thread."""

    def __init__(self, inner: Any, agent: CityAgent) -> None:
        self.inner, self.agent = inner, agent

    def plan(self, state: State, forecast: pd.DataFrame, now: object) -> Plan:
        local: Plan = self.inner.plan(state, forecast, now)
        return self.agent.on_local_plan(local, state, forecast, pd.Timestamp(now))  # type: ignore[arg-type]

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


class CityAgent:
    """The city link of one district controller (see the module docstring)."""

    def __init__(
        self, ctl: Controller, agent_id: str, outbox: Outbox, link: LinkConfig | None
    ) -> None:
        self.ctl, self.id, self.outbox = ctl, agent_id, outbox
        self.site = ctl.site
        self.stats = AgentStats()
        self.target: s.Targets | None = None
        self.local_plan: Plan | None = None
        self._state: State | None = None
        self._pv_profile: pd.Series | None = None
        self._last_minute: datetime | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        outbox.tombstone = self._tombstone
        self._dropped_reported = sum(outbox.dropped().values())
        #: City-level grid signals in the district's signal room, and their message's seq.
        self.city_signals: list[Signal] = []
        self._signals_seq = 0
        if ctl.signal_watch is None:  # the signals job runs for every district
            ctl.signal_watch = SignalWatch(ctl.site, [], ctl.clock.now())
        ctl.plant = TelemetryPlant(ctl.plant, self)
        # The controller calls only plan(); the wrapper passes everything else through.
        ctl.planner = TargetPlanner(ctl.planner, self)  # type: ignore[assignment]
        self.link: Link | None = None
        if link is not None:
            will = aiomqtt.Will(
                s.topic(agent_id, "up/status"), self._status("offline"), qos=1, retain=True
            )
            self.link = Link(
                link,
                [s.topic(agent_id, st) for st in ("down/targets", "down/sync", "down/signals")],
                self.on_message,
                will=will,
                outbox=outbox,
                topic_of=lambda stream: s.topic(agent_id, stream),
                on_connect=self._online,
            )

    @property
    def last_target_seq(self) -> int:
        return self.outbox.meta("last_target_seq")

    # -- up ---------------------------------------------------------------------------

    def _status(self, state: str) -> bytes:
        seq = self.outbox.meta("status_seq") + 1
        self.outbox.set_meta("status_seq", seq)
        now = self.ctl.clock.now()
        return s.encode(s.AgentStatus(agent=self.id, seq=seq, sent_at=now, state=state))

    async def _online(self, client: aiomqtt.Client) -> None:
        await client.publish(
            s.topic(self.id, "up/status"), self._status("online"), qos=1, retain=True
        )

    def _tombstone(self, seq: int, stream: str, size: int) -> bytes:
        now = self.ctl.clock.now()
        return s.encode(s.Dropped(agent=self.id, seq=seq, sent_at=now, stream=stream,
                                  size_bytes=size))  # fmt: skip

    def _report_drops(self) -> None:
        """An event when the full outbox dropped messages (at most one per 100 drops)."""
        dropped = self.outbox.dropped()
        total = sum(dropped.values())
        if total > self._dropped_reported and (
            self._dropped_reported == 0 or total - self._dropped_reported >= 100
        ):
            self.ctl.event(
                "warning", "city", "outbox_dropped",
                f"outbox full ({self.outbox.size_bytes()} of {self.outbox.max_bytes} bytes): "
                f"dropped so far {dropped}; telemetry and acknowledgements kept",
            )  # fmt: skip
            self._dropped_reported = total

    def _put(self, stream: str, build: Any) -> int:
        seq = self.outbox.put(stream, lambda n: s.encode(build(n)))
        if self.outbox.max_bytes is not None:
            self._report_drops()
        if self.link is not None and self._loop is not None:
            self._loop.call_soon_threadsafe(self.link.wake)
        return seq

    def on_poll(self, snap: Snapshot) -> None:
        """After every read: the aggregates up; the devices once a minute; expiry."""
        self._loop = asyncio.get_running_loop()
        now = self.ctl.clock.now()
        t = self.target
        if t is not None and now >= t.expires_at:
            self.target = None
            self.stats.fallbacks_total += 1
            self.ctl.event(
                "warning", "city", "target_expired",
                f"targets {t.seq} expired at {t.expires_at.isoformat()}: the district's own plan",
            )  # fmt: skip
        self._put("up/telemetry", lambda n: self._telemetry(n, snap, now))
        self.stats.telemetry_total += 1
        minute = now.replace(second=0, microsecond=0)
        if self._last_minute != minute:
            self._last_minute = minute
            self._put("up/devices", lambda n: self._devices(n, snap, now))

    def _telemetry(self, seq: int, snap: Snapshot, now: datetime) -> s.Telemetry:
        pv = bat = soc = cap = hp = 0.0
        online = offline = 0
        for d in snap.devices.values():
            if not d.health.online or d.reading is None:
                offline += 1
                continue
            online += 1
            r = d.reading
            if d.kind == DeviceKind.PV:
                pv += getattr(r, "ac_power_w", None) or 0.0
            elif isinstance(r, BatteryReading):
                bat += r.power_w or 0.0
                if r.soc_pct is not None and r.capacity_wh:
                    soc += r.soc_pct / 100 * r.capacity_wh
                    cap += r.capacity_wh
            elif isinstance(r, HeatPumpReading):
                hp += r.el_power_w or 0.0
        grid = None
        meter = self.site.grid.meter
        if meter is not None and meter in snap.devices:
            m = snap.devices[meter]
            grid = getattr(m.reading, "power_w", None) if m.health.online else None
        t = self.target
        return s.Telemetry(
            agent=self.id, seq=seq, sent_at=now, time=snap.time, grid_w=grid, pv_w=max(pv, 0.0),
            battery_w=bat, battery_soc_wh=soc, battery_capacity_wh=cap,
            heat_pump_el_w=max(hp, 0.0), devices_online=online, devices_offline=offline,
            plan_source="none" if self.ctl.state.plan is None else "target" if t else "local",
            target_seq=t.seq if t else None,
        )  # fmt: skip

    def _devices(self, seq: int, snap: Snapshot, now: datetime) -> s.DeviceSummary:
        lines = []
        active = self.ctl.state.setpoints
        for d in snap.devices.values():
            r = d.reading
            power = None
            for name in ("ac_power_w", "power_w", "el_power_w"):
                power = getattr(r, name, None) if r is not None else None
                if power is not None:
                    break
            sp = active.get(d.id)
            lines.append(
                s.DeviceLine(
                    id=d.id, kind=str(d.kind), online=d.health.online, power_w=power,
                    soc_pct=getattr(r, "soc_pct", None) if r is not None else None,
                    setpoint_w=sp.read_back_w if sp is not None else None,
                )
            )  # fmt: skip
        return s.DeviceSummary(agent=self.id, seq=seq, sent_at=now, time=snap.time, devices=lines)

    def on_local_plan(
        self, local: Plan, state: State, forecast: pd.DataFrame, at: pd.Timestamp
    ) -> Plan:
        """The district's own plan: published as flexibility; the targets in force on top."""
        self.local_plan, self._state = local, state
        self._pv_profile = forecast.get("pv_w_per_kwp", None)
        now = self.ctl.clock.now()
        try:
            self._put("up/flex", lambda n: flexibility(self.site, self.id, n, now, local, state))
        except s.PayloadError as exc:  # a plan the schema cannot carry: say so, plan on
            log.error("%s: flexibility not sent: %s", self.id, exc)
        t = self.target
        if t is None or t.expires_at <= at.to_pydatetime():
            return local
        return self._overlay(local, t)

    def _overlay(self, plan: Plan, t: s.Targets) -> Plan:
        profile = self._pv_profile if self._pv_profile is not None else pd.Series(dtype=float)
        return overlay(self.site, plan, t, self._state or State(), profile)

    # -- down -------------------------------------------------------------------------

    async def on_message(self, message: aiomqtt.Message) -> None:
        payload = message.payload if isinstance(message.payload, bytes | str) else b""
        stream = s.parse_topic(str(message.topic))[1]
        if stream == "down/sync":
            try:
                sync = s.decode(s.Sync, payload, self.id)
            except s.PayloadError as exc:
                log.warning("%s: bad sync: %s", self.id, exc)
                return
            await asyncio.to_thread(self.outbox.confirm, sync.stored_seq)
            if sync.rewind and self.link is not None:
                self.link.rewind(sync.stored_seq)
        elif stream == "down/targets":
            self.on_targets(payload)
        elif stream == "down/signals":
            await self.on_signals(payload)

    async def on_signals(self, payload: bytes | str) -> str:
        """City-level grid signals into the district's signal room, enforced at once (the
        safety layer writes the devices they bound again, before the next poll); returns
        applied, duplicate or refused."""
        try:
            msg = s.decode(s.Signals, payload, self.id)
            signals = [to_signal(g) for g in msg.signals]
        except ValueError as exc:  # PayloadError or SignalError
            self.ctl.event("warning", "city", "signals_invalid", f"signals refused: {exc}")
            return "refused"
        if msg.seq == self._signals_seq:
            return "duplicate"  # heard again (retained, after a reconnect)
        last = self.outbox.meta("last_signals_seq")
        if msg.seq < last:
            detail = f"signals {msg.seq} after {last}"
            self.ctl.event("warning", "city", "signals_out_of_order", f"signals refused: {detail}")
            return "refused"
        # A restarted agent takes the retained message (same seq) again: it holds nothing yet.
        self.outbox.set_meta("last_signals_seq", msg.seq)
        self._signals_seq = msg.seq
        self.city_signals = signals
        watch = self.ctl.signal_watch
        assert watch is not None
        watch.extra = [x for x in watch.extra if not x.source.startswith(CITY_SOURCE + ":")]
        watch.extra += signals
        what = ", ".join(x.describe() for x in signals) or "none"
        self.ctl.event("info", "city", "signals_received", f"city signals {msg.seq}: {what}")
        await self.ctl.signals()
        return "applied"

    def signals_in_force(self) -> list[Signal]:
        now = self.ctl.clock.now()
        return [x for x in self.city_signals if x.active(now)]

    def on_targets(self, payload: bytes | str) -> str:
        """Check and apply one target message; returns applied, duplicate or refused."""
        now = self.ctl.clock.now()
        try:
            t = s.decode(s.Targets, payload, self.id)
        except s.PayloadError as exc:
            return self._refuse(0, "invalid", str(exc), now)
        last = self.last_target_seq
        if t.seq == last:
            self._count("duplicate")
            return "duplicate"  # heard again (retained, resent): applied once already
        if t.seq < last:
            return self._refuse(t.seq, "out_of_order", f"seq {t.seq} after {last}", now)
        if t.expires_at <= now:
            return self._refuse(t.seq, "expired", f"expired at {t.expires_at.isoformat()}", now)
        self.outbox.set_meta("last_target_seq", t.seq)
        self.target = t
        self.stats.held_at[t.seq] = time.monotonic()
        self._set_caps(t)
        if self.ctl.state.plan is not None and self._state is not None:
            self.ctl.state.plan = self._overlay(self.ctl.state.plan, t)
        self._count("applied")
        self._ack(t.seq, "applied", "", now)
        return "applied"

    def _set_caps(self, t: s.Targets) -> None:
        kept = [c for c in self.ctl.state.caps if not c.reason.startswith(CITY_CAP)]
        city = [
            OperatorCap(c.direction, c.limit_w, c.start, c.end, f"{CITY_CAP}: {c.reason}")
            for c in t.caps
        ]
        self.ctl.state.caps = [*kept, *city]

    def _refuse(self, seq: int, reason: str, detail: str, now: datetime) -> str:
        self.stats.refusals[reason] = self.stats.refusals.get(reason, 0) + 1
        self._count("refused")
        self.ctl.event("warning", "city", f"target_{reason}", f"targets refused: {detail}")
        self._ack(seq, "refused", f"{reason}: {detail}", now)
        return "refused"

    def _count(self, status: str) -> None:
        self.stats.targets[status] = self.stats.targets.get(status, 0) + 1

    def _ack(self, target_seq: int, status: str, reason: str, now: datetime) -> None:
        self._put(
            "up/ack",
            lambda n: s.TargetAck(
                agent=self.id, seq=n, sent_at=now, target_seq=target_seq,
                status=status, reason=reason[:500], at=now,
            ),
        )  # fmt: skip
