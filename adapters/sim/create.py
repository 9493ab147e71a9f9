"""Which simulator serves a configured device.

The kind modules register their classes in :mod:`adapters.sim.device` when they are imported;
this module imports them all, so that the registry is complete wherever devices are created.
"""

from __future__ import annotations

from typing import Any

import adapters.sim.battery
import adapters.sim.heat
import adapters.sim.meter
import adapters.sim.pv  # noqa: F401
from adapters.sim.device import (
    SimulatedDevice,
    presented_model,
    simulator_class,
    supported_models,
)
from vpp.core.clock import Clock
from vpp.core.site import DeviceKind, Site


def create_device(config: Any, site: Site, clock: Clock, base: int = 40000) -> SimulatedDevice:
    """A simulated device for one configured device; ValueError for an unsupported model."""
    kind = DeviceKind(config.kind)
    model = presented_model(config)
    cls = simulator_class(kind, model)
    if cls is None:
        raise ValueError(
            f"device {config.id!r}: the simulator has no {kind.value} presenting model "
            f"{model} (supported: {', '.join(supported_models(kind))})"
        )
    device: SimulatedDevice = cls(config, site, clock, base)
    return device
