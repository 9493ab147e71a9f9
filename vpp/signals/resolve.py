"""From the signals active now to what the safety layer enforces: per-device bounds
(:data:`vpp.control.envelope.Bounds`), grid caps, and a report of conflicts.

Pure: a Site, signals and a time in; a :class:`Resolved` out. Per device and kind, the
stricter signal wins (the lowest feed-in stage, the lowest consumption cap after the §14a
floor, the lowest import or export cap), and every place where active signals disagree is a
:class:`Conflict` naming the winner and the losers. The bounds only narrow: the envelope
intersects them after the device's own bounds and keeps the result inside those
(:mod:`vpp.control.envelope`), so no signal can widen what a device may be given.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from vpp.control.envelope import Bound
from vpp.control.state import OperatorCap
from vpp.core.site import DeviceKind, Site
from vpp.signals.model import Signal, SignalKind
from vpp.signals.rules import consumption_caps_w, consumption_rule, feed_in_rule, pv_rule

#: From and until when a signal's grid cap counts as an operator cap (it is in force as long
#: as it is resolved).
_EVER = (datetime.min.replace(tzinfo=UTC), datetime.max.replace(tzinfo=UTC))


@dataclass(frozen=True, slots=True)
class Conflict:
    """Active signals of one kind that disagree on ``devices`` (empty: the site's grid cap):
    ``winner`` is the stricter and is enforced."""

    kind: SignalKind
    winner: Signal
    losers: tuple[Signal, ...]
    devices: tuple[str, ...] = ()

    def __str__(self) -> str:
        where = "the site" if not self.devices else _devices_text(self.devices)
        losers = ", ".join(s.describe() for s in self.losers)
        return f"conflicting signals for {where}: {self.winner.describe()} wins over {losers}"


def _devices_text(devices: tuple[str, ...]) -> str:
    if len(devices) <= 3:
        return ", ".join(devices)
    return f"{len(devices)} devices ({', '.join(devices[:3])}, ...)"


@dataclass(frozen=True, slots=True)
class Resolved:
    """What the active signals ask of the plant now.

    bounds : extra bounds by device id, for :func:`vpp.control.safety.check_setpoints` and
        :class:`vpp.control.invariants.Limits`
    import_cap_w, export_cap_w : grid caps [W] (None: no signal caps the exchange)
    winners : the enforced signal by (device id, kind)
    conflicts : where active signals disagreed
    non_compliant : devices that cannot follow a signal (a §9 stage below the inverter's
        minimum), each with why
    """

    bounds: Mapping[str, tuple[Bound, ...]] = field(default_factory=dict)
    import_cap_w: float | None = None
    export_cap_w: float | None = None
    winners: Mapping[tuple[str, SignalKind], Signal] = field(default_factory=dict)
    conflicts: tuple[Conflict, ...] = ()
    non_compliant: tuple[str, ...] = ()
    active: tuple[Signal, ...] = ()

    def grid_limits_w(self, import_w: float, export_w: float) -> tuple[float, float]:
        """(import, export) limits [W] tightened by the signals' caps."""
        imp = import_w if self.import_cap_w is None else min(import_w, self.import_cap_w)
        exp = export_w if self.export_cap_w is None else min(export_w, self.export_cap_w)
        return imp, exp

    def operator_caps(self) -> list[OperatorCap]:
        """The signals' grid caps as caps in force at any time (the controller passes them
        with the operator's own to the cycle)."""
        out = []
        for direction, cap in (("import", self.import_cap_w), ("export", self.export_cap_w)):
            if cap is not None:
                out.append(OperatorCap(direction, cap, _EVER[0], _EVER[1], "grid-operator signal"))
        return out

    def same_constraints(self, other: Resolved | None) -> bool:
        """Whether ``other`` asks exactly the same of the plant (bounds and caps)."""
        return (
            other is not None
            and self.import_cap_w == other.import_cap_w
            and self.export_cap_w == other.export_cap_w
            and self.bounds == other.bounds
        )

    def changed_devices(self, other: Resolved | None) -> set[str]:
        """Devices whose bounds differ between ``other`` and this."""
        before: Mapping[str, tuple[Bound, ...]] = {} if other is None else other.bounds
        return {d for d in set(before) | set(self.bounds) if before.get(d) != self.bounds.get(d)}


NONE = Resolved()


def _value(signal: Signal, device: Any, caps: Mapping[str, float]) -> float:
    """The cap [W] ``signal`` puts on ``device``."""
    if signal.kind == SignalKind.FEED_IN:
        assert signal.feed_in_pct is not None
        base = device.dc_peak_w if signal.basis == "peak" else device.rated_w
        return signal.feed_in_pct / 100.0 * float(base)
    return caps[device.id]


def active_bounds(site: Site, signals: Iterable[Signal], now: datetime) -> Resolved:
    """The bounds, grid caps and conflicts of the ``signals`` active at ``now``."""
    active = tuple(s for s in signals if s.active(now))
    if not active:
        return NONE
    per_device: dict[tuple[str, SignalKind], list[tuple[float, Signal]]] = {}
    for signal in active:
        if signal.kind in _GRID_KINDS:
            continue
        rule = _rule(signal)
        targets = [d for d in site.devices if rule(d) and signal.applies_to(d.id)]
        caps: dict[str, float] = {}
        if signal.kind == SignalKind.CONSUMPTION:
            caps = consumption_caps_w(targets, signal.limit_w, signal.ems)
        for device in targets:
            value = _value(signal, device, caps)
            per_device.setdefault((device.id, signal.kind), []).append((value, signal))

    bounds: dict[str, list[Bound]] = {}
    winners: dict[tuple[str, SignalKind], Signal] = {}
    grouped: dict[tuple[SignalKind, Signal, tuple[Signal, ...]], list[str]] = {}
    non_compliant: list[str] = []
    for (device_id, kind), found in per_device.items():
        value, winner = min(found, key=lambda vs: vs[0])
        winners[(device_id, kind)] = winner
        losers = tuple(s for v, s in found if s is not winner and not math.isclose(v, value))
        if losers:
            grouped.setdefault((kind, winner, losers), []).append(device_id)
        device = site.device(device_id)
        bounds.setdefault(device_id, []).append(_bound(device, value, winner))
        if kind == SignalKind.FEED_IN:
            minimum = device.min_limit_pct / 100.0 * float(device.rated_w)
            if value < minimum - 1e-9:
                non_compliant.append(
                    f"{device_id}: {winner.describe()} asks {value:.0f} W, below the "
                    f"inverter's minimum limit {minimum:.0f} W ({device.min_limit_pct:g} %): "
                    "held at the minimum, not compliant"
                )
    conflicts = [Conflict(k, w, losers, tuple(sorted(d))) for (k, w, losers), d in grouped.items()]
    import_cap, imp_conflict = _grid_cap(active, SignalKind.IMPORT_CAP)
    export_cap, exp_conflict = _grid_cap(active, SignalKind.EXPORT_CAP)
    conflicts += [c for c in (imp_conflict, exp_conflict) if c is not None]
    return Resolved(
        bounds={d: tuple(b) for d, b in bounds.items()},
        import_cap_w=import_cap,
        export_cap_w=export_cap,
        winners=winners,
        conflicts=tuple(conflicts),
        non_compliant=tuple(sorted(non_compliant)),
        active=active,
    )


def _rule(signal: Signal) -> Any:
    """Which devices a device-kind signal can act on: §9 stages the remote-controllable
    inverters, the 60 % peak cap every PV system it names, §14a dims the §14a consumers."""
    if signal.kind == SignalKind.CONSUMPTION:
        return consumption_rule
    return feed_in_rule if signal.basis == "rated" else pv_rule


def _bound(device: Any, cap_w: float, signal: Signal) -> Bound:
    """The bound a cap [W] puts on the device's setpoint (its sign convention)."""
    if signal.kind == SignalKind.CONSUMPTION:
        label = f"§14a EnWG {signal.describe()}, {cap_w:.0f} W"
    elif signal.basis == "peak":
        label = f"Solarspitzengesetz {signal.describe()}, {cap_w:.0f} W"
    else:
        label = f"§9 EEG {signal.describe()}"
    if signal.reason:
        label += f" ({signal.reason})"
    if device.kind == DeviceKind.BATTERY:  # > 0 discharges: the cap is on charging
        return Bound(-cap_w, math.inf, label)
    return Bound(-math.inf, cap_w, label)


#: Kinds that cap the site's grid exchange rather than a device.
_GRID_KINDS = (SignalKind.IMPORT_CAP, SignalKind.EXPORT_CAP, SignalKind.ZERO_EXPORT)


def _cap_w(signal: Signal) -> float:
    """The grid cap [W] a grid-kind signal asks (zero export: 0 W)."""
    if signal.kind == SignalKind.ZERO_EXPORT:
        return 0.0
    assert signal.limit_w is not None
    return signal.limit_w


def _grid_cap(active: tuple[Signal, ...], kind: SignalKind) -> tuple[float | None, Conflict | None]:
    """The strictest cap of ``kind`` (zero-export signals count as export caps of 0 W)."""
    kinds = {kind, SignalKind.ZERO_EXPORT} if kind == SignalKind.EXPORT_CAP else {kind}
    found = [s for s in active if s.kind in kinds]
    if not found:
        return None, None
    winner = min(found, key=_cap_w)
    cap = _cap_w(winner)
    losers = tuple(s for s in found if s is not winner and not math.isclose(_cap_w(s), cap))
    return cap, Conflict(kind, winner, losers) if losers else None
