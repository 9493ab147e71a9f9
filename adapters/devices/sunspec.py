"""Common part of the SunSpec drivers: discovery once, then a few planned reads per poll.

First contact: find the "SunS" marker (configured base, else 40000/0/50000), walk the model
chain, pick the models the driver needs (a :class:`Variant`: one model of each :class:`Role`,
the first alternative the device has) and read the static ones (nameplate, ratings) once. The
result is cached until a failure (:meth:`SunSpecDriver.forget`). Every poll then reads only
the dynamic models, in the fewest requests of <= 125 registers (``plan_reads``).

Devices often report a model length L that differs from the definition. Such a model is used
as it is: the points inside L are decoded, those beyond L are None, and the warning about it is
logged once per device and model (not on every poll; again only if L changes). A point the
driver cannot do without, or that a control has to write, that lies beyond L (or whose scale
factor does) fails with :class:`MissingPointError` naming device, model and point.
"""

from __future__ import annotations

import functools
import logging
from abc import abstractmethod
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from adapters.bridge import DeviceLink
from adapters.bridge.modbus import MAX_READ, MAX_WRITE_READ
from adapters.devices.base import DeviceDataError, Driver, checked, plausible
from adapters.snapshot import Reading
from adapters.sunspec.codec import encode_value
from adapters.sunspec.decode import DecodedModel
from adapters.sunspec.discovery import (
    ModelLocation,
    decode_span,
    find_base,
    plan_reads,
    read_chain,
    read_planned,
)
from adapters.sunspec.models import load_model

log = logging.getLogger(__name__)


class MissingPointError(DeviceDataError):
    """A point that is needed lies beyond the model length L the device reports."""


def missing_reason(model: DecodedModel, point: str) -> str | None:
    """Why top-level ``point`` of ``model`` has no value because of the model's length L:
    the point or its scale factor lies beyond L. None when L is not the reason."""
    if not model.missing:  # the usual case: every point of the definition is inside L
        return None
    where = f"the length the device reports (L={model.length})"
    if point in model.missing:
        return f"model {model.id} point {point} lies beyond {where}"
    try:
        sf = load_model(model.id).group.point(point).sf
    except KeyError:
        return None
    if isinstance(sf, str) and sf in model.missing:
        return f"model {model.id} point {point}: its scale factor {sf} lies beyond {where}"
    return None


@dataclass(frozen=True, slots=True)
class Role:
    """One thing a driver needs from the chain: the first of ``ids`` the device has.

    ``static`` models (nameplate, ratings) are read once at discovery, the others every poll.
    """

    name: str
    ids: tuple[int, ...]
    required: bool = True
    static: bool = False


@dataclass(frozen=True, slots=True)
class Variant:
    """A set of roles that together make one way of reading a device (e.g. 124 vs 802)."""

    name: str
    roles: tuple[Role, ...]

    def pick(self, chain: Sequence[ModelLocation]) -> dict[str, ModelLocation] | None:
        """Role name -> location for this chain; None if a required role has no model."""
        first: dict[int, ModelLocation] = {}
        for location in chain:
            first.setdefault(location.id, location)
        chosen: dict[str, ModelLocation] = {}
        for role in self.roles:
            found = next((first[i] for i in role.ids if i in first), None)
            if found is not None:
                chosen[role.name] = found
            elif role.required:
                return None
        return chosen


#: Most read plans one layout keeps (model sets read x unreadable registers found).
PLANS_KEPT = 16


@dataclass(slots=True)
class Layout:
    """What discovery learned about a device; cached between polls.

    ``dynamic``: the locations read every poll. ``plans``: (model ids, unreadable
    addresses) -> (the first location of each of those models, the requests that read
    them), planned once and reused at every poll.
    """

    base: int
    chain: list[ModelLocation]
    variant: Variant
    roles: dict[str, ModelLocation]
    static: dict[str, DecodedModel]
    unreadable: set[int] = field(default_factory=set)
    dynamic: list[ModelLocation] = field(init=False)
    plans: dict[
        tuple[frozenset[int], frozenset[int]],
        tuple[list[ModelLocation], tuple[tuple[int, int], ...]],
    ] = field(init=False, default_factory=dict)
    #: The plan of the dynamic models and how many unreadable registers it was made with.
    _poll_plan: tuple[list[ModelLocation], tuple[tuple[int, int], ...]] | None = field(
        init=False, default=None
    )
    _poll_holes: int = field(init=False, default=0)
    #: The first location of each model id in the chain (a write's read-back looks it up).
    _first: dict[int, ModelLocation] = field(init=False, default_factory=dict)

    def __post_init__(self) -> None:
        static = {r.name for r in self.variant.roles if r.static}
        self.dynamic = [loc for name, loc in self.roles.items() if name not in static]
        for loc in self.chain:
            self._first.setdefault(loc.id, loc)

    def poll_plan(self) -> tuple[list[ModelLocation], tuple[tuple[int, int], ...]]:
        """:meth:`plan` of the dynamic models, kept until an unreadable register is found
        (the set only grows)."""
        found = self._poll_plan
        if found is None or self._poll_holes != len(self.unreadable):
            self._poll_holes = len(self.unreadable)
            found = self._poll_plan = self.plan(frozenset(loc.id for loc in self.dynamic))
        return found

    def plan(self, ids: frozenset[int]) -> tuple[list[ModelLocation], tuple[tuple[int, int], ...]]:
        """The first location of each model in ``ids`` and the requests that read them
        (``plan_reads`` over the whole chain, around the unreadable registers)."""
        key = (ids, frozenset(self.unreadable))
        found = self.plans.get(key)
        if found is None:
            wanted = [loc for loc in self._first.values() if loc.id in ids]
            requests = plan_reads(wanted, within=self.chain, unreadable=self.unreadable)
            if len(self.plans) >= PLANS_KEPT:
                self.plans.clear()
            found = self.plans[key] = (wanted, tuple(requests))
        return found

    def location(self, model_id: int) -> ModelLocation | None:
        """First location of ``model_id`` in the chain."""
        return self._first.get(model_id)


class Models:
    """Decoded models of one poll by role, with point access that names device and point."""

    def __init__(
        self, device_id: str, by_role: Mapping[str, DecodedModel], variant: str = ""
    ) -> None:
        self.device_id = device_id
        self.by_role = by_role
        self.variant = variant

    def has(self, role: str) -> bool:
        return role in self.by_role

    def model(self, role: str) -> DecodedModel | None:
        return self.by_role.get(role)

    def value(self, role: str, point: str) -> Any:
        """Scaled value of ``point`` in the model of ``role``; None if absent."""
        model = self.by_role.get(role)
        if model is None:
            return None
        return model.values.get(point)

    def name(self, role: str, point: str) -> str:
        """``model 103 point W`` for messages."""
        model = self.by_role.get(role)
        return f"model {model.id} point {point}" if model else f"{role} point {point}"

    def number(
        self, role: str, point: str, lo: float, hi: float, unit: str, *, required: bool = False
    ) -> float | None:
        """``value`` checked to lie in ``lo..hi`` [unit] (see ``base.checked``); a required
        point beyond the model's length raises MissingPointError."""
        model = self.by_role.get(role)
        value = None if model is None else model.values.get(point)
        good = plausible(value, lo, hi)
        if good is not None:
            return good
        if value is None and required and model is not None:
            reason = missing_reason(model, point)
            if reason is not None:
                raise MissingPointError(f"{self.device_id}: {reason} (needed)")
        return checked(
            self.device_id, self.name(role, point), value, lo, hi, unit, required=required
        )

    def symbol(self, role: str, point: str) -> str | None:
        """Symbol name of an enum point (``MPPT``), or its number when it has no symbol."""
        model = self.by_role.get(role)
        if model is None:
            return None
        value = model.values.get(point)
        if value is None:
            return None
        return _symbols(model.id, point).get(value) or str(value)


@functools.lru_cache(maxsize=256)
def _symbols(model_id: int, point: str) -> dict[Any, str]:
    """Value -> symbol name of an enum point, as ``symbol_name`` finds it (the first name
    with that value): looked up in the definition once, not on every poll."""
    table: dict[Any, str] = {}
    for name, value in load_model(model_id).group.point(point).symbols.items():
        table.setdefault(value, name)
    return table


class SunSpecDriver(Driver):
    """Base of the SunSpec drivers; subclasses name their variants and normalise."""

    def __init__(self, device: Any, link: DeviceLink) -> None:
        super().__init__(device, link)
        self._layout: Layout | None = None
        # The last cleanly decoded model of each id (polls, control reads and read-backs):
        # controls take scale factors, ratings and the points they leave alone from here.
        self._recent: dict[int, DecodedModel] = {}
        # (model id, address) -> L already warned about; kept across forget(), so a
        # rediscovery after a failure does not repeat the warning. One entry per model.
        self._length_warned: dict[tuple[int, int], int] = {}

    @abstractmethod
    def variants(self) -> Sequence[Variant]:
        """Ways to read this device, most preferred first."""

    @abstractmethod
    def normalise(self, models: Models) -> Reading:
        """The reading from this poll's models (static ones included); check plausibility."""

    def forget(self) -> None:
        self._layout = None
        self._recent.clear()

    def recent(self, model_id: int) -> DecodedModel | None:
        """The model as last read (poll, control read or read-back), None if not read since
        discovery or the last failure."""
        return self._recent.get(model_id)

    async def control_models(self, *model_ids: int) -> dict[int, DecodedModel]:
        """The models a control needs: as last read when all of them are known, else read
        now (one request for those not known yet)."""
        known = {m: self._recent[m] for m in model_ids if m in self._recent}
        if len(known) == len(model_ids):
            return known
        return {**known, **await self.read_now(*(m for m in model_ids if m not in known))}

    @property
    def layout(self) -> Layout | None:
        """The cached discovery result, None before first contact or after a failure."""
        return self._layout

    async def discover(self) -> Layout:
        """Find the base, walk the chain, choose a variant and read its static models."""
        base = await find_base(self.link, self.device.modbus.base)
        chain = await read_chain(self.link, base)
        for variant in self.variants():
            roles = variant.pick(chain)
            if roles is not None:
                break
        else:
            wanted = "; ".join(
                f"{v.name}: " + ", ".join(f"{r.name} {r.ids}" for r in v.roles if r.required)
                for v in self.variants()
            )
            have = [loc.id for loc in chain]
            raise DeviceDataError(f"{self.device_id}: models {have} lack what is needed ({wanted})")
        layout = Layout(base, chain, variant, roles, {})
        static = [roles[r.name] for r in variant.roles if r.static and r.name in roles]
        if static:
            layout.static = self._by_role(layout, await self._read(layout, static))
        self._layout = layout
        return layout

    async def ensure_layout(self) -> Layout:
        """The cached layout, discovering first if there is none."""
        return self._layout if self._layout is not None else await self.discover()

    async def read_roles(self, layout: Layout) -> dict[str, DecodedModel]:
        """This poll's dynamic models by role, decode errors turned into DeviceDataError."""
        decoded = await self._read(layout, layout.dynamic)
        return self._by_role(layout, decoded)

    async def read(self) -> Reading:
        # ensure_layout and read_roles written out: a coroutine less on every request's way.
        layout = self._layout if self._layout is not None else await self.discover()
        decoded = await self._read_plan(layout, *layout.poll_plan())
        by_role = {**layout.static, **self._by_role(layout, decoded)}
        return self.normalise(Models(self.device_id, by_role, layout.variant.name))

    async def read_now(self, *model_ids: int) -> dict[int, DecodedModel]:
        """A fresh read of ``model_ids`` (for controls); DeviceDataError if one is missing or
        does not decode cleanly."""
        layout = await self.ensure_layout()
        found = [loc for loc in (layout.location(m) for m in model_ids) if loc is not None]
        if len(found) < len(model_ids):
            have = [m.id for m in layout.chain]
            raise DeviceDataError(f"{self.device_id}: needs models {model_ids}, has {have}")
        models = await self._read(layout, found)
        for model in models.values():
            _check_decoded(self.device_id, model)
        return models

    async def write_points(self, model: DecodedModel, steps: Sequence[Step]) -> None:
        """Write raw point values of ``model``, one request (function code 16) per step of
        contiguous points, in order. Every step is encoded before the first write, so a value
        that does not fit its register means nothing is written; so does a point that lies
        beyond the model's length L, or whose scale factor does (MissingPointError)."""
        for address, regs in self._point_requests(model, steps):
            await self.link.write(address, regs)

    async def write_block(self, model: DecodedModel, values: Mapping[str, Any]) -> None:
        """Write raw ``values`` of points of ``model`` in one request (function code 16) over
        the registers from the first to the last of them; the registers in between are
        written back as ``model`` holds them (the device's own values, as last read).
        Nothing is written if a value does not fit or a point lies beyond the model's L."""
        address, regs = self._block_request(model, values)
        await self.link.write(address, regs)

    async def write_points_read(
        self, model: DecodedModel, steps: Sequence[Step], points: frozenset[str] | None = None
    ) -> DecodedModel:
        """:meth:`write_points`, then the model as the device holds it afterwards (see
        :meth:`write_read_back`)."""
        return await self.write_read_back(model, self._point_requests(model, steps), points)

    async def write_block_read(
        self,
        model: DecodedModel,
        values: Mapping[str, Any],
        points: frozenset[str] | None = None,
    ) -> DecodedModel:
        """:meth:`write_block`, then the model as the device holds it afterwards (see
        :meth:`write_read_back`)."""
        return await self.write_read_back(model, [self._block_request(model, values)], points)

    async def write_read_back(
        self,
        model: DecodedModel,
        requests: Sequence[tuple[int, list[int]]],
        points: frozenset[str] | None = None,
    ) -> DecodedModel:
        """Send the (address, registers) write ``requests`` in order, then read ``model``
        back, decoded and checked like :meth:`read_now`. A device whose endpoint has
        ``read_write`` gets the last write and the read-back in one request (function code
        23, which writes before it reads): one round trip fewer per setpoint.

        ``points``: the points the caller compares and its next write takes from the model
        (:meth:`recent`; the next poll reads the whole model again). The function code 23
        read-back decodes only those where it can (``discovery.decode_span``): the model
        has the device's registers in ``raw`` and those points in ``values``, each as a
        whole decode would give it."""
        # ensure_layout written out: a coroutine less on every setpoint's way.
        layout = self._layout if self._layout is not None else await self.discover()
        loc = layout.location(model.id)
        span = None if loc is None else loc.end - loc.address
        last = requests[-1] if requests else None
        if (
            not self.device.modbus.read_write
            or loc is None
            or last is None
            or span is None
            or span > MAX_READ
            or len(last[1]) > MAX_WRITE_READ
        ):
            for address, regs in requests:
                await self.link.write(address, regs)
            return (await self.read_now(model.id))[model.id]
        for address, regs in requests[:-1]:
            await self.link.write(address, regs)
        back = decode_span(loc, await self.link.write_read(*last, loc.address, span), points)
        self._warn_lengths([back])
        _check_decoded(self.device_id, back)
        self._recent[back.id] = back
        return back

    def _point_requests(
        self, model: DecodedModel, steps: Sequence[Step]
    ) -> list[tuple[int, list[int]]]:
        beyond = [r for step in steps for name, _ in step if (r := missing_reason(model, name))]
        if beyond:
            raise MissingPointError(
                f"{self.device_id}: cannot write: {'; '.join(beyond)}; nothing written"
            )
        return [_encode_points(model, step) for step in steps]

    def _block_request(
        self, model: DecodedModel, values: Mapping[str, Any]
    ) -> tuple[int, list[int]]:
        beyond = [r for name in values if (r := missing_reason(model, name))]
        if beyond:
            raise MissingPointError(
                f"{self.device_id}: cannot write: {'; '.join(beyond)}; nothing written"
            )
        return _encode_block(model, values)

    async def _read(
        self, layout: Layout, wanted: Sequence[ModelLocation]
    ) -> dict[int, DecodedModel]:
        # The whole chain is passed so the plan may read across models in between: one
        # longer request costs less than two.
        return await self._read_plan(layout, *layout.plan(frozenset(loc.id for loc in wanted)))

    async def _read_plan(
        self,
        layout: Layout,
        locations: Sequence[ModelLocation],
        requests: Sequence[tuple[int, int]],
    ) -> dict[int, DecodedModel]:
        decoded = await read_planned(self.link, locations, requests, layout.unreadable)
        models = {model.id: model for model in decoded}
        self._warn_lengths(decoded)
        for model in decoded:
            if model.decoded and not model.errors:
                self._recent[model.id] = model
        return models

    def _warn_lengths(self, models: Iterable[DecodedModel]) -> None:
        """Log a model's length warning the first time it is seen on this device."""
        for model in models:
            if not model.warnings:
                continue
            key = (model.id, model.address)
            if self._length_warned.get(key) == model.length:
                continue
            self._length_warned[key] = model.length
            text = "; ".join(str(w) for w in model.warnings)
            log.warning("%s: %s (the points inside L are used)", self.device_id, text)

    def _by_role(self, layout: Layout, decoded: Mapping[int, DecodedModel]) -> dict[str, Any]:
        out: dict[str, DecodedModel] = {}
        for role, loc in layout.roles.items():
            model = decoded.get(loc.id)
            if model is not None:
                out[role] = _check_decoded(self.device_id, model)
        return out


#: One write request: (point name, raw value) of contiguous points.
Step = Sequence[tuple[str, Any]]


def _check_decoded(device_id: str, model: DecodedModel) -> DecodedModel:
    """``model`` if it decoded without errors (scale factors in range, length fits...)."""
    if model.errors or not model.decoded:
        problems = "; ".join(str(e) for e in model.errors) or "not decodable"
        raise DeviceDataError(f"{device_id}: {problems}")
    return model


@functools.lru_cache(maxsize=256)
def _points(model_id: int, names: tuple[str, ...]) -> tuple[tuple[int, str, int], ...]:
    """(offset from the model's ID register, type, size) of each of ``names``: looked up in
    the definition once per model and set of points, not on every write."""
    group = load_model(model_id).group
    return tuple((p.offset, p.type, p.size) for p in map(group.point, names))


def _encode(model_id: int, name: str, ptype: str, size: int, raw: Any) -> list[int]:
    """One point's registers; ValueError naming model and point when ``raw`` does not fit."""
    if size == 1 and type(raw) is int:  # the usual control point, inline
        if ptype in _UNSIGNED_16 and 0 <= raw <= 0xFFFF:
            return [raw]
        if ptype == "int16" and -0x8000 <= raw <= 0x7FFF:
            return [raw & 0xFFFF]
    try:
        return encode_value(ptype, raw, size)
    except ValueError as exc:
        raise ValueError(f"model {model_id} point {name}: {exc}") from None


#: One-register types encoded inline (as adapters.sunspec.codec.encode_value does).
_UNSIGNED_16 = frozenset({"uint16", "count", "enum16", "bitfield16", "acc16"})


@functools.lru_cache(maxsize=256)
def _block_plan(
    model_id: int, names: tuple[str, ...]
) -> tuple[int, int, tuple[tuple[str, int, str, int], ...]]:
    """Where a block write of ``names`` lies in the model: (its first and its end offset
    from the model's ID register, and per point: name, offset from the block's start, type,
    size). Worked out once per model and set of points, not on every write."""
    found = _points(model_id, names)
    first = min(offset for offset, _, _ in found)
    end = max(offset + size for offset, _, size in found)
    placed = tuple(
        (name, offset - first, ptype, size)
        for name, (offset, ptype, size) in zip(names, found, strict=True)
    )
    return first, end, placed


def _encode_block(model: DecodedModel, values: Mapping[str, Any]) -> tuple[int, list[int]]:
    """(address, registers) from the first to the last point of ``values``: those points
    encoded, the registers between them as ``model.raw`` holds them."""
    first, end, placed = _block_plan(model.id, tuple(values))
    if first < 2 or end > 2 + len(model.raw):  # raw holds the body, after ID and L
        raise ValueError(f"model {model.id}: points {list(values)} lie outside its registers")
    regs = model.raw[first - 2 : end - 2]
    for name, at, ptype, size in placed:
        regs[at : at + size] = _encode(model.id, name, ptype, size, values[name])
    return model.address + first, regs


@functools.lru_cache(maxsize=256)
def _step_plan(model_id: int, names: tuple[str, ...]) -> tuple[int, tuple[tuple[str, int], ...]]:
    """A write of contiguous ``names``: (the first one's offset from the model's ID
    register, per point: type, size); ValueError when they are not contiguous. Worked out
    once per model and set of points."""
    if not names:
        raise ValueError(f"model {model_id}: no points to write")
    found = _points(model_id, names)
    start = found[0][0]
    at = start
    for offset, _, size in found:
        if offset != at:
            raise ValueError(f"points {list(names)} are not contiguous")
        at += size
    return start, tuple((ptype, size) for _, ptype, size in found)


def _encode_points(model: DecodedModel, points: Step) -> tuple[int, list[int]]:
    """(address, registers) that write raw values to contiguous points of ``model``."""
    start, types = _step_plan(model.id, tuple(name for name, _ in points))
    regs: list[int] = []
    for (name, raw), (ptype, size) in zip(points, types, strict=True):
        regs += _encode(model.id, name, ptype, size, raw)
    return model.address + start, regs
