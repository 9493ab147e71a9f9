"""The simulated device: a register image, physics state, faults, and how requests touch them.

Each kind (PV, battery, meter, heat pump, data centre) subclasses :class:`SimulatedDevice`
and registers itself for its ``kind`` and SunSpec model ids;
:func:`adapters.sim.create.create_device` picks the class from the registry instead of an
if-chain over kinds.

The fleet steps every device with an :class:`Environment` (time, step length, what the devices
stepped before it published). The Modbus server calls :meth:`SimulatedDevice.read_into` and
:meth:`SimulatedDevice.write` from its request callback; a write of a control takes effect
at once (the device is re-evaluated with a zero-length step at the write's time, in the
world of the last physics step). A write costs the same whatever the size of the fleet:
only the written device is touched.
"""

from __future__ import annotations

import random
import zlib
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, ClassVar, Literal

from adapters.sim.images import RegisterImage
from adapters.sim.profiles import IrradianceProfile
from vpp.core.clock import Clock
from vpp.core.site import DeviceKind, Site

#: "refuse_writes": reads answer as usual, every write is refused (ILLEGAL_VALUE), as a
#: device left in local control or with its remote control locked.
Fault = Literal["none", "silent", "error", "garbage", "refuse_writes"]
FAULTS: tuple[Fault, ...] = ("none", "silent", "error", "garbage", "refuse_writes")
#: Modbus exception codes the devices answer with (the server maps them to pymodbus enums).
ILLEGAL_FUNCTION = 0x01
ILLEGAL_ADDRESS = 0x02
ILLEGAL_VALUE = 0x03
GATEWAY_NO_RESPONSE = 0x0B
#: Version string in the common model of every simulated device.
SIM_VERSION = "0.1.0"


@dataclass(slots=True)
class Environment:
    """What one physics step sees, and what the devices publish for those stepped after them.

    Devices are stepped in ``order``: the data centre publishes its waste heat, the heat pump
    what it recovers, PV and batteries their power, and the meter sums the site last.
    """

    now: datetime
    dt_s: float
    local_hour: float
    irradiance: IrradianceProfile
    base_load_w: float = 0.0
    #: The data centre's IT power [W] and waste-heat temperature [degC] from the world's
    #: data; None: the simulator's own profile and the device's configured temperature.
    it_power_w: float | None = None
    world_waste_heat_temp_c: float | None = None
    #: Heat the district heating network takes [W thermal] from the world's data; None: the
    #: site's annual heat demand spread evenly over the year.
    heat_demand_th_w: float | None = None
    pv_w: float = 0.0
    battery_w: float = 0.0
    heat_pump_el_w: float = 0.0
    recovered_heat_w: float = 0.0
    waste_heat_w: float = 0.0
    waste_heat_temp_c: float | None = None
    dry_cooler_el_per_th: float = 0.0
    # Not an init field, so dataclasses.replace (a new moment) starts with an empty cache.
    _plane_cache: dict[tuple[float, float], float] = field(init=False, default_factory=dict)
    # ``now`` as POSIX seconds, worked out once: every device of a step asks for it.
    _now_s: float | None = field(init=False, default=None)

    def at(self, now: datetime) -> Environment:
        """This moment's world re-evaluated at ``now`` with a zero-length step: what a write
        between two physics steps sees. The world (irradiance, loads) stays as of this
        step until the next one; the plane irradiance already computed is shared."""
        moved = Environment(
            now, 0.0, self.local_hour, self.irradiance, self.base_load_w, self.it_power_w,
            self.world_waste_heat_temp_c, self.heat_demand_th_w, self.pv_w, self.battery_w,
            self.heat_pump_el_w, self.recovered_heat_w, self.waste_heat_w,
            self.waste_heat_temp_c, self.dry_cooler_el_per_th,
        )  # fmt: skip
        moved._plane_cache = self._plane_cache
        return moved

    @property
    def now_s(self) -> float:
        """Current time as POSIX seconds [s]."""
        now_s = self._now_s
        if now_s is None:
            now_s = self._now_s = self.now.timestamp()
        return now_s

    def plane_irradiance_w_per_m2(self, tilt_deg: float, azimuth_deg: float) -> float:
        """Irradiance on a plane [W/m^2] at this step; computed once per orientation and
        step (and shared with the writes until the next step, see :meth:`at`)."""
        key = (tilt_deg, azimuth_deg)
        value = self._plane_cache.get(key)
        if value is None:
            value = self._plane_cache[key] = self.irradiance(self.now, tilt_deg, azimuth_deg)
        return value


class SimulatedDevice(ABC):
    """One simulated device behind a Modbus unit id.

    Public attributes others may set at run time: ``fault`` (one of FAULTS),
    ``response_delay_s`` [s], ``error_code`` (the Modbus exception a faulty device returns).
    """

    #: Step order within the site (lower first).
    order: ClassVar[int] = 5

    def __init__(self, config: Any, site: Site, clock: Clock, base: int = 40000) -> None:
        self.config = config
        self.site = site
        self.clock = clock
        self.id: str = config.id
        self.kind = DeviceKind(config.kind)
        self.port: int = config.modbus.port
        self.unit: int = config.modbus.unit
        self.fault: Fault = "none"
        self.response_delay_s: float = config.sim.response_delay_s
        self.error_code = GATEWAY_NO_RESPONSE
        #: Accepted write requests (tests and the status table use it).
        self.writes = 0
        #: Modbus requests addressed to this device, answered or not (tests count them).
        self.requests = 0
        self._rng = random.Random(zlib.crc32(self.id.encode()))
        self._env: Environment | None = None
        self._dirty = True
        self.image: RegisterImage = self.build_image(base)

    # -- what each kind provides -------------------------------------------------------------

    @abstractmethod
    def build_image(self, base: int) -> RegisterImage:
        """The device's registers with their initial values."""

    @abstractmethod
    def advance(self, env: Environment) -> None:
        """Advance the physics state by ``env.dt_s`` to ``env.now`` and publish into ``env``."""

    @abstractmethod
    def publish(self) -> None:
        """Write the physics state into the register image."""

    @property
    @abstractmethod
    def state(self) -> Any:
        """The physics state (a dataclass with units in its field names)."""

    def accept(self, changed: dict[str, Any]) -> bool:
        """Whether the values a write would give the touched slots are acceptable."""
        return True

    def apply_controls(self, keys: frozenset[str], now_s: float) -> None:  # noqa: B027
        """React to a write that touched ``keys``, at time ``now_s`` [s] (default: nothing)."""

    # -- stepping ------------------------------------------------------------------------------

    def step(self, env: Environment) -> None:
        """Advance the physics; the image is refreshed lazily, on the next read."""
        self._env = env
        self.advance(env)
        self._dirty = True

    def refresh(self, offset: int = 0, count: int | None = None) -> RegisterImage:
        """The image with the current physics state written into it: into every register,
        or only into registers ``offset .. offset + count - 1`` (from the image's start; the
        rest stay staged until they are read, see :class:`RegisterImage`)."""
        image = self.image
        if self._dirty:
            image.staging = True
            try:
                self.publish()
            finally:
                image.staging = False
            self._dirty = False
        image.flush(offset, count)
        return image

    # -- Modbus side ---------------------------------------------------------------------------

    def read_into(self, block: list[int], offset: int, count: int) -> None:
        """Copy registers ``offset .. offset + count - 1`` of the image into ``block``."""
        regs = self.refresh(offset, count).regs
        block[offset : offset + count] = regs[offset : offset + count]
        if self.fault == "garbage":
            self._scramble(block, offset, count)

    def read_regs(self, offset: int, count: int) -> list[int]:
        """Registers ``offset .. offset + count - 1`` of the image (from its start)."""
        regs = self.refresh(offset, count).regs[offset : offset + count]
        if self.fault == "garbage":
            block = [0] * offset + regs
            self._scramble(block, offset, count)
            regs = block[offset:]
        return regs

    def _scramble(self, block: list[int], offset: int, count: int) -> None:
        for start, length in self.image.measurement:
            lo, hi = max(start, offset), min(start + length, offset + count)
            for i in range(lo, hi):
                block[i] = self._rng.getrandbits(16)

    def write(self, address: int, values: list[int]) -> int | None:
        """Apply a write request; a Modbus exception code if it is refused, else None."""
        if self.fault == "refuse_writes":
            return ILLEGAL_VALUE
        # No publish first: the writable registers are kept current as the controls change
        # (a revert clears its register at once), so the write, the checks and the controls
        # see what the device holds; the measurements are published on the next read.
        image = self.image
        if not image.all_writable(address, len(values)):
            return ILLEGAL_ADDRESS
        # What was published before and is still staged lies under the write, as it would
        # had it been encoded at once.
        image.flush(address - image.base, len(values))
        keys = image.keys_in(address, len(values))
        changed = {k: image.peek(k, address, values) for k in keys}
        if not self.accept(changed):
            return ILLEGAL_VALUE
        off = address - image.base
        image.regs[off : off + len(values)] = values
        self.writes += 1
        now = self.clock.now()
        self.apply_controls(keys, now.timestamp())
        if self._env is not None:
            # React at once: re-evaluate with a zero-length step at the write's time.
            self.advance(self._env.at(now))
        self._dirty = True
        return None


def common_values(model_name: str, serial: str, unit: int) -> dict[str, Any]:
    """Points of SunSpec model 1 (common) for a simulated device."""
    return {"Mn": "vpp-sim", "Md": model_name, "Vr": SIM_VERSION, "SN": serial, "DA": unit}


DeviceFactory = type[SimulatedDevice]
_REGISTRY: dict[tuple[DeviceKind, int | None], DeviceFactory] = {}
#: The SunSpec model a device presents when its config names none.
_DEFAULT_MODEL: dict[DeviceKind, Callable[[Any], int | None]] = {
    DeviceKind.PV: lambda cfg: 103,
    DeviceKind.BATTERY: lambda cfg: int(cfg.control),
    DeviceKind.METER: lambda cfg: 203,
    DeviceKind.HEAT_PUMP: lambda cfg: None,
    DeviceKind.DATACENTRE: lambda cfg: None,
}


def register(kind: DeviceKind, *models: int | None) -> Callable[[DeviceFactory], DeviceFactory]:
    """Class decorator: simulate devices of ``kind`` presenting one of ``models``."""

    def deco(cls: DeviceFactory) -> DeviceFactory:
        for model in models or (None,):
            _REGISTRY[(kind, model)] = cls
        return cls

    return deco


def presented_model(config: Any) -> int | None:
    """The SunSpec model id a device's simulator presents (None for register-map devices)."""
    kind = DeviceKind(config.kind)
    model: int | None = config.sim.sunspec_model
    return model if model is not None else _DEFAULT_MODEL[kind](config)


def simulator_class(kind: DeviceKind, model: int | None) -> DeviceFactory | None:
    """The registered simulator of ``kind`` presenting ``model`` (None if there is none)."""
    return _REGISTRY.get((kind, model))


def supported_models(kind: DeviceKind) -> list[str]:
    """The models the simulators of ``kind`` can present."""
    return sorted(str(m) for k, m in _REGISTRY if k == kind)
