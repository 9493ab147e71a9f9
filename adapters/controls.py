"""Setpoint writes to devices, as adapters/DEVICES.md specifies, each read back and compared.

* PV limit: model 123 (``WMaxLimPct``, ``WMaxLimPct_RvrtTms``, ``WMaxLim_Ena``) or 704
  (``WMaxLimPct``, ``WMaxLimPctRvrtTms``, ``WMaxLimPctEna``): limit, revert timer and enable
  in one request over the contiguous block.
* Battery with 124: a window of zero width, ``OutWRte`` = P and ``InWRte`` = -P [% of
  ``WChaMax``], with ``InOutWRte_RvrtTms`` in one request, then ``StorCtl_Mod`` = 3 (both
  bounds) only when the device is not in that mode already (the registers between them are
  read-only): after start-up or a revert, never for a change of direction. Rates the device
  holds already are not written again.
* Staging (:meth:`Controls.stage`): a 124 battery in its own mode (neither mode bit set)
  acts on no rates, so the controller may write the next quarter hour's rates ahead (after
  the plan); at the quarter hour the setpoint is then ``StorCtl_Mod`` alone, if it is still
  the value staged. A battery under control (either bit set) is never staged: its rates act.
* Battery with 802: 704 ``WSetEna``, ``WSetMod``, ``WSet`` [W] and ``WSetRvrtTms`` in one
  request over the contiguous block.
* Heat pump: ``setpoint_revert_s`` and ``el_setpoint_w`` through its register map.

Round trips: scale factors, ratings and the points of a block that are not set come from the
models as last read (every poll reads the control models; a read-back refreshes them), so a
SunSpec setpoint is one write and one read-back: two requests (three for a 124 battery taken
out of its own mode). A device whose endpoint has ``modbus.read_write`` takes the last write
and the read-back in one request (function code 23): one request (two for a 124 battery
taken out of its own mode, one if its rates were staged). Only a device not read since
discovery is read first.

Every write uses function code 16 (or 23, above) and sets the revert timer
(``poll.revert_s``), so a device falls back to its own control if the controller goes
silent. A value outside the device's ratings (from the config or the device's own rating
points) is refused with :class:`ControlRefused` before anything is written; a PV limit below
``min_limit_pct`` is clamped up to it (several inverters go to standby at 0 %) and the result
says so.
"""

from __future__ import annotations

import math
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

from adapters.devices import DeviceDataError, Driver, SunSpecDriver, protocol_of
from adapters.devices.battery import WINDOW_MODE, point_124
from adapters.devices.sunspec import Step
from adapters.poll import FleetPoller
from adapters.regmap import RegisterMapError, decode_register, encode_register, load_map
from adapters.sunspec.codec import scale, unscale
from adapters.sunspec.decode import DecodedModel


class ControlRefused(ValueError):
    """A setpoint outside what the device may do (its ratings); nothing was written."""

    def __init__(self, device_id: str, quantity: str, value: float, why: str) -> None:
        self.device_id, self.quantity, self.value = device_id, quantity, value
        super().__init__(f"{device_id}: {quantity} {value:g} refused, {why}; nothing written")


#: A refusal is not the device's failure: its breaker counts it as a success.
_REFUSED = (ControlRefused,)


@dataclass(slots=True)  # not frozen: one per write, and a frozen one costs 5x to make
class ControlResult:
    """What a control write did. ``ok`` is False when the read-back differs from the write."""

    device_id: str
    quantity: str
    requested: float
    written: float
    read_back: float | None
    ok: bool
    message: str
    revert_s: int
    clamped: bool = False


@dataclass(slots=True)
class _Plan:
    """Checked value to write, plus what the result should say about clamping."""

    written: float
    clamped: bool = False
    note: str = ""


#: Writes one setpoint: (driver, value, revert_s) -> result.
Writer = Callable[[Driver, float, int], Awaitable[ControlResult]]
_WRITERS: dict[tuple[str, str], Writer] = {}


#: Stages the next setpoint where a device can hold it inactive: (driver, value, revert_s) ->
#: result, or None when nothing was written.
Stager = Callable[[Driver, float, int], Awaitable["ControlResult | None"]]
#: Whether a device may take a staged setpoint now, from what was last read (no I/O).
Ready = Callable[[Driver], bool]
_STAGERS: dict[tuple[str, str], tuple[Ready, Stager]] = {}


def control_of(device: Any) -> str:
    """How a device takes setpoints: its ``control`` model ("123", "124"...) or "regmap"."""
    return str(getattr(device, "control", None) or protocol_of(device))


def _writer(kind: str, control: str) -> Callable[[Writer], Writer]:
    def add(fn: Writer) -> Writer:
        _WRITERS[(kind, control)] = fn
        return fn

    return add


def _stager(kind: str, control: str, ready: Ready) -> Callable[[Stager], Stager]:
    def add(fn: Stager) -> Stager:
        _STAGERS[(kind, control)] = (ready, fn)
        return fn

    return add


class Controls:
    """Writes setpoints to the devices of ``poller`` (sharing its discovery and breakers).

    ``revert_s`` [s] overrides the site's ``poll.revert_s`` revert timer.
    """

    def __init__(self, poller: FleetPoller, revert_s: int | None = None) -> None:
        self.poller = poller
        self.revert_s = revert_s if revert_s is not None else poller.site.poll.revert_s
        #: device id -> its writer, looked up on its first setpoint.
        self._writers: dict[str, Writer] = {}

    async def apply(self, device_id: str, value: float) -> ControlResult:
        """Write the setpoint of the device's kind: PV limit [%], battery or heat pump [W]."""
        driver = self.poller.driver(device_id)
        writer = self._writers.get(device_id)
        if writer is None:
            key = (str(driver.device.kind), control_of(driver.device))
            found = _WRITERS.get(key)
            if found is None:
                raise LookupError(f"{device_id}: no setpoint for {key[0]} via {key[1]}")
            writer = self._writers[device_id] = found
        if not math.isfinite(value):
            raise ControlRefused(device_id, "setpoint", value, "not a finite number")
        # The breaker's attempt (DeviceLink.attempt) entered and settled by hand: on every
        # write's path, without the two coroutines of ``async with``.
        attempt = driver.link.attempt(not_failures=_REFUSED)
        attempt.enter()
        try:
            result = await writer(driver, float(value), self.revert_s)
        except BaseException as exc:
            attempt.settle(exc)
            raise
        attempt.settle(None)
        return result

    def can_stage(self, device_id: str) -> bool:
        """Whether the device can hold a next setpoint inactive now (:meth:`stage`), as last
        read: a 124 battery in its own mode. No I/O."""
        driver = self.poller.driver(device_id)
        found = _STAGERS.get((str(driver.device.kind), control_of(driver.device)))
        return found is not None and found[0](driver)

    async def stage(self, device_id: str, value: float) -> ControlResult | None:
        """Write what the device can hold of the setpoint ``value`` without acting on it, so
        that the setpoint itself takes fewer requests when it comes: a 124 battery in its own
        mode takes the rates (inactive without the mode bits), and then only the mode.
        Checked as :meth:`apply` checks (ratings); None when the device cannot stage or
        nothing needs writing (it is under control, or holds the rates already)."""
        driver = self.poller.driver(device_id)
        found = _STAGERS.get((str(driver.device.kind), control_of(driver.device)))
        if found is None:
            return None
        stager = found[1]
        if not math.isfinite(value):
            raise ControlRefused(device_id, "setpoint", value, "not a finite number")
        attempt = driver.link.attempt(not_failures=_REFUSED)
        attempt.enter()
        try:
            result = await stager(driver, float(value), self.revert_s)
        except BaseException as exc:
            attempt.settle(exc)
            raise
        attempt.settle(None)
        return result

    async def set_pv_limit(self, device_id: str, pct: float) -> ControlResult:
        """PV limit [% of rated power], clamped up to ``min_limit_pct``, refused above 100."""
        return await self._apply_kind(device_id, "pv", pct)

    async def set_battery_power(self, device_id: str, power_w: float) -> ControlResult:
        """Battery setpoint [W], > 0 discharging, < 0 charging."""
        return await self._apply_kind(device_id, "battery", power_w)

    async def set_heat_pump_power(self, device_id: str, power_w: float) -> ControlResult:
        """Heat pump electric power setpoint [W], 0..``max_el_w``."""
        return await self._apply_kind(device_id, "heat_pump", power_w)

    async def _apply_kind(self, device_id: str, kind: str, value: float) -> ControlResult:
        found = str(self.poller.driver(device_id).device.kind)
        if found != kind:
            raise LookupError(f"{device_id} is a {found} device, not {kind}")
        return await self.apply(device_id, value)


def _result(
    driver: Driver,
    quantity: str,
    requested: float,
    plan: _Plan,
    read_back: float | None,
    tolerance: float,
    revert_s: int,
    other_mismatches: Sequence[str] = (),
) -> ControlResult:
    problems = list(other_mismatches)
    read_back = None if read_back is None else float(read_back)
    if read_back is None or abs(read_back - plan.written) > tolerance:
        problems.insert(0, f"read back {read_back} instead of {plan.written:g}")
    message = "; ".join(problems) if problems else f"{quantity} = {plan.written:g} confirmed"
    if plan.note:
        message = f"{plan.note}; {message}"
    return ControlResult(
        driver.device_id,
        quantity,
        requested,
        plan.written,
        read_back,
        not problems,
        message,
        revert_s,
        plan.clamped,
    )


# ---- helpers -------------------------------------------------------------------------------


def _mismatches(model: DecodedModel, expected: dict[str, Any]) -> list[str]:
    return [
        f"model {model.id} {name} read back {model.values.get(name)} instead of {want}"
        for name, want in expected.items()
        if model.values.get(name) != want
    ]


def _half_step(sf: int | None) -> float:
    """Half a step of a register with scale factor ``sf``, plus float slack: the read-back
    tolerance (the value written is already a whole number of steps)."""
    return 0.5 * 10.0 ** (sf or 0) + 1e-9


def _refuse_range(
    device_id: str,
    quantity: str,
    value: float,
    lo: float,
    hi: float,
    unit: str,
    lo_name: str,
    hi_name: str,
) -> None:
    """Raise ControlRefused unless ``lo <= value <= hi`` [unit]."""
    if value > hi:
        raise ControlRefused(device_id, quantity, value, f"above {hi_name} {hi:g} {unit}")
    if value < lo:
        raise ControlRefused(device_id, quantity, value, f"below {lo_name} {lo:g} {unit}")


def _sunspec(driver: Driver) -> SunSpecDriver:
    if not isinstance(driver, SunSpecDriver):
        raise TypeError(f"{driver.device_id}: not a SunSpec device")
    return driver


# ---- PV limit ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _LimitPoints:
    model: int
    limit: str
    revert: str
    enable: str

    @property
    def kept(self) -> frozenset[str]:
        """The points the write compares and the next write takes from its read-back."""
        return frozenset({self.limit, self.revert, self.enable, "WMaxLimPct_SF"})


_PV_LIMIT = {
    "123": _LimitPoints(123, "WMaxLimPct", "WMaxLimPct_RvrtTms", "WMaxLim_Ena"),
    "704": _LimitPoints(704, "WMaxLimPct", "WMaxLimPctRvrtTms", "WMaxLimPctEna"),
}
#: The points of a PV limit's read-back that are decoded, by control model.
_PV_KEPT = {control: points.kept for control, points in _PV_LIMIT.items()}


def _pv_raw(device: Any, pct: float, sf: int | None) -> tuple[int | float, _Plan]:
    """Raw register value for a limit [%] and what the result reports; clamps to the floor."""
    _refuse_range(device.id, "pv_limit_pct", pct, 0.0, 100.0, "%", "the minimum", "the maximum")
    floor = float(device.min_limit_pct)
    target = max(pct, floor)
    raw = unscale(target, sf)
    if raw * 10.0 ** (sf or 0) < floor - 1e-9:  # rounding must not undercut the floor
        raw += 1
    written = raw * 10.0 ** (sf or 0)
    if pct < floor:
        return raw, _Plan(written, True, f"{pct:g} % clamped up to min_limit_pct {floor:g} %")
    return raw, _Plan(written)


@_writer("pv", "123")
@_writer("pv", "704")
async def _write_pv_limit(driver: Driver, pct: float, revert_s: int) -> ControlResult:
    points, ss = _PV_LIMIT[driver.device.control], _sunspec(driver)
    _pv_raw(driver.device, pct, 0)  # refuse before any I/O
    # As last read when known (the usual case): no coroutine to make and await.
    model = ss.recent(points.model) or (await ss.control_models(points.model))[points.model]
    sf = model.values.get("WMaxLimPct_SF")
    raw, plan = _pv_raw(driver.device, pct, sf)
    values = {points.limit: raw, points.revert: revert_s, points.enable: 1}
    back = await ss.write_block_read(model, values, _PV_KEPT[driver.device.control])
    wrong = _mismatches(back, {points.revert: revert_s, points.enable: 1})
    return _result(
        driver,
        "pv_limit_pct",
        pct,
        plan,
        back.values.get(points.limit),
        _half_step(sf),
        revert_s,
        wrong,
    )


# ---- battery -------------------------------------------------------------------------------


def _battery_limits(
    driver: Driver, p: float, charge: Sequence[Any] = (), discharge: Sequence[Any] = ()
) -> None:
    """Refuse ``p`` [W] beyond the smallest known charge/discharge rating (config, device)."""
    dev = driver.device
    max_charge = min([float(dev.max_charge_w), *(float(c) for c in charge if c)])
    max_discharge = min([float(dev.max_discharge_w), *(float(d) for d in discharge if d)])
    _refuse_range(
        dev.id,
        "battery_power_w",
        p,
        -max_charge,
        max_discharge,
        "W",
        "the maximum charge power (negative)",
        "the maximum discharge power",
    )


def _static(driver: SunSpecDriver, role: str, point: str) -> Any:
    """A point of a model read once at discovery (ratings)."""
    model = driver.layout.static.get(role) if driver.layout else None
    return model.values.get(point) if model is not None else None


#: The points of model 124 a battery write reads (here and at its next write) and compares.
_KEPT_124 = frozenset(
    {"WChaMax", "StorCtl_Mod", "OutWRte", "InWRte", "InOutWRte_WinTms", "InOutWRte_RvrtTms",
     "InOutWRte_SF"}
)  # fmt: skip


@dataclass(slots=True)
class _Rates124:
    """A 124 battery's setpoint as its registers: the model it was computed from, the rates
    step (raw values) and what they hold the battery at [W]."""

    model: DecodedModel
    step: Step
    written: _Plan
    tolerance_w: float
    wchamax: float

    def held(self) -> bool:
        """Whether the device holds these rates and revert timer already (as last read)."""
        values = self.model.values
        sf = values.get("InOutWRte_SF")
        if sf is None:  # rates unreadable: never assume they are held
            return False
        for name, raw in self.step:
            want = scale(raw, sf) if name in ("OutWRte", "InWRte") else raw
            if values.get(name) != want or (want is None and name != "InOutWRte_WinTms"):
                return False
        return True


async def _rates_124(driver: Driver, p: float, revert_s: int) -> _Rates124:
    """The rates that hold a 124 battery at ``p`` [W]: a window of zero width, ``OutWRte`` =
    P and ``InWRte`` = -P [% of ``WChaMax``], with the revert timer. Refused beyond the
    config's ratings (before any I/O) and the device's own."""
    _battery_limits(driver, p)  # the config's ratings first: no I/O for an obvious refusal
    ss = _sunspec(driver)
    model = ss.recent(124) or (await ss.control_models(124))[124]
    wchamax = model.values.get("WChaMax")
    if not wchamax or wchamax <= 0:
        raise DeviceDataError(f"{driver.device_id}: model 124 WChaMax is {wchamax}, need > 0")
    _battery_limits(
        driver,
        p,
        (wchamax, _static(ss, "rating", "MaxChaRte")),
        (wchamax, _static(ss, "rating", "MaxDisChaRte")),
    )
    sf = model.values.get("InOutWRte_SF")
    rate = unscale(p / wchamax * 100.0, sf)
    step: Step = [
        ("OutWRte", rate),
        ("InWRte", -rate),
        ("InOutWRte_WinTms", model.values.get("InOutWRte_WinTms")),
        ("InOutWRte_RvrtTms", revert_s),
    ]
    written = _Plan(rate * 10.0 ** (sf or 0) / 100.0 * wchamax)
    return _Rates124(model, step, written, _half_step(sf) * wchamax / 100.0, float(wchamax))


@_writer("battery", "124")
async def _write_124(driver: Driver, p: float, revert_s: int) -> ControlResult:
    rates = await _rates_124(driver, p, revert_s)
    model = rates.model
    # The mode only when the device is not in it already (after start-up or a revert): a
    # change of direction is the rates alone. Rates the device holds already (staged while
    # it was in its own mode, :func:`_stage_124`) are not written again: the mode alone.
    mode = WINDOW_MODE
    if model.values.get("StorCtl_Mod") == mode:
        steps = [rates.step]
    elif rates.held():
        steps = [[("StorCtl_Mod", mode)]]
    else:
        steps = [rates.step, [("StorCtl_Mod", mode)]]
    back = await _sunspec(driver).write_points_read(model, steps, _KEPT_124)
    wrong = _mismatches(back, {"StorCtl_Mod": mode, "InOutWRte_RvrtTms": revert_s})
    read_back = _rate_w(
        back.values.get("StorCtl_Mod"), back.values.get("OutWRte"), back.values.get("InWRte"),
        rates.wchamax,
    )  # fmt: skip
    return _result(
        driver,
        "battery_power_w",
        p,
        rates.written,
        read_back,
        rates.tolerance_w,
        revert_s,
        wrong,
    )


def _own_mode_124(driver: Driver) -> bool:
    """A 124 battery that the last read found in its own mode (neither mode bit set)."""
    model = driver.recent(124) if isinstance(driver, SunSpecDriver) else None
    mode = None if model is None else model.values.get("StorCtl_Mod")
    return mode is not None and not int(mode) & WINDOW_MODE


@_stager("battery", "124", _own_mode_124)
async def _stage_124(driver: Driver, p: float, revert_s: int) -> ControlResult | None:
    """Write the rates of ``p`` to a 124 battery in its own mode, where they hold nothing
    (neither mode bit set: ``window_124`` is None), so that its next setpoint of ``p`` is
    the mode alone. None, and nothing written, when the device is not in its own mode as
    last read (the rates would act at once), or holds these rates already."""
    rates = await _rates_124(driver, p, revert_s)  # refuses beyond the ratings
    mode = rates.model.values.get("StorCtl_Mod")
    if mode is None or int(mode) & WINDOW_MODE or rates.held():
        return None
    back = await _sunspec(driver).write_points_read(rates.model, [rates.step], _KEPT_124)
    wrong = _mismatches(back, {"StorCtl_Mod": mode})
    if not _Rates124(back, rates.step, rates.written, 0.0, rates.wchamax).held():
        wrong.insert(
            0,
            f"model 124 read back OutWRte {back.values.get('OutWRte')}, InWRte "
            f"{back.values.get('InWRte')}, InOutWRte_RvrtTms "
            f"{back.values.get('InOutWRte_RvrtTms')}, not the rates staged",
        )
    message = "; ".join(wrong) or (
        f"rates of {rates.written.written:g} W staged in the device's own mode (inactive)"
    )
    return ControlResult(
        driver.device_id,
        "battery_power_w",
        p,
        rates.written.written,
        None,
        not wrong,
        message,
        revert_s,
    )


def _rate_w(mode: Any, out_pct: Any, in_pct: Any, wchamax: float) -> float | None:
    """Setpoint [W] that mode and rates [% of ``wchamax`` W] hold the battery at; None when
    they leave it room (not a window of zero width)."""
    if mode is None or out_pct is None or in_pct is None:
        return None
    point = point_124(int(mode), float(out_pct), float(in_pct))
    return None if point is None else point / 100.0 * wchamax


#: The points of model 704 a battery write reads (here and at its next write) and compares.
_KEPT_704_WSET = frozenset({"WSetEna", "WSetMod", "WSet", "WSetRvrtTms", "WSet_SF"})


@_writer("battery", "802")
async def _write_802(driver: Driver, p: float, revert_s: int) -> ControlResult:
    _battery_limits(driver, p)
    ss = _sunspec(driver)
    models = await ss.control_models(704, 802)
    model, battery = models[704], models[802]
    _battery_limits(
        driver,
        p,
        (battery.values.get("WChaRteMax"), _static(ss, "rating", "WChaRteMaxRtg")),
        (battery.values.get("WDisChaRteMax"), _static(ss, "rating", "WDisChaRteMaxRtg")),
    )
    sf = model.values.get("WSet_SF")
    raw = unscale(p, sf)
    values = {"WSetEna": 1, "WSetMod": 1, "WSet": raw, "WSetRvrtTms": revert_s}
    back = await ss.write_block_read(model, values, _KEPT_704_WSET)
    wrong = _mismatches(back, {"WSetMod": 1, "WSetRvrtTms": revert_s, "WSetEna": 1})
    return _result(
        driver,
        "battery_power_w",
        p,
        _Plan(raw * 10.0 ** (sf or 0)),
        back.values.get("WSet"),
        _half_step(sf),
        revert_s,
        wrong,
    )


# ---- heat pump -----------------------------------------------------------------------------


@_writer("heat_pump", "regmap")
async def _write_heat_pump(driver: Driver, p: float, revert_s: int) -> ControlResult:
    dev = driver.device
    _refuse_range(
        dev.id, "heat_pump_el_w", p, 0.0, float(dev.max_el_w), "W", "the minimum", "max_el_w"
    )
    rmap = load_map(dev.register_map)
    setpoint, timer = rmap.channel("el_setpoint_w"), rmap.channel("setpoint_revert_s")
    try:
        timer_regs = encode_register(timer, revert_s, rmap.word_order)
    except RegisterMapError as exc:
        raise ValueError(f"{dev.id}: revert timer: {exc}") from None
    try:
        setpoint_regs = encode_register(setpoint, p, rmap.word_order)
    except RegisterMapError as exc:
        raise ControlRefused(dev.id, "heat_pump_el_w", p, f"register map: {exc}") from None
    if timer.address + timer.size == setpoint.address:  # one request: both or neither
        await driver.link.write(timer.address, timer_regs + setpoint_regs)
    elif setpoint.address + setpoint.size == timer.address:
        await driver.link.write(setpoint.address, setpoint_regs + timer_regs)
    else:  # timer first: the new setpoint must not run on an old timer
        await driver.link.write(timer.address, timer_regs)
        await driver.link.write(setpoint.address, setpoint_regs)
    back: dict[str, float | None] = {}
    for reg in (setpoint, timer):
        regs = await driver.link.read(reg.address, reg.size)
        back.update(rmap.decode("holding", reg.address, regs))
    got = back.get("setpoint_revert_s")
    wrong = [] if got == revert_s else [f"setpoint_revert_s read back {got}, not {revert_s}"]
    return _result(
        driver,
        "heat_pump_el_w",
        p,
        _Plan(decode_register(setpoint, setpoint_regs, rmap.word_order) or p),
        back.get("el_setpoint_w"),
        setpoint.scale / 2 + 1e-9,
        revert_s,
        wrong,
    )
