"""``vpp coordinator``: the city plan over the districts' flexibility, and their targets.

It reads everything the agents send (``vpp/v1/+/up/#``), stores it in PostgreSQL once per
(agent, seq) and tells each agent up to where it holds its messages (``down/sync``), so the
agents' outboxes can forget them. When every agent has reported its flexibility for a new
quarter hour (or ``grace_s`` of wall time after the first did), it plans the city
(:func:`vpp.city.cityplan.plan_city`: the districts as virtual units under the substation's
limits) and publishes each agent its targets, retained, with an expiry and the agent's next
sequence number. After a reconnect it sends again what an agent has not acknowledged.

City-level grid signals (per district, sent as ``down/signals``) and substation caps (held
by the city plan) come from ``--signals FILE`` and, while it runs, from the operator API
(:meth:`Coordinator.add_signal`, :meth:`Coordinator.add_cap`, :meth:`Coordinator.cancel`),
which keeps them in the history so that a restarted coordinator holds them again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import aiomqtt

from vpp.city import schema as s
from vpp.city.cityplan import CityPlan, expiry_for, plan_city
from vpp.city.history import History
from vpp.city.link import Link, LinkConfig
from vpp.city.signals import (
    EntryError,
    SignalEntry,
    SubstationCap,
    check_cap,
    check_entry,
    per_agent,
)

#: Targets closer than this to their expiry are not sent (nor sent again): on the way they
#: would expire, and the agent refuses them.
SEND_MARGIN = timedelta(minutes=5)
log = logging.getLogger("vpp.city.coordinator")

#: Streams that come through the agents' outboxes (numbered without gaps).
NUMBERED = ("up/telemetry", "up/devices", "up/flex", "up/ack", "up/dropped")


@dataclass
class CoordinatorConfig:
    agents: list[str]
    import_limit_w: float
    export_limit_w: float
    #: Wall seconds after the first flexibility of a quarter hour before planning without
    #: the agents that have not reported.
    grace_s: float = 20.0
    expiry_quarters: int = 2
    #: "wall": the machine's clock; "agents": the newest telemetry time heard (for districts
    #: on a simulated clock, as in the tests, the benchmark and ``vpp city-demo --speed``).
    clock: str = "wall"
    #: City-level grid signals per agent (``--signals FILE``), sent as signals.
    signals: dict[str, list[s.GridSignal]] = field(default_factory=dict)


class SignalConflict(EntryError):
    """An id already used, or a file signal the API cannot cancel."""


@dataclass
class PlanRecord:
    """One city plan and when each agent acknowledged holding its targets."""

    start: datetime
    began: float  # time.monotonic()
    solve_s: float
    status: str
    agents: int
    seqs: dict[str, int] = field(default_factory=dict)
    acked: dict[str, float] = field(default_factory=dict)  # monotonic time of "applied"


@dataclass
class CoordinatorStats:
    received: dict[str, int] = field(default_factory=dict)
    duplicates_total: int = 0
    rejected_total: int = 0
    acks: dict[str, int] = field(default_factory=dict)
    targets_sent_total: int = 0
    targets_resent_total: int = 0
    rows_stored_total: int = 0
    #: Per agent: messages its full outbox dropped (tombstones heard).
    dropped: dict[str, int] = field(default_factory=dict)


class Coordinator:
    def __init__(
        self,
        config: CoordinatorConfig,
        link: LinkConfig,
        history: History | None,
        now: Callable[[], datetime] | None = None,
    ) -> None:
        self.config = config
        self.history = history
        self._now = now or (lambda: datetime.now(UTC))
        self.stats = CoordinatorStats()
        self.flex: dict[str, s.Flexibility] = {}
        self.telemetry: dict[str, s.Telemetry] = {}
        self.status: dict[str, str] = {}
        self.stored: dict[str, int] = {}
        self._above: dict[str, set[int]] = {}
        self._rows: list[tuple[str, int, str, dict[str, Any]]] = []
        self._acks: list[tuple[str, int, str, str, datetime]] = []
        self._targets_out: list[tuple[str, int, datetime, datetime, datetime, str]] = []
        self.target_seq: dict[str, int] = {}
        self.latest: dict[str, s.Targets] = {}
        self.acked: dict[str, int] = {}
        self.plans: list[PlanRecord] = []
        #: The newest city plan (per-step grid exchange, targets).
        self.last_plan: CityPlan | None = None
        self.planned_for: datetime | None = None
        self._first_seen: dict[datetime, float] = {}
        self._plan_lock = asyncio.Lock()
        self._flush_lock = asyncio.Lock()
        self._plan_task: asyncio.Task[None] | None = None
        self._want: datetime | None = None
        self._sync_seq = 0
        # Numbered from the start time (s) and after the last number the history holds
        # (restore): a restarted coordinator numbers after the one before, whose last
        # message the agents keep, however many it sent.
        self._signals_seq = int(time.time())
        self._signals_sent: dict[str, int] = {}
        self._dirty: set[str] = set()
        #: Signals and substation caps set through the operator API (kept in the history).
        self.live_signals: dict[str, SignalEntry] = {}
        self.caps: dict[str, SubstationCap] = {}
        self._ids_used: set[str] = set()
        self._signals_touched = False
        #: What operators did and what was refused, newest last (the city page lists them).
        self.events: deque[dict[str, str]] = deque(maxlen=200)
        #: Operator actions on signals and caps: added, cancelled, refused.
        self.signal_changes: dict[str, int] = {}
        self.link = Link(link, [f"{s.ROOT}/+/up/#"], self.on_message, on_connect=self._resync)

    def now(self) -> datetime:
        if self.config.clock == "agents" and self.telemetry:
            return max(t.time for t in self.telemetry.values())
        return self._now()

    def last_held_s(self) -> float | None:
        """Seconds from the start of the newest plan every agent of it acknowledged to the
        last of those acknowledgements (None before the first such plan)."""
        for rec in reversed(self.plans):
            if rec.seqs and set(rec.acked) >= set(rec.seqs):
                return max(rec.acked.values()) - rec.began
        return None

    async def restore(self) -> None:
        """What the database holds: messages stored, target numbers used."""
        if self.history is None:
            return
        self.stored.update(await self.history.stored_upto())
        self.target_seq.update(await self.history.last_target_seqs())
        self._signals_seq = max(self._signals_seq, await self.history.meta("signals_seq"))
        live, used = await self.history.city_signals()
        self._ids_used |= used
        self._signals_touched |= bool(used)
        for kind, body in live:
            try:
                if kind == "cap":
                    cap = check_cap(body)
                    self.caps[cap.id] = cap
                else:
                    entry = check_entry(body, self.config.agents)[0]
                    self.live_signals[entry.id] = entry
            except EntryError as exc:  # e.g. for an agent no longer in the city
                log.warning("history: city signal %r not taken again: %s", body.get("id"), exc)

    async def run(self, stop: asyncio.Event) -> None:
        tasks = [
            asyncio.create_task(self.link.run(stop)),
            asyncio.create_task(self._writer(stop)),
            asyncio.create_task(self._ticker(stop)),
        ]
        try:
            await asyncio.gather(*tasks)
        finally:
            for t in tasks:
                t.cancel()
            if self._plan_task is not None:
                self._plan_task.cancel()
            await asyncio.gather(
                *tasks, *([self._plan_task] if self._plan_task else []), return_exceptions=True
            )

    # -- up -----------------------------------------------------------------------------

    async def on_message(self, message: aiomqtt.Message) -> None:
        payload = message.payload if isinstance(message.payload, bytes | str) else b""
        self.receive(str(message.topic), payload)

    def receive(self, topic: str, payload: bytes | str) -> None:
        """One message from an agent, as heard on ``topic``."""
        try:
            agent, stream = s.parse_topic(topic)
            if agent not in self.config.agents:
                raise s.PayloadError(f"agent {agent!r} is not one of this city's")
            model = s.STREAMS[stream]
            msg = s.decode(model, payload, agent)
        except s.PayloadError as exc:
            self.stats.rejected_total += 1
            log.warning("refused %s: %s", topic, exc)
            return
        self.stats.received[stream] = self.stats.received.get(stream, 0) + 1
        if isinstance(msg, s.AgentStatus):
            self.status[agent] = msg.state
            return
        if stream in NUMBERED:
            if msg.seq <= self.stored.get(agent, 0) or msg.seq in self._above.get(agent, set()):
                self.stats.duplicates_total += 1
                return
            self._above.setdefault(agent, set()).add(msg.seq)
            self._rows.append((agent, msg.seq, stream, msg.model_dump(mode="json", by_alias=True)))
        if isinstance(msg, s.Telemetry):
            self.telemetry[agent] = msg
        elif isinstance(msg, s.Flexibility):
            self._on_flex(agent, msg)
        elif isinstance(msg, s.TargetAck):
            self._on_ack(agent, msg)
        elif isinstance(msg, s.Dropped):
            self.stats.dropped[agent] = self.stats.dropped.get(agent, 0) + 1

    def _on_flex(self, agent: str, f: s.Flexibility) -> None:
        old = self.flex.get(agent)
        if old is not None and old.start > f.start:
            return
        self.flex[agent] = f
        if self.planned_for is not None and f.start <= self.planned_for:
            return
        self._first_seen.setdefault(f.start, time.monotonic())
        ready = all(a in self.flex and self.flex[a].start >= f.start for a in self.config.agents)
        if ready:
            self._start_plan(f.start)

    def _on_ack(self, agent: str, ack: s.TargetAck) -> None:
        self.stats.acks[ack.status] = self.stats.acks.get(ack.status, 0) + 1
        self._acks.append((agent, ack.target_seq, ack.status, ack.reason, ack.at))
        if ack.status in ("applied", "duplicate"):
            self.acked[agent] = max(self.acked.get(agent, 0), ack.target_seq)
        if ack.status == "applied":
            for rec in reversed(self.plans):
                if rec.seqs.get(agent) == ack.target_seq:
                    rec.acked.setdefault(agent, time.monotonic())
                    break
        elif ack.status == "refused":
            log.warning("%s refused targets %d: %s", agent, ack.target_seq, ack.reason)

    async def _writer(self, stop: asyncio.Event) -> None:
        """Store what arrived, then confirm it to the agents (down/sync)."""
        while not stop.is_set():
            await self.flush()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), 0.2)
        await self.flush()

    async def flush(self) -> None:
        """Store what arrived, then confirm it (one flush at a time: a second one would
        confirm up to numbers the first has taken out of ``_rows`` but not yet stored, so
        the agents would forget them and a reader could miss the acknowledgements)."""
        async with self._flush_lock:
            await self._flush()

    async def _flush(self) -> None:
        rows, self._rows = self._rows, []
        acks, self._acks = self._acks, []
        targets, self._targets_out = self._targets_out, []
        if self.history is not None:
            try:
                for t in targets:
                    await self.history.store_target(*t)
                await self.history.store_messages(rows)
                for a in acks:
                    await self.history.store_ack(*a)
            except Exception as exc:  # the database is gone: keep the rows, try again
                log.error("history: %s; %d rows kept", exc, len(rows))
                self._rows[:0], self._acks[:0], self._targets_out[:0] = rows, acks, targets
                return
        self.stats.rows_stored_total += len(rows)
        for agent in {r[0] for r in rows}:
            self._advance(agent)
        await self._send_syncs()

    def _advance(self, agent: str) -> None:
        above = self._above.get(agent, set())
        pending = {r[1] for r in self._rows if r[0] == agent}
        upto = self.stored.get(agent, 0)
        while upto + 1 in above and upto + 1 not in pending:
            upto += 1
            above.discard(upto)
        if upto != self.stored.get(agent, 0):
            self.stored[agent] = upto
            self._dirty.add(agent)

    async def _send_syncs(self, every: bool = False) -> None:
        """What the history holds, to each agent that has news; ``every``: to every agent,
        asking it to send again what it sent after that (``rewind``): after a (re)connect
        the coordinator may have missed or lost messages the agents think delivered."""
        agents = set(self.config.agents) if every else set(self._dirty)
        for agent in sorted(agents):
            self._sync_seq += 1
            sync = s.Sync(agent=agent, seq=self._sync_seq, sent_at=self.now(),
                          stored_seq=self.stored.get(agent, 0), rewind=every)  # fmt: skip
            if await self.link.publish(s.topic(agent, "down/sync"), s.encode(sync), retain=True):
                self._dirty.discard(agent)

    # -- planning -------------------------------------------------------------------------

    async def _ticker(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            waiting = [
                start for start, seen in self._first_seen.items()
                if time.monotonic() - seen >= self.config.grace_s
                and (self.planned_for is None or start > self.planned_for)
            ]  # fmt: skip
            if waiting:
                self._start_plan(max(waiting))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), 0.5)

    def _start_plan(self, start: datetime) -> None:
        """Plan from ``start`` now, or right after the plan under way (the newest wins)."""
        if self.planned_for is not None and start <= self.planned_for:
            return
        self._want = start if self._want is None else max(self._want, start)
        if self._plan_task is None or self._plan_task.done():
            self._launch()

    def _launch(self) -> None:
        start, self._want = self._want, None
        if start is None:
            return
        self.planned_for = start
        self._first_seen = {k: v for k, v in self._first_seen.items() if k > start}
        self._plan_task = asyncio.create_task(self._plan_then_next(start))

    async def _plan_then_next(self, start: datetime) -> None:
        await self.plan_and_send(start)
        if self._want is not None:
            self._launch()

    async def plan_and_send(self, start: datetime) -> PlanRecord | None:
        """Plan the city from ``start`` with the agents whose flexibility reaches it, and send
        each its targets."""
        async with self._plan_lock:
            began = time.monotonic()
            flex = {a: f for a, f in self.flex.items() if f.start <= start
                    and (start - f.start).total_seconds() < 900 * (f.steps() - 1)}  # fmt: skip
            if not flex:
                return None
            planned_at = self.now()
            try:
                plan: CityPlan = await asyncio.to_thread(
                    plan_city, flex, self.config.import_limit_w, self.config.export_limit_w,
                    start, list(self.caps.values()), {a: self.agent_signals(a) for a in flex},
                )  # fmt: skip
            except Exception:  # the districts keep their own plans
                log.exception("city plan for %s failed", start.isoformat())
                return None
            rec = PlanRecord(start, began, plan.solve_s, plan.status, len(flex))
            self.plans.append(rec)
            self.last_plan = plan
            expires = expiry_for(plan.start, self.config.expiry_quarters)
            # Flexibility heard late (a restart): targets that expire within SEND_MARGIN of
            # now (the agents' clocks run ahead of the last telemetry heard) are not sent.
            if expires - SEND_MARGIN <= self.now():
                log.warning("city plan for %s expired before it was sent", start.isoformat())
                return rec
            sends = []
            rows: list[tuple[str, int, datetime, datetime, datetime, str]] = []
            for agent, (bat, pv) in plan.targets.items():
                seq = self.target_seq.get(agent, 0) + 1
                self.target_seq[agent] = seq
                t = s.Targets(
                    agent=agent, seq=seq, sent_at=self.now(), start=plan.start,
                    expires_at=expires, planned_at=planned_at, battery_w=bat, pv_w=pv,
                )  # fmt: skip
                self.latest[agent] = t
                rec.seqs[agent] = seq
                body = s.encode(t)
                rows.append((agent, seq, planned_at, plan.start, expires, body.decode()))
                sends.append(self._send_target(t, body))
            await self._store_targets(rows)
            await asyncio.gather(*sends)
            self.stats.targets_sent_total += len(sends)
            if self.history is not None:
                await self._store_plan(planned_at, plan)
            return rec

    async def _store_targets(
        self, rows: list[tuple[str, int, datetime, datetime, datetime, str]]
    ) -> None:
        """Targets go into the history before they are sent: a coordinator restarted after a
        crash numbers its next targets after them (an agent would take a number used twice
        for the one it already holds)."""
        if self.history is None:
            return
        try:
            for row in rows:
                await self.history.store_target(*row)
        except Exception as exc:  # the writer tries again
            log.error("history: targets not stored yet: %s", exc)
            self._targets_out.extend(rows)

    async def _store_plan(self, planned_at: datetime, plan: CityPlan) -> None:
        assert self.history is not None
        try:
            await self.history.store_plan(
                planned_at, plan.start, plan.status, len(plan.targets), plan.solve_s,
                max(plan.import_w, default=0.0), max(plan.export_w, default=0.0),
            )  # fmt: skip
        except Exception as exc:
            log.error("history: plan not stored: %s", exc)

    async def _send_target(self, t: s.Targets, body: bytes) -> bool:
        left = (t.expires_at - self.now()).total_seconds()
        return await self.link.publish(
            s.topic(t.agent, "down/targets"), body, retain=True, expiry_s=max(left, 1.0)
        )

    async def _resync(self, client: aiomqtt.Client) -> None:
        """After a (re)connect: targets not acknowledged and every sync, again."""
        del client
        await self._resend()

    def agent_signals(self, agent: str) -> list[s.GridSignal]:
        """The agent's city-level signals: from the file, then those set through the API."""
        live = per_agent(list(self.live_signals.values()), self.config.agents)
        return [*self.config.signals.get(agent, []), *live.get(agent, [])]

    def signals_now(self) -> list[s.GridSignal]:
        """The city-level signals in force now, over all agents (one per agent it is for)."""
        now = self.now()
        return [
            g for agent in self.config.agents for g in self.agent_signals(agent)
            if g.start <= now and (g.end is None or now < g.end)
        ]  # fmt: skip

    def caps_now(self) -> list[SubstationCap]:
        now = self.now()
        return [c for c in self.caps.values() if c.active(now)]

    def limits_now(self) -> tuple[float, float]:
        """The substation's import and export limits now [W], caps in force included."""
        imp, exp = self.config.import_limit_w, self.config.export_limit_w
        for c in self.caps_now():
            if c.direction == "import":
                imp = min(imp, c.limit_w)
            else:
                exp = min(exp, c.limit_w)
        return imp, exp

    async def set_signals(self, per_agent: dict[str, list[s.GridSignal]]) -> None:
        """New city-level signals (every agent's list replaced), sent to the agents."""
        self.config.signals = {a: list(per_agent.get(a, [])) for a in self.config.agents}
        self._signals_sent.clear()
        await self._send_signals()

    def signals_message(self, agent: str) -> s.Signals:
        """The next ``down/signals`` message for ``agent``: its signals not yet ended."""
        now = self.now()
        found = [g for g in self.agent_signals(agent) if g.end is None or g.end > now]
        self._signals_seq = max(self._signals_seq + 1, self._signals_sent.get(agent, 0) + 1)
        return s.Signals(agent=agent, seq=self._signals_seq, sent_at=now, signals=found)

    async def _send_signals(self) -> None:
        """Each agent's signals, once per change (retained: a reconnecting agent has them)."""
        if not self.config.signals and not self._signals_touched:
            return
        for agent in self.config.agents:
            if agent in self._signals_sent:
                continue
            msg = self.signals_message(agent)
            if self.history is not None:
                try:
                    await self.history.set_meta("signals_seq", msg.seq)
                except Exception as exc:  # the start-time numbering still holds mostly
                    log.error("history: signals number not stored: %s", exc)
            if await self.link.publish(s.topic(agent, "down/signals"), s.encode(msg), retain=True):
                self._signals_sent[agent] = msg.seq

    # -- the operator's signals and caps ----------------------------------------------------

    def file_ids(self) -> set[str]:
        return {g.id for found in self.config.signals.values() for g in found}

    def _check_new(self, ident: str, end: datetime | None) -> None:
        if ident in self.file_ids() or ident in self._ids_used:
            raise SignalConflict("id", f"{ident!r} is already used (ids are not reused)")
        if end is not None and end <= self.now():
            raise EntryError("end", "the window has already ended")

    def refused(self, what: str, exc: Exception, who: str) -> None:
        """Count and record an operator action that changed nothing."""
        self._event("signal_refused", f"{who}: {what} refused: {exc}")
        self.signal_changes["refused"] = self.signal_changes.get("refused", 0) + 1

    def _event(self, kind: str, detail: str) -> None:
        self.events.append({"at": self.now().isoformat(), "kind": kind, "detail": detail})
        log.info("%s: %s", kind, detail)

    async def _keep(self, kind: str, ident: str, body: dict[str, Any], who: str) -> None:
        """Into the history first: what the agents hear is what a restart restores."""
        if self.history is not None and not await self.history.add_city_signal(
            ident, kind, body, self.now(), who
        ):
            self._ids_used.add(ident)
            raise SignalConflict("id", f"{ident!r} is already used (ids are not reused)")
        self._ids_used.add(ident)
        self._signals_touched = True
        self.signal_changes["added"] = self.signal_changes.get("added", 0) + 1

    async def add_signal(self, raw: Any, who: str) -> SignalEntry:
        """A city-level signal for its agents (all when it names none), sent to them at once.
        EntryError (SignalConflict for an id in use) naming the field: nothing changes."""
        entry = check_entry(raw, self.config.agents)[0]
        self._check_new(entry.id, entry.end)
        await self._keep("signal", entry.id, entry.model_dump(mode="json"), who)
        self.live_signals[entry.id] = entry
        for agent in entry.agents or self.config.agents:
            self._signals_sent.pop(agent, None)
        self._event("signal_added", f"{who} added {_describe(entry)}")
        await self._send_signals()
        return entry

    async def add_cap(self, raw: Any, who: str) -> SubstationCap:
        """A substation cap, held from the next city plan. EntryError as :meth:`add_signal`."""
        cap = check_cap(raw)
        self._check_new(cap.id, cap.end)
        await self._keep("cap", cap.id, cap.model_dump(mode="json"), who)
        self.caps[cap.id] = cap
        self._event("cap_added", f"{who} added {_describe(cap)}")
        return cap

    async def cancel(self, ident: str, who: str) -> SignalEntry | SubstationCap | None:
        """End a signal or cap set through the API (None: no such one); the agents it was
        for get their list without it at once."""
        if ident in self.file_ids():
            raise SignalConflict("id", f"{ident!r} is from --signals FILE: change the file")
        found: SignalEntry | SubstationCap | None = self.live_signals.get(ident) or self.caps.get(
            ident
        )
        if found is None:
            return None
        if self.history is not None:
            await self.history.cancel_city_signal(ident, self.now(), who)
        self.signal_changes["cancelled"] = self.signal_changes.get("cancelled", 0) + 1
        if isinstance(found, SubstationCap):
            del self.caps[ident]
            self._event("cap_cancelled", f"{who} cancelled {_describe(found)}")
            return found
        del self.live_signals[ident]
        for agent in found.agents or self.config.agents:
            self._signals_sent.pop(agent, None)
        self._event("signal_cancelled", f"{who} cancelled {_describe(found)}")
        await self._send_signals()
        return found

    async def _resend(self) -> None:
        for agent, t in list(self.latest.items()):
            pending = self.acked.get(agent, 0) < t.seq and t.expires_at - SEND_MARGIN > self.now()
            if pending and await self._send_target(t, s.encode(t)):
                self.stats.targets_resent_total += 1
        await self._send_syncs(every=True)
        await self._send_signals()


def _describe(x: SignalEntry | SubstationCap) -> str:
    until = "until cancelled" if x.end is None else f"until {x.end.isoformat()}"
    if isinstance(x, SubstationCap):
        what = f"substation {x.direction} cap {x.limit_w:.0f} W"
    else:
        value = (
            f" {x.feed_in_pct:g} %"
            if x.feed_in_pct is not None
            else (f" {x.limit_w:.0f} W" if x.limit_w is not None else "")
        )
        what = f"{x.kind}{value} for {', '.join(x.agents) if x.agents else 'every agent'}"
    why = f": {x.reason}" if x.reason else ""
    return f"{x.id} ({what} from {x.start.isoformat()} {until}{why})"
